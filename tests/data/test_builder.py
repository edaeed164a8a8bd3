"""Tests for the sample builder: rows, negatives, histories, features and argument checks.

Shared fixtures (``ratings``, ``ratings_data``, ``world``, ``funnel_data``) are in conftest.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from mtlkit.data import columns as C
from mtlkit.data.builder import build_multitask_data
from mtlkit.data.tasks import TaskColumn
from mtlkit.data.tensors import MultiTaskData


def _inverse(index: dict) -> dict:
    return {v: k for k, v in index.items()}


def _reference_history(data: MultiTaskData, interactions: pd.DataFrame, positive, samples, seq_len):
    """Brute force, row by row: the user's positives strictly before the sample's timestamp
    (ties in file order), the last ``seq_len`` of them, left-padded."""
    raw_user = _inverse(data.user_index)
    warm = data.info["n_warm_items"]
    events: dict = {}
    frame = interactions[positive]
    for u, i, t in zip(frame[C.USER_ID].tolist(), frame[C.ITEM_ID].tolist(), frame[C.TIMESTAMP].tolist()):
        events.setdefault(u, []).append((t, i))
    expected = np.zeros((len(samples), seq_len), np.int64)
    padding = np.ones((len(samples), seq_len), bool)
    for r, (u, t) in enumerate(zip(samples["user"].tolist(), samples["timestamp"].tolist())):
        before = sorted((e for e in events.get(raw_user[u], []) if e[0] < t), key=lambda e: e[0])  # stable
        past = [i for _, i in before][-seq_len:] if seq_len else []
        for k, raw_item in enumerate(past):
            index = data.item_index[raw_item]
            expected[r, seq_len - len(past) + k] = index if index <= warm else 0
            padding[r, seq_len - len(past) + k] = False
    return expected, padding


# ---------------------------------------------------------------------------------------------
# Behaviour sequence: no leakage
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("split", ["leave-last-out", "temporal", "random"])
def test_history_matches_a_brute_force_reference(ratings, split):
    interactions, users, items = ratings
    data = build_multitask_data(interactions, users, items, split=split, seq_len=4, n_negatives=1, seed=2)
    positive = np.ones(len(interactions), bool)
    for samples in data.splits.values():
        known = samples["user"] > 0
        samples = samples.subset(known)
        expected, padding = _reference_history(data, interactions, positive, samples, 4)
        np.testing.assert_array_equal(samples["history"].numpy(), expected)
        np.testing.assert_array_equal(samples["history_padding_mask"].numpy(), padding)


def test_funnel_history_holds_only_clicked_items_strictly_before(world, funnel_data):
    interactions = world.interactions
    positive = (interactions[C.CLICK] == 1).to_numpy()
    for samples in funnel_data.splits.values():
        expected, padding = _reference_history(funnel_data, interactions, positive, samples, 5)
        np.testing.assert_array_equal(samples["history"].numpy(), expected)
        np.testing.assert_array_equal(samples["history_padding_mask"].numpy(), padding)


def test_history_is_left_padded(ratings_data):
    for samples in ratings_data.splits.values():
        pad = samples["history_padding_mask"]
        # padding is a prefix: once a column is real, every later column is real
        assert (pad[:, 1:] <= pad[:, :-1]).all()
        assert (samples["history"][pad] == 0).all()
    # with one event before: exactly the last column is real
    lengths = (~ratings_data.train["history_padding_mask"]).sum(1)
    assert (lengths <= ratings_data.schema.seq_len).all() and (lengths == 0).any()


def test_seq_len_zero(ratings):
    data = build_multitask_data(*ratings, seq_len=0, n_negatives=1)
    assert data.train["history"].shape == (len(data.train), 0)
    assert data.train["history_padding_mask"].shape == (len(data.train), 0)
    assert data.schema.seq_len == 0


# ---------------------------------------------------------------------------------------------
# Sampled negatives
# ---------------------------------------------------------------------------------------------


def test_positive_only_labels_and_negatives(ratings, ratings_data):
    interactions = ratings[0]
    rated = set(zip(interactions[C.USER_ID], interactions[C.ITEM_ID]))
    raw_user, raw_item = _inverse(ratings_data.user_index), _inverse(ratings_data.item_index)
    for name, samples in ratings_data.splits.items():
        labels, mask = samples["labels"], samples["label_mask"]
        negative = labels[:, 0] == 0
        assert mask[:, 0].all()  # click observed everywhere
        assert not mask[negative, 1:].any()  # like / rating unobserved on sampled negatives
        assert mask[~negative, 1:].all()
        like, rating = labels[~negative, 1], labels[~negative, 2]
        torch.testing.assert_close(like, (rating >= 4).float())
        assert set(rating.unique().tolist()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
        # negatives: items the user never rated, seen in training, n per positive
        pairs = zip(samples["user"][negative].tolist(), samples["item_content"][negative].tolist())
        assert not any((raw_user[u], raw_item[i]) in rated for u, i in pairs)
        assert (samples["item"][negative] > 0).all() and not samples["is_cold_item"][negative].any()
        per_positive = 2 if name == "train" else 3
        assert int(negative.sum()) == per_positive * int((~negative).sum())
        # each negative follows its positive: same user and timestamp
        first = torch.nonzero(~negative).flatten()
        group = torch.cumsum((~negative).long(), 0) - 1
        assert (samples["user"] == samples["user"][first][group]).all()
        assert (samples["timestamp"] == samples["timestamp"][first][group]).all()


# ---------------------------------------------------------------------------------------------
# Vocabularies and normalisation (train only), text embeddings
# ---------------------------------------------------------------------------------------------


def test_vocabularies_are_fitted_on_train_only():
    # Leave-last-out: item 99 (category "z") appears only in user 1's last (test) rating, item
    # 12 (category "b") only in user 2's second-last (valid) one. Temporal: user 7 appears only
    # after the cut.
    interactions = pd.DataFrame(
        {
            C.USER_ID: [1, 1, 1, 2, 2, 2, 7],
            C.ITEM_ID: [10, 11, 99, 10, 12, 11, 10],
            C.RATING: [5, 4, 3, 2, 5, 4, 1],
            C.TIMESTAMP: [1, 2, 9, 3, 4, 5, 10],
        }
    )
    items = pd.DataFrame({C.ITEM_ID: [10, 11, 12, 99], C.CATEGORY: ["a", "a", "b", "z"]})
    data = build_multitask_data(interactions, items=items, split="leave-last-out", seq_len=3, n_negatives=1)
    test = data.test.subset(data.test["labels"][:, 0] == 1)
    row = int(torch.nonzero(test["timestamp"] == 9))
    assert int(test["item"][row]) == 0 and bool(test["is_cold_item"][row])
    assert int(test["item_content"][row]) == data.item_index[99] > data.info["n_warm_items"]
    assert int(test["sparse"][row, 0]) == 0  # category "z" is OOV
    assert data.schema.sparse_cardinalities == (2,)  # "a" + OOV
    valid = data.valid.subset(data.valid["labels"][:, 0] == 1)
    row = int(torch.nonzero(valid["timestamp"] == 4))
    assert int(valid["item"][row]) == 0 and int(valid["sparse"][row, 0]) == 0
    data = build_multitask_data(interactions, items=items, split="temporal", seq_len=3, n_negatives=1)
    assert 7 not in data.user_index
    last = data.test.subset(data.test["timestamp"] == 10)
    assert (last["user"] == 0).all()


def test_dense_features_use_train_statistics(ratings, ratings_data):
    interactions, users, items = ratings
    year = dict(zip(items[C.ITEM_ID], items[C.YEAR]))
    raw_item = _inverse(ratings_data.item_index)
    train_years = np.array([year[raw_item[i]] for i in ratings_data.train["item_content"].tolist()], float)
    mean, std = ratings_data.info["dense_stats"][C.YEAR]
    assert mean == pytest.approx(train_years.mean()) and std == pytest.approx(train_years.std())
    column = ratings_data.schema.dense_fields.index(C.YEAR)
    z = ratings_data.train["dense"][:, column].double()
    assert float(z.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(z.std(unbiased=False)) == pytest.approx(1.0, abs=1e-4)
    valid_years = np.array([year[raw_item[i]] for i in ratings_data.valid["item_content"].tolist()], float)
    valid_z = ratings_data.valid["dense"][:, column].numpy()
    np.testing.assert_allclose(valid_z, (valid_years - mean) / std, rtol=1e-4, atol=1e-5)


def test_text_embeddings_follow_the_catalog(ratings):
    interactions, users, items = ratings
    embeddings = np.random.default_rng(0).standard_normal((len(items), 8)).astype(np.float32)
    data = build_multitask_data(interactions, users, items, n_negatives=1, text_embeddings=embeddings)
    table = data.schema.item_text_embeddings
    assert table.shape == (data.schema.n_items, 8) and table.dtype == torch.float32
    assert (table[0] == 0).all()
    row_of = dict(zip(items[C.ITEM_ID], range(len(items))))
    for raw, index in data.item_index.items():
        np.testing.assert_array_equal(table[index].numpy(), embeddings[row_of[raw]])
        assert data.schema.item_titles[index] == f"movie {raw}"


# ---------------------------------------------------------------------------------------------
# Declared tasks, a positive column of one's own, a split given by the log
# ---------------------------------------------------------------------------------------------


def test_positive_column_drives_histories_and_negatives(world):
    # The funnel's click column under another name gives the same samples as "click". On a sampled
    # negative the declared entire-space task is 0 and observed (a never-shown item was neither
    # clicked nor bought), where the purchase recipe masks it.
    log = world.interactions.rename(columns={C.CLICK: "is_click"})
    tasks = (TaskColumn("is_click", "binary"), TaskColumn(C.PURCHASE, "binary", observed="entire:is_click"))
    own = build_multitask_data(log, world.users, world.items, tasks=tasks, positive="is_click", split="leave-last-out",
                               seq_len=5, n_negatives=1)  # fmt: skip
    named = build_multitask_data(world.interactions, world.users, world.items, tasks=(C.CLICK, C.PURCHASE),
                                 split="leave-last-out", seq_len=5, n_negatives=1)  # fmt: skip
    for part in ("train", "test"):
        for key in ("user", "item", "history", "history_padding_mask"):
            assert torch.equal(own.splits[part][key], named.splits[part][key]), (part, key)
        shown = named.splits[part]["label_mask"][:, 1]  # the recipe masks purchase on sampled negatives
        for key in ("labels", "label_mask"):
            assert torch.equal(own.splits[part][key][shown], named.splits[part][key][shown]), (part, key)
        assert not own.splits[part]["labels"][~shown].any() and own.splits[part]["label_mask"][~shown].all()
    assert own.info["positive"] == "is_click" and own.info["task_columns"]["purchase"]["observed"] == "entire:is_click"
    assert own.schema.task_names == ("is_click", "purchase")


def test_split_column_assigns_each_interaction(ratings):
    interactions = ratings[0].copy()
    parts = np.array(["train", "valid", "test"])[np.arange(len(interactions)) % 5 // 2]  # 2:2:1
    interactions["part"] = parts
    data = build_multitask_data(interactions, tasks=(C.CLICK, C.RATING_TASK), split_column="part", seq_len=3,
                                n_negatives=1)  # fmt: skip
    real = {name: int((~(split["labels"][:, 0] == 0)).sum()) for name, split in data.splits.items()}
    assert real == {name: int((parts == name).sum()) for name in ("train", "valid", "test")}
    assert data.info["split"] == "column 'part'"
    interactions.loc[3, "part"] = "holdout"
    with pytest.raises(ValueError, match="split_column 'part' must hold"):
        build_multitask_data(interactions, split_column="part", n_negatives=1)


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        (dict(split="future"), ValueError, "split"),
        (dict(tasks=("click", "dwell")), ValueError, "tasks"),
        (dict(tasks=("purchase",)), ValueError, "purchase"),
        (dict(tasks="click"), ValueError, "tasks"),
        (dict(n_negatives=0), ValueError, "n_negatives"),
        (dict(n_negatives=-1), ValueError, "n_negatives"),
        (dict(seq_len=-2), ValueError, "seq_len"),
        (dict(split_fractions=(0.5, 0.1, 0.1)), ValueError, "split_fractions"),
        (dict(text_embeddings=np.zeros((3, 4))), ValueError, "text_embeddings"),
        (dict(user_sparse=("shoe_size",)), ValueError, "shoe_size"),
        (dict(context_dense=("weather",)), ValueError, "weather"),
        (dict(tasks=(TaskColumn("dwell", "regression"),)), ValueError, "dwell"),
        (dict(tasks=(TaskColumn(C.RATING, "regression"), TaskColumn(C.RATING, "binary"))), ValueError, "repeat"),
        (dict(positive="bought"), ValueError, "positive"),
        (dict(split_column="fold"), ValueError, "split_column"),
    ],
)
def test_builder_rejects_bad_input(ratings, kwargs, error, name):
    interactions, users, items = ratings
    kwargs = {"n_negatives": 1, **kwargs}
    with pytest.raises(error, match=name):
        build_multitask_data(interactions, users, items, **kwargs)


def test_builder_rejects_bad_tables(ratings):
    interactions = ratings[0]
    with pytest.raises(TypeError, match="interactions"):
        build_multitask_data(interactions.to_dict())
    with pytest.raises(ValueError, match="timestamp"):
        build_multitask_data(interactions.drop(columns=[C.TIMESTAMP]), n_negatives=1)
    with pytest.raises(ValueError, match="items"):
        build_multitask_data(interactions, items=pd.DataFrame({C.ITEM_ID: [1, 1]}), n_negatives=1)
