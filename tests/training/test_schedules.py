import math

import pytest

from rnnkit.training.schedules import EarlyStopping, PlateauState, lr_at


def test_warmup_is_linear_then_flat():
    lrs = [lr_at(s, base_lr=1e-3, warmup_steps=4) for s in range(6)]
    assert lrs[:4] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3])
    assert lrs[4] == lrs[5] == 1e-3


def test_plateau_reductions_halve_with_a_floor():
    assert lr_at(100, base_lr=1e-3, reductions=2, factor=0.5) == pytest.approx(2.5e-4)
    assert lr_at(100, base_lr=1e-3, reductions=20, factor=0.5, min_lr=1e-5) == 1e-5


def test_cooldown_reaches_min_lr_at_the_end():
    kw = dict(base_lr=1e-3, total_steps=100, cooldown_steps=10, min_lr=1e-5)
    assert lr_at(89, **kw) == 1e-3
    assert lr_at(95, **kw) == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.5)
    assert lr_at(100, **kw) == pytest.approx(1e-5)
    assert all(lr_at(s, **kw) >= lr_at(s + 1, **kw) for s in range(90, 100))


def test_schedule_is_a_pure_function_of_the_step():
    kw = dict(base_lr=3e-3, warmup_steps=7, total_steps=50, cooldown_steps=5, min_lr=1e-5, reductions=1)
    assert [lr_at(s, **kw) for s in range(50)] == [lr_at(s, **kw) for s in range(50)]


def test_plateau_state():
    s = PlateauState()
    for loss in [1.0, 0.9, 0.95, 0.95, 0.95]:
        s = s.update(loss, patience=3)
    assert s.reductions == 1 and s.bad_epochs == 0 and s.best == 0.9
    s = s.update(0.5, patience=3)
    assert s.best == 0.5 and s.reductions == 1


def test_early_stopping():
    e = EarlyStopping()
    improved_flags = []
    for epoch, loss in enumerate([1.0, 0.8, 0.9, 0.85, 0.81]):
        e, improved = e.update(loss, epoch)
        improved_flags.append(improved)
    assert improved_flags == [True, True, False, False, False]
    assert e.best_epoch == 1 and e.best == 0.8 and e.bad_epochs == 3
    assert e.should_stop(3) and not e.should_stop(4)
    assert math.isinf(EarlyStopping().best)
