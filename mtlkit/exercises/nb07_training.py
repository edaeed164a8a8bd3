"""Exercises of notebook 07 (training): ESMM's stable CTCVR logit, the expected calibration
error, and temperature scaling."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from mtlkit import metrics
from mtlkit.exercises.exercise import (
    Mistake,
    NotebookExercises,
    as_tensor,
    call,
    deviation,
    reject_slips,
    require_function,
    require_number,
)
from mtlkit.models.esmm import ctcvr_logit

EXERCISES = NotebookExercises("07_training")


# --------------------------------------------------------------------------- 07.1
@EXERCISES.add("07.1", "derive-and-verify",
               "stable_ctcvr_logit(ctr_logit, cvr_logit): the logit of σ(a)σ(b), finite in float32")
def judge_ctcvr_logit(answer: Any) -> str:
    """logit(σ(a) σ(b)) = −log(e^{−a} + e^{−b} + e^{−a−b}), finite for every finite a, b, against
    ``mtlkit.models.ctcvr_logit``."""
    stable_ctcvr_logit = require_function(answer, "stable_ctcvr_logit(ctr_logit, cvr_logit)")
    generator = torch.Generator().manual_seed(11)
    a, b = 6 * torch.randn(2, 1000, generator=generator, dtype=torch.float64)
    got = as_tensor(call(stable_ctcvr_logit, a.clone(), b.clone()), "stable_ctcvr_logit(a, b)", tuple(a.shape))
    expected = ctcvr_logit(a, b)
    if deviation(got, expected) > 1e-6:
        slips = {"sum": a + b, "product of logits": a * b, "min": torch.minimum(a, b)}
        hints = {
            "sum": "a + b is the logit of the product of the *odds*, not of the probabilities σ(a) σ(b)",
            "product of logits": "a · b multiplies the logits; the probabilities multiply: p = σ(a) σ(b)",
            "min": "min(a, b) is only the large-logit limit; write 1/(σ(a)σ(b)) = (1 + e^{−a})(1 + e^{−b}) and solve "
                   "for the logit",
        }
        reject_slips(got, slips, hints)
        raise Mistake(f"your logit differs from logit(σ(a)σ(b)) by up to {deviation(got, expected):.3g} on logits "
                      "up to ±25")
    big = torch.tensor([20.0, 30.0, -30.0])
    finite = as_tensor(call(stable_ctcvr_logit, big.clone(), big.clone()), "stable_ctcvr_logit in float32", (3,))
    if not torch.isfinite(finite).all():
        raise Mistake("right in float64, but in float32 your logit is inf at a = b = 20: σ(20)² rounds to 1 and "
                      "log(p / (1 − p)) overflows; write it as −logsumexp(−a, −b, −a − b)")
    if deviation(finite, ctcvr_logit(big, big).double()) > 1e-3:
        raise Mistake(f"in float32 at a = b = [20, 30, −30] your logit is {finite.tolist()}, expected "
                      f"{ctcvr_logit(big, big).tolist()}")
    return ("equals mtlkit's ctcvr_logit and stays finite in float32 where σ(a)σ(b) rounds to 1: a trainer can apply "
            "BCE-with-logits to ESMM's product directly.")


# --------------------------------------------------------------------------- 07.2
def _reliability_inputs(seed: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Predictions crowded in the low bins, as click models' are, and labels drawn from a truth."""
    rng = np.random.default_rng(seed)
    probability = 1 / (1 + np.exp(-rng.normal(-1.8, 1.0, 4000)))
    label = (rng.random(4000) < np.clip(1.3 * probability, 0, 1)).astype(float)  # under-confident model
    return probability, label


def _bins(probability: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin b holds b/n < p <= (b+1)/n (p = 0 in bin 0), the rule of sklearn's calibration_curve."""
    return np.searchsorted(np.linspace(0.0, 1.0, n_bins + 1)[1:-1], probability)


@EXERCISES.add("07.2", "derive-and-verify",
               "expected_calibration_error(prob, label, n_bins): the ECE over equal-width bins")
def judge_expected_calibration_error(answer: Any) -> str:
    """ECE = Σ_b |B_b|/N · |ȳ_b − p̄_b| over equal-width bins (Naeini et al., AAAI 2015)."""
    expected_calibration_error = require_function(answer, "expected_calibration_error(prob, label, n_bins)")
    probability, label = _reliability_inputs()
    for n_bins in (10, 4):
        got = require_number(call(expected_calibration_error, probability.copy(), label.copy(), n_bins),
                             f"expected_calibration_error(prob, label, {n_bins})")
        bins = _bins(probability, n_bins)
        count = np.bincount(bins, minlength=n_bins)
        used = count > 0
        gap = np.abs(np.bincount(bins, label, n_bins)[used] - np.bincount(bins, probability, n_bins)[used]) / count[used]
        expected = float((count[used] / len(label) * gap).sum())
        if abs(got - expected) <= 1e-9:
            continue
        slips = {
            "unweighted": float(gap.mean()),
            "per sample": float(np.abs(probability - label).mean()),
            "squared": float((count[used] / len(label) * gap**2).sum()),
            "global": float(abs(label.mean() - probability.mean())),
        }
        share = count.max() / len(label)
        hints = {
            "unweighted": f"you averaged the bins' gaps with equal weight; ECE weights each bin by its share |B_b|/N "
                          f"(here the fullest bin holds {share:.0%} of the samples)",
            "per sample": "that is the mean |p − y| over samples; ECE compares averages within bins, |ȳ_b − p̄_b|",
            "squared": "you squared the gaps; ECE uses |ȳ_b − p̄_b|",
            "global": "you compared the overall means only (one bin); bin the predictions first",
        }
        reject_slips(got, slips, hints, tolerance=1e-9)
        raise Mistake(f"with {n_bins} bins you return {got:.6g}, the ECE is {expected:.6g} (bin b holds "
                      "b/n < p ≤ (b+1)/n)")
    return ("Σ_b |B_b|/N · |ȳ_b − p̄_b|: most of it comes from the crowded low bins, where this model is "
            "under-confident.")


# --------------------------------------------------------------------------- 07.3
def _log_loss(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    z = logits / temperature
    return float(np.mean(np.logaddexp(0.0, z) - labels * z))  # BCE on logits, stable


def _best_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """argmin_T log-loss(logits / T) by golden-section search on log T (the loss is unimodal in T)."""
    low, high = math.log(0.05), math.log(20.0)
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(80):
        left, right = high - ratio * (high - low), low + ratio * (high - low)
        if _log_loss(logits, labels, math.exp(left)) < _log_loss(logits, labels, math.exp(right)):
            high = right
        else:
            low = left
    return math.exp((low + high) / 2)


@EXERCISES.add("07.3", "experiment", "fit_temperature(logits, labels): the temperature that minimises the log-loss")
def judge_fit_temperature(answer: Any) -> str:
    """The T > 0 that minimises the validation log-loss of logits / T (Guo et al., ICML 2017)."""
    fit_temperature = require_function(answer, "fit_temperature(logits, labels)")
    rng = np.random.default_rng(13)
    true_logit = rng.normal(-1.0, 1.5, 5000)
    labels = (rng.random(5000) < 1 / (1 + np.exp(-true_logit))).astype(float)
    logits = 3.0 * true_logit + rng.normal(0.0, 0.3, 5000)  # an over-confident model
    got = require_number(call(fit_temperature, torch.tensor(logits), torch.tensor(labels)),
                         "fit_temperature(logits, labels)")
    best = _best_temperature(logits, labels)
    if abs(got - best) <= 0.01 * best:
        auc_before = metrics.roc_auc(labels, logits)
        auc_after = metrics.roc_auc(labels, logits / got)
        return (f"T = {got:.3f}: the log-loss falls from {_log_loss(logits, labels, 1.0):.4f} to "
                f"{_log_loss(logits, labels, got):.4f}, while the AUC stays {auc_before:.4f} → {auc_after:.4f}: "
                "dividing by T > 0 never changes the order of the scores.")
    if got <= 0:
        raise Mistake(f"T = {got} is not a temperature: divide the logits by a T > 0")
    if abs(got - 1 / best) <= 0.01 / best:
        raise Mistake(f"your T = {got:.3f} is 1/T*: you multiplied the logits by T; the model is over-confident "
                      "(its logits are too large), so the fitted T > 1 divides them")
    raise Mistake(f"at T = {got:.4g} the log-loss is {_log_loss(logits, labels, got):.5f}; at its minimum, T = "
                  f"{best:.4g}, it is {_log_loss(logits, labels, best):.5f}")
