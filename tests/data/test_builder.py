"""Tests for the multi-task sample builder, the schema and the tensor containers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from mtlkit.data import columns as C
from mtlkit.data.builder import (
    FeatureSchema,
    MultiTaskData,
    TaskSpec,
    TensorSamples,
    build_multitask_data,
)
from mtlkit.data.synthetic import make_recsys_funnel

CONTRACT_DTYPES = {
    "user": torch.int64,
    "item": torch.int64,
    "sparse": torch.int64,
    "dense": torch.float32,
    "history": torch.int64,
    "history_padding_mask": torch.bool,
    "labels": torch.float32,
    "label_mask": torch.bool,
    "is_cold_item": torch.bool,
    "timestamp": torch.int64,
    "item_content": torch.int64,
}

# ---------------------------------------------------------------------------------------------
# Small inputs
# ---------------------------------------------------------------------------------------------


def _ratings(seed: int = 0, n_users: int = 40, n_items: int = 80):
    """A positive-only log (MovieLens-like) with many timestamp ties, plus user/item tables."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(1, n_users + 1):
        k = int(rng.integers(4, 20))
        for i in rng.choice(np.arange(1, n_items + 1), k, replace=False):
            rows.append((u, int(i), int(rng.integers(1, 6)), int(1000 + rng.integers(0, 30))))
    ratings = pd.DataFrame(rows, columns=[C.USER_ID, C.ITEM_ID, C.RATING, C.TIMESTAMP])
    ratings = ratings.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # file order != time
    users = pd.DataFrame(
        {
            C.USER_ID: np.arange(1, n_users + 1),
            C.GENDER: rng.choice(["M", "F"], n_users),
            C.AGE: rng.integers(18, 70, n_users),
        }
    )
    genres = ["Action", "Comedy", "Drama", "Horror"]
    items = pd.DataFrame(
        {
            C.ITEM_ID: np.arange(1, n_items + 1),
            C.TITLE: [f"movie {i}" for i in range(1, n_items + 1)],
            C.YEAR: rng.integers(1950, 2000, n_items),
            C.GENRES: [list(rng.choice(genres, rng.integers(1, 3), replace=False)) for _ in range(n_items)],
        }
    )
    return ratings, users, items


@pytest.fixture(scope="module")
def ratings():
    return _ratings()


@pytest.fixture(scope="module")
def ratings_data(ratings):
    interactions, users, items = ratings
    return build_multitask_data(
        interactions, users, items, tasks=(C.CLICK, C.LIKE, C.RATING_TASK), split="leave-last-out",
        seq_len=6, n_negatives=2, n_eval_negatives=3, seed=1,
    )  # fmt: skip


@pytest.fixture(scope="module")
def world():
    return make_recsys_funnel(120, 60, n_impressions=3_000, seed=3)


@pytest.fixture(scope="module")
def funnel_data(world):
    return build_multitask_data(
        world.interactions, world.users, world.items,
        tasks=(C.CLICK, C.PURCHASE, C.CONVERSION, C.RATING_TASK), split="temporal", seq_len=5, seed=0,
    )  # fmt: skip


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
# Contract
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["ratings_data", "funnel_data"])
def test_shapes_and_dtypes_follow_the_contract(which, request):
    data = request.getfixturevalue(which)
    schema = data.schema
    for split in (data.train, data.valid, data.test):
        n = len(split)
        assert n > 0
        for key, dtype in CONTRACT_DTYPES.items():
            assert split[key].dtype == dtype, key
            assert split[key].shape[0] == n
        assert split["sparse"].shape == (n, schema.n_sparse)
        assert split["dense"].shape == (n, schema.n_dense)
        assert split["history"].shape == (n, schema.seq_len)
        assert split["labels"].shape == (n, len(schema.tasks))
        assert split["label_mask"].shape == split["labels"].shape
        assert int(split["user"].min()) >= 0 and int(split["user"].max()) < schema.n_users
        assert int(split["item"].min()) >= 0 and int(split["item"].max()) < schema.n_items
        assert int(split["history"].max()) < schema.n_items
        assert int(split["item_content"].min()) >= 1 and int(split["item_content"].max()) < schema.n_items
        for j, card in enumerate(schema.sparse_cardinalities):
            assert 0 <= int(split["sparse"][:, j].min()) and int(split["sparse"][:, j].max()) < card
        assert torch.isfinite(split["dense"]).all() and torch.isfinite(split["labels"]).all()
        assert (split["labels"][~split["label_mask"]] == 0).all()  # 0.0 where unobserved


def test_schema_fields(ratings_data, funnel_data):
    s = ratings_data.schema
    assert s.task_names == ("click", "like", "rating")
    assert s.task_kinds == {"click": "binary", "like": "binary", "rating": "regression"}
    assert s.sparse_fields == (C.GENDER,)  # strings are sparse; age/year numbers are dense
    genres = ("genres=Action", "genres=Comedy", "genres=Drama", "genres=Horror")  # multi-hot
    assert s.dense_fields == (C.AGE, C.YEAR, *genres)
    assert s.item_titles[0] == "" and len(s.item_titles) == s.n_items
    f = funnel_data.schema
    assert f.sparse_fields == (C.AGE_BUCKET, C.REGION, C.DEVICE, C.CATEGORY)  # no is_bot / is_cold
    assert f.dense_fields == (C.PRICE,)
    assert f.task_kinds["conversion"] == "binary" and f.task_kinds["rating"] == "regression"


def test_schema_and_info_round_trip_through_json(ratings_data, funnel_data):
    for data in (ratings_data, funnel_data):
        assert json.loads(json.dumps(data.info))["splits"]["train"]["rows"] == len(data.train)
    schema = ratings_data.schema
    again = FeatureSchema.from_dict(json.loads(json.dumps(schema.to_dict())))
    assert again == schema
    with pytest.raises(ValueError, match="kind"):
        TaskSpec("x", "ranking")
    with pytest.raises(ValueError, match="sparse_cardinalities"):
        FeatureSchema(1, 1, ("a",), (), (), 0, ())


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
# Labels, masks and negatives
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


def test_funnel_labels_follow_the_impressions(world, funnel_data):
    d = world.interactions
    key = dict(zip(zip(d[C.USER_ID], d[C.ITEM_ID], d[C.TIMESTAMP]), range(len(d))))
    raw_user, raw_item = _inverse(funnel_data.user_index), _inverse(funnel_data.item_index)
    click, purchase, rating = d[C.CLICK].to_numpy(), d[C.PURCHASE].to_numpy(), d[C.RATING].to_numpy()
    n_rows = 0
    for samples in funnel_data.splits.values():
        columns = (samples["user"].tolist(), samples["item_content"].tolist(), samples["timestamp"].tolist())
        rows = np.array([key[(raw_user[u], raw_item[i], t)] for u, i, t in zip(*columns)])
        n_rows += len(rows)
        labels, mask = samples["labels"].numpy(), samples["label_mask"].numpy()
        np.testing.assert_array_equal(labels[:, 0], click[rows])
        assert mask[:, 0].all()
        # purchase = click AND purchase over the entire impression space (CTCVR)
        np.testing.assert_array_equal(labels[:, 1], (click[rows] == 1) & (purchase[rows] == 1))
        assert mask[:, 1].all()
        # conversion = purchase given click, observed on clicked impressions only
        np.testing.assert_array_equal(mask[:, 2], click[rows] == 1)
        np.testing.assert_array_equal(labels[mask[:, 2], 2], purchase[rows][mask[:, 2]])
        # rating only after a purchase
        np.testing.assert_array_equal(mask[:, 3], purchase[rows] == 1)
        np.testing.assert_array_equal(labels[mask[:, 3], 3], rating[rows][mask[:, 3]])
        truth = d[C.TRUE_PURCHASE_PROB].to_numpy()[rows]
        np.testing.assert_allclose(samples["true_purchase_prob"].numpy(), truth, rtol=1e-6)
    assert n_rows == len(d)  # every impression exactly once, no sampled negatives


def test_click_like_is_the_entire_space_twin_of_like():
    # User 1 leaves item 11 unrated (NaN); user 3 (two ratings) stays in train, so items 14 and
    # 15 are training items users 1 and 2 never rated: their sampled negatives.
    interactions = pd.DataFrame(
        {
            C.USER_ID: [1, 1, 1, 1, 2, 2, 2, 3, 3],
            C.ITEM_ID: [10, 11, 12, 13, 10, 12, 11, 14, 15],
            C.RATING: [5, np.nan, 2, 4, 4, 1, 5, 3, 4],
            C.TIMESTAMP: [1, 2, 3, 4, 5, 6, 7, 8, 9],
        }
    )
    data = build_multitask_data(
        interactions, tasks=(C.CLICK, C.LIKE, C.CLICK_LIKE), split="leave-last-out", seq_len=2, n_negatives=1,
    )  # fmt: skip
    assert data.schema.task_kinds[C.CLICK_LIKE] == "binary"
    click_like = {1: 1.0, 2: 0.0, 3: 0.0, 4: 1.0, 5: 1.0, 6: 0.0, 7: 1.0, 8: 0.0, 9: 1.0}  # by timestamp
    n_negatives = 0
    for samples in data.splits.values():
        labels, mask = samples["labels"], samples["label_mask"]
        positive = labels[:, 0] == 1
        n_negatives += int((~positive).sum())
        assert mask[:, 2].all()  # observed on every row, sampled negatives included
        assert (labels[~positive, 2] == 0).all()
        expected = [click_like[t] for t in samples["timestamp"][positive].tolist()]
        assert labels[positive, 2].tolist() == expected
        # like: the conditional twin, observed on rated real rows only
        rated = positive & (samples["timestamp"] != 2)
        assert mask[:, 1].tolist() == rated.tolist()
        assert labels[rated, 1].tolist() == labels[rated, 2].tolist()
    assert n_negatives == len(interactions)  # one sampled negative per rating


# ---------------------------------------------------------------------------------------------
# Splits, vocabularies and normalisation (train only)
# ---------------------------------------------------------------------------------------------


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
# TensorSamples: batches and the Dataset view
# ---------------------------------------------------------------------------------------------


def _numbered(n: int = 23) -> TensorSamples:
    return TensorSamples(
        {"row": torch.arange(n), "x": torch.randn(n, 3), "flag": torch.arange(n) % 2 == 0}
    )


def test_batches_cover_every_row_once():
    samples = _numbered()
    for shuffle in (False, True):
        batches = samples.batches(5, shuffle=shuffle, generator=torch.Generator().manual_seed(0))
        rows = torch.cat([b["row"] for b in batches])
        assert sorted(rows.tolist()) == list(range(23))
    ordered = [b["row"].tolist() for b in samples.batches(5)]
    assert ordered[0] == [0, 1, 2, 3, 4] and ordered[-1] == [20, 21, 22]
    dropped = list(samples.batches(5, drop_last=True))
    assert len(dropped) == 4 and all(len(b["row"]) == 5 for b in dropped)
    a = [b["row"] for b in samples.batches(5, shuffle=True, generator=torch.Generator().manual_seed(1))]
    b = [b["row"] for b in samples.batches(5, shuffle=True, generator=torch.Generator().manual_seed(1))]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    for batch in samples.batches(4, shuffle=True):
        torch.testing.assert_close(batch["x"], samples["x"][batch["row"]])
        assert torch.equal(batch["flag"], batch["row"] % 2 == 0)


def test_dataset_view_equals_batches(funnel_data):
    loader = torch.utils.data.DataLoader(funnel_data.valid.as_torch_dataset(), batch_size=64, shuffle=False)
    for fast, slow in zip(funnel_data.valid.batches(64), loader, strict=True):
        assert fast.keys() == slow.keys()
        for key in fast:
            assert fast[key].dtype == slow[key].dtype
            assert torch.equal(fast[key], slow[key]), key


def test_tensor_samples_helpers(ratings_data):
    train = ratings_data.train
    part = train.subset(torch.arange(10))
    assert len(part) == 10 and torch.equal(part["history"], train["history"][:10])
    assert train.to("cpu")["labels"].device.type == "cpu"
    assert "labels" in train and set(train.to_dict()) == set(train.keys())
    with pytest.raises(ValueError, match="batch_size"):
        next(train.batches(0))
    with pytest.raises(ValueError, match="same length"):
        TensorSamples({"a": torch.zeros(3), "b": torch.zeros(4)})
    assert "train" in ratings_data.summary()


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
