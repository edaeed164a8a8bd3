"""Tests for load_interactions: one's own log as a DataFrame or a file, any tasks, and one
clear line for each bad table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from own_log import OWN_TASKS, make_own_log

from mtlkit.data import load_dataset, load_interactions
from mtlkit.data.tasks import TaskColumn

COLUMNS = dict(user="uid", item="video_id", time="ts")


@pytest.fixture(scope="module")
def own():
    """(log, users, videos) and the data built from them."""
    log, users, videos = make_own_log()
    data = load_interactions(log, **COLUMNS, tasks=OWN_TASKS, user_features=users, item_features=videos,
                             context_sparse=("page",), seq_len=4)  # fmt: skip
    return log, users, videos, data


@pytest.fixture(scope="module")
def own_data(own):
    return own[3]


def test_every_declared_column_becomes_a_task(own, own_data):
    log = own[0]
    schema = own_data.schema
    assert schema.task_names == ("is_click", "is_like", "click_like", "is_follow", "play_time_ms")
    assert schema.task_kinds["play_time_ms"] == "regression" and schema.task_kinds["click_like"] == "binary"
    assert own_data.info["positive"] == "is_click" and own_data.info["duplicate_rows"] == 0
    assert own_data.info["task_columns"]["play_time_ms"] == {"kind": "regression", "transform": "log1p"}
    assert schema.sparse_fields == ("country", "category", "page") and schema.dense_fields == ("age", "duration_s")
    # the samples are the log's rows, in (split, user, time) order: match them by (user, item, time)
    row_of = {(u, v, t): k for k, (u, v, t) in enumerate(zip(log.uid, log.video_id, pd.to_datetime(log.ts)))}
    raw_user = {index: raw for raw, index in own_data.user_index.items()}
    raw_item = {index: raw for raw, index in own_data.item_index.items()}
    n_rows = 0
    for samples in own_data.splits.values():
        known = samples["user"] > 0
        times = pd.to_datetime(samples["timestamp"].numpy(), unit="ms")
        rows = [row_of[(raw_user[int(u)], raw_item[int(i)], t)] for u, i, t, ok in zip(
            samples["user"], samples["item_content"], times, known) if ok]  # fmt: skip
        labels, mask = samples["labels"][known].numpy(), samples["label_mask"][known].numpy()
        clicked, liked = log.is_click.to_numpy()[rows], log.is_like.to_numpy()[rows]
        np.testing.assert_array_equal(labels[:, 0], clicked)
        np.testing.assert_array_equal(mask[:, 1], clicked == 1)  # like given click
        np.testing.assert_array_equal(labels[mask[:, 1], 1], liked[clicked == 1])
        assert mask[:, 2].all()  # click AND like on every impression
        np.testing.assert_array_equal(labels[:, 2], (clicked == 1) & (liked == 1))
        np.testing.assert_allclose(labels[:, 4], np.log1p(log.play_time_ms.to_numpy()[rows]), rtol=1e-6)
        n_rows += len(samples)
    assert n_rows == len(log)


def test_history_holds_earlier_clicks_only(own, own_data):
    # The positives are the first binary task observed on every row (is_click): histories hold
    # clicked items strictly before each sample.
    train = own_data.train
    for row in range(0, len(train), 37):
        user, time = int(train["user"][row]), int(train["timestamp"][row])
        earlier = (train["user"] == user) & (train["timestamp"] < time) & (train["labels"][:, 0] == 1)
        expected = train["item"][earlier][-4:].tolist()
        shown = train["history"][row][~train["history_padding_mask"][row]].tolist()
        assert shown == expected


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_files_give_the_same_data_as_the_dataframe(own, own_data, tmp_path, suffix):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    log, users, videos, _ = own
    paths = {name: tmp_path / f"{name}{suffix}" for name in ("log", "users", "videos")}
    for name, table in zip(paths, (log, users, videos)):
        table.to_parquet(paths[name]) if suffix == ".parquet" else table.to_csv(paths[name], index=False)
    data = load_dataset("interactions", log=str(paths["log"]), **COLUMNS, tasks=OWN_TASKS,
                        user_features=paths["users"], item_features=paths["videos"], context_sparse=("page",),
                        seq_len=4)  # fmt: skip
    assert data.info["name"] == "interactions" and data.info["source"] == f"log{suffix}"
    for part, samples in own_data.splits.items():
        for key in samples.keys():
            assert torch.equal(data.splits[part][key], samples[key]), (part, key)


def test_times_as_numbers_are_used_as_they_are(own):
    log = own[0].assign(ts=np.arange(len(own[0])) * 1000)  # seconds, say
    data = load_interactions(log, **COLUMNS, tasks={"is_click": "binary"}, seq_len=2, split="random")
    stamps = torch.cat([samples["timestamp"] for samples in data.splits.values()])
    assert sorted(stamps.tolist()) == list(log.ts)


def test_duplicate_policies(own):
    log = own[0].head(50)
    doubled = pd.concat([log, log.iloc[[7, 20]]], ignore_index=True)
    with pytest.raises(ValueError, match=r"2 row\(s\) repeating an earlier \(uid, video_id, ts\); the first pair is "
                                         r"at row 7 and row 50: pass duplicates='first'"):  # fmt: skip
        load_interactions(doubled, **COLUMNS, tasks={"is_click": "binary"})
    first = load_interactions(doubled, **COLUMNS, tasks={"is_click": "binary"}, duplicates="first")
    kept = load_interactions(doubled, **COLUMNS, tasks={"is_click": "binary"}, duplicates="keep")
    assert sum(map(len, first.splits.values())) == 50 and sum(map(len, kept.splits.values())) == 52
    assert first.info["duplicate_rows"] == kept.info["duplicate_rows"] == 2 and kept.info["duplicates"] == "keep"


def test_a_declared_entire_space_pair_trains_esmm(own):
    from mtlkit.models import build_model

    data = load_interactions(own[0], **COLUMNS, tasks=OWN_TASKS, seq_len=2)
    model = build_model("esmm", data.schema, ctr_task="is_click", ctcvr_task="click_like", embedding_dim=4,
                        d_model=8, n_heads=1, d_ff=8, tower_hidden=(8,))  # fmt: skip
    outputs = model(next(data.train.batches(16)))
    assert set(outputs) == set(data.schema.task_names)


def _write(tmp_path, table, name="log.csv"):
    path = tmp_path / name
    table.to_csv(path, index=False)
    return path


BAD_TABLES = {
    "missing column": (
        lambda log: log.drop(columns=["is_follow"]),
        {},
        r"^log\.csv has no column 'is_follow' \(label of task 'is_follow'\); its columns are \['uid', 'video_id', 'ts', "
        r"'is_click', 'is_like', 'play_time_ms', 'page'\]$",
    ),
    "binary out of range": (
        lambda log: log.assign(is_follow=log.is_follow.where(log.index != 5, 2)),
        {},
        r"^binary label column 'is_follow' of log\.csv must hold 0 or 1 \(empty = not logged\), got 2 at line 7$",
    ),
    "regression text": (
        lambda log: log.assign(play_time_ms=log.play_time_ms.astype(object).where(log.index != 3, "long")),
        {},
        r"^regression label column 'play_time_ms' of log\.csv must hold numbers, got 'long' at line 5$",
    ),
    "log1p of a negative": (
        lambda log: log.assign(play_time_ms=log.play_time_ms.where(log.index != 9, -4.0)),
        {},
        r"must hold finite numbers >= 0 \(log1p\), got -4\.0 at line 11$",
    ),
    "condition not binary": (
        lambda log: log.assign(is_click=log.is_click.where(log.index != 2, 3)),
        {"tasks": ("is_like:binary:where=is_click",)},
        r"^column 'where:is_click' of task 'is_like': 'is_click' of log\.csv must hold 0 or 1 .*got 3 at line 4$",
    ),
    "empty table": (lambda log: log.head(0), {}, r"^log\.csv has no rows; a log needs at least one interaction$"),
    "time does not parse": (
        lambda log: log.assign(ts=log.ts.where(log.index != 4, "yesterday")),
        {},
        r"^time column 'ts' of log\.csv must hold numbers or dates, got 'yesterday' at line 6$",
    ),
    "empty user": (
        lambda log: log.assign(uid=log.uid.astype(float).where(log.index != 8)),
        {},
        r"^user column 'uid' of log\.csv is empty at line 10$",
    ),
    "duplicates": (
        lambda log: pd.concat([log, log.iloc[[3]]], ignore_index=True),
        {},
        r"^log\.csv has 1 row\(s\) repeating an earlier \(uid, video_id, ts\); the first pair is at line 5 and line "
        rf"{600 + 2}: pass duplicates='first' to keep the first of each or duplicates='keep' to keep them all$",
    ),
    "a label as a feature": (
        lambda log: log,
        {"context_dense": ("play_time_ms",)},
        r"^context_sparse/context_dense must not name a label or id column \(it would leak\), got \['play_time_ms'\]$",
    ),
}


@pytest.mark.parametrize("case", list(BAD_TABLES))
def test_bad_tables_are_one_line_each(own, tmp_path, case):
    change, overrides, message = BAD_TABLES[case]
    path = _write(tmp_path, change(own[0].copy()))
    kwargs = {**COLUMNS, "tasks": OWN_TASKS, **overrides}
    with pytest.raises(ValueError, match=message) as error:
        load_interactions(path, **kwargs)
    assert "\n" not in str(error.value)


def test_bad_sources_and_feature_tables(own, tmp_path):
    log, users, videos, _ = own
    tasks = {"is_click": "binary"}
    with pytest.raises(ValueError, match=r"log must be a \.csv, \.csv\.gz, \.parquet file, got '.*log\.xlsx'"):
        load_interactions(tmp_path / "log.xlsx", **COLUMNS, tasks=tasks)
    with pytest.raises(FileNotFoundError, match="log file '.*nowhere.csv' does not exist"):
        load_interactions(tmp_path / "nowhere.csv", **COLUMNS, tasks=tasks)
    (tmp_path / "broken.csv.gz").write_bytes(b"\x1f\x8b\x08\x00truncated")
    with pytest.raises(ValueError, match="could not parse broken.csv.gz"):
        load_interactions(tmp_path / "broken.csv.gz", **COLUMNS, tasks=tasks)
    with pytest.raises(ValueError, match=r"the user_features DataFrame has no column 'uid' \(the user_features key"):
        load_interactions(log, **COLUMNS, tasks=tasks, user_features=users.rename(columns={"uid": "user"}))
    twice = pd.concat([videos, videos.iloc[[2]]], ignore_index=True)
    with pytest.raises(ValueError, match=r"item_features key 'video_id' .* must be unique, got 'v002' at row 30"):
        load_interactions(log, **COLUMNS, tasks=tasks, item_features=twice)
    with pytest.raises(ValueError, match=r"columns \['user_id'\] of the log DataFrame are reserved"):
        load_interactions(log.assign(user_id=1), **COLUMNS, tasks=tasks, context_sparse=("user_id",))
    with pytest.raises(ValueError, match="duplicates must be one of"):
        load_interactions(log, **COLUMNS, tasks=tasks, duplicates="drop")
    with pytest.raises(ValueError, match="observed must be"):
        load_interactions(log, **COLUMNS, tasks={"is_like": {"kind": "binary", "observed": "clicked"}})


def test_sampled_negatives_for_a_positive_only_log(own):
    # Only the clicked rows logged: a constant "interacted" column is the task; its negatives read 0.
    clicks = own[0][own[0].is_click == 1].assign(interacted=1)
    data = load_interactions(clicks, **COLUMNS, tasks=[TaskColumn("interacted", "binary"),
                             TaskColumn("play_time_ms", "regression", transform="log1p")],
                             n_negatives=2, split="leave-last-out", seq_len=3)  # fmt: skip
    train = data.train
    negative = train["labels"][:, 0] == 0
    assert int(negative.sum()) == 2 * int((~negative).sum())
    assert train["label_mask"][:, 0].all() and not train["label_mask"][negative, 1].any()
