"""Tests for the train / valid / test splits."""

from __future__ import annotations

import numpy as np

from mtlkit.data import columns as C
from mtlkit.data.builder import build_multitask_data
from mtlkit.data.splits import SPLITS, split_rows


def test_split_rows_on_a_tiny_log():
    # user 0: four positives, two at time 2 (ties broken by row order); user 1: two.
    user = np.array([0, 0, 0, 0, 1, 1])
    time = np.array([1, 2, 2, 3, 1, 2])
    positive = np.ones(6, bool)
    order = np.lexsort((np.arange(6), time, user))
    rng = np.random.default_rng(0)
    codes = split_rows("leave-last-out", user, time, positive, order, (0.8, 0.1, 0.1), 2, rng)
    assert codes.tolist() == [0, 0, 1, 2, 0, 0]  # user 1 has < 3 positives: train only
    time = np.array([10, 20, 30, 40, 15, 35])
    codes = split_rows("temporal", user, time, positive, order, (0.5, 0.25, 0.25), 2, rng)
    assert codes.tolist() == [0, 1, 2, 2, 0, 2]  # cuts at the lower 0.5 / 0.75 quantiles: 20, 30
    assert set(SPLITS) == {"leave-last-out", "temporal", "random"}


def test_leave_last_out_puts_one_positive_per_user_in_valid_and_test(ratings, ratings_data):
    per_user = ratings[0].groupby(C.USER_ID).size()
    eligible = int((per_user >= 3).sum())
    for samples in (ratings_data.valid, ratings_data.test):
        positive = samples["labels"][:, 0] == 1
        users = samples["user"][positive]
        assert len(users) == eligible and len(users.unique()) == eligible
    # the test positive is the user's latest rating, the valid one is not later
    test = ratings_data.test.subset(ratings_data.test["labels"][:, 0] == 1)
    test_time = dict(zip(test["user"].tolist(), test["timestamp"].tolist()))
    for u, t in zip(ratings_data.train["user"].tolist(), ratings_data.train["timestamp"].tolist()):
        assert t <= test_time[u]


def test_temporal_split_and_cold_items(world, funnel_data):
    train_max = int(funnel_data.train["timestamp"].max())
    assert train_max < int(funnel_data.valid["timestamp"].min())
    assert int(funnel_data.valid["timestamp"].max()) < int(funnel_data.test["timestamp"].min())
    cold_raw = set(world.items.loc[world.items[C.IS_COLD], C.ITEM_ID])
    cold_index = {funnel_data.item_index[i] for i in cold_raw}
    assert not cold_index & set(funnel_data.train["item_content"].tolist())  # never in train
    assert min(cold_index) > funnel_data.info["n_warm_items"]
    test = funnel_data.test
    cold_rows = test["is_cold_item"]
    assert cold_rows.any()
    assert (test["item"][cold_rows] == 0).all() and (test["item_content"][cold_rows] > 0).all()
    assert funnel_data.info["splits"]["test"]["cold_item_rows"] == int(cold_rows.sum())


def test_random_split_fractions(ratings):
    data = build_multitask_data(ratings[0], split="random", split_fractions=(0.6, 0.2, 0.2), n_negatives=0,
                                tasks=(C.LIKE, C.RATING_TASK), seed=3)  # fmt: skip
    sizes = np.array([len(s) for s in data.splits.values()]) / len(ratings[0])
    np.testing.assert_allclose(sizes, [0.6, 0.2, 0.2], atol=0.06)
