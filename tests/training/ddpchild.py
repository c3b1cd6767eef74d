"""`rnnkit` as a torchrun worker, with one fault or pause added for tests/training/test_ddp.py to aim at
(nothing else changes):

    torchrun ... ddpchild.py nan R K -- train ...   rank R's loss is NaN at the forward of step K + 1
    torchrun ... ddpchild.py die R K [always] -- train ...
                                                    rank R kills itself (SIGKILL) after optimizer step K, on
                                                    torchrun's first attempt only (`always`: on every attempt)
    torchrun ... ddpchild.py pause K GO -- train ...
                                                    every rank pauses after optimizer step K, prints
                                                    "PAUSED rank=R pid=P", and waits until its parent (the
                                                    torchrun launcher) is gone or the file GO exists
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
import time
from pathlib import Path


def _child(mode: str, args: list[str], argv: list[str]) -> int:
    from rnnkit import api, cli
    from rnnkit.training.callbacks import Callback

    rank = int(os.environ["RANK"])
    if mode == "nan":
        bad_rank, at = int(args[0]), int(args[1])
        module = importlib.import_module("rnnkit.tasks.classify")
        real, seen = module.TASK.forward, []

        def forward(model, batch, step=None):
            out = real(model, batch, step)
            if rank == bad_rank and step == at and not seen:
                seen.append(step)
                return out * float("nan")
            return out

        module.TASK = dataclasses.replace(module.TASK, forward=forward)
    elif mode == "pause":
        at, go, launcher = int(args[0]), Path(args[1]), os.getppid()

        class Pause(Callback):
            def on_step_end(self, state, record):
                if state.step != at:
                    return
                # one write: the ranks share the pipe, and print() writes the text and its newline apart
                sys.stdout.write(f"PAUSED rank={rank} pid={os.getpid()}\n")
                sys.stdout.flush()
                deadline = time.monotonic() + 120
                while os.getppid() == launcher and not go.exists() and time.monotonic() < deadline:
                    time.sleep(0.02)  # a signal arriving here runs its handler (which only sets a flag)

        real_fit = api.fit_from_config

        def fit(*a, callbacks=(), **k):
            return real_fit(*a, callbacks=[*callbacks, Pause()], **k)

        api.fit_from_config = fit
    elif mode == "die":
        dead_rank, at = int(args[0]), int(args[1])

        class Die(Callback):
            def on_step_end(self, state, record):
                first_attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0"
                if rank == dead_rank and state.step == at and (first_attempt or len(args) > 2):
                    os.kill(os.getpid(), 9)  # SIGKILL: no handler, no checkpoint, as an out-of-memory kill

        real_fit = api.fit_from_config

        def fit(*a, callbacks=(), **k):
            return real_fit(*a, callbacks=[*callbacks, Die()], **k)

        api.fit_from_config = fit
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    return cli.main(argv)


if __name__ == "__main__":
    sep = sys.argv.index("--")
    sys.exit(_child(sys.argv[1], sys.argv[2:sep], sys.argv[sep + 1:]))
