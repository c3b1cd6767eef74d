"""A torchrun child for tests/training/test_ddp.py: two gloo workers connect, rank 1 dies, torchrun restarts both;
in the restart rank 0 is slow to connect (as a loaded machine makes it), so rank 1 reads the store first."""
import os
import time

import torch
import torch.distributed as tdist

from rnnkit.training import distributed

attempt, rank = int(os.environ["TORCHELASTIC_RESTART_COUNT"]), int(os.environ["RANK"])
if attempt == 1 and rank == 0:
    time.sleep(3)
distributed.init_from_env("cpu")
t = torch.full((1,), float(rank + 1))
tdist.all_reduce(t)
assert t.item() == 3.0, t
if attempt == 0 and rank == 1:
    os._exit(1)  # after connecting: torchrun restarts both workers
distributed.shutdown()
print(f"rank {rank} attempt {attempt} connected", flush=True)
