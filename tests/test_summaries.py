"""Macro and micro averages across tasks, against hand computations and sklearn."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import log_loss as sk_log_loss
from sklearn.metrics import mean_squared_error, roc_auc_score

from mtlkit.summaries import macro_average, micro_average, summarize

KINDS = {"click": "binary", "purchase": "binary", "rating": "regression"}
TASK_METRICS = {
    "click": {"auc": 0.7, "logloss": 0.4, "gauc": 0.6},
    "purchase": {"auc": 0.9, "logloss": 0.2, "gauc": 0.8},
    "rating": {"rmse": 1.0, "mae": 0.8},
}


def _predictions(seed=0, n=40):
    g = torch.Generator().manual_seed(seed)
    labels = torch.stack(
        [(torch.rand(n, generator=g) < 0.4).float(), (torch.rand(n, generator=g) < 0.2).float(),
         torch.randint(1, 6, (n,), generator=g).float()], 1
    )  # fmt: skip
    mask = torch.rand(n, 3, generator=g) < 0.7
    mask[:4] = True  # both classes observed in each binary task
    labels[:2, :2], labels[2:4, :2] = 1.0, 0.0
    predictions = {"click": torch.randn(n, generator=g), "purchase": torch.randn(n, generator=g) - 1,
                   "rating": 3 + torch.randn(n, generator=g)}  # fmt: skip
    return predictions, labels * mask, mask


def test_macro_average_is_the_mean_over_tasks():
    assert macro_average(TASK_METRICS, "auc") == pytest.approx((0.7 + 0.9) / 2)
    assert macro_average(TASK_METRICS, "logloss") == pytest.approx(0.3)
    assert macro_average(TASK_METRICS, "rmse") == pytest.approx(1.0)
    assert macro_average(TASK_METRICS, "auc", ["purchase"]) == pytest.approx(0.9)
    assert math.isnan(macro_average({"a": {"auc": float("nan")}, "b": {"auc": 0.5}}, "auc"))


def test_micro_average_pools_the_observed_pairs():
    predictions, labels, mask = _predictions()
    y, s = [], []
    for j, task in enumerate(("click", "purchase")):
        observed = mask[:, j].numpy()
        y.append(labels[:, j].numpy()[observed])
        s.append(predictions[task].numpy()[observed])
    y, s = np.concatenate(y), np.concatenate(s)
    assert micro_average(predictions, labels, mask, KINDS, "auc") == pytest.approx(roc_auc_score(y, s))
    p = 1 / (1 + np.exp(-s))
    assert micro_average(predictions, labels, mask, KINDS, "logloss") == pytest.approx(sk_log_loss(y, p), rel=1e-5)
    observed = mask[:, 2].numpy()
    expected_rmse = math.sqrt(mean_squared_error(labels[:, 2].numpy()[observed], predictions["rating"].numpy()[observed]))
    assert micro_average(predictions, labels, mask, KINDS, "rmse") == pytest.approx(expected_rmse, rel=1e-5)


def test_micro_logloss_weights_tasks_by_their_observed_labels():
    """Micro log-loss = Σ_t n_t · logloss_t / Σ_t n_t (a count-weighted macro)."""
    predictions, labels, mask = _predictions(seed=1)
    per_task, counts = [], []
    for j, task in enumerate(("click", "purchase")):
        observed = mask[:, j]
        per_task.append(sk_log_loss(labels[observed, j].numpy(), torch.sigmoid(predictions[task][observed]).numpy(),
                                    labels=[0, 1]))  # fmt: skip
        counts.append(int(observed.sum()))
    expected = sum(l * n for l, n in zip(per_task, counts)) / sum(counts)
    assert micro_average(predictions, labels, mask, KINDS, "logloss") == pytest.approx(expected, rel=1e-5)


def test_incomparable_metrics_are_refused():
    predictions, labels, mask = _predictions()
    with pytest.raises(ValueError, match="tasks"):  # the macro AUC of a regression task
        macro_average(TASK_METRICS, "auc", ["click", "rating"])
    with pytest.raises(ValueError, match="tasks"):  # pooling an RMSE with click labels
        micro_average(predictions, labels, mask, KINDS, "rmse", ["rating", "click"])
    with pytest.raises(ValueError, match="metric"):
        macro_average(TASK_METRICS, "ndcg")
    with pytest.raises(ValueError, match="metric"):
        micro_average(predictions, labels, mask, KINDS, "gauc")  # already a per-user average


def test_summarize_averages_only_comparable_metrics():
    predictions, labels, mask = _predictions()
    summary = summarize(TASK_METRICS, KINDS, predictions, labels, mask)
    assert summary["tasks"] == {"binary": ["click", "purchase"]}  # one regression task: nothing to average
    assert set(summary["macro"]) == {"auc", "gauc", "logloss"}
    assert set(summary["micro"]) == {"auc", "logloss"}
    assert summary["macro"]["auc"] == pytest.approx(0.8)
    assert summary["micro"]["auc"] == micro_average(predictions, labels, mask, KINDS, "auc")
    assert summarize(TASK_METRICS, KINDS)["micro"] == {}
