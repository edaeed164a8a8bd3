"""Exercises of notebook 08 (visualising training): the smoothed loss curve, how focused an
attention head is, and when a conflict between two tasks' gradients hurts one of them."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from mtlkit.exercises.exercise import (
    Mistake,
    NotebookExercises,
    as_array,
    call,
    deviation,
    reject_slips,
    require_function,
)

EXERCISES = NotebookExercises("08_visualising")


# --------------------------------------------------------------------------- 08.1
def _loss_curve(seed: int = 14) -> np.ndarray:
    """A noisy, falling per-step training loss (one value per step)."""
    rng = np.random.default_rng(seed)
    steps = np.arange(60)
    return 0.3 + 0.5 * np.exp(-steps / 15) + 0.05 * rng.standard_normal(60)


def _ema(values: np.ndarray, keep: float, *, start_at_first: bool = False, debias: bool = True) -> np.ndarray:
    """m_t = keep · m_{t−1} + (1 − keep) · x_t, from m = 0 (or m = x_0), divided by 1 − keep^t when debiased."""
    average = values[0] if start_at_first else 0.0
    out = np.empty_like(values)
    for t, value in enumerate(values, start=1):
        average = keep * average + (1 - keep) * value
        out[t - 1] = average / (1 - keep**t) if debias and not start_at_first else average
    return out


@EXERCISES.add("08.1", "derive-and-verify",
               "smooth(values, smoothing): the debiased moving average the loss widget draws")
def judge_debiased_ema(answer: Any) -> str:
    """The loss widget's curve: a debiased exponential moving average, m_t = s m_{t−1} + (1 − s) x_t from
    m_0 = 0, divided by 1 − s^t (as Adam debiases its moments); against ``pandas.Series.ewm(alpha=1 − s)``."""
    import pandas as pd

    smooth = require_function(answer, "smooth(values, smoothing)")
    values = _loss_curve()
    for smoothing in (0.9, 0.5, 0.0):
        got = as_array(call(smooth, values.copy(), smoothing), f"smooth(values, {smoothing})", values.shape)
        expected = pd.Series(values).ewm(alpha=1.0 - smoothing, adjust=True).mean().to_numpy() if smoothing else values
        if deviation(got, expected) <= 1e-9:
            continue
        slips = {
            "no debias": _ema(values, smoothing, debias=False),
            "first value": _ema(values, smoothing, start_at_first=True),
            "swapped": _ema(values, 1 - smoothing),
        }
        hints = {
            "no debias": f"with smoothing {smoothing} your curve starts at {got[0]:.3f} while the losses start at "
                         f"{values[0]:.3f}: an average started at 0 is pulled towards 0 early on; divide m_t by "
                         "1 − s^t",
            "first value": "you started the average at the first value, which then keeps the weight s^t for a long "
                           "time; start from 0 and divide by 1 − s^t instead, which weighs every step by (1 − s) s^age",
            "swapped": f"with smoothing {smoothing} the old average keeps the weight s and the new value gets 1 − s; "
                       "you swapped them",
        }
        reject_slips(got, slips, hints, tolerance=1e-9)
        raise Mistake(f"with smoothing {smoothing} your curve differs from the debiased EMA by up to "
                      f"{deviation(got, expected):.3g} (first values {got[:3].round(4).tolist()}, expected "
                      f"{expected[:3].round(4).tolist()})")
    return ("the curve the loss widget draws: pandas' ewm(alpha=1 − s, adjust=True) is exactly this debiased average, "
            "so the smoothed curve starts where the losses start instead of at 0.")


# --------------------------------------------------------------------------- 08.2
def _attention_weights() -> torch.Tensor:
    """Weights (B, H, L, L) of two heads: a diffuse one and a sharp one, with padded keys at weight 0."""
    generator = torch.Generator().manual_seed(23)
    scores = torch.randn(3, 2, 5, 5, generator=generator, dtype=torch.float64)
    scores[:, 1] *= 6.0  # head 1: sharp rows
    scores[0, :, :, :2] = float("-inf")  # sample 0 is left-padded: its first two keys get weight 0
    return torch.softmax(scores, dim=-1)


@EXERCISES.add("08.2", "derive-and-verify", "attention_entropy(weights): how focused each attention head is, in nats")
def judge_attention_entropy(answer: Any) -> str:
    """Per head, the mean over rows of H(a) = −Σ_j a_j ln a_j (0 · ln 0 = 0), against ``torch.special.entr``."""
    attention_entropy = require_function(answer, "attention_entropy(weights)")
    weights = _attention_weights()
    got = as_array(call(attention_entropy, weights.clone()), "attention_entropy(weights)")
    expected = torch.special.entr(weights).sum(-1).mean(dim=(0, 2)).numpy()  # (H,)
    if got.shape != expected.shape:
        raise Mistake(f"return one entropy per head, shape {expected.shape}; got shape {got.shape} (average over "
                      "the samples and the query rows, dims 0 and 2 of (B, H, L, L))")
    if np.isnan(got).any():
        raise Mistake("your entropy is nan: a padded key has weight exactly 0, and 0 · log 0 must count as 0 "
                      "(torch.special.entr, or torch.xlogy(a, a))")
    if deviation(got, expected) <= 1e-9:
        return (f"mean entropies {expected.round(3).tolist()} nats against ln 5 = {math.log(5):.3f} for a uniform "
                "row over five keys: head 1 is the focused one. Computed for a trained model's heads, the entropy "
                "ranks them from 'reads one item' to 'averages the history'.")
    slips = {"bits": expected / math.log(2), "sign": -expected}
    hints = {"bits": "your entropies are in bits; use the natural log (nats), so a uniform row over n keys gives "
                     "ln n",
             "sign": "the entropy is −Σ a ln a, which is ≥ 0"}
    reject_slips(got, slips, hints)
    raise Mistake(f"your entropies {got.round(4).tolist()} differ from −Σ_j a_j ln a_j averaged per head "
                  f"({expected.round(4).tolist()})")


# --------------------------------------------------------------------------- 08.3
CONFLICT_CASES = (  # (‖g_a‖, ‖g_b‖, cos(g_a, g_b))
    (2.0, 1.0, -0.3), (1.0, 2.0, -0.3), (1.0, 1.0, -0.99), (1.0, 5.0, 0.2), (3.0, 1.0, -1.0), (1.0, 2.0, -0.5),
)


@EXERCISES.add("08.3", "derive",
               "step_lowers_loss_a(norm_a, norm_b, cosine): does the summed step still lower task a's loss?")
def judge_step_lowers_loss_a(answer: Any) -> str:
    """A small step along −(g_a + g_b) changes L_a by −η g_a·(g_a + g_b) = −η ‖g_a‖ (‖g_a‖ + ‖g_b‖ cos): it lowers
    L_a exactly when ‖g_a‖ + ‖g_b‖ cos > 0, so a conflict (cos < 0) hurts only the task with the smaller gradient."""
    step_lowers_loss_a = require_function(answer, "step_lowers_loss_a(norm_a, norm_b, cosine)")
    for norm_a, norm_b, cosine in CONFLICT_CASES:
        got = call(step_lowers_loss_a, norm_a, norm_b, cosine)
        if not isinstance(got, (bool, np.bool_)):
            raise Mistake(f"step_lowers_loss_a must return True or False, got {got!r:.40}")
        g_a = np.array([norm_a, 0.0])
        g_b = norm_b * np.array([cosine, math.sqrt(1 - cosine**2)])
        lowers = bool(g_a @ (g_a + g_b) > 0)  # first-order change of L_a along −(g_a + g_b), sign flipped
        if bool(got) == lowers:
            continue
        case = f"‖g_a‖ = {norm_a}, ‖g_b‖ = {norm_b}, cos = {cosine}"
        if bool(got) == (cosine > 0):
            raise Mistake(f"for {case} you answer {bool(got)}, but a conflict alone does not decide: the change of "
                          f"L_a is −η g_a·(g_a + g_b) = −η ‖g_a‖ (‖g_a‖ + ‖g_b‖ cos) = "
                          f"{-norm_a * (norm_a + norm_b * cosine):+.2f} η")
        raise Mistake(f"for {case} you answer {bool(got)}; g_a·(g_a + g_b) = {g_a @ (g_a + g_b):+.2f}")
    return ("L_a falls iff ‖g_a‖ + ‖g_b‖ cos > 0: a conflict hurts a task only when the other task's gradient, "
            "projected on its own, is larger — the smaller-gradient task loses, which is what loss-scale balancing "
            "and gradient surgery (notebook 05) address.")
