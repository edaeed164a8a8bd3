"""Exercises of notebook 04 (losses and metrics): a stable masked BCE, NDCG with tied scores, the
loss of a Laplace likelihood, and scores that fool the global AUC."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mtlkit import metrics
from mtlkit.exercises.exercise import (
    Mistake,
    NotebookExercises,
    as_array,
    call,
    deviation,
    reject_slips,
    require_function,
    require_number,
    require_prediction,
)
from mtlkit.losses import binary_cross_entropy_with_logits

EXERCISES = NotebookExercises("04_losses_and_metrics")


# --------------------------------------------------------------------------- 04.1
def _loss_of(masked_bce: Any, logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, case: str) -> torch.Tensor:
    loss = call(masked_bce, logits, labels.clone(), mask.clone())
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise Mistake(f"masked_bce must return a scalar tensor (a loss stays differentiable), got {loss!r:.60} {case}")
    return loss.reshape(())


@EXERCISES.add("04.1", "derive-and-verify", "masked_bce(logits, labels, mask): a stable masked BCE, value and gradient")
def judge_masked_bce(answer: Any) -> str:
    """L = Σ_i m_i ℓ_i / max(Σ_i m_i, 1), ℓ = max(z, 0) − y z + log(1 + e^{−|z|}), against
    ``mtlkit.losses.binary_cross_entropy_with_logits`` (value and gradient)."""
    masked_bce = require_function(answer, "masked_bce(logits, labels, mask)")
    generator = torch.Generator().manual_seed(5)
    n = 200
    logits = 3 * torch.randn(n, generator=generator, dtype=torch.float64)
    labels = (torch.rand(n, generator=generator) < 0.3).double()
    mask = torch.rand(n, generator=generator) < 0.2
    extreme = torch.tensor([100.0, -100.0, 30.0], dtype=torch.float64)
    extreme_labels, extreme_mask = torch.tensor([0.0, 1.0, 1.0], dtype=torch.float64), torch.ones(3, dtype=torch.bool)

    given = logits.clone().requires_grad_()
    loss = _loss_of(masked_bce, given, labels, mask, "")
    expected = binary_cross_entropy_with_logits(logits, labels, mask)
    elementwise = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    if abs(loss.item() - expected.item()) > 1e-6 * max(1.0, expected.item()):
        if abs(loss.item() - (elementwise * mask).sum().item() / n) < 1e-6:
            raise Mistake(f"you divided by all {n} entries; a masked mean divides by the {int(mask.sum())} observed "
                          "ones: Σ m ℓ / Σ m")
        if abs(loss.item() - elementwise.mean().item()) < 1e-6:
            raise Mistake("your loss counts the unobserved labels: their placeholder 0 is not a negative — average "
                          "over the entries whose mask is True only")
        raise Mistake(f"your loss is {loss.item():.6g}, the masked BCE is {expected.item():.6g}")
    if not loss.requires_grad:
        raise Mistake("your loss does not depend on the logits through autograd (no gradient would reach the model); "
                      "compute it with torch operations on the logits")
    (gradient,) = torch.autograd.grad(loss, given)
    expected_gradient = mask * (torch.sigmoid(logits) - labels) / mask.sum()  # (σ(z) − y) m / Σ m
    if deviation(gradient, expected_gradient) > 1e-8:
        leak = gradient[~mask].abs().max().item()
        if leak > 0:
            raise Mistake(f"unobserved labels receive gradient (up to {leak:.3g}); they must get exactly 0")
        raise Mistake(f"your gradient differs from (σ(z) − y) m / Σ m by up to {deviation(gradient, expected_gradient):.3g}")
    far = _loss_of(masked_bce, extreme.clone(), extreme_labels, extreme_mask, "for logits ±100")
    if not torch.isfinite(far):
        raise Mistake("your loss is inf for logit 100 with label 0 (log(1 − σ(100)) = log 0 in floating point): "
                      "compute ℓ = max(z, 0) − y z + log(1 + e^{−|z|}), which never exponentiates a large number")
    if abs(far.item() - binary_cross_entropy_with_logits(extreme, extreme_labels).item()) > 1e-6:
        raise Mistake(f"for logits [100, −100, 30] with labels [0, 1, 1] your loss is {far.item():.6g}, the BCE is "
                      f"{binary_cross_entropy_with_logits(extreme, extreme_labels).item():.6g}")
    empty = _loss_of(masked_bce, logits[:8].clone(), labels[:8], torch.zeros(8, dtype=torch.bool), "for an empty mask")
    if not torch.isfinite(empty) or empty.item() != 0.0:
        raise Mistake(f"with no observed label your loss is {empty.item()} (0/0): divide by max(Σ m, 1), so an "
                      "empty task gives 0 and a zero gradient")
    return ("equals mtlkit's masked BCE and its gradient (σ(z) − y) m / Σ m, stays finite at logits ±100 and gives 0 "
            "for a batch without labels.")


# --------------------------------------------------------------------------- 04.2
@EXERCISES.add("04.2", "predict-then-run",
               "ndcg_with_ties: do mtlkit and scikit-learn still agree on NDCG when scores tie? Predict, then "
               "measure")
def judge_ndcg_with_ties(answer: Any) -> str:
    """With tied scores ``mtlkit.metrics.ndcg_at_k`` averages the gain over the orders of each tie block
    (McSherry & Najork, ECIR 2008), as ``sklearn.metrics.ndcg_score`` does by default
    (``ignore_ties=False``): the two still agree."""
    prediction, deviation_measured = require_prediction(answer, ("yes", "no"), "max_deviation",
                                                        "your measured |mtlkit − scikit-learn|")
    measured = require_number(deviation_measured, "answer['max_deviation']")
    if prediction == "no":
        raise Mistake("they still agree: both average the gain of a tie block over its orders (McSherry & Najork, "
                      "2008); read the module docstring of mtlkit.metrics on ties, and sklearn's ignore_ties=False"
                      + ("" if measured <= 1e-9 else f" — your measurement {measured:.2g} needs a second look too"))
    if measured > 1e-9:
        raise Mistake(f"the prediction is right, but your measurement {measured:.3g} says they differ: compare on the "
                      "users with a relevant item only (scikit-learn scores the others 0, mtlkit skips them), with the "
                      "same rounded scores in both calls")
    tied = metrics.ndcg_at_k(np.array([[1.0, 0.0]]), np.array([[0.0, 0.0]]), 2)
    return (f"they agree ({measured:.0e}). A tie is averaged, not broken: one relevant item tied with one irrelevant "
            f"item scores NDCG {tied:.3f} = (1 + 1/log2 3)/2, whether it comes first or last in the array; a metric "
            "that broke ties by position would say 1 or 0.631.")


# --------------------------------------------------------------------------- 04.3
@EXERCISES.add("04.3", "derive-and-verify",
               "laplace_nll(prediction, target, scale): the loss a Laplace likelihood gives, against torch")
def judge_laplace_nll(answer: Any) -> str:
    """−log p(t | y) = |t − y| / b + log(2b) for t ~ Laplace(y, b), against ``torch.distributions.Laplace``."""
    laplace_nll = require_function(answer, "laplace_nll(prediction, target, scale)")
    generator = torch.Generator().manual_seed(22)
    target = torch.randint(1, 6, (500,), generator=generator).double()  # 1..5 stars
    prediction = target + 0.8 * torch.randn(500, generator=generator, dtype=torch.float64)
    for scale in (0.8, 2.0):
        got = call(laplace_nll, prediction.clone(), target.clone(), scale)
        if not isinstance(got, torch.Tensor) or got.numel() != 1:
            raise Mistake(f"laplace_nll must return the mean as a scalar tensor, got {got!r:.60}")
        got = got.item()
        expected = -torch.distributions.Laplace(prediction, scale).log_prob(target).mean().item()
        if abs(got - expected) <= 1e-9 * max(1.0, abs(expected)):
            continue
        error = (target - prediction).abs()
        slips = {
            "no normaliser": (error / scale).mean().item(),
            "no scale": (error.mean() + math.log(2 * scale)).item(),
            "gaussian": -torch.distributions.Normal(prediction, scale).log_prob(target).mean().item(),
            "log b": ((error / scale).mean() + math.log(scale)).item(),
        }
        hints = {
            "no normaliser": "you left out the normaliser: the density is e^{−|t − y|/b} / (2b), so the NLL adds log(2b)",
            "no scale": "divide |t − y| by the scale b",
            "gaussian": "that is the Gaussian NLL of section 2; the Laplace density is e^{−|t − y|/b} / (2b)",
            "log b": "the normaliser of e^{−|t − y|/b} is ∫ e^{−|u|/b} du = 2b, so the NLL adds log(2b), not log b",
        }
        reject_slips(got, slips, hints, tolerance=1e-9)
        raise Mistake(f"for b = {scale} your mean NLL is {got:.6g}; −log Laplace(t | y, b) averages to {expected:.6g}")
    return ("|t − y|/b + log(2b): for a fixed b, maximum likelihood is least absolute deviations — the MAE of "
            "section 7 — and the best constant is the median rating, not the mean.")


# --------------------------------------------------------------------------- 04.4
def _active_and_idle_users(seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Impressions of 60 users whose click rates differ a lot (labels, users)."""
    rng = np.random.default_rng(seed)
    activity = rng.normal(-1.0, 2.0, 60)
    users = rng.integers(0, 60, 3000)
    labels = rng.random(3000) < 1 / (1 + np.exp(-activity[users]))
    return labels, users


@EXERCISES.add("04.4", "experiment",
               "fooling_scores(y_true, users): a global AUC of 0.75 or more while every user's AUC is 0.5")
def judge_fooling_scores(answer: Any) -> str:
    """Scores that rank users, not items: a global AUC ≥ 0.75 with every user's AUC 0.5 (gAUC = 0.5)."""
    fooling_scores = require_function(answer, "fooling_scores(y_true, users)")
    labels, users = _active_and_idle_users()
    scores = as_array(call(fooling_scores, labels.copy(), users.copy()), "fooling_scores(y_true, users)",
                      labels.shape)
    global_auc = metrics.roc_auc(labels, scores)
    group_auc = metrics.group_auc(labels, scores, users)
    if abs(group_auc - 0.5) > 0.02:
        raise Mistake(f"within users your scores still rank clicks apart from non-clicks (gAUC {group_auc:.3f}): "
                      "a score that only knows *who* the user is, the same for all of a user's impressions, has every "
                      "user's AUC at 0.5")
    if global_auc < 0.75:
        raise Mistake(f"your gAUC is 0.5 but the global AUC is only {global_auc:.3f}: give users who click more a "
                      "higher score (e.g. each user's click rate)")
    return (f"global AUC {global_auc:.3f}, gAUC {group_auc:.3f}: the scores know which users click a lot and nothing "
            "about which item a user prefers — the global AUC rewards the first, a recommender needs the second.")
