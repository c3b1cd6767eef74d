"""Concurrent trainings on one machine: torch's default threads against one thread each and rnnkit's auto.

    python bench/bench_threads.py --max-epochs 5 --repeats 2 --out bench/results/threads.json

For N in --concurrency (1 2 4), N `rnnkit train --dataset japanese_vowels` processes start at once
(a fixed --max-epochs, so every run does the same work), under each policy:

* default: torch's default intra-op threads, i.e. what `train.threads: null` gave before auto (the
  count a fresh `import torch` reports here, passed as train.threads);
* one: `--set train.threads=1`;
* auto: `train.threads: null`, rnnkit.threads' policy;
* passive, auto-passive (--passive): default threads / auto with OMP_WAIT_POLICY=PASSIVE in the
  environment (libgomp reads it when torch loads it, so only the launching shell can set it).

Rounds are interleaved (A B C C B A ...), so a change in the machine's load hits every policy alike;
each ratio is against the one-thread rounds of the same N in the same run. Each run's wall time
(process, start-up included), training wall time (summary.json's wall_seconds) and CPU seconds
(user + system, from wait4) are recorded, with the threads auto chose and the share of its
threads' runnable time spent waiting for a CPU (/proc schedstat, as the doctor's slow.threads reads
it). The machine's `uptime` and `nproc` come before and after. Then the main job itself: the full
`rnnkit train --dataset japanese_vowels` (every default), auto against default threads, interleaved.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RNNKIT = str(Path(sys.executable).with_name("rnnkit"))
CLEAN = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def machine() -> dict:
    return {"uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
            "nproc": int(subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()),
            "loadavg": list(os.getloadavg())}


def clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in CLEAN}


def torch_default_threads() -> int:
    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
                         env=clean_env(), capture_output=True, text=True, check=True)
    return int(out.stdout)


def policy_args(policy: str, default_threads: int) -> tuple[list[str], dict]:
    env = clean_env()
    if policy == "default":
        return [f"train.threads={default_threads}"], env
    if policy == "one":
        return ["train.threads=1"], env
    if policy == "passive":
        return [f"train.threads={default_threads}"], env | {"OMP_WAIT_POLICY": "PASSIVE"}
    if policy == "auto":
        return [], env
    if policy == "auto-passive":
        return [], env | {"OMP_WAIT_POLICY": "PASSIVE"}
    raise ValueError(policy)


def round_of(n: int, policy: str, sets: list[str], default_threads: int, root: Path) -> list[dict]:
    """Start n trainings at once; wait for all; one record per process."""
    extra, env = policy_args(policy, default_threads)
    procs = []
    load = os.getloadavg()[0]
    for i in range(n):
        out = root / f"run{i}"
        cmd = [RNNKIT, "train", "--dataset", "japanese_vowels", "--out", str(out), "--set", "train.progress=none",
               *[a for s in [*sets, *extra] for a in ("--set", s)]]
        err = open(root / f"run{i}.err", "w")  # noqa: SIM115 - closed below
        procs.append((subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err), time.perf_counter(),
                      out, err))
    records = []
    for p, t0, out, err in procs:
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        err.close()
        rec = {"n": n, "policy": policy, "exit": p.returncode, "wall_seconds": wall,
               "cpu_seconds": usage.ru_utime + usage.ru_stime, "load_at_start": load}
        summary_path = out / "summary.json"
        if p.returncode == 0 and summary_path.exists():
            s = json.loads(summary_path.read_text())
            cpu = s.get("cpu", {})
            run, wait = cpu.get("cpu_run_seconds"), cpu.get("cpu_wait_seconds")
            rec.update({"train_wall_seconds": s["wall_seconds"], "threads": s.get("threads"),
                        "threads_reason": s.get("threads_reason"), "threads_mean": cpu.get("threads_mean"),
                        "thread_changes": cpu.get("thread_changes"),
                        "cpu_wait_share": wait / (run + wait) if run is not None and run + wait > 0 else None,
                        "test_accuracy": s["metrics"]["test"]["accuracy"], "epochs": s["epochs_run"],
                        "doctor": [f["code"] for f in json.loads((out / "findings.json").read_text())]
                        if (out / "findings.json").exists() else None})
        else:
            rec["stderr_tail"] = Path(err.name).read_text()[-2000:]
        records.append(rec)
    return records


def summarise(runs: list[dict], keys=("n", "policy")) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        if r["exit"] == 0:
            groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    rows = []
    for key, rs in groups.items():
        shares = [r["cpu_wait_share"] for r in rs if r.get("cpu_wait_share") is not None]
        rows.append(dict(zip(keys, key, strict=True)) | {
            "runs": len(rs), "wall_seconds": statistics.mean(r["wall_seconds"] for r in rs),
            "train_wall_seconds": statistics.mean(r["train_wall_seconds"] for r in rs),
            "cpu_seconds": statistics.mean(r["cpu_seconds"] for r in rs),
            "threads_mean": statistics.mean(r["threads_mean"] for r in rs if r.get("threads_mean") is not None),
            "threads_chosen": sorted({r["threads"] for r in rs}),
            "cpu_wait_share": statistics.mean(shares) if shares else None,
            "test_accuracy": sorted({round(r["test_accuracy"], 4) for r in rs})})
    for row in rows:
        base = next((b for b in rows if b.get("n") == row.get("n") and b["policy"] == "one"), None)
        if base is not None:
            row["wall_vs_one"] = row["wall_seconds"] / base["wall_seconds"]
            row["train_wall_vs_one"] = row["train_wall_seconds"] / base["train_wall_seconds"]
    return rows


def markdown(result: dict) -> str:
    head = result["machine_before"]
    lines = [f"Command: `{result['command']}`; `nproc` {head['nproc']}; `uptime` before: `{head['uptime']}`; "
             f"after: `{result['machine_after']['uptime']}`. torch default threads here: "
             f"{result['torch_default_threads']}. Means over {result['repeats']} interleaved rounds; "
             "ratios against one thread at the same N.", "",
             "| concurrent trainings | policy | threads | wall s (process) | training wall s | CPU s | "
             "training wall / 1 thread | CPU wait share |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    order = {p: i for i, p in enumerate(["default", "passive", "one", "auto", "auto-passive"])}
    for row in sorted(result["summary"], key=lambda r: (r["n"], order.get(r["policy"], 9))):
        chosen = "/".join(map(str, row["threads_chosen"]))
        if row["policy"].startswith("auto"):
            chosen += f" (mean {row['threads_mean']:.2f})"
        share = "" if row["cpu_wait_share"] is None else f"{row['cpu_wait_share']:.0%}"
        lines.append(f"| {row['n']} | {row['policy']} | {chosen} | {row['wall_seconds']:.1f} | "
                     f"{row['train_wall_seconds']:.1f} | {row['cpu_seconds']:.1f} | "
                     f"{row.get('train_wall_vs_one', float('nan')):.2f}x | {share} |")
    if result.get("main_job_summary"):
        lines += ["", "Main job, every default (`rnnkit train --dataset japanese_vowels`), one at a time:", "",
                  "| policy | runs | wall s (process) | training wall s | CPU s | test accuracy |",
                  "|---|---:|---:|---:|---:|---|"]
        for row in result["main_job_summary"]:
            lines.append(f"| {row['policy']} | {row['runs']} | {row['wall_seconds']:.1f} | "
                         f"{row['train_wall_seconds']:.1f} | {row['cpu_seconds']:.1f} | "
                         f"{', '.join(map(str, row['test_accuracy']))} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--max-epochs", type=int, default=5, help="fixed epochs per run (patience is set above it)")
    ap.add_argument("--repeats", type=int, default=2, help="rounds per policy and N (interleaved)")
    ap.add_argument("--passive", action="store_true", help="also default threads with OMP_WAIT_POLICY=PASSIVE")
    ap.add_argument("--main-job-runs", type=int, default=2, help="full main-job runs per policy (0: skip)")
    ap.add_argument("--policies", nargs="+", help="a subset, in this order (default: all of the above)")
    ap.add_argument("--out", default="bench/results/threads.json")
    args = ap.parse_args()
    policies = args.policies or ["default", "one", "auto"] + (["passive", "auto-passive"] if args.passive else [])
    sets = [f"train.max_epochs={args.max_epochs}", f"train.patience={args.max_epochs + 1}", "train.seed=0"]
    result = {"command": "python bench/bench_threads.py " + " ".join(sys.argv[1:]),
              "machine_before": machine(), "torch_default_threads": torch_default_threads(),
              "policies": policies, "repeats": args.repeats, "sets": sets, "runs": [], "main_job": []}
    import torch

    result["torch"] = torch.__version__
    root = Path(tempfile.mkdtemp(prefix="bench_threads_"))
    try:
        for n in args.concurrency:
            for r in range(args.repeats):
                for policy in policies if r % 2 == 0 else policies[::-1]:
                    work = root / f"n{n}-{policy}-{r}"
                    work.mkdir()
                    recs = round_of(n, policy, sets, result["torch_default_threads"], work)
                    for rec in recs:
                        rec["repeat"] = r
                    result["runs"] += recs
                    print(json.dumps({"n": n, "policy": policy, "repeat": r,
                                      "wall": [round(x["wall_seconds"], 1) for x in recs],
                                      "threads": [x.get("threads_mean") for x in recs],
                                      "exit": [x["exit"] for x in recs]}), flush=True)
                    shutil.rmtree(work, ignore_errors=True)
        main_policies = ["default", "auto"]
        for r in range(args.main_job_runs):
            for policy in main_policies if r % 2 == 0 else main_policies[::-1]:
                work = root / f"main-{policy}-{r}"
                work.mkdir()
                (rec,) = round_of(1, policy, [], result["torch_default_threads"], work)
                rec["repeat"] = r
                result["main_job"].append(rec)
                print(json.dumps({"main_job": policy, "wall": round(rec["wall_seconds"], 1),
                                  "train_wall": rec.get("train_wall_seconds")}), flush=True)
                shutil.rmtree(work, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result["machine_after"] = machine()
    result["summary"] = summarise(result["runs"])
    result["main_job_summary"] = summarise(result["main_job"], keys=("policy",)) if result["main_job"] else []
    result["markdown"] = markdown(result)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(result["markdown"])


if __name__ == "__main__":
    main()
