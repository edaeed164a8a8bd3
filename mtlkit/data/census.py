"""UCI Census-Income (KDD): download once, verify, parse, and build the MMoE paper's task pairs.

The Census-Income (KDD) data set (T. Lane and R. Kohavi, UCI Machine Learning Repository,
2000; CC BY 4.0) holds 299,285 people from the 1994 and 1995 Current Population Surveys of
the U.S. Census Bureau: 199,523 training rows and 99,762 test rows, 40 features, a survey
weight and the income class (below or above $50,000). It is the real-data benchmark of

    J. Ma, Z. Zhao, X. Yi, J. Chen, L. Hong and E. H. Chi. 2018. Modeling Task Relationships
    in Multi-task Learning with Multi-gate Mixture-of-Experts. *KDD 2018*.
    https://doi.org/10.1145/3219819.3220007

which builds two pairs of binary tasks from it:

* ``("income", "marital")``    — income > 50K, and marital status = never married;
* ``("education", "marital")`` — education at least a college degree, and never married.

The column a task is read from is never a feature of that task pair. The protocol of the
paper (and of the PLE paper, Tang et al., RecSys 2020): train on the 199,523 training rows,
split the 99,762 test rows 1:1 at random into a validation half (model selection) and a test
half (reported), with a fixed seed.

:func:`load_census_income` returns the raw tables (pandas); :func:`build_census_multitask`
turns them into :class:`~mtlkit.data.tensors.MultiTaskData` (also reachable as
``load_dataset("census-income", tasks=...)``). Feature encoding there:

* every categorical column (33, less the task columns; income is never a feature) is a sparse field indexed
  1..K by the training vocabulary; 0 = a value never seen in training. ``?`` (unknown) is
  kept as a category of its own: it is informative here (the migration questions were not
  asked in 1994); so is ``Not in universe`` (the question did not apply: a child has no
  class of worker). The five columns written as numbers (detailed industry and occupation
  recodes, own business or self employed, veterans benefits, year) are codes, not
  quantities, and are categorical too, as census-income.names declares them;
* the 7 numeric columns (age, wage per hour, capital gains, capital losses, dividends,
  persons worked for employer, weeks worked) are dense fields; the four money columns are
  heavy-tailed (0 for most people, up to 99,999), so they go through log1p first; then all
  7 are z-scored with training statistics;
* with ``numeric_buckets=k`` (default 16) each numeric column is *also* a sparse field of
  quantile buckets (:func:`bucketize`): 0 is a bucket of its own (most people have no capital gains,
  wage or dividends, and half worked 0 weeks), the positive values are cut at the k-quantiles
  of the positive training values. An embedding per bucket lets a network learn the
  step-shaped effects a tree finds by splitting (e.g. capital gains above a few thousand
  dollars), which a single linear input can only approximate with many ReLUs. On the
  validation half this raised a shared-bottom network's income AUC from .9514 to .9539
  after 8 epochs (``benchmarks/results/census-cpu.md``);
* the survey weight ("instance weight") is not a feature (the data set's documentation says
  so); it is dropped.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mtlkit.checks import check_int
from mtlkit.data.download import data_dir, fetch
from mtlkit.data.validation import Column, SourceFile, TableSchema, check_table

__all__ = [
    "CENSUS_COLUMNS",
    "CENSUS_FILES",
    "CENSUS_SCHEMA",
    "CENSUS_TASK_PAIRS",
    "CENSUS_URL",
    "CensusIncome",
    "build_census_multitask",
    "load_census_income",
]

FOLDER = "census-income"
#: The UCI repository folder of the data set (the files below are fetched from there).
CENSUS_URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/census-income-mld/"
#: file name -> sha256 of the gzip files as published by UCI.
CENSUS_FILES = {
    "census-income.data.gz": "d8fb4a6fe0add3e49462c17d2ed260a487b28ec720752024aeb8b54eada29a68",
    "census-income.test.gz": "c222e1046bb9e50208cf2876cef84e056fdc43c473dbca9d54b12185c3c8a8f6",
}
N_TRAIN, N_TEST = 199_523, 99_762

#: The 42 columns in file order (census-income.names), snake_case.
CENSUS_COLUMNS = (
    "age", "class_of_worker", "detailed_industry_recode", "detailed_occupation_recode",
    "education", "wage_per_hour", "enroll_in_edu_inst_last_wk", "marital_status",
    "major_industry_code", "major_occupation_code", "race", "hispanic_origin", "sex",
    "member_of_a_labor_union", "reason_for_unemployment", "full_or_part_time_employment_stat",
    "capital_gains", "capital_losses", "dividends_from_stocks", "tax_filer_stat",
    "region_of_previous_residence", "state_of_previous_residence",
    "detailed_household_and_family_stat", "detailed_household_summary_in_household",
    "instance_weight", "migration_code_change_in_msa", "migration_code_change_in_reg",
    "migration_code_move_within_reg", "live_in_this_house_1_year_ago",
    "migration_prev_res_in_sunbelt", "num_persons_worked_for_employer",
    "family_members_under_18", "country_of_birth_father", "country_of_birth_mother",
    "country_of_birth_self", "citizenship", "own_business_or_self_employed",
    "fill_inc_questionnaire_for_veterans_admin", "veterans_benefits", "weeks_worked_in_year",
    "year", "income",
)  # fmt: skip
NUMERIC_COLUMNS = (
    "age", "wage_per_hour", "capital_gains", "capital_losses", "dividends_from_stocks",
    "num_persons_worked_for_employer", "weeks_worked_in_year",
)  # fmt: skip
LOG_COLUMNS = ("wage_per_hour", "capital_gains", "capital_losses", "dividends_from_stocks")
WEIGHT_COLUMN = "instance_weight"
INCOME_VALUES = ("- 50000.", "50000+.")
NEVER_MARRIED = "Never married"
#: Education values counted as "at least college": a college degree (associate or higher).
COLLEGE_DEGREES = (
    "Associates degree-academic program", "Associates degree-occup /vocational",
    "Bachelors degree(BA AB BS)", "Masters degree(MA MS MEng MEd MSW MBA)",
    "Prof school degree (MD DDS DVM LLB JD)", "Doctorate degree(PhD EdD)",
)  # fmt: skip
#: task name -> the column it is read from.
TASK_COLUMNS = {"income": "income", "marital": "marital_status", "education": "education"}
CENSUS_TASK_PAIRS = (("income", "marital"), ("education", "marital"))

# What each column may hold. census-income.names lists the values of every coded column (the
# industry recode 0..51, the occupation recode 0..46, 0/1/2 for own business and for veterans
# benefits, year 94 or 95) and counts the distinct values of the numeric ones (91 ages: 0..90;
# 7 employer sizes: 0..6; 53 week counts: 0..52); the money columns run up to 99,999 (the top
# code); the survey weight is a number of people. Every other column is non-empty text, "?"
# (unknown) included.
NUMERIC_RANGES = {
    "age": (0, 90), "wage_per_hour": (0, 99_999), "capital_gains": (0, 99_999),
    "capital_losses": (0, 99_999), "dividends_from_stocks": (0, 99_999),
    "num_persons_worked_for_employer": (0, 6), "weeks_worked_in_year": (0, 52),
    "detailed_industry_recode": (0, 51), "detailed_occupation_recode": (0, 46),
    "own_business_or_self_employed": (0, 2), "veterans_benefits": (0, 2),
}  # fmt: skip
COLUMN_RULES = {
    **{name: Column(name, "integer", low=low, high=high) for name, (low, high) in NUMERIC_RANGES.items()},
    WEIGHT_COLUMN: Column(WEIGHT_COLUMN, "number", low=0),
    "year": Column("year", allowed=("94", "95")),
    "income": Column("income", allowed=INCOME_VALUES),
}
CENSUS_SCHEMA = TableSchema(columns=tuple(COLUMN_RULES.get(name, Column(name)) for name in CENSUS_COLUMNS))
NUMBER_COLUMNS = (*NUMERIC_COLUMNS, WEIGHT_COLUMN)  # parsed as numbers; the code columns stay str


@dataclass(frozen=True)
class CensusIncome:
    """The parsed files: ``train`` (199,523 rows) and ``test`` (99,762 rows), 42 columns each.

    Numeric columns are int64 (``instance_weight`` float64); every other column is a str
    with the file's spelling (``"?"`` = unknown; ``income`` is ``"- 50000."`` or
    ``"50000+."``).
    """

    train: pd.DataFrame
    test: pd.DataFrame
    path: Path  # the folder the files were read from


def load_census_income(
    root: str | os.PathLike[str] | None = None,
    download: bool = True,
    urls: Sequence[str] | None = None,
) -> CensusIncome:
    """Load UCI Census-Income (KDD), downloading the two gzip files once if needed.

    Looks for ``census-income.data.gz`` and ``census-income.test.gz`` in
    ``<root>/census-income/`` or in ``<root>`` itself (whichever holds more of them); a file
    found is checked against its sha256 (:data:`CENSUS_FILES`). A missing file is downloaded
    from ``urls`` (default: the UCI repository, :data:`CENSUS_URL`) beside the other one (into
    ``<root>/census-income/`` when there is neither), verified, and cached. Every line is then checked against the documented schema
    (:data:`CENSUS_SCHEMA`). ``root`` defaults to ``$MTLKIT_DATA_DIR``, else the user cache
    folder.

    Args:
        root: the cache folder, or a folder that directly holds the two files.
        download: if False, never touch the network; the files must be there.
        urls: base URLs (ending in ``/``) tried in order; each file's name is appended.

    Raises:
        FileNotFoundError: ``download=False`` and a file is absent.
        mtlkit.data.download.ChecksumError: a file has another checksum (also a ValueError).
        mtlkit.data.download.DownloadError: every URL failed (the message says how to
            download by hand).
        ValueError: a file that does not parse as the Census-Income format, or a value
            outside :data:`CENSUS_SCHEMA` (one line: the file, the line number, the value).
    """
    if urls is not None and (isinstance(urls, str) or not isinstance(urls, Sequence)):
        raise TypeError(f"urls must be a sequence of URL strings or None, got {urls!r}")
    base = data_dir(root)
    bases = (CENSUS_URL,) if urls is None else tuple(urls)
    # The folder that holds more of the two files (the subfolder on a tie, or when neither holds
    # any): a file missing beside its partner is looked for, named and downloaded there.
    folder = max((base / FOLDER, base), key=lambda f: sum((f / name).is_file() for name in CENSUS_FILES))
    paths = {}
    for name, digest in CENSUS_FILES.items():
        present = (folder / name).is_file()
        paths[name] = fetch(
            name,
            [u if u.endswith(name) else u.rstrip("/") + "/" + name for u in bases],
            f"sha256:{digest}",
            folder,
            download=download and not present,
        )
    train = _parse(paths["census-income.data.gz"])
    test = _parse(paths["census-income.test.gz"])
    return CensusIncome(train=train, test=test, path=folder)


def _parse(path: Path) -> pd.DataFrame:
    """One gzip file: comma + space separated, no header, 42 columns, checked against
    :data:`CENSUS_SCHEMA`."""
    text_columns = {name: str for name in CENSUS_COLUMNS if name not in NUMBER_COLUMNS}
    try:
        with gzip.open(path, "rt", encoding="latin-1", newline="") as f:
            table = pd.read_csv(
                f, header=None, names=list(CENSUS_COLUMNS), sep=",", skipinitialspace=True,
                dtype=text_columns, keep_default_na=False, na_filter=False, engine="c",
            )  # fmt: skip
    except (OSError, EOFError, zlib.error, ValueError, pd.errors.ParserError) as err:
        raise ValueError(f"{path} does not parse as a Census-Income (KDD) file: {err}") from err
    check_table(table, CENSUS_SCHEMA, SourceFile(path, ",", lambda: _text(path)))
    return table.astype({**dict.fromkeys(NUMERIC_COLUMNS, "int64"), WEIGHT_COLUMN: "float64"})


def _text(path: Path) -> str:
    """The decompressed text of a census file (read again only to number the lines of an error)."""
    with gzip.open(path, "rt", encoding="latin-1", newline="") as f:
        return f.read()


def task_labels(table: pd.DataFrame, task: str) -> np.ndarray:
    """0/1 float32 labels of ``task`` ("income", "marital" or "education") for every row."""
    if task == "income":
        positive = table["income"] == INCOME_VALUES[1]
    elif task == "marital":
        positive = table["marital_status"] == NEVER_MARRIED
    elif task == "education":
        positive = table["education"].isin(COLLEGE_DEGREES)
    else:
        raise ValueError(f"task must be one of {sorted(TASK_COLUMNS)}, got {task!r}")
    return positive.to_numpy().astype(np.float32)


def feature_columns(tasks: Sequence[str]) -> tuple[list[str], list[str]]:
    """(categorical, numeric) feature columns for a task pair: all but the task columns."""
    excluded = {TASK_COLUMNS[t] for t in tasks} | {WEIGHT_COLUMN, "income"}
    categorical = [c for c in CENSUS_COLUMNS if c not in NUMERIC_COLUMNS and c not in excluded]
    numeric = [c for c in NUMERIC_COLUMNS if c not in excluded]
    return categorical, numeric


def split_test_rows(n_test: int = N_TEST, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers of the test file for (validation, test): a random 1:1 split with ``seed``."""
    order = np.random.default_rng(seed).permutation(n_test)
    half = n_test // 2
    return np.sort(order[:half]), np.sort(order[half:])


def build_census_multitask(
    census: CensusIncome,
    tasks: Sequence[str] = ("income", "marital"),
    *,
    split_seed: int = 0,
    numeric_buckets: int = 16,
):
    """The MMoE paper's multi-task data from :func:`load_census_income`'s tables.

    Args:
        census: the parsed tables.
        tasks: one of :data:`CENSUS_TASK_PAIRS` (any order of known tasks is accepted; the
            task columns are removed from the features).
        split_seed: seed of the 1:1 validation/test split of the test file (fixed, so that
            every model and the tree baseline are scored on the same rows).
        numeric_buckets: 0 — numeric columns are dense fields only; k > 0 — each is also a
            sparse field ``<column>_bucket`` (after the categorical fields) of at most k + 1
            quantile buckets (see :func:`bucketize`; cut points from the training rows).

    Returns:
        :class:`~mtlkit.data.tensors.MultiTaskData` with binary tasks ``tasks``, no users,
        items or sequence (``seq_len`` 0), sparse and dense fields as in the module
        docstring; ``info["splits"]`` holds the statistics of each split
        (:func:`~mtlkit.data.tensors.split_statistics`: rows, ``label_rate`` = the positive
        rate of each task, ...).
    """
    from mtlkit.data.schema import FeatureSchema, TaskSpec
    from mtlkit.data.tensors import MultiTaskData, TensorSamples, split_statistics

    if isinstance(tasks, str) or not isinstance(tasks, Sequence):
        raise TypeError(f"tasks must be a sequence of task names, got {tasks!r}")
    tasks = tuple(tasks)
    if not tasks or len(set(tasks)) != len(tasks) or any(t not in TASK_COLUMNS for t in tasks):
        raise ValueError(f"tasks must be distinct names from {sorted(TASK_COLUMNS)}, got {tasks!r}")
    numeric_buckets = check_int("numeric_buckets", numeric_buckets, low=0)
    categorical, numeric = feature_columns(tasks)
    valid_rows, test_rows = split_test_rows(len(census.test), split_seed)
    parts = {
        "train": census.train,
        "valid": census.test.iloc[valid_rows],
        "test": census.test.iloc[test_rows],
    }

    vocabularies = {c: sorted(census.train[c].unique()) for c in categorical}
    cuts = {c: quantile_cuts(census.train[c].to_numpy(), numeric_buckets) for c in numeric} if numeric_buckets else {}
    dense_train = _dense(census.train, numeric)
    mean, std = dense_train.mean(0), dense_train.std(0)
    std = np.where(std > 0, std, 1.0)

    splits, info = {}, {"split": "census (train file; test file halved)", "splits": {}}
    for part, table in parts.items():
        m = len(table)
        sparse = np.zeros((m, len(categorical) + len(cuts)), dtype=np.int64)
        for j, column in enumerate(categorical):
            index = pd.Index(vocabularies[column])
            sparse[:, j] = index.get_indexer(table[column]) + 1  # -1 (unseen) -> 0
        for j, (column, column_cuts) in enumerate(cuts.items(), start=len(categorical)):
            sparse[:, j] = bucketize(table[column].to_numpy(), column_cuts)
        dense = ((_dense(table, numeric) - mean) / std).astype(np.float32)
        labels = np.stack([task_labels(table, t) for t in tasks], axis=1)
        splits[part] = TensorSamples.tabular(sparse, dense, labels)
        info["splits"][part] = split_statistics(splits[part], tasks)
    schema = FeatureSchema(
        n_users=1, n_items=1, sparse_fields=(*categorical, *(f"{c}_bucket" for c in cuts)),
        sparse_cardinalities=(*(len(vocabularies[c]) + 1 for c in categorical),
                              *(len(c) + 3 for c in cuts.values())),  # indices 0 (unused) .. m + 2
        dense_fields=tuple(numeric), seq_len=0,
        tasks=tuple(TaskSpec(t, "binary") for t in tasks),
    )  # fmt: skip
    info.update(tasks=list(tasks), split_seed=split_seed, numeric_buckets=numeric_buckets,
                source=str(census.path.name))
    return MultiTaskData(
        schema=schema, train=splits["train"], valid=splits["valid"], test=splits["test"], info=info
    )


def _dense(table: pd.DataFrame, numeric: Sequence[str]) -> np.ndarray:
    """(N, n_numeric) float64: log1p of the money columns, the others as they are."""
    values = table[list(numeric)].to_numpy(dtype=np.float64)
    for j, column in enumerate(numeric):
        if column in LOG_COLUMNS:
            values[:, j] = np.log1p(np.maximum(values[:, j], 0.0))
    return values


def quantile_cuts(values: np.ndarray, n_buckets: int) -> np.ndarray:
    """Sorted distinct cut points splitting the *positive* ``values`` into ``n_buckets`` quantile buckets.

    The cut points are the j/k-quantiles (j = 1..k-1) of the positive values, made distinct:
    a column with few distinct values (weeks worked, persons worked for employer) gets fewer
    buckets. Zero and negative values are left to :func:`bucketize`'s bucket of their own.
    """
    positive = values[values > 0].astype(np.float64)
    if n_buckets < 2 or positive.size == 0:
        return np.zeros(0)
    return np.unique(np.quantile(positive, np.arange(1, n_buckets) / n_buckets, method="lower"))


def bucketize(values: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Bucket indices (int64, same shape as ``values``): 1 for x ≤ 0, else 2 + #{cuts < x}.

    So with cut points c_1 < … < c_m a positive x falls in bucket 2 (x ≤ c_1), …, m + 2
    (x > c_m); there are m + 2 indices in all, 0 staying free as the out-of-vocabulary index
    of every sparse field.
    """
    values = np.asarray(values, dtype=np.float64)
    return np.where(values > 0, 2 + np.searchsorted(cuts, values, side="left"), 1).astype(np.int64)

