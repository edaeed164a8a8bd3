"""Evaluation metrics for recommender tasks: classification, regression and top-k ranking.

Every function accepts torch tensors (any device, detached for you), numpy arrays or lists,
and returns a Python float. Each one is tested against an independent reference
(``sklearn.metrics`` where it has one, a brute-force loop otherwise).

Argument order follows ``sklearn.metrics``: the truth first, then the prediction.

- Classification: :func:`roc_auc`, :func:`log_loss`, :func:`accuracy`, :func:`precision`,
  :func:`recall`, :func:`f1`, :func:`group_auc` take 1-D ``y_true`` (0/1 or bool) and a 1-D
  score (a probability for ``log_loss``; any real score for the AUCs; thresholded at
  ``threshold``, default 0.5, for the four confusion-matrix metrics).
- Curves: :func:`roc_curve` and :func:`precision_recall_curve` (the points behind the AUC and
  the precision-recall trade-off); calibration: :func:`calibration_curve` (a reliability
  diagram's bins) and :func:`expected_calibration_error`, against 0/1 labels or, where a
  simulator knows them, the true probabilities.
- Regression: :func:`rmse`, :func:`mae`.
- Ranking, one row per user: :func:`hit_rate_at_k`, :func:`recall_at_k`, :func:`ndcg_at_k`,
  :func:`mrr` take 2-D ``relevance`` (>= 0; an item is relevant when its relevance is > 0)
  and 2-D ``scores`` of the same shape (n_users, n_items), and a cut-off ``k``.
- Streaming: :class:`BinaryMetricAccumulator` and :class:`RegressionMetricAccumulator`
  collect batches on the batch's device without a per-batch ``.cpu()`` sync and give the same
  numbers as the one-shot functions.

Policy for undefined cases (one rule for the whole module)
----------------------------------------------------------
A metric that is undefined for its input raises ``ValueError`` with a message naming the
argument and saying why; nothing returns NaN silently. Concretely:

- empty input raises (every metric);
- ``roc_auc`` raises when ``y_true`` holds a single class (no positive/negative pair exists);
  ``log_loss``, accuracy and the like stay defined for a single class and do not raise;
- ``group_auc`` skips groups holding a single class and raises if no group remains;
- ranking metrics skip users (rows) with no relevant item and raise if no row remains.
  Note: ``sklearn.metrics.ndcg_score`` instead scores such rows 0 and averages them in; on
  rows with at least one relevant item the two agree;
- NaN or inf in any input raises, as do labels outside {0, 1} and probabilities outside [0, 1];
- the accumulators' ``compute()`` follows the same rules (it calls the one-shot functions),
  and also raises when no batch, or no observed entry, was seen.

One deliberate exception, kept for compatibility with ``sklearn``'s default: precision,
recall and F1 with an empty denominator (e.g. no predicted positive) are not undefined
inputs but empty cells of a well-defined confusion matrix, and return ``zero_division``
(default 0.0, the value sklearn returns).

Ties
----
Ranking metrics and AUCs treat tied scores as "in random order" and report the expected
value over all orders of the tied items (McSherry & Najork, "Computing Information Retrieval
Performance Measures Efficiently in the Presence of Tied Scores", ECIR 2008). For the AUC
this is the average-rank rule (a tied positive/negative pair counts 1/2), for NDCG it is
what ``sklearn.metrics.ndcg_score`` does by default. It means a model that scores every item
the same gets the chance-level value, never a lucky (or unlucky) one that depends on how
items happen to be indexed.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import numpy as np
import torch

from mtlkit.checks import check_int, check_number

__all__ = [
    "roc_auc",
    "log_loss",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "group_auc",
    "roc_curve",
    "precision_recall_curve",
    "CalibrationCurve",
    "calibration_curve",
    "expected_calibration_error",
    "rmse",
    "mae",
    "hit_rate_at_k",
    "recall_at_k",
    "ndcg_at_k",
    "mrr",
    "BinaryMetricAccumulator",
    "RegressionMetricAccumulator",
    "make_accumulator",
    "TASK_METRICS",
    "METRIC_KINDS",
    "HIGHER_IS_BETTER",
    "higher_is_better",
    "primary_metric",
]

ArrayLike = Any  # torch.Tensor | np.ndarray | Sequence[float]

# --------------------------------------------------------------------------- what each metric is
# The one place that says which metrics a task kind has and which direction is better;
# the trainer, early stopping, summaries, the command line and the benchmarks read these.

#: The metrics recorded for each task kind (``Trainer.evaluate``); the first is the primary one.
TASK_METRICS: dict[str, tuple[str, ...]] = {"binary": ("auc", "logloss", "gauc"), "regression": ("rmse", "mae")}
#: Metric → the task kind it measures; metrics of different kinds are never averaged together.
METRIC_KINDS: dict[str, str] = {metric: kind for kind, names in TASK_METRICS.items() for metric in names}
#: Metrics where higher is better; every other metric (a loss or an error) is better lower.
HIGHER_IS_BETTER = frozenset({"auc", "gauc", "accuracy", "precision", "recall", "f1", "hr", "ndcg", "mrr"})


def higher_is_better(metric: str) -> bool:
    """Whether a larger ``metric`` is better; ``metric`` may be a history column such as
    ``"valid/click/auc"`` or ``"ndcg@10"`` (the last ``/`` part, before any ``@``, decides)."""
    return metric.rsplit("/", 1)[-1].split("@", 1)[0] in HIGHER_IS_BETTER


def primary_metric(kind: str) -> str:
    """The headline metric of a task kind: AUC for binary tasks, RMSE for regression."""
    if kind not in TASK_METRICS:
        raise ValueError(f"kind must be one of {list(TASK_METRICS)}, got {kind!r}")
    return TASK_METRICS[kind][0]


# --------------------------------------------------------------------------- input handling
def _to_numpy(x: ArrayLike, name: str, *, numeric: bool = True) -> np.ndarray:
    """A numpy view of a tensor (detached, moved to the CPU), array or list."""
    if isinstance(x, torch.Tensor):
        x = x.detach()
        if x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()  # numpy has no bfloat16
        if x.is_complex():
            raise TypeError(f"{name} must hold real numbers, got dtype {x.dtype}")
        return x.cpu().numpy()
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be a tensor, array or sequence, got {type(x).__name__}")
    try:
        array = np.asarray(x)
    except (ValueError, TypeError) as error:  # ragged lists
        raise TypeError(f"{name} must be a rectangular array of numbers, got {type(x).__name__}") from error
    if numeric and array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
    return array


def _check_1d(array: np.ndarray, name: str) -> None:
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} must be non-empty, got an empty array")


def _check_finite(array: np.ndarray, name: str) -> None:
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        bad = array[~np.isfinite(array)][:5].tolist()
        raise ValueError(f"{name} must be finite (no NaN or inf), got values {bad}")


def _check_same_length(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_b} must have the same shape as {name_a} {a.shape}, got {b.shape}")


def _binary_labels(y_true: ArrayLike) -> np.ndarray:
    labels = _to_numpy(y_true, "y_true")
    _check_1d(labels, "y_true")
    if not np.isin(labels, (0, 1)).all():
        bad = np.unique(labels[~np.isin(labels, (0, 1))])[:5].tolist()
        raise ValueError(f"y_true must hold only 0 and 1, got values {bad}")
    return labels.astype(np.float64)


def _scores(y_score: ArrayLike, labels: np.ndarray, name: str) -> np.ndarray:
    scores = _to_numpy(y_score, name)
    _check_1d(scores, name)
    _check_same_length(labels, scores, "y_true", name)
    _check_finite(scores, name)
    return scores


# --------------------------------------------------------------------------- AUC
def _grouped_auc(labels: np.ndarray, scores: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-group AUC by the rank-sum (Mann-Whitney) statistic, for all groups at once.

    Within a group with n+ positives and n- negatives and average ranks R_i (ties share the
    mean of the ranks they span),

        AUC = (sum_{i positive} R_i - n+ (n+ + 1) / 2) / (n+ n-).

    Sorting by (group, score) once puts every group's items in score order, so the ranks of
    all groups come from one pass; ``np.add.reduceat`` sums them per group.

    Returns:
        (auc, size): per-group AUC (NaN for a group with a single class) and group sizes.
    """
    n = labels.size
    order = np.lexsort((scores, codes))  # by group, then by score
    codes, scores, labels = codes[order], scores[order], labels[order]
    new_group = np.r_[True, codes[1:] != codes[:-1]]
    new_tie = new_group | np.r_[True, scores[1:] != scores[:-1]]  # a tie block never spans two groups
    group_start = np.flatnonzero(new_group)
    tie_start = np.flatnonzero(new_tie)
    tie_end = np.r_[tie_start[1:], n]
    block_group_start = group_start[np.cumsum(new_group)[tie_start] - 1]
    # mean of the 1-based in-group ranks (start+1 .. end) that the tie block spans
    block_rank = (tie_start + 1 + tie_end) / 2.0 - block_group_start
    rank = block_rank[np.cumsum(new_tie) - 1]  # (n,)
    size = np.diff(np.r_[group_start, n])
    n_pos = np.add.reduceat(labels, group_start)
    n_neg = size - n_pos
    rank_sum = np.add.reduceat(rank * labels, group_start)
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    auc[(n_pos == 0) | (n_neg == 0)] = np.nan
    return auc, size


def roc_auc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Area under the ROC curve: the probability that a random positive outscores a random negative.

    AUC = P(s+ > s-) + P(s+ = s-) / 2, computed from ranks (Mann & Whitney, Annals of
    Mathematical Statistics 1947; Hanley & McNeil, Radiology 1982):

        AUC = (sum_{i: y_i = 1} R_i - n+ (n+ + 1) / 2) / (n+ n-),

    with R_i the 1-based rank of s_i among all scores, tied scores sharing their average rank.
    Equal to ``sklearn.metrics.roc_auc_score``; O(n log n).

    Args:
        y_true: (n,) 0/1 labels.
        y_score: (n,) real scores (logits or probabilities; only their order matters).

    Raises:
        ValueError: empty input, labels outside {0, 1}, non-finite scores, or a single class
            in ``y_true`` (AUC is undefined without a positive/negative pair).
    """
    labels = _binary_labels(y_true)
    scores = _scores(y_score, labels, "y_score")
    auc, _ = _grouped_auc(labels, scores, np.zeros(labels.size, dtype=np.int64))
    if np.isnan(auc[0]):
        raise ValueError(
            f"y_true must contain both classes for roc_auc, got only class {int(labels[0])} "
            f"({labels.size} samples); AUC is undefined without a positive/negative pair"
        )
    return float(auc[0])


def group_auc(y_true: ArrayLike, y_score: ArrayLike, groups: ArrayLike) -> float:
    """Group AUC: the impression-weighted mean of per-group (usually per-user) AUC.

        gAUC = sum_g n_g AUC_g / sum_g n_g,

    over groups g holding both classes, with n_g the group's number of samples (impressions).
    A global AUC also rewards ranking one user's items above another's, which a recommender
    never has to do; gAUC only compares items shown to the same user (Zhou et al., "Deep
    Interest Network for Click-Through Rate Prediction", KDD 2018, eq. 6; Zhu et al.,
    "Optimized Cost per Click in Taobao Display Advertising", KDD 2017).

    Vectorised: one sort by (group, score), no Python loop over groups.

    Args:
        y_true: (n,) 0/1 labels.
        y_score: (n,) real scores.
        groups: (n,) group id per sample (ints, or any values ``np.unique`` can sort).

    Raises:
        ValueError: as :func:`roc_auc`, and when no group holds both classes.
    """
    labels = _binary_labels(y_true)
    scores = _scores(y_score, labels, "y_score")
    group_ids = _to_numpy(groups, "groups", numeric=False)
    if group_ids.ndim != 1:
        raise ValueError(f"groups must be 1-D, got shape {group_ids.shape}")
    _check_same_length(labels, group_ids, "y_true", "groups")
    _, codes = np.unique(group_ids, return_inverse=True)
    auc, size = _grouped_auc(labels, scores, codes.reshape(-1))
    valid = ~np.isnan(auc)
    if not valid.any():
        raise ValueError(
            f"groups must contain at least one group with both classes in y_true for group_auc, "
            f"got {size.size} groups each holding a single class"
        )
    return float(np.sum(size[valid] * auc[valid]) / np.sum(size[valid]))


# --------------------------------------------------------------------------- curves
def _threshold_counts(y_true: ArrayLike, y_score: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tp, fp, thresholds): counts predicted positive at each distinct score, highest first.

    Sorting the scores in descending order once, the prediction ``s >= t`` at the i-th
    distinct score t_i selects every sample up to the last one scored t_i, so
    tp_i = Σ_{j ≤ last(i)} y_j and fp_i = last(i) + 1 − tp_i. Tied scores enter together.
    """
    labels = _binary_labels(y_true)
    scores = _scores(y_score, labels, "y_score")
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    last = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]  # the last index of each tie block
    tp = np.cumsum(labels)[last]
    return tp, last + 1 - tp, scores[last]


def roc_curve(y_true: ArrayLike, y_score: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ROC curve: true- and false-positive rates of the prediction ``y_score >= t`` for every t.

        TPR(t) = TP(t) / n+,   FPR(t) = FP(t) / n-,

    at each distinct score t (highest first), after the point (0, 0) of t = +inf (Fawcett,
    "An introduction to ROC analysis", Pattern Recognition Letters 2006). Tied scores move
    the curve diagonally, so the trapezoidal area under it is exactly :func:`roc_auc` (the
    average-rank rule). Equal to ``sklearn.metrics.roc_curve(..., drop_intermediate=False)``.

    Args:
        y_true: (n,) 0/1 labels with both classes.
        y_score: (n,) real scores.

    Returns:
        ``(fpr, tpr, thresholds)``, each (d + 1,) for d distinct scores; ``thresholds[0]`` is inf.

    Raises:
        ValueError: as :func:`roc_auc` (the rates are undefined without both classes).
    """
    tp, fp, thresholds = _threshold_counts(y_true, y_score)
    if tp[-1] == 0 or fp[-1] == 0:
        raise ValueError(
            f"y_true must contain both classes for roc_curve, got {int(tp[-1])} positives and {int(fp[-1])} negatives"
        )
    return np.r_[0.0, fp / fp[-1]], np.r_[0.0, tp / tp[-1]], np.r_[np.inf, thresholds]


def precision_recall_curve(y_true: ArrayLike, y_score: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision and recall of the prediction ``y_score >= t`` for every distinct score t.

        precision(t) = TP(t) / (TP(t) + FP(t)),   recall(t) = TP(t) / n+,

    in scikit-learn's order and convention: thresholds increasing, and a last point
    (precision 1, recall 0) with no threshold (Davis & Goadrich, "The Relationship Between
    Precision-Recall and ROC Curves", ICML 2006, on why the PR curve says more than the ROC
    curve when positives are rare). Equal to ``sklearn.metrics.precision_recall_curve``.

    Returns:
        ``(precision, recall, thresholds)``: (d + 1,), (d + 1,) and (d,) for d distinct scores.

    Raises:
        ValueError: empty input, labels outside {0, 1}, non-finite scores, or no positive
            label (recall is undefined).
    """
    tp, fp, thresholds = _threshold_counts(y_true, y_score)
    if tp[-1] == 0:
        raise ValueError("y_true must contain at least one positive for precision_recall_curve, got none")
    precision, recall = tp / (tp + fp), tp / tp[-1]
    return np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0], thresholds[::-1]


# --------------------------------------------------------------------------- probabilistic
def log_loss(y_true: ArrayLike, y_prob: ArrayLike) -> float:
    """Mean negative log-likelihood of 0/1 labels under predicted probabilities (Bishop 2006, p. 209).

        LL = -1/n sum_i [y_i log p_i + (1 - y_i) log(1 - p_i)],

    with p_i and 1 - p_i clipped to [eps, 1 - eps] and eps the machine epsilon of
    ``y_prob``'s dtype (float32 or float64; other dtypes count as float64), as
    ``sklearn.metrics.log_loss`` does, so a confident mistake costs -log(eps), not inf.
    Unlike sklearn, a single class in ``y_true`` is fine: the loss is still defined.

    Args:
        y_true: (n,) 0/1 labels.
        y_prob: (n,) predicted probabilities of class 1, in [0, 1] (apply a sigmoid to logits).

    Raises:
        ValueError: empty input, labels outside {0, 1}, probabilities outside [0, 1] or non-finite.
    """
    labels = _binary_labels(y_true)
    probs = _scores(y_prob, labels, "y_prob")
    if probs.min() < 0 or probs.max() > 1:
        bad = probs[(probs < 0) | (probs > 1)][:5].tolist()
        raise ValueError(f"y_prob must hold probabilities in [0, 1], got values {bad}")
    dtype = probs.dtype if probs.dtype in (np.float32, np.float64) else np.float64
    eps = float(np.finfo(dtype).eps)
    p = probs.astype(np.float64)
    p_one = np.clip(p, eps, 1 - eps)
    p_zero = np.clip(1 - p, eps, 1 - eps)
    return float(-np.mean(labels * np.log(p_one) + (1 - labels) * np.log(p_zero)))


# --------------------------------------------------------------------------- calibration
class CalibrationCurve(NamedTuple):
    """The non-empty bins of a reliability diagram, in increasing order of prediction.

    Attributes:
        count: (b,) samples per bin.
        predicted: (b,) mean prediction p̄_b in the bin.
        observed: (b,) mean target ȳ_b in the bin: the observed rate for 0/1 labels, the
            mean true probability where a simulator knows it.
    """

    count: np.ndarray
    predicted: np.ndarray
    observed: np.ndarray


def _probabilities(values: ArrayLike, name: str) -> np.ndarray:
    array = _to_numpy(values, name)
    _check_1d(array, name)
    _check_finite(array, name)
    if array.min() < 0 or array.max() > 1:
        bad = array[(array < 0) | (array > 1)][:5].tolist()
        raise ValueError(f"{name} must hold probabilities in [0, 1], got values {bad}")
    return array.astype(np.float64)


def calibration_curve(y_target: ArrayLike, y_prob: ArrayLike, n_bins: int = 10) -> CalibrationCurve:
    """Bin the predictions into ``n_bins`` equal-width bins and average prediction and target per bin.

    Bin b ∈ {0, …, n−1} holds the samples with b/n < p ≤ (b+1)/n (bin 0 also p = 0), the rule
    of ``sklearn.calibration.calibration_curve(strategy="uniform")``, whose
    ``(prob_true, prob_pred)`` are :attr:`~CalibrationCurve.observed` and
    :attr:`~CalibrationCurve.predicted` here. Empty bins are left out. A calibrated model has
    ȳ_b = p̄_b in every bin (DeGroot & Fienberg, "The Comparison and Evaluation of
    Forecasters", The Statistician 1983; Niculescu-Mizil & Caruana, ICML 2005).

    Args:
        y_target: (n,) 0/1 labels, or the true probabilities in [0, 1] where they are known
            (a synthetic world): the bins then hold the mean true probability, free of the
            label noise √(p(1−p)/n_b) of a bin's observed rate.
        y_prob: (n,) predicted probabilities in [0, 1].
        n_bins: number of equal-width bins of [0, 1].

    Raises:
        ValueError: empty or mismatched inputs, values outside [0, 1], NaN or inf, n_bins < 1.
    """
    n_bins = check_int("n_bins", n_bins, low=1)
    target = _probabilities(y_target, "y_target")
    prob = _probabilities(y_prob, "y_prob")
    _check_same_length(target, prob, "y_target", "y_prob")
    bins = np.searchsorted(np.linspace(0.0, 1.0, n_bins + 1)[1:-1], prob)  # b/n < p <= (b+1)/n -> b
    count = np.bincount(bins, minlength=n_bins)
    keep = count > 0
    predicted = np.bincount(bins, weights=prob, minlength=n_bins)[keep] / count[keep]
    observed = np.bincount(bins, weights=target, minlength=n_bins)[keep] / count[keep]
    return CalibrationCurve(count[keep], predicted, observed)


def expected_calibration_error(y_target: ArrayLike, y_prob: ArrayLike, n_bins: int = 10) -> float:
    """Expected calibration error over equal-width bins of the prediction.

        ECE = Σ_b (|B_b| / N) · |ȳ_b − p̄_b|,

    the sample-weighted gap between each bin's mean target and mean prediction (Naeini,
    Cooper & Hauskrecht, "Obtaining Well Calibrated Probabilities Using Bayesian Binning",
    AAAI 2015; Guo et al., "On Calibration of Modern Neural Networks", ICML 2017). With 0/1
    labels as ``y_target`` it carries the labels' sampling noise; with the true
    probabilities (a simulator's) it measures the model alone. Arguments and bins as in
    :func:`calibration_curve`. 0 for a perfectly calibrated model; at most 1.
    """
    curve = calibration_curve(y_target, y_prob, n_bins)
    weight = curve.count / curve.count.sum()
    return float(np.sum(weight * np.abs(curve.observed - curve.predicted)))


# --------------------------------------------------------------------------- thresholded
def _confusion(y_true: ArrayLike, y_score: ArrayLike, threshold: float) -> tuple[float, float, float, float]:
    """(tp, fp, fn, tn) with the prediction y_score >= threshold."""
    labels = _binary_labels(y_true)
    scores = _scores(y_score, labels, "y_score")
    predicted = scores >= check_number("threshold", threshold)
    actual = labels == 1
    tp = float(np.sum(predicted & actual))
    fp = float(np.sum(predicted & ~actual))
    fn = float(np.sum(~predicted & actual))
    tn = float(np.sum(~predicted & ~actual))
    return tp, fp, fn, tn


def _ratio(numerator: float, denominator: float, zero_division: float) -> float:
    return numerator / denominator if denominator > 0 else float(zero_division)


def accuracy(y_true: ArrayLike, y_score: ArrayLike, threshold: float = 0.5) -> float:
    """Fraction of correct predictions, (TP + TN) / n, predicting 1 where y_score >= threshold.

    Equal to ``sklearn.metrics.accuracy_score(y_true, y_score >= threshold)``. ``y_score`` may
    already be 0/1 predictions (then the default threshold keeps them).
    """
    tp, fp, fn, tn = _confusion(y_true, y_score, threshold)
    return (tp + tn) / (tp + fp + fn + tn)


def precision(y_true: ArrayLike, y_score: ArrayLike, threshold: float = 0.5, zero_division: float = 0.0) -> float:
    """TP / (TP + FP): how many predicted positives are right; ``zero_division`` when nothing is predicted positive.

    Equal to ``sklearn.metrics.precision_score(y_true, y_score >= threshold)`` (whose default
    also returns 0.0 there, with a warning).
    """
    tp, fp, _, _ = _confusion(y_true, y_score, threshold)
    return _ratio(tp, tp + fp, zero_division)


def recall(y_true: ArrayLike, y_score: ArrayLike, threshold: float = 0.5, zero_division: float = 0.0) -> float:
    """TP / (TP + FN): how many actual positives are found; ``zero_division`` when there are none.

    Equal to ``sklearn.metrics.recall_score(y_true, y_score >= threshold)``.
    """
    tp, _, fn, _ = _confusion(y_true, y_score, threshold)
    return _ratio(tp, tp + fn, zero_division)


def f1(y_true: ArrayLike, y_score: ArrayLike, threshold: float = 0.5, zero_division: float = 0.0) -> float:
    """Harmonic mean of precision and recall, 2 TP / (2 TP + FP + FN) (van Rijsbergen,
    "Information Retrieval", 1979); ``zero_division`` when TP + FP + FN = 0.

    Equal to ``sklearn.metrics.f1_score(y_true, y_score >= threshold)``.
    """
    tp, fp, fn, _ = _confusion(y_true, y_score, threshold)
    return _ratio(2 * tp, 2 * tp + fp + fn, zero_division)


# --------------------------------------------------------------------------- regression
def _regression_inputs(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    truth = _to_numpy(y_true, "y_true")
    _check_1d(truth, "y_true")
    _check_finite(truth, "y_true")
    pred = _scores(y_pred, truth, "y_pred")
    return truth.astype(np.float64), pred.astype(np.float64)


def rmse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Root mean squared error, sqrt(1/n sum_i (y_i - p_i)^2), in the units of the target.

    Equal to ``sqrt(sklearn.metrics.mean_squared_error(y_true, y_pred))``.
    """
    truth, pred = _regression_inputs(y_true, y_pred)
    return float(np.sqrt(np.mean((truth - pred) ** 2)))


def mae(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean absolute error, 1/n sum_i |y_i - p_i|. Equal to ``sklearn.metrics.mean_absolute_error``."""
    truth, pred = _regression_inputs(y_true, y_pred)
    return float(np.mean(np.abs(truth - pred)))


# --------------------------------------------------------------------------- ranking
def _ranking_inputs(relevance: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validated float64 (n_users, n_items) arrays, keeping only users with a relevant item."""
    rel = _to_numpy(relevance, "relevance")
    score = _to_numpy(scores, "scores")
    if rel.ndim != 2:
        raise ValueError(f"relevance must be 2-D (n_users, n_items), got shape {rel.shape}")
    if rel.size == 0:
        raise ValueError(f"relevance must be non-empty, got shape {rel.shape}")
    _check_same_length(rel, score, "relevance", "scores")
    _check_finite(rel, "relevance")
    _check_finite(score, "scores")
    if (rel < 0).any():
        raise ValueError(f"relevance must be >= 0, got values {rel[rel < 0][:5].tolist()}")
    has_relevant = (rel > 0).any(axis=1)
    if not has_relevant.any():
        raise ValueError(
            f"relevance must have at least one user (row) with a relevant item (> 0), "
            f"got {rel.shape[0]} rows of zeros; ranking metrics skip such rows"
        )
    return rel[has_relevant].astype(np.float64), score[has_relevant].astype(np.float64)


def _first_relevant_block(relevance: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per user, the tie block holding the highest-scored relevant item, found without sorting.

    Returns (before, size, n_relevant): how many items score strictly higher, how many items
    share that score, and how many of those are relevant. Each (U,).
    """
    relevant = relevance > 0
    best = np.max(np.where(relevant, scores, -np.inf), axis=1, keepdims=True)  # (U, 1)
    tied = scores == best  # (U, I)
    return np.sum(scores > best, axis=1), np.sum(tied, axis=1), np.sum(tied & relevant, axis=1)


def _expected_over_first_relevant_rank(
    before: np.ndarray, size: np.ndarray, n_relevant: np.ndarray, weight: Callable[[np.ndarray], np.ndarray]
) -> float:
    """Mean over users of E[weight(rank of the first relevant item)], ranks 1-based.

    With r relevant items among m tied ones in random order, the offset X of the first
    relevant one inside its block has P(X >= j) = C(m - j, r) / C(m, r)
    = prod_{i<j} (m - r - i) / (m - i), and its rank is before + 1 + X.
    """
    offset = np.arange(int(size.max()))[None, :]  # (1, W)
    m, r = size[:, None].astype(np.float64), n_relevant[:, None]
    numerator = m - r - offset
    factor = np.where(numerator > 0, numerator / np.maximum(m - offset, 1), 0.0)  # (U, W)
    survival = np.concatenate([np.ones((size.size, 1)), np.cumprod(factor, axis=1)], axis=1)  # P(X >= j)
    p_offset = survival[:, :-1] - survival[:, 1:]  # P(X = j), (U, W)
    rank = before[:, None] + 1 + offset  # (U, W)
    return float(np.mean(np.sum(p_offset * weight(rank), axis=1)))


def hit_rate_at_k(relevance: ArrayLike, scores: ArrayLike, k: int) -> float:
    """Fraction of users with at least one relevant item among their top-k scored items.

        HR@k = 1/|U| sum_u 1[exists i in top_k(u) with rel_ui > 0]

    (the leave-one-out protocol of He et al., "Neural Collaborative Filtering", WWW 2017).
    Only the rank of the first relevant item matters. Ties count in expectation over random
    orders (see the module docstring). O(n_users * n_items), no sort.

    Args:
        relevance: (n_users, n_items) relevance >= 0; > 0 means relevant.
        scores: (n_users, n_items) model scores.
        k: cut-off, >= 1 (k > n_items is allowed and ranks every item).

    Raises:
        ValueError: shape mismatch, negative or non-finite values, k < 1, or no user with a
            relevant item (such users are skipped).
    """
    k = check_int("k", k, low=1)
    first = _first_relevant_block(*_ranking_inputs(relevance, scores))
    return _expected_over_first_relevant_rank(*first, lambda rank: (rank <= k).astype(np.float64))


def mrr(relevance: ArrayLike, scores: ArrayLike, k: int | None = None) -> float:
    """Mean reciprocal rank of each user's first relevant item (Voorhees, "The TREC-8 Question
    Answering Track Report", TREC 1999).

        MRR@k = 1/|U| sum_u 1 / rank_u   (0 when rank_u > k),

    with rank_u the 1-based rank of u's highest-scored relevant item; ``k=None`` ranks every
    item. Ties count in expectation over random orders (see the module docstring).
    O(n_users * n_items), no sort.

    Args and Raises: as :func:`hit_rate_at_k`, with ``k`` optional.
    """
    k = None if k is None else check_int("k", k, low=1)
    first = _first_relevant_block(*_ranking_inputs(relevance, scores))
    if k is None:
        return _expected_over_first_relevant_rank(*first, lambda rank: 1.0 / rank)
    return _expected_over_first_relevant_rank(*first, lambda rank: np.where(rank <= k, 1.0 / rank, 0.0))


def recall_at_k(relevance: ArrayLike, scores: ArrayLike, k: int) -> float:
    """Mean over users of the fraction of their relevant items found in the top k.

        Recall@k = 1/|U| sum_u |top_k(u) & R_u| / |R_u|,  R_u = {i : rel_ui > 0}.

    Let t be the user's k-th best score. Items scoring above t are all in the top k; the
    items tied at t share the remaining places, so in expectation over random orders (see the
    module docstring) each is in the top k with probability places / tied.
    O(n_users * n_items) with a partition, no sort.

    Args and Raises: as :func:`hit_rate_at_k`.
    """
    k = check_int("k", k, low=1)
    rel, score = _ranking_inputs(relevance, scores)
    relevant = rel > 0
    n_relevant = np.sum(relevant, axis=1)
    if k >= score.shape[1]:
        return 1.0  # every item is in the top k
    kth_best = -np.partition(-score, k - 1, axis=1)[:, k - 1 : k]  # (U, 1)
    above, tied = score > kth_best, score == kth_best
    places = k - np.sum(above, axis=1)  # top-k places left for the tied items
    found = np.sum(relevant & above, axis=1) + np.sum(relevant & tied, axis=1) * places / np.sum(tied, axis=1)
    return float(np.mean(found / n_relevant))


class _TieBlocks:
    """Each user's top items sorted by descending score, cut into blocks of equal score.

    All arrays are flat over (user, block), in user order then rank order:
    ``row`` the user, ``start`` the 0-based rank of the block's first item, ``size`` its
    number of items and ``gain`` its summed relevance. Under a random order of tied items,
    every position of a block holds the block's mean gain in expectation, which is what
    makes tie-averaged DCG cheap.

    Only what can reach the top ``depth`` ranks is sorted: per user the ``depth`` best items and
    every item tied with the depth-th (found with ``np.argpartition``), padded to a common
    width with the next-best items. Blocks starting at rank >= depth may then be cut short,
    which is harmless because an @depth metric gives them zero weight. Full-catalogue ranking
    (thousands of items per user) thereby costs a partition and a small sort.
    """

    def __init__(self, relevance: np.ndarray, scores: np.ndarray, depth: int) -> None:
        n_users, n_items = scores.shape
        if depth < n_items:
            kth_best = -np.partition(-scores, depth - 1, axis=1)[:, depth - 1 : depth]  # (U, 1)
            width = int(np.max(np.sum(scores >= kth_best, axis=1)))  # depth plus ties with the depth-th
            if width < n_items:
                top = np.argpartition(-scores, width - 1, axis=1)[:, :width]  # (U, W), unordered
                relevance = np.take_along_axis(relevance, top, axis=1)
                scores = np.take_along_axis(scores, top, axis=1)
                n_items = width
        order = np.argsort(-scores, axis=1)  # the order inside a tie block does not matter
        sorted_scores = np.take_along_axis(scores, order, axis=1)  # (U, I)
        sorted_relevance = np.take_along_axis(relevance, order, axis=1).ravel()  # (U*I,)
        new_block = np.ones((n_users, n_items), dtype=bool)
        new_block[:, 1:] = sorted_scores[:, 1:] != sorted_scores[:, :-1]
        flat_start = np.flatnonzero(new_block)  # blocks never span two users: column 0 always starts one
        self.n_users, self.n_items = n_users, n_items
        self.row = flat_start // n_items
        self.start = flat_start % n_items
        self.size = np.diff(np.r_[flat_start, n_users * n_items])
        self.gain = np.add.reduceat(sorted_relevance, flat_start)

    def per_user(self, values: np.ndarray) -> np.ndarray:
        """Sum per-block values into a (n_users,) array."""
        return np.bincount(self.row, weights=values, minlength=self.n_users)


def ndcg_at_k(relevance: ArrayLike, scores: ArrayLike, k: int) -> float:
    """Normalised discounted cumulative gain at k (Järvelin & Kekäläinen, "Cumulated Gain-Based
    Evaluation of IR Techniques", ACM TOIS 2002), with linear gains as in sklearn:

        DCG@k(u) = sum_{r=1}^{k} rel_u(r) / log2(r + 1),   NDCG@k(u) = DCG@k(u) / IDCG@k(u),

    with rel_u(r) the relevance of the item ranked r and IDCG the DCG of the ideal order.
    Ties are averaged (McSherry & Najork, ECIR 2008): a tie block contributes its mean gain
    times the summed discounts of the ranks it spans. Equal to
    ``sklearn.metrics.ndcg_score(relevance, scores, k=k)`` on users with a relevant item
    (sklearn scores the others 0; here they are skipped).

    Args and Raises: as :func:`hit_rate_at_k`; graded relevance is used as the gain.
    """
    k = check_int("k", k, low=1)
    rel, score = _ranking_inputs(relevance, scores)
    blocks = _TieBlocks(rel, score, depth=k)
    positions = np.arange(max(blocks.n_items, k))
    discount = np.where(positions < k, 1.0 / np.log2(positions + 2.0), 0.0)  # (max(I, k),)
    discount_cumsum = np.r_[0.0, np.cumsum(discount)]  # sum of the discounts of ranks < j
    block_discount = discount_cumsum[blocks.start + blocks.size] - discount_cumsum[blocks.start]
    dcg = blocks.per_user(blocks.gain / blocks.size * block_discount)
    top_k = min(k, rel.shape[1])
    best = -np.sort(np.partition(-rel, top_k - 1, axis=1)[:, :top_k], axis=1)  # (U, k) ideal gains, descending
    ideal = best @ discount[:top_k]
    return float(np.mean(dcg / ideal))


# --------------------------------------------------------------------------- streaming
def _as_tensor(x: ArrayLike, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach()
    return torch.as_tensor(_to_numpy(x, name))


def _check_batch(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> None:
    if pred.ndim != 1:
        raise ValueError(f"pred must be 1-D (batch,), got shape {tuple(pred.shape)}")
    if target.shape != pred.shape:
        raise ValueError(f"target must have the same shape as pred {tuple(pred.shape)}, got {tuple(target.shape)}")
    if mask is not None and mask.shape != pred.shape:
        raise ValueError(f"mask must have the same shape as pred {tuple(pred.shape)}, got {tuple(mask.shape)}")


class BinaryMetricAccumulator:
    """Collects (pred, target[, mask][, groups]) batches of a binary task; ``compute()`` gives
    the one-shot metrics of everything seen.

    ``update`` only appends detached tensors on their own device (no ``.cpu()``, no sync);
    ``compute`` concatenates them, drops masked-out entries and moves the result to the CPU
    once, then calls the one-shot functions, so the numbers are exactly theirs.

    Note the argument order: ``update(pred, target)`` as in the losses, while the one-shot
    functions follow sklearn's ``(y_true, y_score)``.

    Args:
        from_logits: ``pred`` holds logits; log loss and the thresholded metrics use
            sigmoid(pred), applied at compute time; the AUCs use ``pred`` itself (same order).
        threshold: decision threshold on the probability for accuracy/precision/recall/F1.

    ``compute()`` returns {"auc", "logloss", "accuracy", "precision", "recall", "f1"} and
    "gauc" when every batch came with ``groups``; undefined metrics raise as the one-shot
    functions do (see the module docstring).
    """

    def __init__(self, *, from_logits: bool = False, threshold: float = 0.5) -> None:
        self.from_logits = bool(from_logits)
        self.threshold = check_number("threshold", threshold)
        self.reset()

    def reset(self) -> None:
        self._preds: list[torch.Tensor] = []
        self._targets: list[torch.Tensor] = []
        self._masks: list[torch.Tensor] = []
        self._groups: list[torch.Tensor] = []

    def update(
        self,
        pred: ArrayLike,
        target: ArrayLike,
        mask: ArrayLike | None = None,
        groups: ArrayLike | None = None,
    ) -> None:
        """Add a batch: (B,) scores, (B,) 0/1 targets, optional (B,) observed-mask and (B,) group ids."""
        pred, target = _as_tensor(pred, "pred"), _as_tensor(target, "target")
        mask = None if mask is None else _as_tensor(mask, "mask")
        _check_batch(pred, target, mask)
        if self._preds and (groups is None) != (not self._groups):
            raise ValueError("groups must be given for every batch or for none, got a mix")
        if groups is not None:
            groups = _as_tensor(groups, "groups")
            if groups.shape != pred.shape:
                raise ValueError(
                    f"groups must have the same shape as pred {tuple(pred.shape)}, got {tuple(groups.shape)}"
                )
            self._groups.append(groups)
        self._preds.append(pred)
        self._targets.append(target)
        self._masks.append(torch.ones_like(pred, dtype=torch.bool) if mask is None else mask != 0)

    def compute(self) -> dict[str, float]:
        """The metrics of all batches since the last ``reset()``."""
        if not self._preds:
            raise ValueError("update must be called before compute, got no batches")
        observed = torch.cat(self._masks)
        score = torch.cat(self._preds)[observed]
        target = _to_numpy(torch.cat(self._targets)[observed], "target")
        if target.size == 0:
            raise ValueError("mask must mark at least one observed entry across the batches, got none")
        prob = _to_numpy(torch.sigmoid(score) if self.from_logits else score, "pred")
        score = _to_numpy(score, "pred")
        result = {
            # AUCs use the raw scores: only their order matters, and a float sigmoid can merge
            # distinct large logits into the same probability 1.0
            "auc": roc_auc(target, score),
            "logloss": log_loss(target, prob),
            "accuracy": accuracy(target, prob, self.threshold),
            "precision": precision(target, prob, self.threshold),
            "recall": recall(target, prob, self.threshold),
            "f1": f1(target, prob, self.threshold),
        }
        if self._groups:
            result["gauc"] = group_auc(target, score, _to_numpy(torch.cat(self._groups)[observed], "groups"))
        return result


class RegressionMetricAccumulator:
    """Running sums for RMSE and MAE, kept on the batch's device (no per-batch sync).

        RMSE = sqrt(sum m_i (y_i - t_i)^2 / sum m_i),   MAE = sum m_i |y_i - t_i| / sum m_i

    Sums are float64 (float32 on Apple MPS, which lacks float64), so ``compute()`` equals
    :func:`rmse` / :func:`mae` on the concatenated observed entries up to float rounding.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._sums: torch.Tensor | None = None  # (3,): squared error, absolute error, count

    def update(self, pred: ArrayLike, target: ArrayLike, mask: ArrayLike | None = None) -> None:
        """Add a batch: (B,) predictions, (B,) targets, optional (B,) observed-mask."""
        pred, target = _as_tensor(pred, "pred"), _as_tensor(target, "target")
        mask = None if mask is None else _as_tensor(mask, "mask")
        _check_batch(pred, target, mask)
        dtype = torch.float32 if pred.device.type == "mps" else torch.float64
        error = pred.to(dtype) - target.to(device=pred.device, dtype=dtype)
        weight = torch.ones_like(error) if mask is None else (mask != 0).to(device=pred.device, dtype=dtype)
        error = torch.where(weight > 0, error, torch.zeros_like(error))  # a NaN placeholder stays out
        sums = torch.stack([(error**2).sum(), error.abs().sum(), weight.sum()])
        self._sums = sums if self._sums is None else self._sums + sums

    def compute(self) -> dict[str, float]:
        """{"rmse", "mae"} of all observed entries since the last ``reset()``."""
        if self._sums is None:
            raise ValueError("update must be called before compute, got no batches")
        squared, absolute, count = self._sums.tolist()  # the one sync
        if count == 0:
            raise ValueError("mask must mark at least one observed entry across the batches, got none")
        if not (math.isfinite(squared) and math.isfinite(absolute)):
            raise ValueError("pred and target must be finite at observed entries, got NaN or inf")
        return {"rmse": math.sqrt(squared / count), "mae": absolute / count}


def make_accumulator(kind: str, **kwargs: Any) -> BinaryMetricAccumulator | RegressionMetricAccumulator:
    """The accumulator for a task kind (``TaskSpec.kind``): "binary" or "regression"."""
    if kind == "binary":
        return BinaryMetricAccumulator(**kwargs)
    if kind == "regression":
        return RegressionMetricAccumulator(**kwargs)
    raise ValueError(f"kind must be 'binary' or 'regression', got {kind!r}")
