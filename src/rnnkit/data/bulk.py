"""Making many small objects at once (reading, encoding): Python's cyclic garbage collector paused meanwhile.

Reading and encoding a data file makes tens of thousands of small objects (rows, records, token lists, tensors)
and no reference cycles. Each burst of allocations would otherwise trigger collections that walk everything
alive, and these grow with the data read so far: measured on 20,000 short text rows, encoding took 0.65-0.77 s
with the collector on and 0.25-0.39 s with it off (BENCHMARKS.md, "Prediction at scale"). What a block frees is
freed by reference counting as usual; the collector runs again after it.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the block (left as it was found afterwards)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
