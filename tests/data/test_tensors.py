"""Tests for the tensor containers: batches, the Dataset view, tabular samples and split statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mtlkit.data.schema import FeatureSchema, TaskSpec
from mtlkit.data.tensors import MultiTaskData, TensorSamples, split_statistics


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
# Tabular samples (census-income, synthetic-mmoe) and split statistics
# ---------------------------------------------------------------------------------------------


def _tabular() -> TensorSamples:
    """Four rows, two sparse fields (int32), one dense field (float64), two tasks; the second
    task is unobserved on the last two rows."""
    labels = np.array([[1.0, 2.0], [0.0, 4.0], [1.0, 0.0], [1.0, 0.0]])
    label_mask = np.array([[True, True], [True, True], [True, False], [True, False]])
    sparse = np.arange(8, dtype=np.int32).reshape(4, 2)
    return TensorSamples.tabular(sparse, np.linspace(-1, 1, 4)[:, None], labels, label_mask)


def test_tabular_samples_follow_the_contract():
    samples = _tabular()
    assert len(samples) == 4 and list(samples.keys()) == [
        "user", "item", "sparse", "dense", "history", "history_padding_mask", "labels", "label_mask",
    ]  # fmt: skip
    assert (samples["user"] == 0).all() and (samples["item"] == 0).all()  # no users, no items
    assert samples["history"].shape == (4, 0) and samples["history_padding_mask"].shape == (4, 0)
    dtypes = {key: str(value.dtype).removeprefix("torch.") for key, value in samples.items()}
    assert dtypes == {
        "user": "int64", "item": "int64", "sparse": "int64", "dense": "float32", "history": "int64",
        "history_padding_mask": "bool", "labels": "float32", "label_mask": "bool",
    }  # fmt: skip
    assert samples["sparse"].tolist() == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert samples["label_mask"][:, 1].tolist() == [True, True, False, False]
    every_label = TensorSamples.tabular(np.zeros((3, 0), np.int64), np.ones((3, 5)), np.zeros((3, 2)))
    assert every_label["label_mask"].all() and every_label["sparse"].shape == (3, 0)


@pytest.mark.parametrize(
    "arrays, name",
    [
        ((np.zeros(3), np.ones((3, 1)), np.zeros((3, 1))), "sparse"),
        ((np.zeros((3, 0)), np.ones((3, 1)), np.zeros(3)), "labels"),
        ((np.zeros((3, 0)), np.ones((3, 1)), np.zeros((3, 2)), np.ones((3, 1), bool)), "label_mask"),
        ((np.zeros((3, 0)), np.ones((4, 1)), np.zeros((3, 2))), "same length"),
    ],
)
def test_tabular_rejects_bad_shapes(arrays, name):
    with pytest.raises(ValueError, match=name):
        TensorSamples.tabular(*arrays)


def test_split_statistics_of_tabular_samples():
    stats = split_statistics(_tabular(), ("a", "b"))
    rates = stats.pop("label_rate")
    assert rates == {"a": 0.75, "b": 3.0}  # b: the mean of its observed labels 2 and 4
    assert stats == {
        "rows": 4, "interactions": 4, "sampled_negatives": 0, "cold_item_rows": 0,
        "oov_user_rows": 4, "mean_history_length": 0.0, "empty_history_share": 1.0,
        "observed_share": {"a": 1.0, "b": 0.5},
    }  # fmt: skip
    unobserved = TensorSamples.tabular(np.zeros((2, 0)), np.ones((2, 1)), np.zeros((2, 1)), np.zeros((2, 1), bool))
    assert math.isnan(split_statistics(unobserved, ("a",))["label_rate"]["a"])


def test_split_statistics_are_the_builders_info(ratings_data):
    tasks = ratings_data.schema.task_names
    for name, samples in ratings_data.splits.items():
        negative = (samples["labels"][:, 0] == 0).numpy()  # click 0 = a sampled negative here
        stats = split_statistics(samples, tasks, negative)
        assert stats == ratings_data.info["splits"][name]
        assert stats["sampled_negatives"] == int(negative.sum()) > 0
        assert 0 < stats["mean_history_length"] <= ratings_data.schema.seq_len


def test_summary_shows_the_label_rates_of_tabular_data():
    split = _tabular()
    schema = FeatureSchema(1, 1, ("f0", "f1"), (8, 8), ("x",), 0, (TaskSpec("a", "binary"), TaskSpec("b", "regression")))
    info = {"splits": {name: split_statistics(split, schema.task_names) for name in ("train", "valid", "test")}}
    data = MultiTaskData(schema=schema, train=split, valid=split, test=split, info=info)
    assert "train: 4 rows; label rate/mean: a=0.750, b=3.000" in data.summary()
