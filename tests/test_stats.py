"""Paired comparisons, the verdict rule, and the achievable bound's metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import log_loss, roc_auc_score

from mtlkit.data import load_dataset
from mtlkit.data.batch import LABEL_MASK, LABELS
from mtlkit.stats import bound_metrics, gap_closed, paired_comparison, trivial_metrics


def test_paired_comparison_matches_its_formula():
    a, b = [0.70, 0.72, 0.69, 0.71, 0.73], [0.68, 0.69, 0.68, 0.70, 0.70]
    d = np.subtract(a, b)
    result = paired_comparison(a, b)
    assert result.difference == pytest.approx(d.mean())
    assert result.standard_error == pytest.approx(d.std(ddof=1) / math.sqrt(5))
    assert (result.gain, result.wins, result.n, result.verdict) == (pytest.approx(d.mean()), 5, 5, "helps")
    worse = paired_comparison(b, a)
    assert worse.verdict == "hurts" and worse.wins == 0
    rmse = paired_comparison([1.0, 1.1, 0.9], [1.2, 1.3, 1.1], higher_is_better=False)  # lower RMSE is better
    assert rmse.gain == pytest.approx(0.2) and rmse.verdict == "helps"


@pytest.mark.parametrize(
    "a, b, verdict",
    [
        ([0.1, 0.1, 0.1, 0.1, -0.3], [0, 0, 0, 0, 0], "within noise"),  # one bad seed: the mean is under 2 SE
        ([0.05, 0.06, 0.05, 0.07, -0.01], [0, 0, 0, 0, 0], "helps"),  # 4 of 5, well beyond 2 SE
        ([0.05, 0.06, 0.05, -0.01, -0.01], [0, 0, 0, 0, 0], "within noise"),  # 3 of 5 only
        ([0.01, 0.02, 0.0, 0.01, 0.03], [0, 0, 0, 0, 0], "helps"),
        ([0.3], [0.1], "within noise"),  # one seed: no standard error, no verdict
    ],
)
def test_the_verdict_rule_needs_two_standard_errors_and_four_of_five_seeds(a, b, verdict):
    assert paired_comparison(a, b).verdict == verdict


def test_paired_comparison_refuses_unpaired_input():
    with pytest.raises(ValueError, match="one value per seed"):
        paired_comparison([1.0, 2.0], [1.0])


def test_gap_closed():
    assert gap_closed(0.6, 0.5, 0.7) == pytest.approx(0.5)
    assert gap_closed(0.40, 0.45, 0.35) == pytest.approx(0.5)  # log-loss: lower is better, same formula
    assert math.isnan(gap_closed(0.5, 0.5, 0.5))


def test_bound_and_trivial_metrics_on_the_funnel_match_sklearn():
    data = load_dataset("synthetic-funnel", n_users=200, n_items=80, seq_len=2)
    test, tasks = data.test, data.schema.task_names
    bound = bound_metrics(test, tasks)
    assert set(bound) == {"click", "purchase"}  # rating has no bound
    for task, key in (("click", "bayes_click_prob"), ("purchase", "bayes_purchase_prob")):
        j = tasks.index(task)
        observed = test[LABEL_MASK][:, j]
        y, p = test[LABELS][observed, j].numpy(), test[key][observed].numpy()
        assert bound[task]["auc"] == pytest.approx(roc_auc_score(y, p))
        assert bound[task]["logloss"] == pytest.approx(log_loss(y, p), rel=1e-5)
    trivial = trivial_metrics(data.train, test, data.schema.task_kinds)
    assert set(trivial) == {"click", "purchase"} and trivial["click"]["auc"] == 0.5
    j = tasks.index("click")
    rate = float(data.train[LABELS][:, j][data.train[LABEL_MASK][:, j]].mean())
    y = test[LABELS][:, j][test[LABEL_MASK][:, j]].numpy()
    assert trivial["click"]["logloss"] == pytest.approx(log_loss(y, np.full(len(y), rate)), rel=1e-5)
    assert bound["click"]["logloss"] < trivial["click"]["logloss"] and bound["click"]["auc"] > 0.5
    assert torch.isfinite(test["bayes_click_prob"]).all()
