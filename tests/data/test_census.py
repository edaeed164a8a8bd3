"""UCI Census-Income (KDD): parser and checksum paths on tiny fake files, the real files when present."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from mtlkit.data import census
from mtlkit.data.census import (
    CENSUS_COLUMNS,
    bucketize,
    build_census_multitask,
    feature_columns,
    load_census_income,
    quantile_cuts,
    split_test_rows,
    task_labels,
)  # fmt: skip
from mtlkit.data.download import ChecksumError

# Two real-looking lines (the first two of census-income.data), then variations.
LINE_A = (
    "73, Not in universe, 0, 0, High school graduate, 0, Not in universe, Widowed, Not in universe "
    "or children, Not in universe, White, All other, Female, Not in universe, Not in universe, Not in "
    "labor force, 0, 0, 0, Nonfiler, Not in universe, Not in universe, Other Rel 18+ ever marr not in "
    "subfamily, Other relative of householder, 1700.09, ?, ?, ?, Not in universe under 1 year old, ?, "
    "0, Not in universe, United-States, United-States, United-States, Native- Born in the United "
    "States, 0, Not in universe, 2, 0, 95, - 50000."
)
LINE_B = (
    "58, Self-employed-not incorporated, 4, 34, Bachelors degree(BA AB BS), 0, Not in universe, "
    "Never married, Construction, Precision production craft & repair, White, All other, Male, Not in "
    "universe, Not in universe, Children or Armed Forces, 15024, 0, 200, Head of household, South, "
    "Arkansas, Householder, Householder, 1053.55, MSA to MSA, Same county, Same county, No, Yes, 1, "
    "Not in universe, United-States, United-States, United-States, Native- Born in the United States, "
    "0, Not in universe, 2, 52, 94, 50000+."
)


def _write(folder: Path, train_lines: list[str], test_lines: list[str]) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    digests = {}
    for name, lines in (("census-income.data.gz", train_lines), ("census-income.test.gz", test_lines)):
        data = gzip.compress(("\n".join(lines) + "\n").encode("latin-1"), mtime=0)
        (folder / name).write_bytes(data)
        digests[name] = hashlib.sha256(data).hexdigest()
    return digests


@pytest.fixture
def fake_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache folder with tiny census files whose checksums are registered."""
    train = [LINE_A, LINE_B] * 5
    test = [LINE_B.replace("Construction", "Mining"), LINE_A, LINE_B, LINE_A]
    digests = _write(tmp_path / "census-income", train, test)
    monkeypatch.setattr(census, "CENSUS_FILES", digests)
    return tmp_path


def test_parses_columns_types_and_values(fake_root: Path) -> None:
    data = load_census_income(fake_root, download=False)
    assert data.train.shape == (10, 42) and data.test.shape == (4, 42)
    assert tuple(data.train.columns) == CENSUS_COLUMNS
    row = data.train.iloc[1]
    assert row["age"] == 58 and row["capital_gains"] == 15024 and row["income"] == "50000+."
    assert row["marital_status"] == "Never married" and row["instance_weight"] == pytest.approx(1053.55)
    assert data.train["age"].dtype == np.int64
    assert data.train.iloc[0]["migration_code_change_in_msa"] == "?"  # unknown kept as a category
    assert data.path == fake_root / "census-income"


def test_files_directly_in_root_are_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(census, "CENSUS_FILES", _write(tmp_path, [LINE_A], [LINE_B]))
    assert load_census_income(tmp_path, download=False).path == tmp_path


def test_checksum_mismatch_raises(fake_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(census, "CENSUS_FILES", dict.fromkeys(census.CENSUS_FILES, "0" * 64))
    with pytest.raises(ChecksumError, match="sha256|SHA256"):
        load_census_income(fake_root, download=False)


def test_missing_files_without_download(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="download=False"):
        load_census_income(tmp_path, download=False)


def test_download_from_file_url_is_verified_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mirror = tmp_path / "mirror"
    monkeypatch.setattr(census, "CENSUS_FILES", _write(mirror, [LINE_A, LINE_B], [LINE_B]))
    cache = tmp_path / "cache"
    data = load_census_income(cache, urls=[mirror.as_uri() + "/"])
    assert (cache / "census-income" / "census-income.data.gz").is_file()
    assert len(data.train) == 2 and len(data.test) == 1


def test_bad_income_value_names_the_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    digests = _write(tmp_path, [LINE_A, LINE_B.replace("50000+.", "lots")], [LINE_A])
    monkeypatch.setattr(census, "CENSUS_FILES", digests)
    with pytest.raises(ValueError, match="line 2: income"):
        load_census_income(tmp_path, download=False)


def with_field(line: str, column: str, value: str) -> str:
    """``line`` with the field of ``column`` set to ``value`` (fields are ", "-separated)."""
    fields = line.split(", ")
    fields[CENSUS_COLUMNS.index(column)] = value
    return ", ".join(fields)


# One row per bad input: (column, the value written in line 2 of the training file, the message
# after "<file> line 2: "). A column of None replaces the whole line by the value.
BAD_CENSUS = [
    ("age", "91", "age must be an integer in 0..90, got 91"),
    ("age", "-1", "age must be an integer in 0..90, got -1"),
    ("age", "?", "age must be an integer in 0..90, got '?'"),
    ("age", "58.5", "age must be an integer in 0..90, got 58.5"),
    ("wage_per_hour", "100000", "wage_per_hour must be an integer in 0..99999, got 100000"),
    ("capital_gains", "-15024", "capital_gains must be an integer in 0..99999, got -15024"),
    ("capital_losses", "x", "capital_losses must be an integer in 0..99999, got 'x'"),
    ("dividends_from_stocks", "", "dividends_from_stocks must be an integer in 0..99999, got nothing"),
    ("num_persons_worked_for_employer", "7", "num_persons_worked_for_employer must be an integer in 0..6, got 7"),
    ("weeks_worked_in_year", "53", "weeks_worked_in_year must be an integer in 0..52, got 53"),
    ("detailed_industry_recode", "52", "detailed_industry_recode must be an integer in 0..51, got '52'"),
    ("detailed_occupation_recode", "?", "detailed_occupation_recode must be an integer in 0..46, got '?'"),
    ("own_business_or_self_employed", "3", "own_business_or_self_employed must be an integer in 0..2, got '3'"),
    ("veterans_benefits", "-1", "veterans_benefits must be an integer in 0..2, got '-1'"),
    ("instance_weight", "-1053.55", "instance_weight must be a number >= 0, got -1053.55"),
    ("instance_weight", "?", "instance_weight must be a number >= 0, got '?'"),
    ("year", "96", "year must be one of ['94', '95'], got '96'"),
    ("income", "lots", "income must be one of ['- 50000.', '50000+.'], got 'lots'"),
    ("education", "", "education must be non-empty, got nothing"),
    (None, LINE_B.rpartition(", ")[0], "income must be one of ['- 50000.', '50000+.'], got nothing"),
]  # fmt: skip


@pytest.mark.parametrize(("column", "value", "message"), BAD_CENSUS)
def test_a_bad_value_is_one_line_naming_file_line_and_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, column: str | None, value: str, message: str
) -> None:
    bad = value if column is None else with_field(LINE_B, column, value)
    monkeypatch.setattr(census, "CENSUS_FILES", _write(tmp_path, [LINE_A, bad], [LINE_A]))
    with pytest.raises(ValueError) as err:
        load_census_income(tmp_path, download=False)
    assert str(err.value) == f"{tmp_path / 'census-income.data.gz'} line 2: {message}"


def test_unknown_is_allowed_in_the_text_columns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    line = with_field(with_field(LINE_B, "country_of_birth_self", "?"), "education", "?")
    monkeypatch.setattr(census, "CENSUS_FILES", _write(tmp_path, [line], [LINE_A]))
    assert load_census_income(tmp_path, download=False).train["education"].tolist() == ["?"]


def test_the_test_file_is_checked_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    test = [LINE_A, LINE_B, LINE_A, with_field(LINE_A, "year", "1995")]
    monkeypatch.setattr(census, "CENSUS_FILES", _write(tmp_path, [LINE_A], test))
    with pytest.raises(ValueError) as err:
        load_census_income(tmp_path, download=False)
    assert str(err.value) == f"{tmp_path / 'census-income.test.gz'} line 4: year must be one of ['94', '95'], got '1995'"


def test_the_missing_file_is_the_one_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the training file, directly in root: the error names the test file, in root."""
    monkeypatch.setattr(census, "CENSUS_FILES", _write(tmp_path, [LINE_A], [LINE_B]))
    (tmp_path / "census-income.test.gz").unlink()
    with pytest.raises(FileNotFoundError) as err:
        load_census_income(tmp_path, download=False)
    assert str(err.value).startswith(f"census-income.test.gz is not in {tmp_path} and download=False")


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="urls"):
        load_census_income(tmp_path, urls="https://example.org/")
    with pytest.raises(TypeError, match="root"):
        load_census_income(3)


def test_task_labels_and_feature_columns(fake_root: Path) -> None:
    table = load_census_income(fake_root, download=False).train
    np.testing.assert_array_equal(task_labels(table, "income")[:2], [0.0, 1.0])
    np.testing.assert_array_equal(task_labels(table, "marital")[:2], [0.0, 1.0])
    np.testing.assert_array_equal(task_labels(table, "education")[:2], [0.0, 1.0])
    with pytest.raises(ValueError, match="task"):
        task_labels(table, "age")
    categorical, numeric = feature_columns(("education", "marital"))
    assert "education" not in categorical and "marital_status" not in categorical
    assert "income" not in categorical and "instance_weight" not in numeric + categorical
    assert len(categorical) + len(numeric) == 42 - 4  # income, weight and the two task columns


def test_split_is_fixed_disjoint_and_halves() -> None:
    valid, test = split_test_rows(11, seed=0)
    assert len(valid) == 5 and len(test) == 6
    assert sorted(np.concatenate([valid, test]).tolist()) == list(range(11))
    np.testing.assert_array_equal(split_test_rows(11, seed=0)[0], valid)


def test_build_multitask_encodes_features(fake_root: Path) -> None:
    data = build_census_multitask(load_census_income(fake_root, download=False), ("income", "marital"))
    assert data.schema.task_names == ("income", "marital") and data.schema.seq_len == 0
    assert len(data.train) == 10 and len(data.valid) + len(data.test) == 4
    train = data.train
    assert train["sparse"].shape == (10, len(data.schema.sparse_fields))
    assert int(train["sparse"].min()) >= 1  # every training value is in the vocabulary
    assert torch.all(train["sparse"] < torch.tensor(data.schema.sparse_cardinalities))
    # z-scored with training statistics
    torch.testing.assert_close(train["dense"].mean(0), torch.zeros(7), atol=1e-5, rtol=0)
    # "Mining" never occurs in training: out-of-vocabulary index 0
    j = data.schema.sparse_fields.index("major_industry_code")
    all_eval = torch.cat([data.valid["sparse"][:, j], data.test["sparse"][:, j]])
    assert (all_eval == 0).sum() == 1
    assert data.train["labels"].dtype == torch.float32 and bool(data.train["label_mask"].all())
    with pytest.raises(ValueError, match="tasks"):
        build_census_multitask(load_census_income(fake_root, download=False), ("income", "income"))


def test_quantile_buckets_keep_zero_apart_and_cut_positive_values() -> None:
    values = np.array([0, 0, 1, 2, 3, 4, 5, 100])
    cuts = quantile_cuts(values, 4)  # quartiles of the positive values 1, 2, 3, 4, 5, 100
    np.testing.assert_array_equal(cuts, [2, 3, 4])
    np.testing.assert_array_equal(bucketize(values, cuts), [1, 1, 2, 2, 3, 4, 5, 5])
    assert bucketize(np.array([7]), cuts)[0] == 5  # above every cut: the last bucket
    assert quantile_cuts(np.zeros(5), 8).size == 0  # no positive value: zero / positive only
    np.testing.assert_array_equal(bucketize(np.array([0, 3]), np.zeros(0)), [1, 2])
    np.testing.assert_array_equal(quantile_cuts(np.tile(np.arange(4), 10), 32), [1, 2, 3])  # few values: fewer cuts


def test_numeric_buckets_add_one_sparse_field_per_numeric_column(fake_root: Path) -> None:
    tables = load_census_income(fake_root, download=False)
    plain = build_census_multitask(tables, ("income", "marital"), numeric_buckets=0)
    data = build_census_multitask(tables, ("income", "marital"), numeric_buckets=4)
    assert plain.schema.sparse_fields == tuple(feature_columns(("income", "marital"))[0])
    n_categorical = len(plain.schema.sparse_fields)
    assert data.schema.sparse_fields[:n_categorical] == plain.schema.sparse_fields
    assert data.schema.sparse_fields[n_categorical:] == tuple(f"{c}_bucket" for c in data.schema.dense_fields)
    torch.testing.assert_close(data.train["dense"], plain.train["dense"])  # the dense fields stay
    buckets = data.train["sparse"][:, n_categorical:]
    assert int(buckets.min()) >= 1
    assert torch.all(buckets < torch.tensor(data.schema.sparse_cardinalities[n_categorical:]))
    j = data.schema.sparse_fields.index("capital_gains_bucket")
    assert data.train["sparse"][:2, j].tolist() == [1, 2]  # 0 dollars; 15,024 dollars
    assert data.info["numeric_buckets"] == 4
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="numeric_buckets"):
            build_census_multitask(tables, ("income", "marital"), numeric_buckets=bad)


def test_census_samples_are_those_built_before_the_tabular_constructor(fake_root: Path, check_fingerprint) -> None:
    # Frozen from build_census_multitask at commit 1a03d4f, when it assembled its tensors itself.
    data = build_census_multitask(load_census_income(fake_root, download=False), ("income", "marital"))
    assert [len(split) for split in data.splits.values()] == [10, 2, 2]
    expected = {
        "user": ("int64", (14,), 0.0),
        "item": ("int64", (14,), 0.0),
        "sparse": ("int64", (14, 39), 198727.0),
        "dense": ("float32", (14, 7), 21.0),
        "history": ("int64", (14, 0), 0.0),
        "history_padding_mask": ("bool", (14, 0), 0.0),
        "labels": ("float32", (14, 2), 205.0),
        "label_mask": ("bool", (14, 2), 406.0),
    }
    check_fingerprint(data, expected, "25a940b64b64ba2e359ebe343f6e9cec0be066b094df768bcb1d989ddaa2814d")


def test_census_info_has_the_split_statistics_of_every_data_set(fake_root: Path, ratings_data) -> None:
    data = build_census_multitask(load_census_income(fake_root, download=False), ("income", "marital"))
    train = data.info["splits"]["train"]
    assert train.keys() == ratings_data.info["splits"]["train"].keys()  # the builder's keys
    assert train["rows"] == 10 and train["label_rate"] == {"income": 0.5, "marital": 0.5}
    assert train["observed_share"] == {"income": 1.0, "marital": 1.0} and train["sampled_negatives"] == 0
    assert data.info["splits"]["valid"]["label_rate"] == {"income": 1.0, "marital": 1.0}


def test_load_dataset_rejects_bad_tasks(fake_root: Path) -> None:
    from mtlkit.data import load_dataset

    with pytest.raises(ValueError, match="tasks"):
        load_dataset("census-income", root=fake_root, download=False, tasks=("income", "education"))
    with pytest.raises(ValueError, match="seq_len"):
        load_dataset("census-income", root=fake_root, download=False, seq_len=5)
    data = load_dataset("census-income", root=fake_root, download=False, tasks=("education", "marital"))
    assert data.schema.task_names == ("education", "marital") and data.info["name"] == "census-income"
    assert "size" not in data.info  # census-income has no size (nor seed)


@pytest.mark.realdata
@pytest.mark.slow
def test_real_files_match_the_published_sizes(shared_data_dir: Path) -> None:
    folder = shared_data_dir / "census-income"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent (local checks only)")
    data = build_census_multitask(load_census_income(shared_data_dir, download=False))
    assert (len(data.train), len(data.valid), len(data.test)) == (199_523, 49_881, 49_881)
    rates = data.info["splits"]["train"]["label_rate"]
    assert rates["income"] == pytest.approx(0.0621, abs=1e-3)
    assert rates["marital"] == pytest.approx(0.4335, abs=1e-3)
    assert int((data.valid["sparse"] == 0).sum()) < 100  # nearly every test value was seen in training
