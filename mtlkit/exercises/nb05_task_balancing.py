"""Exercises of notebook 05 (task balancing): static weights that land where you want on the
front, DWA's weights, and PCGrad's update."""

from __future__ import annotations

from typing import Any

import numpy as np

from mtlkit.exercises.exercise import (
    Mistake,
    NotebookExercises,
    as_array,
    call,
    deviation,
    reject_slips,
    require_function,
    require_mapping,
)
from mtlkit.toy import TwoQuadratics
from mtlkit.weighting import DynamicWeightAverage, pcgrad_coefficients

EXERCISES = NotebookExercises("05_task_balancing")


# --------------------------------------------------------------------------- 05.1
@EXERCISES.add("05.1", "derive", "quarter_weights: static weights that land a quarter of the way from a to b (κ = 10)")
def judge_quarter_weights(answer: Any) -> str:
    """A weighted sum lands at t* = κ w₂ / (w₁ + κ w₂); t* = ¼ needs w₁ / w₂ = 3κ (κ = 10)."""
    weights = require_mapping(answer, ("f1", "f2"))
    w1, w2 = weights["f1"], weights["f2"]
    if w1 <= 0 or w2 <= 0:
        raise Mistake(f"static weights must be positive, got f1 = {w1}, f2 = {w2}")
    problem = TwoQuadratics(imbalance=10.0)
    t = problem.position_on_segment(problem.weighted_optimum(w1, w2))
    if abs(t - 0.25) <= 1e-6:
        return (f"w1 / w2 = {w1 / w2:.4g} = 3κ lands at t = {t:.4f}: to favour task 1 you must first undo the factor "
                "κ by which its loss is smaller, then tilt the weights further.")
    if abs(t - 0.75) <= 1e-6:
        raise Mistake("your weights land at t = 0.75, a quarter of the way from b: swap them")
    if abs(w1 / w2 - 3.0) <= 1e-6:
        raise Mistake(f"w1 / w2 = 3 ignores the loss scale κ = 10: the weighted sum lands at t = κ w2 / (w1 + κ w2) "
                      f"= {t:.3f}")
    raise Mistake(f"your weights land at t = {t:.4f} (w1 / w2 = {w1 / w2:.4g}); solve κ w2 / (w1 + κ w2) = 1/4 for "
                  "w1 / w2")


# --------------------------------------------------------------------------- 05.2
DWA_CASES = (  # (mean losses of epoch e−1, of epoch e−2, temperature τ) for three tasks
    ((0.40, 0.90, 0.20), (0.50, 0.95, 0.40), 2.0),
    ((1.00, 1.00, 1.00), (1.00, 1.00, 1.00), 2.0),
    ((0.30, 0.70, 0.25), (0.60, 0.70, 0.26), 0.5),
)


@EXERCISES.add("05.2", "derive-and-verify",
               "dwa_weights(previous, before_previous, temperature): DWA's next task weights")
def judge_dwa_weights(answer: Any) -> str:
    """w_t = T · softmax(r / τ)_t with r_t = L_t(e−1) / L_t(e−2) (Liu, Johns & Davison, CVPR 2019), against
    ``mtlkit.weighting.DynamicWeightAverage`` after two epochs."""
    dwa_weights = require_function(answer, "dwa_weights(previous, before_previous, temperature)")
    for previous, before, temperature in DWA_CASES:
        previous_losses, before_losses = np.array(previous), np.array(before)
        got = as_array(call(dwa_weights, previous_losses.copy(), before_losses.copy(), temperature),
                       f"dwa_weights({list(previous)}, {list(before)}, {temperature})", (3,))
        strategy = DynamicWeightAverage(("a", "b", "c"), temperature=temperature)
        for losses in (before, previous):  # the trainer calls end_epoch after every epoch
            strategy.end_epoch(dict(zip("abc", losses)))
        expected = strategy.current_weights.double().numpy()
        if deviation(got, expected) <= 1e-5:
            continue
        ratio = previous_losses / before_losses

        def softmax(x: np.ndarray) -> np.ndarray:
            return np.exp(x - x.max()) / np.exp(x - x.max()).sum()

        slips = {
            "inverted": 3 * softmax(1 / ratio / temperature),
            "no T": softmax(ratio / temperature),
            "no temperature": 3 * softmax(ratio),
            "proportional": 3 * ratio / ratio.sum(),
        }
        hints = {
            "inverted": "your ratio is upside down: r_t = L_t(e−1) / L_t(e−2), so a task whose loss fell *less* "
                        "(r near 1) gets *more* weight",
            "no T": f"your weights sum to 1; DWA's sum to T = the number of tasks, so that equal losses give every "
                    f"task weight 1 (got {got.round(4).tolist()})",
            "no temperature": f"divide the ratios by the temperature τ = {temperature} before the softmax",
            "proportional": "the weights are a softmax of r / τ, not proportional to r",
        }
        reject_slips(got, slips, hints, tolerance=1e-5)
        raise Mistake(f"for losses {list(previous)} after {list(before)} and τ = {temperature} you return "
                      f"{got.round(4).tolist()}; DWA gives {expected.round(4).tolist()}")
    return ("T · softmax(r / τ), as mtlkit's DynamicWeightAverage: the task that improved least gets the most weight "
            "next epoch, and the weights only move at epoch boundaries.")


# --------------------------------------------------------------------------- 05.3
GRADIENT_PAIRS = (
    (np.array([0.6, 0.8]), np.array([-14.0, 8.0])),  # in conflict, very different norms
    (np.array([1.0, 0.0]), np.array([-1.0, 0.2])),  # nearly opposite, similar norms
    (np.array([1.0, 2.0]), np.array([3.0, 6.5])),  # aligned: nothing to project
)


def _gram(g1: np.ndarray, g2: np.ndarray) -> np.ndarray:
    return np.array([[g1 @ g1, g1 @ g2], [g2 @ g1, g2 @ g2]])


@EXERCISES.add("05.3", "derive-and-verify", "pcgrad_update(g1, g2): PCGrad's update for two tasks, against mtlkit")
def judge_pcgrad_update(answer: Any) -> str:
    """g₁ᴾᶜ + g₂ᴾᶜ, each gradient projected off the *original* other one when they conflict,
    against ``mtlkit.weighting.pcgrad_coefficients``."""
    pcgrad_update = require_function(answer, "pcgrad_update(g1, g2)")
    for g1, g2 in GRADIENT_PAIRS:
        coefficients = pcgrad_coefficients(_gram(g1, g2), orders=[[1], [0]])  # (2, 2): projected = C @ [g1; g2]
        expected = (coefficients @ np.stack([g1, g2])).sum(axis=0)
        got = as_array(call(pcgrad_update, g1.copy(), g2.copy()), f"pcgrad_update({g1.tolist()}, {g2.tolist()})",
                       g1.shape)
        if deviation(got, expected) <= 1e-9 * max(1.0, float(np.abs(expected).max())):
            continue
        g1_pc = g1 - (g1 @ g2) / (g2 @ g2) * g2
        g2_pc = g2 - (g2 @ g1) / (g1 @ g1) * g1
        sequential = g1_pc + (g2 - (g2 @ g1_pc) / (g1_pc @ g1_pc) * g1_pc)
        slips = {
            "always": g1_pc + g2_pc,
            "sum": g1 + g2,
            "sequential": sequential,
            "one": g1_pc + g2,
        }
        hints = {
            "always": f"g1·g2 = {g1 @ g2:+.3g} ≥ 0 here, and PCGrad leaves gradients that do not conflict unchanged: "
                      "project only when g1·g2 < 0",
            "sum": f"g1·g2 = {g1 @ g2:+.3g} < 0: the gradients conflict, so each one is projected onto the normal "
                   "plane of the other before summing",
            "sequential": "you projected g2 off the *projected* g1; PCGrad projects each gradient off the original "
                          "other gradient",
            "one": "you projected g1 only; g2 must be projected off g1 as well, g2 − (g2·g1)/‖g1‖² g1",
        }
        reject_slips(got, slips, hints)
        raise Mistake(f"for g1 = {g1.tolist()}, g2 = {g2.tolist()} your update is {got.round(6).tolist()}, PCGrad's is "
                      f"{expected.round(6).tolist()}")
    return ("equals mtlkit's pcgrad_coefficients: conflicting gradients lose their opposing parts, aligned ones add "
            "up unchanged.")
