"""Tests for mtlkit.toy: the closed forms of the toy problem, and every strategy on it."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from mtlkit.toy import (
    TASK_NAMES,
    ToyModel,
    TwoQuadratics,
    distance_to_pareto_front,
    pareto_front,
    pareto_set,
    run_strategy,
)
from mtlkit.weighting import WEIGHTINGS

PROBLEM = TwoQuadratics()  # a = (−1, 0), b = (1, 0), κ = 10
STEPS = 200

pytestmark = pytest.mark.usefixtures("one_thread")  # two-element tensors

# Tolerance for "on the Pareto front". Every strategy's update is a non-negative
# combination of g_1 = 2(x − a) and g_2 = 2κ(x − b), whose components perpendicular to the
# segment shrink by a factor |1 − 2·lr·(w_1 + κ w_2)| < 1 per step (≈ 0.6 for equal
# weighting at lr = 0.02), while float64 rounding sits near 1e-16. After 200 steps every
# method is below 1e-7 here; 1e-6 (a millionth of the segment length D = 2) leaves margin
# for slower-settling methods yet would catch any strategy that stops short of the front.
TOLERANCE = 1e-6


@functools.cache
def trained(name: str) -> tuple[np.ndarray, np.ndarray]:
    """``run_strategy(name)`` with the default problem, computed once per test session."""
    return run_strategy(name, steps=STEPS)


def test_pareto_set_and_front_closed_forms():
    points = pareto_set(5)
    np.testing.assert_allclose(points[0], PROBLEM.a)
    np.testing.assert_allclose(points[-1], PROBLEM.b)
    front = pareto_front(101)
    d = np.linalg.norm(np.subtract(PROBLEM.b, PROBLEM.a))
    # √f_1 + √(f_2/κ) = D along the whole front
    np.testing.assert_allclose(np.sqrt(front[:, 0]) + np.sqrt(front[:, 1] / PROBLEM.imbalance), d)
    # and the front is the losses of the Pareto set
    losses = torch.stack(PROBLEM.losses(torch.from_numpy(pareto_set(101))), dim=1).numpy()
    np.testing.assert_allclose(losses, front, atol=1e-12)
    # each front point is non-dominated by a dense sample of the plane
    grid = np.stack(np.meshgrid(np.linspace(-2, 2, 201), np.linspace(-2, 2, 201)), -1).reshape(-1, 2)
    sample = torch.stack(PROBLEM.losses(torch.from_numpy(grid)), dim=1).numpy()
    for f in front[::10]:
        dominated = np.all(sample <= f + 1e-12, axis=1) & np.any(sample < f - 1e-9, axis=1)
        assert not dominated.any()


def test_distance_to_pareto_front():
    assert distance_to_pareto_front((0.3, 0.0)) == pytest.approx(0.0, abs=1e-15)
    assert distance_to_pareto_front((0.3, -0.4)) == pytest.approx(0.4)
    assert distance_to_pareto_front((2.0, 0.0)) == pytest.approx(1.0)  # past the end: to b
    assert distance_to_pareto_front((-4.0, 4.0)) == pytest.approx(5.0)  # to a


def test_weighted_optimum_is_where_the_weighted_gradient_vanishes():
    rng = np.random.default_rng(0)
    for w1, w2 in rng.uniform(0.1, 3.0, size=(5, 2)):
        x = torch.tensor(PROBLEM.weighted_optimum(w1, w2), requires_grad=True)
        f1, f2 = PROBLEM.losses(x)
        (grad,) = torch.autograd.grad(w1 * f1 + w2 * f2, x)
        assert float(grad.norm()) < 1e-12
        assert distance_to_pareto_front(x.detach().numpy()) < 1e-12


def test_toy_model_exposes_x_as_shared():
    model = ToyModel((0.5, 0.5))
    losses = model()
    assert set(losses) == set(TASK_NAMES)
    assert model.shared_parameters() == [model.x] == model.last_shared_parameters()
    assert float(losses["f2"].detach()) == pytest.approx(10 * (0.25 + 0.25))


@pytest.mark.parametrize("name", sorted(WEIGHTINGS))
def test_every_strategy_reaches_the_pareto_front(name):
    trajectory, losses = trained(name)
    assert trajectory.shape == (STEPS + 1, 2) and losses.shape == (STEPS + 1, 2)
    np.testing.assert_allclose(
        losses, torch.stack(PROBLEM.losses(torch.from_numpy(trajectory)), dim=1).numpy()
    )
    start_distance = distance_to_pareto_front(trajectory[0])
    final_distance = distance_to_pareto_front(trajectory[-1])
    assert start_distance == pytest.approx(1.5)
    assert final_distance < TOLERANCE, (name, final_distance)


def test_equal_weighting_is_pulled_to_the_heavy_task():
    final = trained("equal")[0][-1]
    np.testing.assert_allclose(final, PROBLEM.weighted_optimum(1.0, 1.0), atol=1e-8)
    t = PROBLEM.position_on_segment(final)
    assert t == pytest.approx(10 / 11)  # κ/(1 + κ), far from the middle ½
    # balanced problem: the middle
    balanced, _ = run_strategy("equal", steps=STEPS, lr=0.1, imbalance=1.0)
    np.testing.assert_allclose(balanced[-1], (0.0, 0.0), atol=1e-8)


def test_strategies_land_on_different_points_of_the_front():
    positions = {
        name: PROBLEM.position_on_segment(trained(name)[0][-1])
        for name in ("equal", "mgda", "gradnorm")
    }
    # MGDA stops at the first Pareto-stationary point it reaches; GradNorm balances the
    # gradient norms w_1‖g_1‖ = w_2‖g_2‖, which on the segment holds at the middle.
    assert positions["mgda"] < 0.5 < positions["equal"]
    assert positions["gradnorm"] == pytest.approx(0.5, abs=0.01)


def test_run_strategy_is_seeded_and_passes_kwargs():
    first, _ = run_strategy("rlw", steps=50, seed=3)
    again, _ = run_strategy("rlw", steps=50, seed=3)
    other, _ = run_strategy("rlw", steps=50, seed=4)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    mean_gradient, _ = run_strategy("cagrad", steps=50, c=0.0)
    equal, _ = run_strategy("equal", steps=50)
    np.testing.assert_allclose(mean_gradient, equal, atol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"steps": -1}, "steps"),
        ({"lr": 0.0}, "lr"),
        ({"start": (0.0, 1.0, 2.0)}, "start"),
        ({"imbalance": 0.0}, "imbalance"),
        ({"epoch_length": 0}, "epoch_length"),
    ],
)
def test_run_strategy_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError) as info:
        run_strategy("equal", **kwargs)
    assert str(info.value).startswith(argument)


def test_unknown_strategy_lists_choices():
    with pytest.raises(ValueError, match="weighting must be one of"):
        run_strategy("nash-mtl", steps=1)
