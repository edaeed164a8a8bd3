"""Evidence: paired comparisons by seed, the one verdict rule, and how close a model gets to the best.

A claim such as "MMoE beats the shared bottom" is a statement about a *difference*, measured on
the same worlds: each seed draws one world (data, split, initial weights), both models train on
it, and the per-seed differences d_i = m_i(A) − m_i(B) are what vary. Their mean and standard
error,

    d̄ = (1/n) Σ_i d_i,     SE = s_d / √n,     s_d² = (1/(n−1)) Σ_i (d_i − d̄)²,

are far sharper than comparing two means with their own spreads, because the world-to-world
variation cancels in each d_i (a paired design; Student, 1908; Dietterich, Neural Computation
1998, on comparing learners on shared data).

**The verdict rule** (:data:`VERDICT_RULE`), used by every script and the demo: A *helps* (or
*hurts*) when the paired mean gain, in the metric's better direction, exceeds twice its standard
error **and** has the same sign on at least 80 % of the seeds (4 of 5); otherwise the difference
is *within noise*. Two standard errors is roughly a 95 % interval for a mean of a few seeds; the
sign condition keeps one outlying seed from deciding.

**The achievable bound.** On the synthetic funnel the best any model can predict is known
(:func:`mtlkit.data.synthetic.make_recsys_funnel`'s ``bayes_*`` columns, the outcome
probabilities with the unobservable intent integrated out). :func:`bound_metrics` scores those
on the same rows as a model, and :func:`gap_closed` says which share of the way from a trivial
predictor (AUC 0.5; log-loss of the training base rate) to the bound the model has come.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mtlkit import metrics
from mtlkit.data import columns as C
from mtlkit.data.batch import LABEL_MASK, LABELS

if TYPE_CHECKING:
    from mtlkit.data.tensors import TensorSamples

__all__ = [
    "FUNNEL_BOUNDS",
    "MIN_AGREEMENT",
    "VERDICT_RULE",
    "PairedComparison",
    "bound_metrics",
    "gap_closed",
    "paired_comparison",
    "trivial_metrics",
]

#: How many standard errors the paired mean gain must exceed.
STANDARD_ERRORS = 2.0
#: The share of seeds on which the gain must have its sign (4 of 5).
MIN_AGREEMENT = 0.8
VERDICT_RULE = (
    f"'helps'/'hurts' when the paired mean gain exceeds {STANDARD_ERRORS:g} standard errors and has the same "
    f"sign on at least {MIN_AGREEMENT:.0%} of the seeds; otherwise 'within noise'"
)

#: Funnel task → the batch key of its achievable bound (the Bayes-optimal probability).
FUNNEL_BOUNDS = {C.CLICK: C.BAYES_CLICK_PROB, C.PURCHASE: C.BAYES_PURCHASE_PROB, C.CONVERSION: C.BAYES_CVR}


@dataclass(frozen=True)
class PairedComparison:
    """A − B over paired seeds, in the metric's own units (``gain`` is signed so that > 0 is better).

    Attributes:
        difference: mean of A − B.
        standard_error: s_d / √n (NaN for one seed).
        gain: ``difference`` if higher is better, else its negative.
        wins: seeds on which A was better (a tie is no win).
        n: seeds.
        verdict: "helps", "hurts" or "within noise" by :data:`VERDICT_RULE`.
    """

    difference: float
    standard_error: float
    gain: float
    wins: int
    n: int
    verdict: str

    def __str__(self) -> str:
        return (f"{self.difference:+.4f} ± {self.standard_error:.4f} (SE), better on {self.wins} of {self.n} "
                f"seeds: {self.verdict}")


def paired_comparison(a: Sequence[float], b: Sequence[float], *, higher_is_better: bool = True) -> PairedComparison:
    """Compare A with B seed by seed (``a[i]`` and ``b[i]`` measured on the same seed)."""
    if len(a) != len(b) or not a:
        raise ValueError(f"a and b must hold one value per seed, the same seeds, got {len(a)} and {len(b)} values")
    differences = [float(x) - float(y) for x, y in zip(a, b)]
    n = len(differences)
    mean = statistics.fmean(differences)
    standard_error = statistics.stdev(differences) / math.sqrt(n) if n > 1 else math.nan
    sign = 1.0 if higher_is_better else -1.0
    gain = sign * mean
    wins = sum(sign * d > 0 for d in differences)
    losses = sum(sign * d < 0 for d in differences)
    verdict = "within noise"
    if n > 1 and abs(gain) > STANDARD_ERRORS * standard_error:
        if gain > 0 and wins >= MIN_AGREEMENT * n:
            verdict = "helps"
        elif gain < 0 and losses >= MIN_AGREEMENT * n:
            verdict = "hurts"
    return PairedComparison(mean, standard_error, gain, wins, n, verdict)


def gap_closed(value: float, trivial: float, bound: float) -> float:
    """(value − trivial) / (bound − trivial): 0 = no better than trivial, 1 = the best possible."""
    return (value - trivial) / (bound - trivial) if bound != trivial else math.nan


def bound_metrics(samples: TensorSamples, task_names: Sequence[str],
                  bounds: Mapping[str, str] = FUNNEL_BOUNDS) -> dict[str, dict[str, float]]:
    """AUC and log-loss of the achievable bound, task by task, on the rows where the task is observed.

    Only the tasks of ``bounds`` whose bound column ``samples`` carries are scored (the funnel's
    click, purchase and conversion), so a model's metrics on the same split compare directly.
    """
    result = {}
    for j, task in enumerate(task_names):
        key = bounds.get(task)
        if key is None or key not in samples:
            continue
        observed = samples[LABEL_MASK][:, j]
        labels, probability = samples[LABELS][observed, j], samples[key][observed]
        result[task] = {"auc": _or_nan(metrics.roc_auc, labels, probability),
                        "logloss": _or_nan(metrics.log_loss, labels, probability)}
    return result


def _or_nan(metric, labels, predictions) -> float:
    """The metric, or NaN where it is undefined on these rows (e.g. an AUC of one class), as the
    trainer's metrics are."""
    try:
        return float(metric(labels, predictions))
    except ValueError:
        return math.nan


def trivial_metrics(train: TensorSamples, samples: TensorSamples,
                    task_kinds: Mapping[str, str]) -> dict[str, dict[str, float]]:
    """The trivial predictor of every binary task: AUC 0.5, and the log-loss of predicting the
    training base rate everywhere (what a model learns with no features at all)."""
    result = {}
    for j, (task, kind) in enumerate(task_kinds.items()):
        if kind != "binary":
            continue
        rate = float(train[LABELS][train[LABEL_MASK][:, j], j].mean())
        labels = samples[LABELS][samples[LABEL_MASK][:, j], j]
        result[task] = {"auc": 0.5, "logloss": _or_nan(metrics.log_loss, labels, [rate] * len(labels))}
    return result
