"""mtlkit.losses against torch.nn.functional, with masks, edge cases and bad inputs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mtlkit import losses

SHAPES = [(1,), (7,), (5, 3), (2, 3, 4)]
TOL = {torch.float32: 2e-6, torch.float64: 1e-12}


def _random_case(shape, dtype, seed, scale=3.0):
    gen = torch.Generator().manual_seed(seed)
    pred = (torch.randn(shape, generator=gen, dtype=torch.float64) * scale).to(dtype)
    labels = torch.randint(0, 2, shape, generator=gen).to(dtype)
    values = torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype)
    mask = torch.rand(shape, generator=gen) < 0.6
    return pred, labels, values, mask


def _ours_and_reference(name, pred, labels, values, delta=1.0):
    """(our loss fn, torch reference fn, target) for one loss name."""
    if name == "bce":
        return losses.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits, labels
    if name == "mse":
        return losses.mean_squared_error, F.mse_loss, values
    return (
        lambda p, t, mask=None, **kw: losses.huber(p, t, delta=delta, mask=mask, **kw),
        lambda p, t: F.huber_loss(p, t, delta=delta),
        values,
    )


@pytest.mark.parametrize("name", ["bce", "mse", "huber"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_torch_without_and_with_mask(name, dtype):
    for seed in range(20):
        shape = SHAPES[seed % len(SHAPES)]
        pred, labels, values, mask = _random_case(shape, dtype, seed)
        ours, reference, target = _ours_and_reference(name, pred, labels, values, delta=0.3 + seed % 4)
        torch.testing.assert_close(ours(pred, target), reference(pred, target), rtol=TOL[dtype], atol=TOL[dtype])
        if mask.any():
            expected = reference(pred[mask], target[mask])
            torch.testing.assert_close(ours(pred, target, mask=mask), expected, rtol=TOL[dtype], atol=TOL[dtype])
            # a 0/1 float mask means the same as the bool mask
            float_mask = mask.to(dtype)
            torch.testing.assert_close(ours(pred, target, mask=float_mask), expected, rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("name", ["bce", "mse", "huber"])
def test_gradients_match_torch_and_vanish_at_masked_entries(name):
    for seed in range(10):
        pred, labels, values, mask = _random_case((6, 4), torch.float64, seed)
        mask[0, 0], mask[1, 1] = True, False  # at least one observed and one masked entry
        ours, reference, target = _ours_and_reference(name, pred, labels, values, delta=0.7)
        x = pred.clone().requires_grad_(True)
        ours(x, target, mask=mask).backward()
        x_ref = pred.clone().requires_grad_(True)
        reference(x_ref[mask], target[mask]).backward()
        assert torch.equal(x.grad[~mask], torch.zeros_like(x.grad[~mask]))  # exactly 0
        torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["bce", "mse", "huber"])
def test_gradcheck_float64(name):
    pred, labels, values, mask = _random_case((4, 3), torch.float64, 0)
    ours, _, target = _ours_and_reference(name, pred, labels, values, delta=0.8)
    # keep residuals away from Huber's kink at |r| = delta, where finite differences straddle two pieces
    x = pred.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: ours(p, target, mask=mask), (x,))


def test_bce_gradient_at_zero_logit_is_sigmoid_minus_target():
    # autograd through max(x, 0) and |x| would give -y at x = 0; the true gradient is 0.5 - y
    targets = torch.tensor([0.0, 1.0, 1.0, 0.0], dtype=torch.float64)
    x = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    losses.binary_cross_entropy_with_logits(x, targets).backward()
    torch.testing.assert_close(x.grad, (0.5 - targets) / 4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bce_extreme_logits_are_finite_and_match_torch(dtype):
    logits = torch.tensor([100.0, -100.0, 100.0, -100.0, 0.0, 30.0, -30.0], dtype=dtype, requires_grad=True)
    targets = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0], dtype=dtype)
    loss = losses.binary_cross_entropy_with_logits(logits, targets)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    expected = F.binary_cross_entropy_with_logits(logits.detach(), targets)
    torch.testing.assert_close(loss.detach(), expected, rtol=TOL[dtype], atol=TOL[dtype])
    # elementwise: the Bernoulli form is at least as accurate as torch's for every entry
    elementwise64 = F.binary_cross_entropy_with_logits(logits.detach().double(), targets.double(), reduction="none")
    ours = [
        losses.binary_cross_entropy_with_logits(logits[i : i + 1].detach(), targets[i : i + 1]).double()
        for i in range(len(targets))
    ]
    torch.testing.assert_close(torch.stack(ours), elementwise64, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", ["bce", "mse", "huber"])
def test_all_true_mask_equals_no_mask_and_all_false_gives_connected_zero(name):
    pred, labels, values, _ = _random_case((5, 2), torch.float64, 3)
    ours, _, target = _ours_and_reference(name, pred, labels, values)
    all_true = torch.ones(5, 2, dtype=torch.bool)
    torch.testing.assert_close(ours(pred, target, mask=all_true), ours(pred, target), rtol=0, atol=0)
    x = pred.clone().requires_grad_(True)
    loss = ours(x, target, mask=torch.zeros(5, 2, dtype=torch.bool))
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


@pytest.mark.parametrize("name", ["bce", "mse", "huber"])
def test_empty_input_gives_zero(name):
    empty = torch.zeros(0, requires_grad=True)
    ours, _, _ = _ours_and_reference(name, None, None, None)
    assert ours(empty, torch.zeros(0)).item() == 0.0
    assert ours(empty, torch.zeros(0), mask=torch.zeros(0, dtype=torch.bool)).item() == 0.0


@pytest.mark.parametrize("name", ["bce", "mse", "huber"])
def test_nan_placeholder_at_masked_target_is_harmless_without_validation(name):
    pred, labels, values, mask = _random_case((8,), torch.float64, 5)
    mask[:2] = torch.tensor([True, False])
    ours, _, target = _ours_and_reference(name, pred, labels, values)
    poisoned = target.clone()
    poisoned[~mask] = float("nan")
    x = pred.clone().requires_grad_(True)
    loss = ours(x, poisoned, mask=mask, validate=False)
    loss.backward()
    torch.testing.assert_close(loss.detach(), ours(pred, target, mask=mask))
    assert torch.isfinite(x.grad).all() and torch.equal(x.grad[~mask], torch.zeros_like(x.grad[~mask]))
    # with validation on, NaN anywhere is refused, even where masked out
    with pytest.raises(ValueError, match="target"):
        ours(pred, poisoned, mask=mask)


@pytest.mark.parametrize("name", ["bce", "mse", "huber"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_values_raise_naming_the_argument(name, bad):
    pred, labels, values, _ = _random_case((6,), torch.float32, 1)
    ours, _, target = _ours_and_reference(name, pred, labels, values)
    pred_name = "logits" if name == "bce" else "pred"
    broken = pred.clone()
    broken[2] = bad
    with pytest.raises(ValueError, match=pred_name):
        ours(broken, target)
    broken_target = target.clone()
    broken_target[3] = bad
    with pytest.raises(ValueError, match="target"):
        ours(pred, broken_target)


def test_bce_targets_outside_zero_one_raise_only_where_observed():
    logits = torch.zeros(4)
    targets = torch.tensor([0.0, 1.0, 0.5, -1.0])
    with pytest.raises(ValueError, match="targets must be 0 or 1"):
        losses.binary_cross_entropy_with_logits(logits, targets)
    # -1 / 0.5 as placeholders at masked positions are ignored
    mask = torch.tensor([True, True, False, False])
    expected = F.binary_cross_entropy_with_logits(logits[:2], targets[:2])
    torch.testing.assert_close(losses.binary_cross_entropy_with_logits(logits, targets, mask), expected)
    # bool and int targets are accepted
    torch.testing.assert_close(
        losses.binary_cross_entropy_with_logits(logits, torch.tensor([0, 1, 1, 0])),
        losses.binary_cross_entropy_with_logits(logits, torch.tensor([False, True, True, False])),
    )


def test_validate_false_skips_value_checks():
    logits = torch.zeros(3)
    soft = torch.tensor([0.2, 0.5, 0.9])
    torch.testing.assert_close(
        losses.binary_cross_entropy_with_logits(logits, soft, validate=False),
        F.binary_cross_entropy_with_logits(logits, soft),
    )


@pytest.mark.parametrize(
    "call, error, argument",
    [
        (lambda: losses.mean_squared_error(torch.zeros(3), torch.zeros(4)), ValueError, "target"),
        (lambda: losses.binary_cross_entropy_with_logits(torch.zeros(3), torch.zeros(3, 1)), ValueError, "targets"),
        (lambda: losses.huber(torch.zeros(3), torch.zeros(3), mask=torch.ones(2).bool()), ValueError, "mask"),
        (
            lambda: losses.mean_squared_error(torch.zeros(3), torch.zeros(3), torch.tensor([0, 0.5, 1])),
            ValueError,
            "mask",
        ),
        (lambda: losses.binary_cross_entropy_with_logits(torch.zeros(3).long(), torch.zeros(3)), TypeError, "logits"),
        (lambda: losses.mean_squared_error([0.0, 1.0], torch.zeros(2)), TypeError, "pred"),
        (lambda: losses.mean_squared_error(torch.zeros(2), [0.0, 1.0]), TypeError, "target"),
        (lambda: losses.huber(torch.zeros(2), torch.zeros(2), mask=[True, False]), TypeError, "mask"),
        (lambda: losses.huber(torch.zeros(2), torch.zeros(2), delta=0.0), ValueError, "delta"),
        (lambda: losses.huber(torch.zeros(2), torch.zeros(2), delta=-1.0), ValueError, "delta"),
        (lambda: losses.huber(torch.zeros(2), torch.zeros(2), delta=math.inf), ValueError, "delta"),
        (lambda: losses.huber(torch.zeros(2), torch.zeros(2), delta=math.nan), ValueError, "delta"),
        (lambda: losses.huber(torch.zeros(2), torch.zeros(2), delta="1"), TypeError, "delta"),
        (lambda: losses.huber(torch.zeros(2), torch.zeros(2), delta=True), TypeError, "delta"),
        (lambda: losses.task_loss("ranking", torch.zeros(2), torch.zeros(2)), ValueError, "kind"),
    ],
)
def test_bad_inputs_raise_naming_the_argument(call, error, argument):
    with pytest.raises(error, match=argument):
        call()


def test_task_loss_dispatches_on_kind():
    pred, labels, values, mask = _random_case((9,), torch.float32, 2)
    torch.testing.assert_close(
        losses.task_loss("binary", pred, labels, mask), losses.binary_cross_entropy_with_logits(pred, labels, mask)
    )
    torch.testing.assert_close(
        losses.task_loss("regression", pred, values, mask), losses.mean_squared_error(pred, values, mask)
    )
