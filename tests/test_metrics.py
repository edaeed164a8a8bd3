"""mtlkit.metrics against sklearn.metrics and brute-force references, edge cases and bad inputs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import sklearn.metrics as skm
import torch

from mtlkit import metrics

SEEDS = range(30)


def _binary_case(seed, n=None, ties=None):
    """Random labels (both classes) and scores; every other seed uses heavily tied scores."""
    rng = np.random.default_rng(seed)
    n = n or int(rng.integers(2, 300))
    labels = rng.integers(0, 2, n)
    labels[:2] = [0, 1]
    rng.shuffle(labels)
    tied = seed % 2 == 0 if ties is None else ties
    scores = rng.integers(0, 6, n) / 5 if tied else rng.random(n)
    return labels, scores


# --------------------------------------------------------------------------- classification
def test_roc_auc_matches_sklearn_with_and_without_ties():
    for seed in SEEDS:
        labels, scores = _binary_case(seed)
        assert metrics.roc_auc(labels, scores) == pytest.approx(skm.roc_auc_score(labels, scores), abs=1e-12)


def test_roc_auc_accepts_tensors_lists_and_bools():
    labels, scores = _binary_case(1, n=50)
    expected = skm.roc_auc_score(labels, scores)
    assert metrics.roc_auc(torch.tensor(labels).bool(), torch.tensor(scores, dtype=torch.float32)) == pytest.approx(
        expected, abs=1e-12
    )
    assert metrics.roc_auc(labels.tolist(), scores.tolist()) == pytest.approx(expected, abs=1e-12)
    assert isinstance(metrics.roc_auc(labels, scores), float)


def test_roc_auc_edge_values():
    assert metrics.roc_auc([0, 1], [0.1, 0.9]) == 1.0
    assert metrics.roc_auc([0, 1], [0.9, 0.1]) == 0.0
    assert metrics.roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5  # all tied: chance level


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_loss_matches_sklearn_including_clipping(dtype):
    for seed in SEEDS:
        labels, scores = _binary_case(seed)
        probs = scores.astype(dtype)
        probs[: len(probs) // 5] = np.round(probs[: len(probs) // 5])  # exact 0 and 1: clipped to eps
        expected = skm.log_loss(labels, probs, labels=[0, 1])
        assert metrics.log_loss(labels, probs) == pytest.approx(expected, rel=1e-6 if dtype == np.float32 else 1e-12)
    # a single class is still a defined log loss (sklearn needs labels= for it)
    assert metrics.log_loss([1, 1], [0.5, 0.25]) == pytest.approx(skm.log_loss([1, 1], [0.5, 0.25], labels=[0, 1]))


@pytest.mark.parametrize(
    "ours, reference",
    [
        (metrics.accuracy, skm.accuracy_score),
        (metrics.precision, lambda y, p: skm.precision_score(y, p, zero_division=0.0)),
        (metrics.recall, lambda y, p: skm.recall_score(y, p, zero_division=0.0)),
        (metrics.f1, lambda y, p: skm.f1_score(y, p, zero_division=0.0)),
    ],
)
def test_thresholded_metrics_match_sklearn(ours, reference):
    for seed in range(15):
        labels, scores = _binary_case(seed)
        for threshold in (0.5, 0.2, 0.8):
            expected = reference(labels, (scores >= threshold).astype(int))
            assert ours(labels, scores, threshold) == pytest.approx(expected, abs=1e-12)
    # empty denominators: nothing predicted positive / no positive / both
    for labels, scores in [([0, 1, 1], [0.1, 0.2, 0.3]), ([0, 0, 0], [0.9, 0.1, 0.2]), ([0, 0], [0.1, 0.2])]:
        expected = reference(np.array(labels), (np.array(scores) >= 0.5).astype(int))
        assert ours(labels, scores) == pytest.approx(expected, abs=1e-12)


def test_zero_division_value_is_returned_for_empty_denominators():
    assert metrics.precision([0, 1], [0.1, 0.2], zero_division=1.0) == 1.0
    assert metrics.recall([0, 0], [0.1, 0.9], zero_division=1.0) == 1.0
    assert metrics.f1([0, 0], [0.1, 0.2], zero_division=1.0) == 1.0


def _group_auc_brute_force(labels, scores, groups):
    total, weight = 0.0, 0
    for group in np.unique(groups):
        in_group = groups == group
        if len(np.unique(labels[in_group])) == 2:
            total += in_group.sum() * skm.roc_auc_score(labels[in_group], scores[in_group])
            weight += in_group.sum()
    return total / weight


def test_group_auc_matches_brute_force_loop_over_groups():
    for seed in range(10):
        labels, scores = _binary_case(seed)
        rng = np.random.default_rng(seed + 1000)
        groups = rng.integers(0, max(2, len(labels) // 20), len(labels))
        groups[:2] = groups[2] if len(groups) > 2 else 0  # at least one group with both classes
        expected = _group_auc_brute_force(labels, scores, groups)
        assert metrics.group_auc(labels, scores, groups) == pytest.approx(expected, abs=1e-12)
        # group ids can be any sortable values, and tensors
        assert metrics.group_auc(labels, scores, [f"user{g}" for g in groups]) == pytest.approx(expected, abs=1e-12)
        assert metrics.group_auc(torch.tensor(labels), torch.tensor(scores), torch.tensor(groups)) == pytest.approx(
            expected, abs=1e-12
        )


def test_group_auc_with_one_group_is_roc_auc():
    labels, scores = _binary_case(3, n=80)
    assert metrics.group_auc(labels, scores, np.zeros(80)) == pytest.approx(metrics.roc_auc(labels, scores), abs=1e-15)


# --------------------------------------------------------------------------- curves
def test_roc_curve_matches_sklearn_and_its_area_is_the_auc():
    for seed in SEEDS:
        labels, scores = _binary_case(seed)
        fpr, tpr, thresholds = metrics.roc_curve(labels, scores)
        ref_fpr, ref_tpr, ref_thresholds = skm.roc_curve(labels, scores, drop_intermediate=False)
        np.testing.assert_allclose(fpr, ref_fpr, atol=1e-12)
        np.testing.assert_allclose(tpr, ref_tpr, atol=1e-12)
        assert thresholds[0] == np.inf
        np.testing.assert_array_equal(thresholds[1:], ref_thresholds[1:])
        area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))  # trapezoids: ties are diagonal steps
        assert area == pytest.approx(metrics.roc_auc(labels, scores), abs=1e-12)


def test_precision_recall_curve_matches_sklearn():
    for seed in SEEDS:
        labels, scores = _binary_case(seed)
        ours = metrics.precision_recall_curve(labels, scores)
        for mine, reference in zip(ours, skm.precision_recall_curve(labels, scores)):
            np.testing.assert_allclose(mine, reference, atol=1e-12)


def test_curves_of_a_perfect_ranking():
    labels, scores = np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])
    fpr, tpr, _ = metrics.roc_curve(labels, scores)
    np.testing.assert_array_equal(fpr, [0, 0, 0, 0.5, 1])
    np.testing.assert_array_equal(tpr, [0, 0.5, 1, 1, 1])
    precision, recall, thresholds = metrics.precision_recall_curve(labels, scores)
    np.testing.assert_array_equal(precision, [0.5, 2 / 3, 1, 1, 1])
    np.testing.assert_array_equal(recall, [1, 1, 1, 0.5, 0])
    np.testing.assert_array_equal(thresholds, [0.1, 0.2, 0.8, 0.9])


# --------------------------------------------------------------------------- calibration
def test_calibration_curve_matches_sklearn_including_points_on_bin_edges():
    from sklearn.calibration import calibration_curve

    rng = np.random.default_rng(0)
    for n_bins in (1, 5, 10, 15):
        prob = np.r_[rng.random(400) ** 2, np.linspace(0, 1, n_bins + 1)]  # every bin edge too
        labels = (rng.random(prob.size) < prob).astype(int)
        curve = metrics.calibration_curve(labels, prob, n_bins)
        observed, predicted = calibration_curve(labels, prob, n_bins=n_bins, strategy="uniform")
        np.testing.assert_allclose(curve.observed, observed, atol=1e-12)
        np.testing.assert_allclose(curve.predicted, predicted, atol=1e-12)
        assert curve.count.sum() == prob.size and (curve.count > 0).all()


def test_expected_calibration_error_closed_forms():
    rng = np.random.default_rng(1)
    prob = rng.random(1000)
    assert metrics.expected_calibration_error(prob, prob) == 0.0  # the truth itself: calibrated
    labels = (rng.random(1000) < 0.3).astype(int)
    constant = np.full(1000, 0.55)  # one bin: ECE = |mean label - 0.55|
    assert metrics.expected_calibration_error(labels, constant) == pytest.approx(abs(labels.mean() - 0.55), abs=1e-12)
    # two bins, n1 = 300 at 0.2 with 90 positives and n2 = 700 at 0.8 with 420 positives:
    # ECE = 0.3 |0.3 - 0.2| + 0.7 |0.6 - 0.8| = 0.03 + 0.14
    two = np.r_[np.full(300, 0.2), np.full(700, 0.8)]
    y = np.r_[np.ones(90), np.zeros(210), np.ones(420), np.zeros(280)]
    assert metrics.expected_calibration_error(y, two, n_bins=10) == pytest.approx(0.17, abs=1e-12)
    # against the truth: a model that halves every true probability is off by mean(p)/2
    assert metrics.expected_calibration_error(prob, prob / 2, n_bins=1) == pytest.approx(prob.mean() / 2, abs=1e-12)


def test_calibration_accepts_tensors():
    prob = torch.linspace(0, 1, 50, dtype=torch.float64)
    labels = (prob > 0.5).double()
    assert metrics.expected_calibration_error(labels, prob) == pytest.approx(
        metrics.expected_calibration_error(labels.numpy(), prob.numpy()), abs=0.0)


# --------------------------------------------------------------------------- regression
def test_rmse_and_mae_match_sklearn():
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        n = int(rng.integers(1, 200))
        truth, pred = rng.normal(size=n) * 2, rng.normal(size=n)
        assert metrics.rmse(truth, pred) == pytest.approx(np.sqrt(skm.mean_squared_error(truth, pred)), rel=1e-12)
        assert metrics.mae(truth, pred) == pytest.approx(skm.mean_absolute_error(truth, pred), rel=1e-12)
    assert metrics.rmse(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 4.0])) == pytest.approx(np.sqrt(2.0))


# --------------------------------------------------------------------------- ranking
def _ranking_case(seed, n_users=20, n_items=None, graded=True, ties=True):
    rng = np.random.default_rng(seed)
    n_items = n_items or int(rng.integers(2, 7))
    relevance = rng.integers(0, 4 if graded else 2, (n_users, n_items)) * (rng.random((n_users, n_items)) < 0.4)
    relevance[0, 0] = 1  # at least one user with a relevant item
    scores = rng.integers(0, 3, (n_users, n_items)).astype(float) if ties else rng.random((n_users, n_items))
    return relevance, scores


def _brute_force(relevance, scores, k):
    """Average every metric over all orders of the tied items (each order equally likely)."""
    results = {"hit": [], "recall": [], "mrr": [], "mrr_k": [], "ndcg": []}
    for rel, score in zip(relevance, scores):
        if not (rel > 0).any():
            continue  # the documented policy: users without a relevant item are skipped
        levels = sorted(set(score), reverse=True)
        tie_groups = [[i for i in range(len(score)) if score[i] == level] for level in levels]
        ideal = sum(g / np.log2(r + 2) for r, g in enumerate(sorted(rel, reverse=True)[:k]))
        per_order = {name: [] for name in results}
        for parts in itertools.product(*(itertools.permutations(group) for group in tie_groups)):
            order = [item for part in parts for item in part]
            top = order[:k]
            first = next(r for r, item in enumerate(order) if rel[item] > 0)
            per_order["hit"].append(float(any(rel[i] > 0 for i in top)))
            per_order["recall"].append(sum(rel[i] > 0 for i in top) / (rel > 0).sum())
            per_order["mrr"].append(1 / (first + 1))
            per_order["mrr_k"].append(1 / (first + 1) if first < k else 0.0)
            per_order["ndcg"].append(sum(rel[i] / np.log2(r + 2) for r, i in enumerate(top)) / ideal)
        for name in results:
            results[name].append(np.mean(per_order[name]))
    return {name: float(np.mean(values)) for name, values in results.items()}


def test_ranking_metrics_match_brute_force_over_tie_orders():
    for seed in range(12):
        relevance, scores = _ranking_case(seed, n_users=12)
        for k in (1, 2, 3, 10):
            expected = _brute_force(relevance, scores, k)
            assert metrics.hit_rate_at_k(relevance, scores, k) == pytest.approx(expected["hit"], abs=1e-12)
            assert metrics.recall_at_k(relevance, scores, k) == pytest.approx(expected["recall"], abs=1e-12)
            assert metrics.mrr(relevance, scores) == pytest.approx(expected["mrr"], abs=1e-12)
            assert metrics.mrr(relevance, scores, k) == pytest.approx(expected["mrr_k"], abs=1e-12)
            assert metrics.ndcg_at_k(relevance, scores, k) == pytest.approx(expected["ndcg"], abs=1e-12)


def test_ranking_metrics_match_simple_sort_without_ties():
    for seed in range(10):
        relevance, scores = _ranking_case(seed, n_users=40, n_items=30, ties=False)
        expected = _brute_force(relevance, scores, 5)  # no ties: a single order per user
        assert metrics.hit_rate_at_k(relevance, scores, 5) == pytest.approx(expected["hit"], abs=1e-12)
        assert metrics.recall_at_k(relevance, scores, 5) == pytest.approx(expected["recall"], abs=1e-12)
        assert metrics.mrr(relevance, scores) == pytest.approx(expected["mrr"], abs=1e-12)
        assert metrics.ndcg_at_k(relevance, scores, 5) == pytest.approx(expected["ndcg"], abs=1e-12)


def test_ndcg_matches_sklearn_with_graded_relevance_and_ties():
    for seed in SEEDS:
        ties = seed % 2 == 0
        relevance, scores = _ranking_case(seed, n_users=25, n_items=int(3 + seed % 20), ties=ties)
        has_relevant = (relevance > 0).any(axis=1)
        for k in (1, 3, 5, 50):
            expected = skm.ndcg_score(relevance[has_relevant], scores[has_relevant], k=k)
            assert metrics.ndcg_at_k(relevance, scores, k) == pytest.approx(expected, abs=1e-12)


def test_users_without_relevant_items_are_skipped_unlike_sklearn():
    relevance = np.array([[1, 0, 0], [0, 0, 0]])
    scores = np.array([[0.9, 0.1, 0.2], [0.3, 0.2, 0.1]])
    assert metrics.ndcg_at_k(relevance, scores, 2) == 1.0
    assert skm.ndcg_score(relevance, scores, k=2) == 0.5  # sklearn averages in a 0 for the empty row
    assert metrics.hit_rate_at_k(relevance, scores, 1) == 1.0


def test_constant_scores_give_chance_level():
    n_items, k = 10, 3
    relevance = np.eye(n_items)[[2, 7, 9]]  # one relevant item per user
    scores = np.zeros_like(relevance)
    assert metrics.hit_rate_at_k(relevance, scores, k) == pytest.approx(k / n_items)
    assert metrics.recall_at_k(relevance, scores, k) == pytest.approx(k / n_items)
    assert metrics.mrr(relevance, scores) == pytest.approx(np.mean(1 / np.arange(1, n_items + 1)))


def test_ranking_accepts_tensors():
    relevance, scores = _ranking_case(4, n_items=6)
    for fn in (metrics.hit_rate_at_k, metrics.recall_at_k, metrics.ndcg_at_k, metrics.mrr):
        assert fn(torch.tensor(relevance), torch.tensor(scores, dtype=torch.float32), 3) == pytest.approx(
            fn(relevance, scores, 3), abs=1e-12
        )


# --------------------------------------------------------------------------- undefined cases and bad inputs
@pytest.mark.parametrize(
    "call, error, argument",
    [
        # undefined cases (the module policy: ValueError)
        (lambda: metrics.roc_auc([1, 1, 1], [0.1, 0.2, 0.3]), ValueError, "y_true must contain both classes"),
        (lambda: metrics.roc_auc([], []), ValueError, "y_true must be non-empty"),
        (lambda: metrics.log_loss([], []), ValueError, "y_true must be non-empty"),
        (lambda: metrics.accuracy([], []), ValueError, "y_true must be non-empty"),
        (lambda: metrics.rmse([], []), ValueError, "y_true must be non-empty"),
        (lambda: metrics.mae(np.zeros(0), np.zeros(0)), ValueError, "y_true must be non-empty"),
        (lambda: metrics.group_auc([0, 1], [0.1, 0.2], [1, 2]), ValueError, "groups must contain at least one group"),
        (lambda: metrics.ndcg_at_k(np.zeros((2, 3)), np.ones((2, 3)), 2), ValueError, "relevance must have at least"),
        (lambda: metrics.mrr(np.zeros((0, 3)), np.zeros((0, 3))), ValueError, "relevance must be non-empty"),
        # bad inputs
        (lambda: metrics.roc_auc([0, 2], [0.1, 0.2]), ValueError, "y_true"),
        (lambda: metrics.roc_auc([0, 1], [0.1, np.nan]), ValueError, "y_score"),
        (lambda: metrics.roc_auc([0, 1], [0.1, 0.2, 0.3]), ValueError, "y_score"),
        (lambda: metrics.roc_auc([[0, 1]], [[0.1, 0.2]]), ValueError, "y_true"),
        (lambda: metrics.roc_auc(["a", "b"], [0.1, 0.2]), TypeError, "y_true"),
        (lambda: metrics.log_loss([0, 1], [0.1, 1.5]), ValueError, "y_prob"),
        (lambda: metrics.log_loss([0, 1], [-0.1, 0.5]), ValueError, "y_prob"),
        (lambda: metrics.precision([0, 1], [0.1, np.inf]), ValueError, "y_score"),
        (lambda: metrics.f1([0, 1], [0.1, 0.2], threshold="0.5"), TypeError, "threshold"),
        (lambda: metrics.group_auc([0, 1], [0.1, 0.2], [1, 2, 3]), ValueError, "groups"),
        (lambda: metrics.rmse([0.0, 1.0], [0.0, np.nan]), ValueError, "y_pred"),
        (lambda: metrics.mae([0.0, np.inf], [0.0, 1.0]), ValueError, "y_true"),
        (lambda: metrics.hit_rate_at_k(np.ones((2, 3)), np.ones((2, 3)), 0), ValueError, "k"),
        (lambda: metrics.recall_at_k(np.ones((2, 3)), np.ones((2, 3)), 1.5), TypeError, "k"),
        (lambda: metrics.ndcg_at_k(np.ones(3), np.ones(3), 1), ValueError, "relevance"),
        (lambda: metrics.ndcg_at_k(np.ones((2, 3)), np.ones((2, 4)), 1), ValueError, "scores"),
        (lambda: metrics.mrr(-np.ones((2, 3)), np.ones((2, 3))), ValueError, "relevance"),
        (lambda: metrics.mrr(np.ones((2, 3)), np.full((2, 3), np.nan)), ValueError, "scores"),
        (lambda: metrics.mrr(np.ones((2, 3)), np.ones((2, 3)), k=True), TypeError, "k"),
        (lambda: metrics.make_accumulator("ranking"), ValueError, "kind"),
        (lambda: metrics.roc_curve([1, 1], [0.1, 0.2]), ValueError, "y_true must contain both classes"),
        (lambda: metrics.precision_recall_curve([0, 0], [0.1, 0.2]), ValueError, "y_true must contain at least one"),
        (lambda: metrics.calibration_curve([0, 1], [0.1, 1.2]), ValueError, "y_prob"),
        (lambda: metrics.calibration_curve([0, 2], [0.1, 0.2]), ValueError, "y_target"),
        (lambda: metrics.calibration_curve([0, 1], [0.1, 0.2, 0.3]), ValueError, "y_prob"),
        (lambda: metrics.expected_calibration_error([0, 1], [0.1, 0.2], n_bins=0), ValueError, "n_bins"),
    ],
)
def test_undefined_and_bad_inputs_raise_naming_the_argument(call, error, argument):
    with pytest.raises(error, match=argument):
        call()


# --------------------------------------------------------------------------- streaming accumulators
def _random_batches(n, rng):
    cuts = np.sort(rng.choice(np.arange(1, n), size=int(rng.integers(0, min(6, n - 1) + 1)), replace=False))
    return np.split(np.arange(n), cuts)


def test_binary_accumulator_equals_one_shot_over_random_batchings():
    for seed in range(12):
        rng = np.random.default_rng(seed)
        labels, scores = _binary_case(seed, n=int(rng.integers(20, 200)))
        probs = torch.tensor(scores, dtype=torch.float32)
        mask = rng.random(len(labels)) < 0.8
        groups = rng.integers(0, 6, len(labels))
        y, p, g = labels[mask], probs.numpy()[mask], groups[mask]
        if len(np.unique(y)) < 2 or not any(len(np.unique(y[g == k])) == 2 for k in np.unique(g)):
            continue
        accumulator = metrics.BinaryMetricAccumulator()
        for index in _random_batches(len(labels), rng):
            batch_labels, batch_mask = torch.tensor(labels[index]).float(), torch.tensor(mask[index])
            accumulator.update(probs[index], batch_labels, batch_mask, groups[index])
        expected = {
            "auc": metrics.roc_auc(y, p),
            "logloss": metrics.log_loss(y, p),
            "accuracy": metrics.accuracy(y, p),
            "precision": metrics.precision(y, p),
            "recall": metrics.recall(y, p),
            "f1": metrics.f1(y, p),
            "gauc": metrics.group_auc(y, p, g),
        }
        assert accumulator.compute() == expected  # exactly the one-shot numbers
        assert expected["auc"] == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)


def test_binary_accumulator_from_logits_uses_logits_for_auc_and_sigmoid_for_log_loss():
    rng = np.random.default_rng(0)
    logits = torch.tensor(rng.normal(size=300) * 30, dtype=torch.float32)  # many saturate to p = 1.0 in float32
    labels = torch.tensor(rng.integers(0, 2, 300)).float()
    accumulator = metrics.BinaryMetricAccumulator(from_logits=True)
    for index in np.array_split(np.arange(300), 4):
        accumulator.update(logits[index], labels[index])
    result = accumulator.compute()
    assert result["auc"] == pytest.approx(skm.roc_auc_score(labels.numpy(), logits.numpy()), abs=1e-12)
    assert result["logloss"] == pytest.approx(metrics.log_loss(labels, torch.sigmoid(logits)), rel=1e-6)
    assert result["accuracy"] == metrics.accuracy(labels, logits, threshold=0.0)


def test_binary_accumulator_without_mask_or_groups_and_reset():
    labels, scores = _binary_case(7, n=60)
    accumulator = metrics.make_accumulator("binary")
    accumulator.update(torch.tensor(scores[:25]), torch.tensor(labels[:25]))
    accumulator.update(torch.tensor(scores[25:]), torch.tensor(labels[25:]))
    result = accumulator.compute()
    assert set(result) == {"auc", "logloss", "accuracy", "precision", "recall", "f1"}
    assert result["logloss"] == metrics.log_loss(labels, scores)
    accumulator.reset()
    with pytest.raises(ValueError, match="update"):
        accumulator.compute()


def test_binary_accumulator_rejects_mixed_groups_and_bad_shapes():
    accumulator = metrics.BinaryMetricAccumulator()
    accumulator.update(torch.rand(4), torch.ones(4), groups=torch.arange(4))
    with pytest.raises(ValueError, match="groups"):
        accumulator.update(torch.rand(4), torch.ones(4))
    with pytest.raises(ValueError, match="target"):
        accumulator.update(torch.rand(4), torch.ones(3), groups=torch.arange(4))
    with pytest.raises(ValueError, match="mask"):
        metrics.BinaryMetricAccumulator().update(torch.rand(4), torch.ones(4), mask=torch.ones(5, dtype=torch.bool))
    all_masked = metrics.BinaryMetricAccumulator()
    all_masked.update(torch.rand(3), torch.ones(3), mask=torch.zeros(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask"):
        all_masked.compute()


def test_regression_accumulator_equals_one_shot_over_random_batchings():
    for seed in range(12):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(2, 300))
        truth = torch.tensor(rng.normal(size=n) * 3, dtype=torch.float32)
        pred = torch.tensor(rng.normal(size=n), dtype=torch.float32)
        mask = torch.tensor(rng.random(n) < 0.7)
        mask[0] = True
        placeholder = truth.clone()
        placeholder[~mask] = float("nan")  # masked-out placeholders never enter the sums
        accumulator = metrics.make_accumulator("regression")
        for index in _random_batches(n, rng):
            accumulator.update(pred[index], placeholder[index], mask[index])
        result = accumulator.compute()
        assert result["rmse"] == pytest.approx(metrics.rmse(truth[mask], pred[mask]), rel=1e-12)
        assert result["mae"] == pytest.approx(metrics.mae(truth[mask], pred[mask]), rel=1e-12)
        assert result["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(truth[mask], pred[mask])), rel=1e-6)


def test_regression_accumulator_undefined_cases():
    accumulator = metrics.RegressionMetricAccumulator()
    with pytest.raises(ValueError, match="update"):
        accumulator.compute()
    accumulator.update(torch.ones(3), torch.ones(3), torch.zeros(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask"):
        accumulator.compute()


@pytest.mark.gpu
def test_accumulators_on_cuda_match_cpu():
    labels, scores = _binary_case(11, n=500)
    binary_gpu, binary_cpu = metrics.BinaryMetricAccumulator(), metrics.BinaryMetricAccumulator()
    regression_gpu, regression_cpu = metrics.RegressionMetricAccumulator(), metrics.RegressionMetricAccumulator()
    for index in np.array_split(np.arange(500), 7):
        s, y = torch.tensor(scores[index]), torch.tensor(labels[index]).float()
        binary_gpu.update(s.cuda(), y.cuda(), groups=torch.tensor(index % 9).cuda())
        binary_cpu.update(s, y, groups=torch.tensor(index % 9))
        regression_gpu.update(s.cuda(), y.cuda())
        regression_cpu.update(s, y)
    assert binary_gpu.compute() == binary_cpu.compute()
    assert regression_gpu.compute() == pytest.approx(regression_cpu.compute(), rel=1e-12)


# --------------------------------------------------------------------------- metric metadata
def test_metric_metadata_is_one_table():
    from mtlkit.metrics import METRIC_KINDS, TASK_METRICS, higher_is_better, primary_metric

    assert primary_metric("binary") == "auc" and primary_metric("regression") == "rmse"
    assert METRIC_KINDS == {"auc": "binary", "logloss": "binary", "gauc": "binary", "rmse": "regression", "mae": "regression"}
    assert all(METRIC_KINDS[m] == kind for kind, names in TASK_METRICS.items() for m in names)
    for name, better in [("auc", True), ("valid/click/gauc", True), ("ndcg@10", True), ("logloss", False),
                         ("valid/rating/rmse", False), ("loss/click", False), ("mae", False)]:
        assert higher_is_better(name) is better, name
    with pytest.raises(ValueError, match="kind"):
        primary_metric("ranking")
