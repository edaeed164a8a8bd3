"""Exercises of notebook 06 (data): a behaviour history without leakage, popularity-proportional
negative sampling, and how the selection bias of a CVR estimated on clicks scales."""

from __future__ import annotations

from typing import Any

import numpy as np

from mtlkit.data import columns as C
from mtlkit.data.synthetic import make_recsys_funnel
from mtlkit.exercises.exercise import (
    Mistake,
    NotebookExercises,
    as_array,
    call,
    reject_slips,
    require_function,
    require_prediction,
)

EXERCISES = NotebookExercises("06_data")


# --------------------------------------------------------------------------- 06.1
CLICK_TIMES = np.array([10, 20, 20, 35, 50, 50, 70, 90])  # one user's clicks, oldest first (two ties)
CLICK_ITEMS = np.array([4, 7, 2, 9, 4, 5, 1, 3])


def _history(times: np.ndarray, items: np.ndarray, t: int, seq_len: int, *, strict: bool = True,
             newest: bool = True, oldest_first: bool = True) -> np.ndarray:
    """The reference history (strictly earlier, the newest seq_len, oldest first) and the slips' variants."""
    before = items[(times < t) if strict else (times <= t)]
    kept = before[-seq_len:] if newest else before[:seq_len]
    return kept if oldest_first else kept[::-1]


@EXERCISES.add("06.1", "derive-and-verify",
               "history_before(times, items, t, seq_len): a user's history without leaking the label")
def judge_history_before(answer: Any) -> str:
    """The items clicked strictly before the sample's time t, the most recent ``seq_len``, oldest first."""
    history_before = require_function(answer, "history_before(times, items, t, seq_len)")
    cases = [(50, 3), (50, 10), (20, 2), (10, 4), (95, 5), (36, 2)]
    for t, seq_len in cases:
        got = as_array(call(history_before, CLICK_TIMES.copy(), CLICK_ITEMS.copy(), t, seq_len),
                       f"history_before(times, items, {t}, {seq_len})")
        expected = _history(CLICK_TIMES, CLICK_ITEMS, t, seq_len)
        if got.shape == expected.shape and np.array_equal(got, expected):
            continue
        slips = {
            "leak": _history(CLICK_TIMES, CLICK_ITEMS, t, seq_len, strict=False),
            "oldest": _history(CLICK_TIMES, CLICK_ITEMS, t, seq_len, newest=False),
            "reversed": _history(CLICK_TIMES, CLICK_ITEMS, t, seq_len, oldest_first=False),
        }
        hints = {
            "leak": f"for a sample at t = {t} your history holds the click at t = {t} itself: the sample's own label "
                    "leaks into its features; keep only clicks strictly before t",
            "oldest": f"for t = {t}, seq_len = {seq_len} you kept the oldest clicks; keep the {seq_len} most recent "
                      "ones",
            "reversed": "your history runs newest first; mtlkit's histories run oldest first, the most recent item "
                        "last (next to the target)",
        }
        reject_slips(got, slips, hints, tolerance=0.0)
        raise Mistake(f"for t = {t}, seq_len = {seq_len} you return {got.astype(int).tolist()}, expected "
                      f"{expected.tolist()} (clicks at times {CLICK_TIMES.tolist()}, items {CLICK_ITEMS.tolist()})")
    return ("strictly earlier clicks, the newest seq_len, oldest first — the rule mtlkit's builder follows and "
            "section 6 re-checks on every sample.")


# --------------------------------------------------------------------------- 06.2
@EXERCISES.add("06.2", "experiment",
               "sample_negatives(popularity, interacted, n, rng): popularity-proportional negatives")
def judge_popularity_negatives(answer: Any) -> str:
    """Negatives drawn with probability ∝ popularity among the items the user never interacted with;
    their mean popularity is Σ_{j∉I} c_j² / Σ_{j∉I} c_j."""
    sample_negatives = require_function(answer, "sample_negatives(popularity, interacted, n, rng)")
    popularity = np.floor(1000 / np.arange(1, 51) ** 1.1)  # (50,) Zipf-like click counts
    interacted = np.array([0, 1, 3, 8, 20])
    n = 20_000
    drawn = as_array(call(sample_negatives, popularity.copy(), interacted.copy(), n, np.random.default_rng(9)),
                     "sample_negatives(...)", (n,))
    if not np.array_equal(drawn, np.round(drawn)) or drawn.min() < 0 or drawn.max() >= len(popularity):
        raise Mistake(f"negatives must be item indices in [0, {len(popularity)}), got values from {drawn.min()} to "
                      f"{drawn.max()}")
    seen = np.intersect1d(drawn.astype(int), interacted)
    if seen.size:
        raise Mistake(f"you drew item {seen[0]}, which the user interacted with: a negative must be an item the user "
                      "never interacted with")
    allowed = np.setdiff1d(np.arange(len(popularity)), interacted)
    mean_popularity = popularity[drawn.astype(int)].mean()
    proportional = (popularity[allowed] ** 2).sum() / popularity[allowed].sum()
    uniform = popularity[allowed].mean()
    frequencies = np.bincount(drawn.astype(int), minlength=len(popularity))[allowed] / n
    expected_frequencies = popularity[allowed] / popularity[allowed].sum()
    distance = 0.5 * np.abs(frequencies - expected_frequencies).sum()
    if distance > 0.03:
        if abs(mean_popularity - uniform) < 0.05 * uniform:
            raise Mistake(f"your negatives look uniform: their mean popularity is {mean_popularity:.1f}, as uniform "
                          f"sampling gives ({uniform:.1f}); popularity-proportional sampling gives {proportional:.1f} "
                          "(draw item j with probability popularity[j] / Σ popularity over the allowed items)")
        raise Mistake(f"your negatives' frequencies are {distance:.3f} away (total variation) from popularity / Σ "
                      f"popularity over the allowed items; their mean popularity is {mean_popularity:.1f}, expected "
                      f"{proportional:.1f}")
    return (f"mean popularity {mean_popularity:.1f} against {uniform:.1f} for uniform negatives: the negatives are now "
            "as popular as the positives tend to be, so 'popular = positive' no longer separates them and the task "
            "gets harder — and more like ranking a real catalogue.")


# --------------------------------------------------------------------------- 06.3
STRENGTHS = (0.5, 1.0, 2.0)  # selection_bias s of the three worlds to measure


def _true_bias(selection_bias: float) -> float:
    """E[p_cvr | click] − E[p_cvr] from the true probabilities of a small funnel (no label noise)."""
    log = make_recsys_funnel(200, 50, seed=0, selection_bias=selection_bias).interactions
    p_click, p_cvr = log[C.TRUE_CLICK_PROB].to_numpy(), log[C.TRUE_CVR].to_numpy()
    return float(np.mean(p_click * p_cvr) / np.mean(p_click) - np.mean(p_cvr))


@EXERCISES.add("06.3", "predict-then-run",
               "bias_scaling: how the selection bias changes with selection_bias. Predict, then measure")
def judge_bias_scaling(answer: Any) -> str:
    """The hidden intent η enters the click logit with weight 1 and the conversion logit with weight s,
    so Cov(p_click, p_cvr) / E[p_click] — the selection bias — grows with s."""
    prediction, biases = require_prediction(answer, ("grows", "shrinks", "stays"), "biases",
                                            "[the measured bias at s = 0.5, 1 and 2]")
    measured = as_array(biases, "answer['biases']", (len(STRENGTHS),))
    reference = [_true_bias(strength) for strength in STRENGTHS]
    shown = ", ".join(f"{bias:.3f}" for bias in reference)
    if prediction != "grows":
        raise Mistake(f"it grows: the hidden intent η raises the click logit with weight 1 and the conversion logit "
                      f"with weight s, so the clicked impressions are richer in buyers the larger s is (in a small "
                      f"funnel: {shown} at s = 0.5, 1, 2)")
    if (measured <= 0).any() or not (np.diff(measured) > 0).all():
        raise Mistake(f"the prediction is right, but your measured biases {measured.round(4).tolist()} do not grow "
                      "with s: in each world measure the purchase rate among clicks minus the mean true CVR, "
                      "with make_recsys_funnel(..., selection_bias=s) and everything else unchanged")
    return (f"it grows, if less than in proportion (a small funnel: {shown}). It stays positive here because the "
            "causes that dominate — the intent η and the correlated tastes — raise clicks and purchases together; "
            "the bots, who click more and buy less, pull the other way but are few. With s < 0, or many bots, the "
            "covariance and so the bias could turn negative.")
