"""Tests for load_dataset (synthetic sets offline; MovieLens 100K from the local copy)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

import mtlkit.data
from mtlkit.data import columns as C
from mtlkit.data.datasets import DATASETS, dataset_parameters, load_dataset
from mtlkit.data.synthetic import make_recsys_funnel


def test_import_is_light():
    code = (
        "import sys, mtlkit.data; "
        "assert 'transformers' not in sys.modules and 'torch' not in sys.modules; "
        "mtlkit.data.make_recsys_funnel; assert 'transformers' not in sys.modules; "
        "print(sorted(mtlkit.data.__all__))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "load_dataset" in out and "build_multitask_data" in out
    assert mtlkit.data.load_dataset is load_dataset
    with pytest.raises(AttributeError, match="no_such_name"):
        mtlkit.data.no_such_name  # noqa: B018


@pytest.fixture(scope="module")
def funnel():
    return load_dataset("synthetic-funnel", seed=0)


def test_synthetic_funnel_quick(funnel):
    assert funnel.schema.task_names == ("click", "purchase", "rating")
    assert funnel.schema.seq_len == 20
    assert funnel.info["split"] == "temporal" and funnel.info["name"] == "synthetic-funnel"
    assert funnel.info["build_seconds"] < 5.0  # about 0.5 s on one free core
    assert sum(len(s) for s in funnel.splits.values()) == 40_000
    for key in ("true_click_prob", "true_cvr", "true_purchase_prob", "is_bot"):
        assert key in funnel.train
    rates = funnel.info["splits"]["train"]["label_rate"]
    assert 0.05 < rates["click"] < 0.4 and rates["purchase"] < rates["click"]


def test_synthetic_funnel_cold_items_never_in_train(funnel):
    world = make_recsys_funnel(**funnel.info["generator"])  # same arguments, same world
    cold = {funnel.item_index[i] for i in world.items.loc[world.items[C.IS_COLD], C.ITEM_ID]}
    assert not cold & set(funnel.train["item_content"].tolist())
    assert cold & set(funnel.test["item_content"].tolist())
    assert funnel.info["n_cold_items"] == len(cold)


def test_synthetic_funnel_is_deterministic_and_takes_generator_arguments(funnel):
    again = load_dataset("synthetic-funnel", seed=0)
    for key in funnel.train.keys():
        assert torch.equal(funnel.train[key], again.train[key]), key
    other = load_dataset(
        "synthetic-funnel", seed=0, selection_bias=0.0, seq_len=4, tasks=("click", "conversion")
    )
    assert other.info["generator"]["selection_bias"] == 0.0
    assert other.schema.seq_len == 4 and other.schema.task_names == ("click", "conversion")


@pytest.mark.parametrize("p", [0.0, 0.9])
def test_synthetic_mmoe(p):
    data = load_dataset("synthetic-mmoe", correlation=p, seed=1)
    schema = data.schema
    assert schema.task_names == ("y1", "y2") and set(schema.task_kinds.values()) == {"regression"}
    assert schema.seq_len == 0 and schema.n_dense == 100 and schema.n_sparse == 0
    assert abs(data.info["cosine"] - p) < 1e-6
    assert [len(s) for s in data.splits.values()] == [9_600, 1_200, 1_200]
    batch = next(data.train.batches(32))
    assert batch["history"].shape == (32, 0) and batch["history_padding_mask"].dtype == torch.bool
    assert batch["labels"].shape == (32, 2) and batch["label_mask"].all()
    assert batch["dense"].dtype == torch.float32
    dense = data.train["dense"]
    assert float(dense.mean()) == pytest.approx(0.0, abs=1e-5)
    with pytest.raises(ValueError, match="seq_len"):
        load_dataset("synthetic-mmoe", seq_len=5)


def test_synthetic_mmoe_samples_are_those_built_before_the_tabular_constructor(check_fingerprint):
    # Frozen from load_dataset("synthetic-mmoe", n=200) at commit 1a03d4f, when it assembled its
    # tensors itself.
    data = load_dataset("synthetic-mmoe", n=200)
    assert [len(split) for split in data.splits.values()] == [160, 20, 20]
    expected = {
        "user": ("int64", (200,), 0.0),
        "item": ("int64", (200,), 0.0),
        "sparse": ("int64", (200, 0), 0.0),
        "dense": ("float32", (200, 100), -1320665.2621329573),
        "history": ("int64", (200, 0), 0.0),
        "history_padding_mask": ("bool", (200, 0), 0.0),
        "labels": ("float32", (200, 2), 22651.03777550254),
        "label_mask": ("bool", (200, 2), 80200.0),
    }
    check_fingerprint(data, expected, "4ea30955bdae84f2e21f493ad2bf20f72617802fe76ac161bd20c17ac6409a71")


def test_every_data_set_reports_the_same_split_statistics(funnel):
    mmoe = load_dataset("synthetic-mmoe", n=200)
    for name, samples in mmoe.splits.items():
        stats = mmoe.info["splits"][name]
        assert stats.keys() == funnel.info["splits"][name].keys()
        assert stats["rows"] == len(samples) and stats["oov_user_rows"] == len(samples)
        means = samples["labels"].double().mean(0).tolist()  # regression: the label mean
        assert list(stats["label_rate"]) == ["y1", "y2"]
        assert list(stats["label_rate"].values()) == pytest.approx(means, rel=1e-6)
    assert "label rate/mean: y1=" in mmoe.summary()


def test_registry_builders_take_only_their_own_arguments():
    assert tuple(DATASETS) == (
        "synthetic-funnel", "synthetic-mmoe", "movielens-100k", "movielens-1m", "census-income", "interactions",
        "kuairand-pure",
    )  # fmt: skip
    assert "census-income" in DATASETS
    assert dataset_parameters("census-income") == ("root", "download", "tasks")
    assert dataset_parameters("movielens-1m") == (
        "root", "download", "seed", "seq_len", "with_text", "text_model", "tasks", "split", "n_negatives",
        "n_eval_negatives",
    )  # fmt: skip
    funnel = dataset_parameters("synthetic-funnel")
    assert funnel[:3] == ("size", "seed", "seq_len") and {"n_users", "selection_bias"} <= set(funnel)
    assert "seed" not in funnel[3:]  # the generator's seed is the builder's own
    assert dataset_parameters("synthetic-mmoe")[:4] == ("size", "seed", "correlation", "n")
    message = r"census-income got unexpected argument\(s\) \['seed', 'size'\]; it takes \['download', 'root', 'tasks'\]"
    with pytest.raises(TypeError, match=message):
        load_dataset("census-income", seed=0, size="quick")
    with pytest.raises(TypeError, match=r"movielens-100k got unexpected argument\(s\) \['size'\]; it takes \[.*'seed'"):
        load_dataset("movielens-100k", size="quick", download=False)
    with pytest.raises(TypeError, match=r"synthetic-mmoe .*\['split', 'tasks'\]"):
        load_dataset("synthetic-mmoe", tasks=("y1", "y2"), split="random")
    with pytest.raises(ValueError, match="name"):
        dataset_parameters("criteo")


def test_size_is_recorded_where_the_builder_has_one(funnel):
    assert funnel.info["size"] == "quick"
    assert load_dataset("synthetic-mmoe", size="quick", n=100).info["size"] == "quick"


def test_load_dataset_rejects_bad_input():
    with pytest.raises(ValueError, match="synthetic-funnel") as error:
        load_dataset("criteo")
    assert "name" in str(error.value) and all(name in str(error.value) for name in DATASETS)
    with pytest.raises(ValueError, match="size"):
        load_dataset("synthetic-funnel", size="huge")
    with pytest.raises(TypeError, match="selection_bias"):
        load_dataset("movielens-100k", selection_bias=1.0, download=False)



def test_drop_features_removes_inputs_and_keeps_attributes(funnel):
    dropped = load_dataset("synthetic-funnel", seed=0, drop_features=("device", "price"))
    schema = funnel.schema
    assert dropped.schema.sparse_fields == tuple(f for f in schema.sparse_fields if f != "device")
    assert dropped.schema.dense_fields == () and dropped.info["dropped_features"] == ["device", "price"]
    assert "price" not in dropped.info["dense_stats"]
    kept = [j for j, f in enumerate(schema.sparse_fields) if f != "device"]
    assert dropped.schema.sparse_cardinalities == tuple(schema.sparse_cardinalities[j] for j in kept)
    for part, samples in dropped.splits.items():
        full = funnel.splits[part]
        assert samples["sparse"].shape == (len(full), len(kept)) and samples["dense"].shape == (len(full), 0)
        assert torch.equal(samples["sparse"], full["sparse"][:, kept])  # the other fields are unchanged
        assert torch.equal(samples["is_bot"], full["is_bot"]) and torch.equal(samples["labels"], full["labels"])


def test_drop_features_rejects_unknown_fields():
    with pytest.raises(ValueError, match=r"drop_features .*unknown \['gender'\]"):
        load_dataset("synthetic-funnel", seed=0, drop_features=("gender",))
    with pytest.raises(TypeError, match="drop_features"):
        load_dataset("synthetic-funnel", seed=0, drop_features="device")


@pytest.mark.realdata
def test_movielens_drop_gender_keeps_is_female(shared_data_dir):
    root = shared_data_dir / "ml-100k"
    data = load_dataset("movielens-100k", root=root, download=False, seq_len=4, drop_features=["gender", "genres"])
    assert data.schema.sparse_fields == (C.AGE, C.OCCUPATION) and data.schema.dense_fields == (C.YEAR,)
    assert data.train["sparse"].shape[1] == 2 and data.train["dense"].shape[1] == 1
    assert 0.2 < data.train["is_female"].float().mean() < 0.35  # about 26% of the ratings are by women

@pytest.mark.realdata
def test_movielens_100k(shared_data_dir):
    data = load_dataset("movielens-100k", root=shared_data_dir / "ml-100k", download=False, seed=0)
    info, schema = data.info, data.schema
    assert schema.task_names == ("click", "like", "rating")
    assert schema.n_users == 943 + 1 and schema.n_items == 1682 + 1
    assert schema.sparse_fields == (C.GENDER, C.AGE, C.OCCUPATION)
    assert schema.dense_fields[0] == C.YEAR and len(schema.dense_fields) == 1 + 19  # year + genres
    assert info["n_interactions"] == 99_999  # the local copy lacks one rating
    # leave-last-out: one rating per user in valid and in test, each with one sampled negative
    for name in ("valid", "test"):
        assert info["splits"][name]["interactions"] == 943
        assert info["splits"][name]["sampled_negatives"] == 943
    assert info["splits"]["train"]["interactions"] == 99_999 - 2 * 943
    like_rate = info["splits"]["train"]["label_rate"]["like"]
    assert 0.5 < like_rate < 0.6
    assert info["splits"]["test"]["mean_history_length"] > 19.0  # every user has >= 20 ratings
    # no leakage on a sample of test rows: every history item was rated strictly earlier
    ratings = pd.read_csv(shared_data_dir / "ml-100k" / "u.data", sep="\t", names=["u", "i", "r", "t"])
    when = {(u, i): t for u, i, t in zip(ratings.u, ratings.i, ratings.t)}
    raw_user = {v: k for k, v in data.user_index.items()}
    raw_item = {v: k for k, v in data.item_index.items()}
    test = data.test
    for row in np.random.default_rng(0).choice(len(test), 200, replace=False):
        u, t = raw_user[int(test["user"][row])], int(test["timestamp"][row])
        for index in test["history"][row][~test["history_padding_mask"][row]].tolist():
            assert when[(u, raw_item[index])] < t
    print(
        f"\nML-100K: build {info['build_seconds']:.2f} s; rows train/valid/test = "
        + "/".join(str(info["splits"][s]["rows"]) for s in ("train", "valid", "test"))
        + f"; like rate (train) {like_rate:.4f}; mean history length "
        + ", ".join(f"{s} {info['splits'][s]['mean_history_length']:.2f}" for s in data.splits)
    )


def test_keep_labels_of_users_hides_a_task_for_the_other_users():
    from mtlkit.data.batch import LABEL_MASK, USER
    from mtlkit.data.datasets import keep_labels_of_users

    data = load_dataset("synthetic-funnel", n_users=120, n_items=40, seq_len=2)
    scarce = keep_labels_of_users(data, "purchase", 0.25, seed=1)
    j = data.schema.task_names.index("purchase")
    kept_train = set(scarce.train[USER][scarce.train[LABEL_MASK][:, j]].tolist())
    kept_valid = set(scarce.valid[USER][scarce.valid[LABEL_MASK][:, j]].tolist())
    assert len(kept_train) == 30 and kept_valid <= kept_train  # the same users in every scarce split
    assert torch.equal(scarce.test[LABEL_MASK], data.test[LABEL_MASK])  # scored on everyone
    other = [k for k in range(len(data.schema.task_names)) if k != j]
    assert torch.equal(scarce.train[LABEL_MASK][:, other], data.train[LABEL_MASK][:, other])
    observed = data.train[LABEL_MASK][:, j] & torch.isin(data.train[USER], torch.tensor(sorted(kept_train)))
    assert torch.equal(scarce.train[LABEL_MASK][:, j], observed)
    assert scarce.info["label_fraction"] == {"purchase": 0.25}
    assert keep_labels_of_users(data, "purchase", 1.0).train[LABEL_MASK].sum() == data.train[LABEL_MASK].sum()
    with pytest.raises(ValueError, match="fraction"):
        keep_labels_of_users(data, "purchase", 0.0)
    with pytest.raises(ValueError, match="task"):
        keep_labels_of_users(data, "nope", 0.5)
