"""A toy two-objective problem with a known Pareto front, to watch weighting strategies work.

Two quadratic losses of one 2-D point x — the only, and therefore shared, parameter:

    f_1(x) = ‖x − a‖²,        f_2(x) = κ ‖x − b‖²,

with κ ≥ 1 the *imbalance*: task 2's loss (and gradient) is κ times larger in scale, as a
regression loss in squared rupees next to a click log-loss would be.

Everything is known in closed form:

* **Pareto set** — the segment [a, b]: off it, moving towards the segment lowers both
  losses; on it, moving along it trades one loss for the other. Rescaling a loss (κ)
  does not change the Pareto set, only which point of it a method picks.
* **Pareto front** — with x = a + t (b − a), t ∈ [0, 1], D = ‖b − a‖:
  f_1 = t² D², f_2 = κ (1 − t)² D², i.e. √f_1 + √(f_2/κ) = D.
* **Weighted sums** — w_1 f_1 + w_2 f_2 is minimised at x* = (w_1 a + κ w_2 b)/(w_1 + κ w_2),
  on the segment at t = κ w_2 / (w_1 + κ w_2). Equal weighting lands at t = κ/(1 + κ):
  pulled towards b, the task with the larger loss scale, not the middle (t = ½).

``ToyModel`` exposes x through ``shared_parameters()``, so every strategy runs through
the same ``WeightingStrategy.backward`` as a real model; ``run_strategy`` trains it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from mtlkit.checks import check_int, check_number
from mtlkit.weighting import make_weighting

__all__ = [
    "TASK_NAMES",
    "TwoQuadratics",
    "ToyModel",
    "run_strategy",
    "pareto_set",
    "pareto_front",
    "distance_to_pareto_front",
]

TASK_NAMES = ("f1", "f2")


@dataclass(frozen=True)
class TwoQuadratics:
    """f_1(x) = ‖x − a‖², f_2(x) = κ ‖x − b‖² in the plane (see the module docstring).

    Attributes:
        a: minimiser of f_1.
        b: minimiser of f_2.
        imbalance: κ > 0, the scale of f_2 relative to f_1.
    """

    a: tuple[float, float] = (-1.0, 0.0)
    b: tuple[float, float] = (1.0, 0.0)
    imbalance: float = 10.0

    def __post_init__(self) -> None:
        check_number("imbalance", self.imbalance, low=0, low_open=True)
        if len(self.a) != 2 or len(self.b) != 2 or tuple(self.a) == tuple(self.b):
            raise ValueError(f"a and b must be two different 2-D points, got a={self.a!r}, b={self.b!r}")

    def losses(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(f_1(x), f_2(x)) for x of shape (..., 2)."""
        a = torch.as_tensor(self.a, dtype=x.dtype, device=x.device)
        b = torch.as_tensor(self.b, dtype=x.dtype, device=x.device)
        return ((x - a) ** 2).sum(-1), self.imbalance * ((x - b) ** 2).sum(-1)

    def pareto_set(self, n: int) -> np.ndarray:
        """n points evenly spaced on the segment [a, b], from a to b.  # (n, 2)"""
        t = np.linspace(0.0, 1.0, n)[:, None]  # (n, 1)
        return (1 - t) * np.asarray(self.a) + t * np.asarray(self.b)

    def pareto_front(self, n: int) -> np.ndarray:
        """(f_1, f_2) at n points of the Pareto set: (t² D², κ (1 − t)² D²).  # (n, 2)"""
        t = np.linspace(0.0, 1.0, n)
        d2 = float(np.sum((np.asarray(self.b) - np.asarray(self.a)) ** 2))  # D²
        return np.stack([t**2 * d2, self.imbalance * (1 - t) ** 2 * d2], axis=1)

    def weighted_optimum(self, w1: float, w2: float) -> np.ndarray:
        """argmin_x w_1 f_1 + w_2 f_2 = (w_1 a + κ w_2 b) / (w_1 + κ w_2).  # (2,)"""
        k = self.imbalance * w2
        return (w1 * np.asarray(self.a) + k * np.asarray(self.b)) / (w1 + k)

    def position_on_segment(self, point: Sequence[float]) -> float:
        """t of the point of [a, b] nearest to ``point`` (0 = a, 1 = b, ½ = the middle)."""
        a, b, p = np.asarray(self.a), np.asarray(self.b), np.asarray(point, dtype=float)
        return float(np.clip((p - a) @ (b - a) / ((b - a) @ (b - a)), 0.0, 1.0))

    def distance_to_pareto_front(self, point: Sequence[float]) -> float:
        """Euclidean distance from a parameter point x to the Pareto set [a, b].

        Measured in parameter space, where the Pareto set is the segment: 0 exactly when x
        is Pareto optimal, i.e. when its losses lie on the front.
        """
        a, b, p = np.asarray(self.a), np.asarray(self.b), np.asarray(point, dtype=float)
        nearest = a + self.position_on_segment(p) * (b - a)
        return float(np.linalg.norm(p - nearest))


DEFAULT_PROBLEM = TwoQuadratics()


class ToyModel(nn.Module):
    """The point x as a model: ``forward()`` returns {"f1": f_1(x), "f2": f_2(x)}.

    x is the only parameter and both losses depend on it, so it is the shared parameter
    (and the last shared layer) that gradient-based strategies work on.
    """

    def __init__(self, start: Sequence[float], problem: TwoQuadratics = DEFAULT_PROBLEM) -> None:
        super().__init__()
        self.problem = problem
        self.x = nn.Parameter(torch.tensor([float(v) for v in start], dtype=torch.float64))

    def forward(self) -> dict[str, Tensor]:
        f1, f2 = self.problem.losses(self.x)
        return {TASK_NAMES[0]: f1, TASK_NAMES[1]: f2}

    def shared_parameters(self) -> list[nn.Parameter]:
        return [self.x]

    def last_shared_parameters(self) -> list[nn.Parameter]:
        return [self.x]


def run_strategy(
    name: str,
    steps: int = 500,
    lr: float = 0.02,
    start: Sequence[float] = (-0.5, 1.5),
    seed: int = 0,
    *,
    imbalance: float = DEFAULT_PROBLEM.imbalance,
    epoch_length: int = 10,
    **kwargs,
) -> tuple[np.ndarray, np.ndarray]:
    """Train the toy model with weighting strategy ``name`` by plain gradient descent.

    Each step: losses → ``strategy.backward(losses, [x], last_shared_parameters=[x])`` →
    one SGD step on x and on the strategy's own parameters (uncertainty's log σ²).
    DWA needs epochs: every ``epoch_length`` steps count as one, and ``end_epoch``
    receives their mean losses.

    Args:
        name: a key of ``mtlkit.weighting.WEIGHTINGS``.
        steps: gradient steps.
        lr: SGD learning rate (gradient descent on κ‖x − b‖² is stable for lr < 1/(w κ)).
        start: the initial point x_0.
        seed: seed of the strategies that draw random numbers (rlw, pcgrad); ignored by
            the others.
        imbalance: κ of the problem (default 10).
        epoch_length: steps per epoch for ``end_epoch``.
        **kwargs: passed to ``make_weighting`` (e.g. ``c=0.4`` for cagrad).

    Returns:
        trajectory (steps + 1, 2): x before every step and after the last;
        losses (steps + 1, 2): (f_1, f_2) at those points.
    """
    steps = check_int("steps", steps, low=0)
    lr = check_number("lr", lr, low=0, low_open=True)
    if len(start) != 2:
        raise ValueError(f"start must be a 2-D point, got {start!r}")
    epoch_length = check_int("epoch_length", epoch_length, low=1)
    problem = TwoQuadratics(DEFAULT_PROBLEM.a, DEFAULT_PROBLEM.b, imbalance)
    model = ToyModel(start, problem)
    strategy = make_weighting(name, TASK_NAMES, seed=seed, **kwargs).double()
    optimizer = torch.optim.SGD([*model.parameters(), *strategy.parameters()], lr=lr)

    trajectory = np.empty((steps + 1, 2))
    losses = np.empty((steps + 1, 2))
    epoch_sum = np.zeros(2)
    for step in range(steps + 1):
        optimizer.zero_grad()
        step_losses = model()
        trajectory[step] = model.x.detach().numpy()
        losses[step] = [float(step_losses[n].detach()) for n in TASK_NAMES]
        if step == steps:
            break
        strategy.backward(step_losses, model.shared_parameters(),
                          last_shared_parameters=model.last_shared_parameters())
        optimizer.step()
        epoch_sum += losses[step]
        if (step + 1) % epoch_length == 0:
            strategy.end_epoch(dict(zip(TASK_NAMES, (epoch_sum / epoch_length).tolist())))
            epoch_sum[:] = 0.0
    return trajectory, losses


def pareto_set(n: int, problem: TwoQuadratics = DEFAULT_PROBLEM) -> np.ndarray:
    """n points of the Pareto set (the segment [a, b]) of ``problem``.  # (n, 2)"""
    return problem.pareto_set(n)


def pareto_front(n: int, problem: TwoQuadratics = DEFAULT_PROBLEM) -> np.ndarray:
    """n points (f_1, f_2) of the Pareto front of ``problem``.  # (n, 2)"""
    return problem.pareto_front(n)


def distance_to_pareto_front(point: Sequence[float], problem: TwoQuadratics = DEFAULT_PROBLEM) -> float:
    """Distance from a parameter point to the Pareto set of ``problem`` (0 = Pareto optimal)."""
    return problem.distance_to_pareto_front(point)
