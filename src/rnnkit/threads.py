"""How many CPU threads a training uses: `train.threads: null` means *auto*.

    session = start(cfg.train.threads, distributed=dist.enabled)  # in fit: sets torch's intra-op threads
    report()                                                       # in summary.json: threads, reason, CPU evidence

Why not torch's default (one intra-op thread per core)? It is right for one training on an idle
machine. On a shared server, or with several `rnnkit tune` workers on one machine, every process's
OpenMP pool asks for every core; each small op of a recurrent network ends at a barrier that waits
for the slowest thread of the pool, and a thread the scheduler took off its core holds the whole
step up for a time slice (bench/bench_threads.py measures it; BENCHMARKS.md).

Auto picks max(1, floor((usable cores - other load + 0.5) / rnnkit trainings on this machine)):

* usable cores: the CPU affinity mask (os.sched_getaffinity), capped by a cgroup CPU quota
  (v2 cpu.max, v1 cpu.cfs_quota_us / cpu.cfs_period_us);
* rnnkit trainings: the live entries of a per-user registry, one flock'ed file per training process
  (`registry_dir()`); the kernel drops a lock when its process ends, by any means including SIGKILL,
  so the count cannot go stale. Under torchrun each rank is a process (and at least LOCAL_WORLD_SIZE
  are counted, as the ranks start together);
* other load: the CPU that everything else uses, in cores: the busy time of the usable CPUs in
  /proc/stat less the CPU time of the registered trainings, over START_SAMPLE_SECONDS at the start
  and then every RECHECK_SECONDS while training; the thread count follows it, down at once, up when
  two checks agree. Without /proc/stat: the 1-minute load average less the other trainings' threads
  (it lags by a minute, hence not the first choice). Host-wide figures are scaled to this process's
  share of the host's CPUs (a container's quota).

An explicit `train.threads` always wins; so does OMP_NUM_THREADS in the environment (a user or a
test suite that set it means it): neither is re-checked. Inter-op threads are left to torch: eager
training runs no inter-op work (that pool serves TorchScript's fork), and torch allows setting them
only once, before any inter-op work. The OpenMP wait policy (OMP_WAIT_POLICY) is read when the
OpenMP runtime loads, i.e. on `import torch`, so it cannot be chosen here.

Nothing here imports torch at module level: the registry is cheap to use from any process.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import tempfile
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; the registry counts this process only
    fcntl = None

DIR_ENV = "RNNKIT_THREADS_DIR"  # the registry's directory (default: registry_dir())
RECHECK_SECONDS = 2.0  # auto: seconds between re-measurements of the machine while training
START_SAMPLE_SECONDS = 0.2  # auto: the first measurement's window, at the start of a training
SUFFIX = ".lock"


# ---------------------------------------------------------------------------------------------- inputs


def omp_num_threads(environ=None) -> int | None:
    """OMP_NUM_THREADS as an int (its first level when it is a list like "4,2"); None when unset or invalid."""
    raw = (os.environ if environ is None else environ).get("OMP_NUM_THREADS", "").strip()
    try:
        value = int(raw.split(",")[0])
    except ValueError:
        return None
    return value if value >= 1 else None


def affinity_cpus() -> list[int]:
    """The CPUs this process may run on."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        return list(range(os.cpu_count() or 1))


def cgroup_quota(root: Path = Path("/sys/fs/cgroup"), proc_cgroup: Path = Path("/proc/self/cgroup")) -> float | None:
    """The cgroup CPU quota in cores (cgroup v2 cpu.max or v1 cfs_quota_us / cfs_period_us), None when unlimited."""
    paths = {"": "/"}
    with contextlib.suppress(OSError):
        for line in proc_cgroup.read_text().splitlines():
            parts = line.split(":", 2)
            if len(parts) == 3:
                for controller in parts[1].split(",") or [""]:
                    paths[controller] = parts[2]
    quotas = []
    for rel in {paths.get("", "/"), "/"}:  # v2: this process's group, then the root of the namespace
        with contextlib.suppress(OSError, ValueError):
            quota, period = (root / rel.lstrip("/") / "cpu.max").read_text().split()[:2]
            if quota != "max":
                quotas.append(int(quota) / int(period))
    for controller in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):  # v1
        for rel in {paths.get("cpu", "/"), "/"}:
            base = root / controller / rel.lstrip("/")
            with contextlib.suppress(OSError, ValueError):
                quota = int((base / "cpu.cfs_quota_us").read_text())
                period = int((base / "cpu.cfs_period_us").read_text())
                if quota > 0 and period > 0:
                    quotas.append(quota / period)
    return min(quotas) if quotas else None


def usable_cores() -> int:
    """Cores this process can use: its affinity mask, capped by a cgroup quota (whole cores, at least 1)."""
    cores = len(affinity_cpus())
    quota = cgroup_quota()
    if quota is not None:
        cores = min(cores, max(1, math.floor(quota)))
    return max(1, cores)


def host_share(cores: int) -> float:
    """This process's share of the host's CPUs (1.0 without a quota or an affinity mask): host-wide
    figures (load average, /proc/stat) are scaled by it."""
    return min(1.0, cores / max(1, os.cpu_count() or cores))


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


# ---------------------------------------------------------------------------------------------- arithmetic


def auto_threads(cores: int, processes: int, other_load: float = 0.0) -> int:
    """The auto policy: the cores left by everything else, shared by the rnnkit trainings, at least one.

    With no other load this is `cores // processes`; other load counts once it reaches half a core."""
    free = cores - max(0.0, other_load)
    return max(1, min(cores, math.floor((free + 0.5) / max(1, processes))))


def reason_for(threads: int, cores: int, processes: int, other_load: float) -> str:
    what = f"auto: {cores} core{'s' * (cores != 1)} / {processes} rnnkit training{'s' * (processes != 1)}"
    if other_load >= 0.5:
        what += f", other load {other_load:.1f}"
    return f"{what} -> {threads}"


# ---------------------------------------------------------------------------------------------- registry


def registry_dir() -> Path:
    """One directory per user under the temp dir (RNNKIT_THREADS_DIR overrides it)."""
    env = os.environ.get(DIR_ENV)
    if env:
        return Path(env)
    uid = os.getuid() if hasattr(os, "getuid") else os.getlogin()
    return Path(tempfile.gettempdir()) / f"rnnkit-{uid}" / "trainings"


@dataclass(frozen=True)
class Entry:
    pid: int
    threads: int


class Registry:
    """The live rnnkit trainings on this machine: one file per process, held under an exclusive flock.

    A file whose lock can be taken belongs to a process that has ended; the counter deletes it. A new
    entry is locked under a temporary name and renamed into place, so a counter never sees it
    unlocked."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else registry_dir()
        self._fd: int | None = None
        self._name: str | None = None
        self.threads = 1

    @property
    def registered(self) -> bool:
        return self._fd is not None

    def _usable_dir(self) -> bool:
        if fcntl is None:
            return False
        try:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            st = os.lstat(self.path)
        except OSError:
            return False
        import stat

        # a directory someone else owns (or a link planted in a shared temp dir) is not ours to use
        return stat.S_ISDIR(st.st_mode) and (not hasattr(os, "getuid") or st.st_uid == os.getuid())

    def register(self, threads: int) -> bool:
        """Enter this process (again: update its thread count). False when no registry can be used."""
        if self._fd is not None:
            self.update(threads)
            return True
        if not self._usable_dir():
            return False
        name = f"{os.getpid()}-{secrets.token_hex(4)}"
        tmp = self.path / f".{name}.new"
        try:
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._fd, self._name = fd, name + SUFFIX
            self.update(threads)
            os.rename(tmp, self.path / self._name)
        except OSError:
            os.close(fd)
            self._fd = self._name = None
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            return False
        return True

    def update(self, threads: int) -> None:
        self.threads = threads
        if self._fd is None:
            return
        payload = json.dumps({"pid": os.getpid(), "threads": threads}).encode()
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, payload, 0)

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path / self._name)
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._fd = self._name = None

    def forget(self) -> None:
        """In a forked child: the entry is the parent's (the lock stays with the parent's descriptor)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = self._name = None

    def live(self) -> list[Entry]:
        """Every live training's entry (this process's too, when registered); dead entries are removed."""
        out = [Entry(os.getpid(), self.threads)] if self._fd is not None else []
        if fcntl is None:
            return out
        try:
            names = [n for n in os.listdir(self.path) if n.endswith(SUFFIX) and n != self._name]
        except OSError:
            return out
        for name in names:
            path = self.path / name
            try:
                fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            except OSError:
                continue  # removed meanwhile
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:  # held: a live process
                    out.append(_read_entry(fd, name))
                    continue
                with contextlib.suppress(OSError):  # its owner has ended
                    os.unlink(path)
            finally:
                os.close(fd)
        return out

    def count(self) -> int:
        return len(self.live())


def _read_entry(fd: int, name: str) -> Entry:
    try:
        data = json.loads(os.pread(fd, 256, 0) or b"{}")
    except (OSError, ValueError):
        data = {}
    pid = data.get("pid") if isinstance(data.get("pid"), int) else int(name.split("-")[0])
    threads = data.get("threads") if isinstance(data.get("threads"), int) and data["threads"] > 0 else 1
    return Entry(pid, threads)


# ---------------------------------------------------------------------------------------------- measurements


def _ticks() -> float:
    try:
        return float(os.sysconf("SC_CLK_TCK"))
    except (AttributeError, ValueError, OSError):
        return 100.0


def cpu_busy_seconds(cpus: list[int], stat: Path = Path("/proc/stat")) -> float | None:
    """Busy CPU-seconds (user, nice, system, irq, softirq, steal) of `cpus` since boot; None off Linux."""
    try:
        lines = stat.read_text().splitlines()
    except OSError:
        return None
    wanted, busy = {f"cpu{c}" for c in cpus}, 0
    for line in lines:
        parts = line.split()
        if parts and parts[0] in wanted:
            values = [int(v) for v in parts[1:9]] + [0] * 8
            busy += values[0] + values[1] + values[2] + values[5] + values[6] + values[7]
    return busy / _ticks()


def process_cpu_seconds(pid: int) -> float | None:
    """user + system CPU seconds of another process (/proc/PID/stat), None when unreadable."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
        fields = text[text.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / _ticks()
    except (OSError, ValueError, IndexError):
        return None


def schedstat() -> dict[int, tuple[float, float]] | None:
    """Per thread of this process: (seconds on a CPU, seconds runnable but waiting for one), from
    /proc/self/task/*/schedstat; None where the kernel does not provide it."""
    out = {}
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return None
    for tid in tids:
        try:
            run, wait = Path(f"/proc/self/task/{tid}/schedstat").read_text().split()[:2]
            out[int(tid)] = (int(run) / 1e9, int(wait) / 1e9)
        except (OSError, ValueError):
            continue
    return out or None


class LoadMeter:
    """The CPU that everything but the registered rnnkit trainings uses, in cores, measured from /proc/stat
    over the window between two calls and scaled to this process's usable cores."""

    def __init__(self, cores: int):
        self.cores = cores
        self._last: tuple | None = None  # (busy CPU s, wall, own CPU s, {pid: CPU s})

    def measure(self, entries: list[Entry]) -> float | None:
        """The other load since the previous call; None on the first call, for a window under 50 ms, or
        without /proc."""
        cpus = affinity_cpus()
        busy, now, mine = cpu_busy_seconds(cpus), time.perf_counter(), time.process_time()
        others = {e.pid: process_cpu_seconds(e.pid) for e in entries if e.pid != os.getpid()}
        previous, self._last = self._last, (busy, now, mine, others)
        if busy is None or previous is None or previous[0] is None or now - previous[1] < 0.05:
            return None
        busy0, t0, mine0, others0 = previous
        # a training that appeared during the window counts as other load this once (the safe side)
        rnnkit = (mine - mine0) + sum(c - others0[p] for p, c in others.items()
                                      if c is not None and others0.get(p) is not None)
        return max(0.0, (busy - busy0 - rnnkit) / (now - t0)) * self.cores / max(1, len(cpus))

    @property
    def available(self) -> bool:
        return self._last is not None and self._last[0] is not None


# ---------------------------------------------------------------------------------------------- a training's session


@dataclass
class Session:
    """One training's thread policy: its choice, its re-checks and the CPU evidence for the doctor.

    Times are this session's (a resumed run starts a new one): from `start` to `report`."""

    threads: int
    reason: str
    auto: bool
    cores: int
    processes: int
    registry: Registry
    distributed: bool = False
    t0: float = field(default_factory=time.perf_counter)
    cpu0: float = field(default_factory=time.process_time)
    load_start: float | None = field(default_factory=load_average)
    sched0: dict | None = field(default_factory=schedstat)
    changes: list = field(default_factory=list)  # [seconds since start, threads, reason] after the first choice
    _weighted: float = 0.0  # thread-seconds up to _since
    _since: float = 0.0
    _checked: float = field(default_factory=time.perf_counter)
    _pending_up: int | None = None
    meter: LoadMeter | None = None

    def __post_init__(self):
        self.initial = (self.threads, self.reason)
        self.meter = self.meter or LoadMeter(self.cores)
        self.registry.update(self.threads)
        _set_torch_threads(self.threads)

    def set(self, threads: int, reason: str) -> None:
        now = time.perf_counter() - self.t0
        self._weighted += self.threads * (now - self._since)
        self._since = now
        if threads != self.threads:
            self.changes.append([round(now, 3), threads, reason])
        self.threads, self.reason = threads, reason
        self.registry.update(threads)
        _set_torch_threads(threads)

    def other_load(self, entries: list[Entry]) -> float | None:
        return self.meter.measure(entries)

    def recheck(self) -> None:
        """Re-measure the machine and follow it: fewer threads at once, more when two checks in a row agree."""
        entries = self.registry.live()
        processes = max(len(entries) or 1, _local_world() if self.distributed else 1)
        other = self.other_load(entries)
        if other is None:
            return
        self.processes = processes
        want = auto_threads(self.cores, processes, other)
        if want > self.threads and (self._pending_up is None or self._pending_up > want):
            self._pending_up = want  # wait for a second check
            return
        if want > self.threads:
            want = self._pending_up
        self._pending_up = None
        if want != self.threads:
            self.set(want, reason_for(want, self.cores, processes, other))

    def maybe_recheck(self) -> None:
        now = time.perf_counter()
        if self.auto and now - self._checked >= RECHECK_SECONDS:
            self._checked = now
            self.recheck()

    def report(self) -> dict:
        """summary.json's `threads` (the count the run started with), `threads_reason`, and `cpu`: the
        evidence of the doctor's slow.threads (this session's wall and CPU seconds, the load average at
        start and end, and from /proc/self/task/*/schedstat the seconds this process's threads ran and
        the seconds they were ready to run but waited for a CPU)."""
        wall = time.perf_counter() - self.t0
        weighted = self._weighted + self.threads * (wall - self._since)
        cpu = {"usable_cores": self.cores, "rnnkit_trainings": self.processes,
               "threads_mean": weighted / wall if wall > 0 else float(self.threads),
               "thread_changes": list(self.changes), "load_start": self.load_start, "load_end": load_average(),
               "process_cpu_seconds": time.process_time() - self.cpu0, "session_wall_seconds": wall,
               "cpu_run_seconds": None, "cpu_wait_seconds": None}
        now = schedstat()
        if now is not None and self.sched0 is not None:  # per thread; threads started since count from zero
            cpu["cpu_run_seconds"] = sum(r - self.sched0.get(t, (0.0, 0.0))[0] for t, (r, _) in now.items())
            cpu["cpu_wait_seconds"] = sum(w - self.sched0.get(t, (0.0, 0.0))[1] for t, (_, w) in now.items())
        return {"threads": self.initial[0], "threads_reason": self.initial[1], "cpu": cpu}


class _Watcher:
    """The loop's callback (duck-typed: `fire` calls the events it defines): re-checks auto threads between
    steps, and leaves the registry when the fit ends, or when the fit's frame goes away after an error."""

    def __init__(self, session: Session):
        self.session = session
        weakref.finalize(self, _end, session)

    def on_fit_start(self, state) -> None: ...
    def on_epoch_start(self, state) -> None: ...
    def on_epoch_end(self, state, record) -> None: ...
    def on_checkpoint(self, state, path) -> None: ...

    def on_step_end(self, state, record) -> None:
        self.session.maybe_recheck()

    def on_fit_end(self, state, summary) -> None:
        _end(self.session)


_registry: Registry | None = None
_current: Session | None = None


def _default_registry() -> Registry:
    global _registry
    path = registry_dir()
    if _registry is None or _registry.path != path:
        if _registry is not None:
            _registry.release()
        _registry = Registry(path)
    return _registry


def _end(session: Session) -> None:
    if _current is session:
        session.registry.release()


def _after_fork_in_child() -> None:
    global _current
    if _registry is not None:
        _registry.forget()
    _current = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def choose(requested: int | None, *, registry: Registry | None = None, distributed: bool = False,
           environ=None) -> Session:
    """Decide the thread count for a training starting now, register this process and set torch's threads."""
    reg = registry if registry is not None else _default_registry()
    cores = usable_cores()
    omp = omp_num_threads(environ)
    if requested:
        threads, reason, auto = requested, f"train.threads={requested}", False
    elif omp is not None:
        threads, reason, auto = omp, f"OMP_NUM_THREADS={omp} in the environment", False
    else:
        threads, reason, auto = 1, "", True
    reg.register(threads)
    entries = reg.live()
    processes = max(len(entries) or 1, _local_world() if distributed else 1)
    meter = LoadMeter(cores)
    if auto:
        other = meter.measure(entries)  # primes the meter
        if meter.available:  # the load of the next moments, not the lagging load average
            time.sleep(START_SAMPLE_SECONDS)
            entries = reg.live()
            processes = max(len(entries) or 1, _local_world() if distributed else 1)
            other = meter.measure(entries)
        if other is None:
            load = load_average()
            others = sum(e.threads for e in entries if e.pid != os.getpid())
            other = 0.0 if load is None else max(0.0, load - others) * host_share(cores)
        threads = auto_threads(cores, processes, other)
        reason = reason_for(threads, cores, processes, other)
    session = Session(threads, reason, auto, cores, processes, reg, distributed, meter=meter)
    return session


def start(requested: int | None, *, distributed: bool = False) -> _Watcher:
    """fit's entry point: choose (see `choose`) and return the callback that keeps the choice current."""
    global _current
    _current = choose(requested, distributed=distributed)
    return _Watcher(_current)


def report() -> dict:
    """The current session's summary fields ({} when no training started in this process)."""
    return _current.report() if _current is not None else {}


def _set_torch_threads(n: int) -> None:
    import torch

    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def _local_world() -> int:
    try:
        return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        return 1


__all__ = ["Registry", "Session", "auto_threads", "choose", "omp_num_threads", "registry_dir", "report", "start",
           "usable_cores"]
