"""Forecaster heads: shapes, the naive/seasonal skip, and the autoregressive feedback."""

import pytest
import torch

from rnnkit.models.forecaster import Forecaster, baseline_forecast


def batch(b=4, length=12, c=3):
    torch.manual_seed(0)
    x = torch.randn(b, length, c)
    return x, torch.full((b,), length), torch.ones(b, length, dtype=torch.bool)


@pytest.mark.parametrize("head", ["direct", "autoregressive"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_heads_give_horizon_by_targets(head, cell):
    model = Forecaster(num_features=3, num_targets=2, horizon=5, head=head, cell=cell, hidden_size=8,
                       embedding_dim=4)
    out = model(*batch())
    assert out.prediction.shape == (4, 5, 2) and out.loss == "mse"
    out.prediction.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_seasonal_and_last_value_baselines_from_the_window():
    x = torch.arange(12.0).view(1, 12, 1)  # y[t] = t
    assert baseline_forecast(x, 1, 3, "last", 1).flatten().tolist() == [11, 11, 11]
    # m = 4: step h uses y[L - m + (h mod m)] = 8, 9, 10, 11, 8, 9
    assert baseline_forecast(x, 1, 6, "seasonal", 4).flatten().tolist() == [8, 9, 10, 11, 8, 9]


@pytest.mark.parametrize("head", ["direct", "autoregressive"])
def test_residual_model_starts_near_its_baseline(head):
    model = Forecaster(num_features=1, num_targets=1, horizon=4, head=head, residual="seasonal", seasonality=4,
                       hidden_size=8, embedding_dim=4)
    with torch.no_grad():
        for p in model.head.parameters():
            p.zero_()  # a head that outputs 0 leaves exactly the seasonal naive forecast
    x = torch.arange(12.0).view(1, 12, 1)
    out = model(x, torch.tensor([12]), torch.ones(1, 12, dtype=torch.bool)).prediction
    assert out.flatten().tolist() == [8, 9, 10, 11]


@pytest.mark.parametrize("head", ["direct", "autoregressive"])
@pytest.mark.parametrize("residual, expected", [("seasonal", [8, 9, 10, 11, 8]), ("last", [11] * 5)])
@pytest.mark.parametrize("norm", [False, True])
def test_an_untrained_residual_model_forecasts_exactly_its_baseline(head, residual, expected, norm):
    """As built (no weights touched): the head's output layer starts at zero, so the network starts from the
    naive / seasonal-naive forecast it has to beat, also through window_norm's scaling and back."""
    model = Forecaster(num_features=1, num_targets=1, horizon=5, head=head, residual=residual, seasonality=4,
                       hidden_size=8, embedding_dim=4, window_norm=norm)
    x = torch.arange(12.0).view(1, 12, 1)
    out = model(x, torch.tensor([12]), torch.ones(1, 12, dtype=torch.bool)).prediction
    torch.testing.assert_close(out.flatten(), torch.tensor(expected, dtype=torch.float32))
    out.sum().backward()  # ...and it still learns: the output layer gets a gradient at the first step
    last = model.head.proj.out if head == "direct" else model.head.out
    assert last.weight.grad is not None and last.weight.grad.abs().sum() > 0


def test_autoregressive_head_feeds_back_its_own_predictions():
    model = Forecaster(num_features=1, num_targets=1, horizon=3, head="autoregressive", hidden_size=8,
                       embedding_dim=4).eval()
    x, lengths, mask = batch(b=1, c=1)
    pred = model(x, lengths, mask).prediction  # (1, 3, 1)
    # replay the decoder by hand: step t+1 gets the prediction of step t as its input
    head = model.head
    enc = model.encoder(model.embedding(x), lengths, mask)
    h, c = torch.tanh(head.init_h(enc.final)), torch.tanh(head.init_c(enc.final))
    prev = x[:, -1, :1]
    for t in range(3):
        h, c = head.cell(prev, (h, c))
        prev = head.out(h)
        torch.testing.assert_close(prev, pred[:, t])


def test_rejects_unknown_head_and_too_many_targets():
    with pytest.raises(ValueError, match="head"):
        Forecaster(num_features=2, num_targets=1, horizon=1, head="tcn")
    with pytest.raises(ValueError, match="num_targets"):
        Forecaster(num_features=1, num_targets=2, horizon=1)


@pytest.mark.parametrize("head", ["direct", "autoregressive"])
def test_window_norm_follows_the_level_and_amplitude_of_the_window(head):
    """Shifting a window shifts its forecast by the same amount; scaling a window of large variance
    (so the epsilon is negligible) scales the forecast: the model extrapolates beyond its training range."""
    torch.manual_seed(0)
    model = Forecaster(num_features=1, num_targets=1, horizon=3, head=head, hidden_size=8, embedding_dim=4,
                       window_norm=True).eval()
    x, lengths, mask = batch(c=1)
    x = 10 * x
    with torch.no_grad():
        y = model(x, lengths, mask).prediction
        shifted = model(x + 50.0, lengths, mask).prediction
        scaled = model(3.0 * x, lengths, mask).prediction
    torch.testing.assert_close(shifted, y + 50.0, rtol=0, atol=1e-4)
    torch.testing.assert_close(scaled, 3.0 * y, rtol=1e-3, atol=1e-3)
    plain = Forecaster(num_features=1, num_targets=1, horizon=3, head=head, hidden_size=8, embedding_dim=4).eval()
    with torch.no_grad():  # without window_norm a tanh network saturates: no such equivariance
        assert not torch.allclose(plain(x + 50.0, lengths, mask).prediction,
                                  plain(x, lengths, mask).prediction + 50.0, atol=1.0)


def test_window_norm_uses_real_steps_only():
    model = Forecaster(num_features=2, num_targets=1, horizon=1, hidden_size=8, embedding_dim=4,
                       window_norm=True).eval()
    x, lengths, mask = batch(b=2, c=2)
    padded = torch.cat([x, torch.full((2, 5, 2), 1e6)], dim=1)  # five padding steps of huge values
    pad_mask = torch.cat([mask, torch.zeros(2, 5, dtype=torch.bool)], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model(padded, lengths, pad_mask).prediction, model(x, lengths, mask).prediction)


@pytest.mark.parametrize("head, residual, norm", [("direct", "none", False), ("autoregressive", "none", True),
                                                  ("direct", "seasonal", True), ("autoregressive", "last", False)])
def test_a_short_window_padded_in_a_batch_forecasts_as_it_does_alone(head, residual, norm):
    """A short series' window (issue 11 item 2) is padded at the end in a batch of longer ones: the last
    observed value, the season before and the window statistics come from its real steps only."""
    model = Forecaster(num_features=2, num_targets=1, horizon=3, head=head, residual=residual, seasonality=3,
                       window_norm=norm, hidden_size=8, embedding_dim=4).eval()
    torch.manual_seed(1)
    short, long = torch.randn(1, 5, 2), torch.randn(1, 9, 2)
    alone = model(short, torch.tensor([5]), torch.ones(1, 5, dtype=torch.bool)).prediction
    padded = torch.cat([torch.cat([short, torch.full((1, 4, 2), 99.0)], dim=1), long])
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[0, 5:] = False
    together = model(padded, torch.tensor([5, 9]), mask).prediction
    torch.testing.assert_close(together[:1], alone)
    x = torch.arange(12.0).view(1, 12, 1)
    m = torch.zeros(1, 12, dtype=torch.bool)
    m[0, :7] = True  # real steps y = 0..6
    assert baseline_forecast(x, 1, 3, "last", 1, m).flatten().tolist() == [6, 6, 6]
    assert baseline_forecast(x, 1, 4, "seasonal", 3, m).flatten().tolist() == [4, 5, 6, 4]


def test_the_linear_path_reads_each_windows_last_real_steps():
    """ar_window=q: a linear map of each target's last q real steps (of a window padded at the end, only its own
    steps; before a short window's start, zeros), added to the head's output; it starts at zero."""
    model = Forecaster(num_features=2, num_targets=2, horizon=2, residual="last", hidden_size=8, embedding_dim=4,
                       ar_window=3)
    x = torch.arange(24.0).view(2, 6, 2)  # window 0: targets (0, 1), (2, 3), ... (10, 11)
    x[1, 2:] = -100.0  # window 1 has 2 real steps, then padding the path must not read
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[1, 2:] = False
    lengths = torch.tensor([6, 2])
    base = model(x, lengths, mask).prediction
    torch.testing.assert_close(base[:, 0], torch.tensor([[10.0, 11.0], [14.0, 15.0]]))  # untrained: the last value
    with torch.no_grad():
        model.ar.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))  # step 1: 3 back; step 2: the last
    out = model(x, lengths, mask).prediction - base
    torch.testing.assert_close(out[0], torch.tensor([[6.0, 7.0], [10.0, 11.0]]))
    torch.testing.assert_close(out[1], torch.tensor([[0.0, 0.0], [14.0, 15.0]]))  # 3 back is before its start
    with pytest.raises(ValueError, match="no linear path"):
        model.forward_stream(torch.zeros(1, 4, 2))
