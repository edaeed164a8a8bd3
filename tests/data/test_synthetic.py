"""Tests for the synthetic generators: MMoE correlated tasks and the e-commerce funnel."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from mtlkit.data import columns as C
from mtlkit.data.synthetic import (
    CATEGORY_WORDS,
    FILLER_WORDS,
    intent_expectations,
    make_correlated_tasks,
    make_recsys_funnel,
)

# ---------------------------------------------------------------------------------------------
# make_correlated_tasks (Ma et al., KDD 2018)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [-1.0, -0.5, 0.0, 0.3, 0.5, 0.9, 1.0])
def test_weight_cosine_is_the_requested_correlation(p):
    data = make_correlated_tasks(10, p, n_features=100, c=2.5, seed=3)
    assert abs(data.cosine - p) < 1e-6
    cosine = data.w1 @ data.w2 / (np.linalg.norm(data.w1) * np.linalg.norm(data.w2))
    assert abs(cosine - p) < 1e-6
    assert np.linalg.norm(data.w1) == pytest.approx(2.5) and np.linalg.norm(data.w2) == pytest.approx(2.5)


def test_labels_follow_the_paper_formula():
    data = make_correlated_tasks(300, 0.7, n_features=20, noise_std=0.0, seed=1)
    X = data.X.astype(np.float64)
    for t, w in enumerate((data.w1, data.w2)):
        z = X @ w
        expected = z + sum(np.sin(a * z + b) for a, b in zip(data.alphas, data.betas))
        np.testing.assert_allclose(data.Y[:, t], expected, rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(data.alphas, np.arange(1, 11))  # Google Research's choice
    np.testing.assert_array_equal(data.betas, np.arange(10) ** 2)


def test_linear_case_label_correlation_is_p():
    # Without sinusoids, y_t = w_tᵀx + ε_t, so Pearson(y1, y2) = p (the paper's remark).
    for p in (0.2, 0.8):
        data = make_correlated_tasks(40_000, p, n_sin=0, seed=2)
        assert np.corrcoef(data.Y.T)[0, 1] == pytest.approx(p, abs=0.02)


def test_label_correlation_increases_with_task_correlation():
    labels = [make_correlated_tasks(20_000, p, seed=5).Y for p in (0.0, 0.5, 0.9, 1.0)]
    pearson = [np.corrcoef(y.T)[0, 1] for y in labels]
    assert all(a < b for a, b in zip(pearson, pearson[1:])), pearson
    assert abs(pearson[0]) < 0.05 and pearson[-1] > 0.99


def test_correlated_tasks_label_scale():
    # The docstring's scale: Var(y) ≈ 7.05, the sinusoids carry ≈ 4.60 of it, and least squares
    # on x (the linear part only) leaves MSE ≈ 4.07 — the floor a model must get below.
    data = make_correlated_tasks(20_000, 0.5, seed=4)
    X, Y = data.X.astype(np.float64), data.Y.astype(np.float64)
    for t, w in enumerate((data.w1, data.w2)):
        assert Y[:, t].var() == pytest.approx(7.05, abs=0.3)
        assert (Y[:, t] - X @ w).var() == pytest.approx(4.60, abs=0.2)
    design = np.hstack([X, np.ones((len(X), 1))])  # (n, d + 1)
    coef, *_ = np.linalg.lstsq(design, Y, rcond=None)
    np.testing.assert_allclose(((design @ coef - Y) ** 2).mean(axis=0), 4.07, atol=0.25)


def test_correlated_tasks_shapes_and_determinism():
    a = make_correlated_tasks(50, 0.5, n_features=8, seed=11)
    b = make_correlated_tasks(50, 0.5, n_features=8, seed=11)
    c = make_correlated_tasks(50, 0.5, n_features=8, seed=12)
    assert a.X.shape == (50, 8) and a.X.dtype == np.float32
    assert a.Y.shape == (50, 2) and a.Y.dtype == np.float32
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.Y, b.Y)
    assert not np.array_equal(a.Y, c.Y)


def test_correlated_tasks_checksum():
    # Fixed-seed values: the generator must give the same numbers on every run and platform.
    data = make_correlated_tasks(5, 0.5, seed=7)
    expected = [0.367469, 0.097370, 0.302165, -3.497783, -5.630478]
    np.testing.assert_allclose(data.Y[:, 0], expected, atol=1e-5)
    assert float(data.X.sum()) == pytest.approx(-49.8194, abs=1e-3)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(n=10, correlation=1.5), "correlation"),
        (dict(n=10, correlation=-1.01), "correlation"),
        (dict(n=0, correlation=0.5), "n"),
        (dict(n=10, correlation=0.5, n_features=1), "n_features"),
        (dict(n=10, correlation=0.5, noise_std=-1.0), "noise_std"),
    ],
)
def test_correlated_tasks_rejects_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name):
        make_correlated_tasks(**kwargs)


# ---------------------------------------------------------------------------------------------
# make_recsys_funnel
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world():
    return make_recsys_funnel(600, 250, n_impressions=36_000, seed=0)


def test_funnel_is_deterministic():
    a = make_recsys_funnel(80, 50, seed=4)
    b = make_recsys_funnel(80, 50, seed=4)
    for name in ("interactions", "items", "users"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    c = make_recsys_funnel(80, 50, seed=5)
    assert not a.interactions[C.CLICK].equals(c.interactions[C.CLICK])


def test_funnel_checksum():
    # Fixed-seed values: the same world on every run and platform.
    d = make_recsys_funnel(60, 40, seed=123).interactions
    assert len(d) == 2400
    assert int(d[C.CLICK].sum()) == 363
    assert int((d[C.PURCHASE] == 1).sum()) == 152
    assert float(d[C.RATING].sum()) == 600.0
    assert int(d[C.TIMESTAMP].sum()) == 4099001975011
    assert float(d[C.TRUE_CLICK_PROB].sum()) == pytest.approx(380.187357, abs=1e-5)
    assert float(d[C.TRUE_CVR].sum()) == pytest.approx(597.812156, abs=1e-5)


def test_funnel_tables(world):
    d, items, users = world.interactions, world.items, world.users
    assert list(d.columns) == [
        C.USER_ID, C.ITEM_ID, C.TIMESTAMP, C.CLICK, C.PURCHASE, C.RATING,
        C.TRUE_CLICK_PROB, C.TRUE_CVR, C.TRUE_PURCHASE_PROB, C.BAYES_CLICK_PROB, C.BAYES_CVR, C.BAYES_PURCHASE_PROB,
    ]  # fmt: skip
    assert list(items.columns) == [C.ITEM_ID, C.CATEGORY, C.TITLE, C.PRICE, C.IS_COLD]
    assert list(users.columns) == [C.USER_ID, C.AGE_BUCKET, C.REGION, C.DEVICE, C.IS_BOT]
    assert len(d) == 36_000 and d[C.TIMESTAMP].is_monotonic_increasing
    assert set(d[C.USER_ID]) == set(users[C.USER_ID])  # every user has impressions
    assert d.groupby(C.USER_ID).size().min() >= 5
    assert d[C.ITEM_ID].between(1, 250).all()


def test_purchase_only_after_click_and_rating_only_after_purchase(world):
    d = world.interactions
    np.testing.assert_array_equal(d[C.PURCHASE].notna(), d[C.CLICK] == 1)
    np.testing.assert_array_equal(d[C.RATING].notna(), d[C.PURCHASE] == 1)
    assert set(d[C.PURCHASE].dropna().unique()) <= {0.0, 1.0}
    assert set(d[C.RATING].dropna().unique()) <= {1.0, 2.0, 3.0, 4.0, 5.0}


def test_funnel_rates_are_sane_and_match_the_true_probabilities(world):
    d = world.interactions
    ctr, cvr = d[C.CLICK].mean(), d[C.PURCHASE].mean()  # cvr: mean over clicked (NaN skipped)
    assert 0.05 < ctr < 0.4
    assert 0.1 < cvr < 0.7
    np.testing.assert_allclose(d[C.TRUE_PURCHASE_PROB], d[C.TRUE_CLICK_PROB] * d[C.TRUE_CVR])
    # The labels are Bernoulli draws from the returned probabilities (4 standard errors).
    se = np.sqrt(d[C.TRUE_CLICK_PROB].mean() * (1 - d[C.TRUE_CLICK_PROB].mean()) / len(d))
    assert abs(ctr - d[C.TRUE_CLICK_PROB].mean()) < 4 * se
    clicked = d[d[C.CLICK] == 1]
    se = np.sqrt(cvr * (1 - cvr) / len(clicked))
    assert abs(cvr - clicked[C.TRUE_CVR].mean()) < 4 * se
    assert 3.0 < d[C.RATING].mean() < 4.5


def test_cold_items_appear_only_after_cold_start(world):
    d, items = world.interactions, world.items
    cold = set(items.loc[items[C.IS_COLD], C.ITEM_ID])
    assert len(cold) == 25  # 10 % of 250
    is_cold_row = d[C.ITEM_ID].isin(cold)
    assert is_cold_row.any()
    assert d.loc[is_cold_row, C.TIMESTAMP].min() >= world.cold_start_timestamp
    assert d.loc[~is_cold_row, C.TIMESTAMP].min() < world.cold_start_timestamp


def test_titles_carry_the_category(world):
    items = world.items
    vocab = {word: cat for cat, words in CATEGORY_WORDS.items() for word in words}
    assert len(vocab) == sum(len(w) for w in CATEGORY_WORDS.values())  # no word in two categories
    assert not set(vocab) & set(FILLER_WORDS)
    for title, category in zip(items[C.TITLE], items[C.CATEGORY]):
        words = title.split()
        assert {vocab[w] for w in words if w in vocab} == {category}
        assert all(w in vocab or w in FILLER_WORDS for w in words)
    # A word-vote classifier fitted on half the items predicts the category of the other half.
    half = len(items) // 2
    votes: dict[str, Counter] = {}
    for title, category in zip(items[C.TITLE][:half], items[C.CATEGORY][:half]):
        for w in title.split():
            votes.setdefault(w, Counter())[category] += 1
    correct = 0
    for title, category in zip(items[C.TITLE][half:], items[C.CATEGORY][half:]):
        total = sum((votes.get(w, Counter()) for w in title.split()), Counter())
        correct += bool(total) and total.most_common(1)[0][0] == category
    assert correct / (len(items) - half) > 0.95


def test_selection_bias_knob():
    # CVR among clicked impressions minus the entire-space mean of the true CVR: ~0 without the
    # hidden intent (and with unrelated tasks), and growing with selection_bias.
    gaps = []
    for s in (0.0, 1.0, 2.0):
        world = make_recsys_funnel(600, 200, seed=1, selection_bias=s, task_relatedness=0.0, bot_fraction=0.0)
        d = world.interactions
        gaps.append(d[C.PURCHASE].mean() - d[C.TRUE_CVR].mean())
    assert abs(gaps[0]) < 0.02
    assert gaps[0] < gaps[1] < gaps[2]
    assert gaps[2] > 0.1


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.9])
def test_task_relatedness_sets_the_affinity_correlation(rho):
    truth = make_recsys_funnel(2000, 300, seed=2, task_relatedness=rho).truth
    click = truth["user_click_factors"] @ truth["item_factors"].T  # (U, I)
    purchase = truth["user_purchase_factors"] @ truth["item_factors"].T
    assert np.corrcoef(click.ravel(), purchase.ravel())[0, 1] == pytest.approx(rho, abs=0.06)


def test_user_features_and_bots(world):
    users, truth, d = world.users, world.truth, world.interactions
    factor = pd.Series(truth["user_click_factors"][:, 0]).groupby(users[C.AGE_BUCKET].to_numpy()).mean()
    assert factor.is_monotonic_increasing  # age buckets are noisy bins of the first factor
    bots = set(users.loc[users[C.IS_BOT], C.USER_ID])
    assert 0 < len(bots) < 0.15 * len(users)
    is_bot = d[C.USER_ID].isin(bots)
    assert d.loc[is_bot, C.CLICK].mean() > d.loc[~is_bot, C.CLICK].mean()
    web = users[C.DEVICE] == "web"
    assert web[users[C.IS_BOT]].mean() > web[~users[C.IS_BOT]].mean()


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(n_categories=13), "n_categories"),
        (dict(n_categories=1), "n_categories"),
        (dict(task_relatedness=1.5), "task_relatedness"),
        (dict(selection_bias=-1.0), "selection_bias"),
        (dict(cold_item_fraction=0.95), "cold_item_fraction"),
        (dict(cold_start=1.0), "cold_start"),
        (dict(bot_fraction=2.0), "bot_fraction"),
        (dict(dim=2), "dim"),
        (dict(n_impressions=10), "n_impressions"),
    ],
)
def test_funnel_rejects_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name):
        make_recsys_funnel(20, 20, **kwargs)


def test_funnel_rejects_bad_sizes():
    with pytest.raises(ValueError, match="n_users"):
        make_recsys_funnel(1, 20)
    with pytest.raises(ValueError, match="n_items"):
        make_recsys_funnel(20, 1.5)


# --------------------------------------------------------------------------- the achievable bound
@pytest.mark.parametrize("a, b, s", [(-3.2, -2.3, 1.0), (0.0, 0.0, 0.0), (2.5, -4.0, 2.0), (-8.0, 3.0, 0.5)])
def test_intent_expectations_match_adaptive_quadrature(a, b, s):
    from scipy import integrate, stats

    def sigmoid(x):
        return 1.0 / (1.0 + np.exp(-x))

    click = integrate.quad(lambda e: sigmoid(a + e) * stats.norm.pdf(e), -np.inf, np.inf, epsabs=1e-13)[0]
    ctcvr = integrate.quad(lambda e: sigmoid(a + e) * sigmoid(b + s * e) * stats.norm.pdf(e), -np.inf, np.inf,
                           epsabs=1e-13)[0]
    p_click, p_ctcvr = intent_expectations(np.array([a]), np.array([b]), s)
    assert p_click[0] == pytest.approx(click, abs=1e-8)
    assert p_ctcvr[0] == pytest.approx(ctcvr, abs=1e-8)


def test_the_bound_means_equal_the_label_rates(world):
    """Law of total expectation: E[P(y | obs)] = E[y]; within 4 standard errors of the sample mean."""
    d = world.interactions
    bought = ((d[C.CLICK] == 1) & (d[C.PURCHASE] == 1)).astype(float)
    clicked = d[d[C.CLICK] == 1]
    for label, bound in ((d[C.CLICK], d[C.BAYES_CLICK_PROB]), (bought, d[C.BAYES_PURCHASE_PROB]),
                         (clicked[C.PURCHASE], clicked[C.BAYES_CVR])):
        standard_error = label.std() / np.sqrt(len(label))
        assert abs(bound.mean() - label.mean()) < 4 * standard_error


def test_without_selection_bias_the_cvr_bound_is_the_true_cvr():
    d = make_recsys_funnel(200, 80, seed=3, selection_bias=0.0).interactions
    np.testing.assert_allclose(d[C.BAYES_CVR], d[C.TRUE_CVR], rtol=1e-10)
    biased = make_recsys_funnel(200, 80, seed=3, selection_bias=1.0).interactions
    assert biased[C.BAYES_CVR].mean() > biased[C.TRUE_CVR].mean()  # clicks select high intent


def test_the_bound_auc_lies_between_chance_and_the_true_probability_auc(world):
    from sklearn.metrics import roc_auc_score

    d = world.interactions
    bought = (d[C.CLICK] == 1) & (d[C.PURCHASE] == 1)
    for label, bound, truth in ((d[C.CLICK], C.BAYES_CLICK_PROB, C.TRUE_CLICK_PROB),
                                (bought, C.BAYES_PURCHASE_PROB, C.TRUE_PURCHASE_PROB)):
        assert 0.5 < roc_auc_score(label, d[bound]) < roc_auc_score(label, d[truth])
