"""Exercises of notebook 09 (task relatedness): tastes of three tasks with chosen correlations,
the achievable click probability, and a paired comparison over seeds."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mtlkit.data.synthetic import intent_expectations
from mtlkit.exercises.exercise import (
    Mistake,
    NotebookExercises,
    as_array,
    call,
    deviation,
    reject_slips,
    require_function,
    require_number,
)
from mtlkit.stats import paired_comparison

EXERCISES = NotebookExercises("09_task_relatedness")


# --------------------------------------------------------------------------- 09.1
TASK_CORRELATION = np.array([[1.0, 0.6, -0.3],
                             [0.6, 1.0, 0.2],
                             [-0.3, 0.2, 1.0]])  # click, purchase, rating tastes


@EXERCISES.add("09.1", "derive",
               "correlated_tastes(z, correlation): tastes of three tasks with chosen pairwise relatedness")
def judge_correlated_tastes(answer: Any) -> str:
    """Tastes b_u = M z_u with M Mᵀ = C give Cov(b_s·v, b_t·v) = C_st ‖v‖² for any item v, e.g. M the Cholesky
    factor of C; section 1's b = ρ a + √(1 − ρ²) z is the two-task case. The check recovers M from the answer
    by least squares (the answer must be linear in z) and compares M Mᵀ with C."""
    correlated_tastes = require_function(answer, "correlated_tastes(z, correlation)")
    rng = np.random.default_rng(16)
    z = rng.standard_normal((400, 3, 8))  # (users, tasks, dim): independent standard normal tastes
    got = as_array(call(correlated_tastes, z.copy(), TASK_CORRELATION.copy()), "correlated_tastes(z, C)", z.shape)
    # b[u, :, k] = M z[u, :, k] for every user u and coordinate k: solve for M by least squares.
    inputs, outputs = z.transpose(0, 2, 1).reshape(-1, 3), got.transpose(0, 2, 1).reshape(-1, 3)
    mixing, *_ = np.linalg.lstsq(inputs, outputs, rcond=None)  # (3, 3) = Mᵀ
    if deviation(inputs @ mixing, outputs) > 1e-8:
        raise Mistake("your tastes are not one linear mix of the three independent tastes of each user: build each "
                      "task's taste from z as b_t = Σ_s M[t, s] z_s with the same M for every user and coordinate")
    covariance = mixing.T @ mixing  # M Mᵀ: Cov(b_s·v, b_t·v) / ‖v‖²
    if deviation(covariance, TASK_CORRELATION) <= 1e-8:
        item = rng.standard_normal(8)
        affinities = got @ item  # (users, tasks)
        measured = np.corrcoef(affinities.T)
        return (f"M Mᵀ = C exactly; over 400 users the affinities to one item correlate at "
                f"{measured[0, 1]:.2f}, {measured[0, 2]:.2f}, {measured[1, 2]:.2f} (targets 0.6, −0.3, 0.2). Section 1's "
                "b = ρ a + √(1 − ρ²) z is the Cholesky factor of [[1, ρ], [ρ, 1]].")
    if deviation(covariance, TASK_CORRELATION @ TASK_CORRELATION) <= 1e-8:
        raise Mistake("you multiplied by C itself: the covariance of C z is C Cᵀ = C²; use a square root M with "
                      "M Mᵀ = C, e.g. np.linalg.cholesky(C)")
    variances = np.diag(covariance)
    if np.abs(variances - 1).max() > 1e-8:
        raise Mistake(f"your tastes have variances {variances.round(3).tolist()} instead of 1: the rows of M must have "
                      "unit norm, as ρ² + (1 − ρ²) = 1 in section 1")
    raise Mistake(f"your tastes correlate as {covariance.round(3).tolist()}, not as C = {TASK_CORRELATION.tolist()}")


# --------------------------------------------------------------------------- 09.2
@EXERCISES.add("09.2", "derive-and-verify",
               "bayes_click_probability(score): E[σ(s + η)] over the hidden intent, by quadrature")
def judge_bayes_click_probability(answer: Any) -> str:
    """E_η[σ(s + η)], η ~ N(0, 1): by Gauss–Hermite, (1/√π) Σ_k w_k σ(s + √2 x_k), against
    ``mtlkit.data.synthetic.intent_expectations`` (40 nodes); tolerance 1e-3."""
    bayes_click_probability = require_function(answer, "bayes_click_probability(score)")
    score = np.linspace(-6.0, 4.0, 41)
    got = as_array(call(bayes_click_probability, score.copy()), "bayes_click_probability(score)", score.shape)
    expected, _ = intent_expectations(score, np.zeros_like(score), 0.0)
    if deviation(got, expected) <= 1e-3:
        at = int(np.argmin(np.abs(score + 3.2)))
        return (f"at the funnel's intercept s = {score[at]:.1f} the bound is {expected[at]:.4f} against "
                f"σ(s) = {1 / (1 + math.exp(-score[at])):.4f}: an intent the model cannot see pulls every probability "
                "towards ½ (σ is convex below 0).")
    nodes, weights = np.polynomial.hermite.hermgauss(40)
    sigmoid = 1 / (1 + np.exp(-(score[:, None] + nodes[None, :])))  # at x_k instead of √2 x_k
    slips = {
        "sigmoid": 1 / (1 + np.exp(-score)),
        "unnormalised": math.sqrt(math.pi) * expected,
        "unscaled nodes": sigmoid @ weights / math.sqrt(math.pi),
    }
    hints = {
        "sigmoid": "you returned σ(s): the bound averages σ(s + η) over the hidden intent η ~ N(0, 1), which no model "
                   "observes",
        "unnormalised": "your values are √π too large: hermgauss integrates against e^{−x²}, whose total is √π; "
                        "divide the weighted sum by √π",
        "unscaled nodes": "the nodes of hermgauss are for e^{−x²}, a normal with variance ½: evaluate σ at "
                          "s + √2 x_k to average over η ~ N(0, 1)",
    }
    reject_slips(got, slips, hints, tolerance=1e-4)
    worst = int(np.argmax(np.abs(got - expected)))
    raise Mistake(f"at s = {score[worst]:.2f} you return {got[worst]:.5f}; E[σ(s + η)] = {expected[worst]:.5f} "
                  "(the tolerance is 1e-3, so Monte Carlo needs millions of draws; quadrature needs 40 nodes)")


# --------------------------------------------------------------------------- 09.3
# Test AUC of a shared model and of the single-task baseline on five seeds: the worlds differ
# from seed to seed far more than the two models do.
MODEL_AUC = (0.712, 0.655, 0.743, 0.690, 0.668)
BASELINE_AUC = (0.701, 0.640, 0.738, 0.676, 0.660)


@EXERCISES.add("09.3", "derive-and-verify",
               "paired_gain(model, baseline): the mean gain over seeds and its paired standard error")
def judge_paired_gain(answer: Any) -> str:
    """Mean of the per-seed differences d_i = a_i − b_i and its standard error s_d / √n, against
    ``mtlkit.stats.paired_comparison``."""
    paired_gain = require_function(answer, "paired_gain(model, baseline)")
    returned = call(paired_gain, list(MODEL_AUC), list(BASELINE_AUC))
    if not isinstance(returned, (tuple, list)) or len(returned) != 2:
        raise Mistake(f"paired_gain must return the pair (mean difference, standard error), got {returned!r:.60}")
    mean = require_number(returned[0], "the mean difference")
    error = require_number(returned[1], "the standard error")
    reference = paired_comparison(MODEL_AUC, BASELINE_AUC)
    if abs(mean - reference.difference) > 1e-9:
        raise Mistake(f"your mean difference is {mean:.6g}; the mean of a_i − b_i is {reference.difference:.6g}")
    if abs(error - reference.standard_error) <= 1e-9:
        return (f"gain {reference.difference:+.4f} ± {reference.standard_error:.4f}: paired by seed the world-to-world "
                "variation cancels, and the gain is clear; treated as independent samples it would drown in it.")
    a, b, n = np.array(MODEL_AUC), np.array(BASELINE_AUC), len(MODEL_AUC)
    differences = a - b
    slips = {
        "unpaired": math.sqrt(a.var(ddof=1) / n + b.var(ddof=1) / n),
        "ddof 0": differences.std(ddof=0) / math.sqrt(n),
        "no sqrt n": differences.std(ddof=1),
        "n not sqrt": differences.std(ddof=1) / n,
    }
    hints = {
        "unpaired": f"your standard error {error:.4f} treats the two models' runs as independent samples, so the "
                    "worlds' variation stays in it; pair by seed: SE = s_d / √n of the differences d_i = a_i − b_i",
        "ddof 0": "you used the population standard deviation (divide by n); the sample one divides by n − 1",
        "no sqrt n": "that is the standard deviation of the differences, s_d; the standard error of their mean is "
                     "s_d / √n",
        "n not sqrt": "divide s_d by √n, not by n",
    }
    reject_slips(error, slips, hints, tolerance=1e-9)
    raise Mistake(f"your standard error is {error:.6g}; s_d / √n of the per-seed differences is "
                  f"{reference.standard_error:.6g}")
