"""Tests for the KuaiRand-Pure loader on a tiny folder written in the real file format:
finding and verifying the files, the default tasks, the random-exposure test split, and one
clear line for a missing, partial or damaged folder."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from kuairand_fixture import write_kuairand_pure

from mtlkit.data import kuairand as K
from mtlkit.data import load_dataset


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """(root, the fixture's counts): root holds KuaiRand-Pure/data/ as the archive extracts."""
    root = tmp_path_factory.mktemp("kuairand")
    return root, write_kuairand_pure(root)


@pytest.fixture
def documented_as_fixture(folder, monkeypatch):
    """Pretend the README documents the fixture's counts, so the count check passes."""
    for exposures, counts in folder[1].items():
        monkeypatch.setitem(K.DOCUMENTED_COUNTS, exposures, counts)


@pytest.fixture
def copy(folder, tmp_path):
    """A copy of the fixture folder to damage; returns its data/ folder."""
    shutil.copytree(folder[0] / K.FOLDER, tmp_path / K.FOLDER)
    return tmp_path / K.FOLDER / "data"


def test_documented_counts_are_the_readme_statistics():
    assert K.DOCUMENTED_COUNTS["standard"] == K.LogCounts(rows=1_436_609, users=27_285, videos=7_551)
    assert K.DOCUMENTED_COUNTS["random"] == K.LogCounts(rows=1_186_059, users=27_285, videos=7_583)
    assert K.STANDARD_LOGS == ("log_standard_4_08_to_4_21_pure.csv", "log_standard_4_22_to_5_08_pure.csv")
    assert len(K.LOG_COLUMNS) == 19 and len(K.USER_COLUMNS) == 31 and len(K.VIDEO_COLUMNS) == 12


@pytest.mark.parametrize("where", ["", K.FOLDER, f"{K.FOLDER}/data"])
def test_loads_from_the_extracted_folder_and_verifies_the_counts(folder, documented_as_fixture, where):
    root, counts = folder
    kuairand = K.load_kuairand_pure(root / where)
    assert kuairand.path == root / K.FOLDER / "data"
    assert kuairand.counts("standard") == counts["standard"] and kuairand.counts("random") == counts["random"]
    assert kuairand.videos["tag"].map(type).eq(list).all()  # "12,65" -> ["12", "65"]
    statistics = kuairand.statistics()
    assert statistics["random"]["rows"] == counts["random"].rows
    assert 0 < statistics["standard"]["is_click_rate"] < 1 and statistics["standard"]["mean_play_seconds"] > 0


def test_other_counts_than_documented_are_refused(folder):
    with pytest.raises(ValueError, match=r"hold 330 rows, 30 users, 35 videos; KuaiRand-Pure documents 1,436,609 rows, "
                                         r"27,285 users, 7,551 videos: the folder holds a partial"):  # fmt: skip
        K.load_kuairand_pure(folder[0], random_log=False)
    assert K.load_kuairand_pure(folder[0], verify_counts=False).counts("standard") == folder[1]["standard"]


def test_default_tasks_and_features(folder, documented_as_fixture):
    data = load_dataset("kuairand-pure", root=str(folder[0]), seq_len=5)
    schema = data.schema
    assert schema.task_names == ("is_click", "is_like", "is_follow", "long_view", "play_time_ms")
    assert schema.task_kinds["play_time_ms"] == "regression" and data.info["task_columns"]["play_time_ms"] == {
        "kind": "regression", "transform": "log1p"}  # fmt: skip
    assert schema.sparse_fields[-4:] == ("video_type", "upload_type", "music_type", "tab")
    assert schema.dense_fields == ("video_duration", "tag=12", "tag=3", "tag=65", "tag=8")
    assert sum(map(len, data.splits.values())) == folder[1]["standard"].rows
    assert data.info["split"] == "temporal" and data.info["positive"] == "is_click"
    assert data.info["test_exposures"] == "standard"


def test_random_exposures_are_the_test_split(folder, documented_as_fixture):
    data = load_dataset("kuairand-pure", root=str(folder[0]), test_exposures="random", seq_len=5,
                        tasks={"is_click": "binary", "is_like": {"kind": "binary", "observed": "where:is_click"}})
    logs = {name: pd.read_csv(folder[0] / K.FOLDER / "data" / name) for name in (*K.STANDARD_LOGS, K.RANDOM_LOG)}
    sizes = {part: len(samples) for part, samples in data.splits.items()}
    assert sizes == dict(zip(("train", "valid", "test"), map(len, logs.values())))
    assert sorted(data.test["timestamp"].tolist()) == sorted(logs[K.RANDOM_LOG]["time_ms"])
    assert data.schema.task_names == ("is_click", "is_like")
    with pytest.raises(ValueError, match="test_exposures must be one of"):
        load_dataset("kuairand-pure", root=str(folder[0]), test_exposures="unbiased")


def test_no_folder_says_where_to_download_and_where_to_put_it(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        load_dataset("kuairand-pure", root=str(tmp_path))
    message = str(error.value)
    assert "\n" not in message and K.ARCHIVE_URL in message and "CC BY-SA 4.0" in message
    assert f"tar -xzf KuaiRand-Pure.tar.gz -C {tmp_path}" in message


def test_a_partial_folder_names_the_missing_files(copy, documented_as_fixture):
    (copy / K.RANDOM_LOG).unlink()
    K.load_kuairand_pure(copy, random_log=False)  # the random log is only needed to test on it
    with pytest.raises(FileNotFoundError, match=rf"holds part of KuaiRand-Pure but lacks {K.RANDOM_LOG}"):
        load_dataset("kuairand-pure", root=str(copy), test_exposures="random")


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda text: text.replace("is_follow", "is_fellow", 1),
         r"log_standard_4_08_to_4_21_pure\.csv lacks the documented column\(s\) \['is_follow'\]"),
        (lambda text: text[: text.rindex(",", 0, len(text) - 30)],  # cut inside the last line
         r"log_standard_4_08_to_4_21_pure\.csv has an empty '.*' at line 241: the file is truncated"),
        (lambda text: "", r"could not parse .*log_standard_4_08_to_4_21_pure\.csv: No columns to parse from file"),
    ],
)
def test_a_damaged_log_is_one_line_naming_the_file(copy, documented_as_fixture, damage, message):
    path = copy / K.STANDARD_LOGS[0]
    path.write_text(damage(path.read_text()))
    with pytest.raises(ValueError, match=message) as error:
        K.load_kuairand_pure(copy)
    assert "\n" not in str(error.value)


def test_a_signal_outside_0_1_is_refused(copy, documented_as_fixture):
    path = copy / K.STANDARD_LOGS[1]
    log = pd.read_csv(path)
    log.loc[4, "is_like"] = 2
    log.to_csv(path, index=False)
    message = r"log_standard_4_22_to_5_08_pure\.csv has 2 in the 0/1 column 'is_like' at line 6"
    with pytest.raises(ValueError, match=message):
        K.load_kuairand_pure(copy)
