"""Your own interaction log as multi-task data: :func:`load_interactions`.

A log is a table with one row per impression (or interaction): a user, an item, a time and
any number of feedback columns (click, like, follow, share, watch time, ...). Each feedback
column you name in ``tasks`` becomes a task (:class:`~mtlkit.data.tasks.TaskColumn`: binary or
regression, observed on every row or only where another column is 1, an optional transform);
the rest is what :func:`~mtlkit.data.builder.build_multitask_data` does for the built-in data
sets: train-only vocabularies and statistics, leak-free behaviour sequences, the same splits.

The table is checked once, here, and every problem is one line that names the file, the
column and the first offending line (``line`` counts the header as line 1 in a CSV file;
``row`` is the 0-based position in a DataFrame or a Parquet file):

* a column that is not there (the message lists the columns that are);
* an empty table; an empty user, item or time cell;
* a time that does not parse (numbers are used as they are — any unit —, text and dates
  become milliseconds since 1970-01-01 UTC);
* a label outside its kind: a binary column holds 0/1 (or is empty: not logged), a regression
  column numbers (``log1p`` needs them >= 0); a column named in ``observed`` is binary;
* duplicated (user, item, time) rows, by the ``duplicates`` policy (:data:`DUPLICATE_POLICIES`):
  ``"refuse"`` (default: the message gives the lines of the first pair), ``"first"`` (keep the
  first of each group, in file order) or ``"keep"`` (every row is a sample; ties in time never
  enter each other's history).

The log's other columns are never model inputs unless named in ``context_sparse`` /
``context_dense``: a feedback column taken as a feature would leak its own label. User and item
tables (a DataFrame or a file, joined on the user / item column) are detected as the builder
does (strings, categories and booleans sparse; numbers and lists dense) or named explicitly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mtlkit.checks import ArgumentTypeError, check_choice, check_str
from mtlkit.data import columns as C
from mtlkit.data.builder import build_multitask_data
from mtlkit.data.tasks import TaskColumn, task_columns
from mtlkit.data.tensors import MultiTaskData

__all__ = ["DUPLICATE_POLICIES", "TABLE_SUFFIXES", "load_interactions"]

TABLE_SUFFIXES = (".csv", ".csv.gz", ".parquet")  # the files a log or a feature table may be
DUPLICATE_POLICIES = ("refuse", "first", "keep")


@dataclass(frozen=True)
class _Source:
    """Where a table came from, to name it and its rows in an error."""

    name: str  # the file name, or "the log DataFrame"
    csv: bool  # a CSV file: rows are reported as lines (header = line 1)

    def row(self, position: int) -> str:
        return f"line {position + 2}" if self.csv else f"row {position}"


def _read(table: pd.DataFrame | str | os.PathLike[str], what: str) -> tuple[pd.DataFrame, _Source]:
    """A DataFrame as it is, or a :data:`TABLE_SUFFIXES` file read with pandas (Parquet needs
    ``pyarrow``: ``pip install 'mtlkit[parquet]'``); ``what`` names the table in errors."""
    if isinstance(table, pd.DataFrame):
        return table, _Source(f"the {what} DataFrame", csv=False)
    if not isinstance(table, (str, os.PathLike)):
        raise ArgumentTypeError(f"{what} must be a pandas DataFrame or a path, got {type(table).__name__}")
    path = Path(table).expanduser()
    name = path.name.lower()
    if not name.endswith(TABLE_SUFFIXES):
        raise ValueError(f"{what} must be a {', '.join(TABLE_SUFFIXES)} file, got {str(path)!r}")
    if not path.is_file():
        raise FileNotFoundError(f"{what} file {str(path)!r} does not exist")
    if name.endswith(".parquet"):
        try:
            return pd.read_parquet(path), _Source(path.name, csv=False)
        except ImportError as error:
            raise ImportError(f"reading {path.name} needs pyarrow: pip install 'mtlkit[parquet]' ({error})") from None
    try:
        return pd.read_csv(path, low_memory=False), _Source(path.name, csv=True)
    except (ValueError, UnicodeDecodeError, EOFError, OSError) as error:  # ParserError, truncated gzip
        raise ValueError(f"could not parse {path.name}: {' '.join(str(error).split())}") from None


def _require_columns(table: pd.DataFrame, source: _Source, roles: Mapping[str, str]) -> None:
    """Refuse the first column (of {column: role}) that ``table`` lacks, listing those it has."""
    for column, role in roles.items():
        if column not in table.columns:
            raise ValueError(
                f"{source.name} has no column {column!r} ({role}); its columns are {[str(c) for c in table.columns]}"
            )


def _first(bad: np.ndarray) -> int:
    return int(np.flatnonzero(bad)[0])


def _refuse(what: str, source: _Source, must: str, values: pd.Series, bad: np.ndarray) -> None:
    """Raise the one-line error for the first ``bad`` cell of ``values``, if there is one:
    ``"<what> of <file> must <must>, got <value> at line <n>"``."""
    if bad.any():
        i = _first(bad)
        value = values.iloc[i]
        value = value.item() if isinstance(value, np.generic) else value  # shows 2, not np.int64(2)
        raise ValueError(f"{what} of {source.name} must {must}, got {value!r} at {source.row(i)}")


def _numbers(table: pd.DataFrame, column: str, source: _Source, role: str) -> np.ndarray:
    """The column as float64 (NaN = empty); a non-number is refused with its line."""
    values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    text = table[column].notna().to_numpy() & np.isnan(values)
    _refuse(f"{role} {column!r}", source, "hold numbers", table[column], text)
    return values


def _check_binary(table: pd.DataFrame, column: str, source: _Source, role: str) -> None:
    values = _numbers(table, column, source, role)
    bad = ~np.isnan(values) & (values != 0) & (values != 1)
    _refuse(f"{role} {column!r}", source, "hold 0 or 1 (empty = not logged)", table[column], bad)


def _check_labels(table: pd.DataFrame, tasks: Sequence[TaskColumn], positive: str | None, source: _Source) -> None:
    """Each task's values against its kind, and the binary columns ``observed`` and ``positive`` name."""
    for task in tasks:
        role = f"{task.kind} label column"
        if task.kind == "binary":
            _check_binary(table, task.column, source, role)
        else:
            values = _numbers(table, task.column, source, role)
            if task.transform == "log1p":
                bad, must = np.isinf(values) | (values < 0), "hold finite numbers >= 0 (log1p)"
            else:
                bad, must = np.isinf(values), "hold finite numbers"
            _refuse(f"{role} {task.column!r}", source, must, table[task.column], bad)
        if task.condition is not None:
            _check_binary(table, task.condition, source, f"column {task.observed!r} of task {task.name!r}:")
    if positive is not None:
        _check_binary(table, positive, source, "positive column")


def _keys(table: pd.DataFrame, column: str, source: _Source, role: str) -> pd.Series:
    """The id column, refused where a cell is empty."""
    values = table[column]
    empty = values.isna().to_numpy()
    if empty.any():
        raise ValueError(f"{role} column {column!r} of {source.name} is empty at {source.row(_first(empty))}")
    return values.reset_index(drop=True)


def _times(table: pd.DataFrame, column: str, source: _Source) -> np.ndarray:
    """int64 times: numbers as they are (rounded), text and dates as milliseconds since the epoch."""
    values = table[column]
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = values.to_numpy(dtype=float, na_value=np.nan)
        _refuse(f"time column {column!r}", source, "hold a time", values, ~np.isfinite(numbers))
        return np.round(numbers).astype(np.int64)
    parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    _refuse(f"time column {column!r}", source, "hold numbers or dates", values, parsed.isna().to_numpy())
    return ((parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(1, "ms")).to_numpy(dtype=np.int64)


def _duplicates(frame: pd.DataFrame, policy: str, source: _Source, names: Sequence[str]) -> tuple[pd.DataFrame, int]:
    """Apply the duplicate policy to (user, item, time); returns the frame and the number of
    rows that repeat an earlier one."""
    key = [C.USER_ID, C.ITEM_ID, C.TIMESTAMP]
    repeated = frame.duplicated(key, keep="first").to_numpy()
    n_repeated = int(repeated.sum())
    if not n_repeated or policy == "keep":
        return frame, n_repeated
    if policy == "first":
        return frame[~repeated].reset_index(drop=True), n_repeated
    second = _first(repeated)
    same = (frame[key] == frame[key].iloc[second]).all(axis=1).to_numpy()
    first = _first(same)
    raise ValueError(
        f"{source.name} has {n_repeated} row(s) repeating an earlier ({', '.join(names)}); the first pair is at "
        f"{source.row(first)} and {source.row(second)}: pass duplicates='first' to keep the first of each or "
        "duplicates='keep' to keep them all"
    )


def _entity_table(
    table: pd.DataFrame | str | os.PathLike[str] | None, key: str, renamed: str, what: str
) -> pd.DataFrame | None:
    """A user or item table keyed by ``key`` (renamed to ``renamed``), its ids present and unique."""
    if table is None:
        return None
    frame, source = _read(table, what)
    _require_columns(frame, source, {key: f"the {what} key, as in the log"})
    if key != renamed and renamed in frame.columns:
        raise ValueError(f"{source.name} has a column {renamed!r} beside its key {key!r}; rename or drop it")
    ids = _keys(frame, key, source, f"{what} key")
    _refuse(f"{what} key {key!r}", source, "be unique", ids, ids.duplicated().to_numpy())
    return frame.rename(columns={key: renamed}).reset_index(drop=True)


def load_interactions(
    log: pd.DataFrame | str | os.PathLike[str],
    *,
    user: str,
    item: str,
    time: str,
    tasks: Mapping[str, str | Mapping[str, Any]] | Sequence[TaskColumn | str],
    user_features: pd.DataFrame | str | os.PathLike[str] | None = None,
    user_sparse: Sequence[str] | None = None,
    user_dense: Sequence[str] | None = None,
    item_features: pd.DataFrame | str | os.PathLike[str] | None = None,
    item_sparse: Sequence[str] | None = None,
    item_dense: Sequence[str] | None = None,
    context_sparse: Sequence[str] = (),
    context_dense: Sequence[str] = (),
    positive: str | None = None,
    split: str = "temporal",
    split_fractions: Sequence[float] = (0.8, 0.1, 0.1),
    split_column: str | None = None,
    seq_len: int = 20,
    n_negatives: int = 0,
    n_eval_negatives: int | None = None,
    duplicates: str = "refuse",
    seed: int = 0,
) -> MultiTaskData:
    """Multi-task data from your own interaction log (any feedback columns, any number of tasks).

    The same function is the ``"interactions"`` entry of
    :data:`~mtlkit.data.datasets.DATASETS`, so a run trained on a log file is rebuilt by
    :func:`mtlkit.runs.load_run` from the arguments ``config.json`` records. A DataFrame cannot
    be recorded: pass a path when the run must be reloaded (``train_run`` writes whatever it is
    given; ``load_run`` needs a file).

    Args:
        log: a DataFrame, or a ``.csv``, ``.csv.gz`` or ``.parquet`` file; one row per
            impression (or interaction).
        user, item, time: the columns holding the user id, the item id and the time (numbers
            in any unit, or dates).
        tasks: the label columns, as :func:`~mtlkit.data.tasks.task_columns` reads them: e.g.
            ``{"is_click": "binary", "is_like": {"kind": "binary", "observed": "where:is_click"},
            "play_time_ms": {"kind": "regression", "transform": "log1p"}}``, or a list of
            :class:`~mtlkit.data.tasks.TaskColumn` / ``"COLUMN:KIND[:OPTION]..."`` strings. An
            empty cell is an unobserved label.
        user_features, item_features: optional tables (DataFrame or file) with one row per user
            / item, joined on the ``user`` / ``item`` column.
        user_sparse, user_dense, item_sparse, item_dense: the fields of those tables; None
            detects them (strings, categories, booleans sparse; numbers and lists dense).
        context_sparse, context_dense: columns of the log that are model inputs (e.g. the page
            an impression was shown on); no other log column is.
        positive: the binary column whose 1s are the positives: the behaviour sequence holds
            their items, leave-last-out holds out the last of them, sampled negatives are drawn
            for them. None: the first binary task observed on every row, else every row.
        split: ``"temporal"`` (default), ``"leave-last-out"`` or ``"random"``
            (:mod:`mtlkit.data.splits`), with ``split_fractions``.
        split_column: a column naming each row's split (``"train"``, ``"valid"``, ``"test"``);
            overrides ``split``.
        seq_len, n_negatives, n_eval_negatives, seed: as in
            :func:`~mtlkit.data.builder.build_multitask_data`.
        duplicates: the policy for rows repeating a (user, item, time): one of
            :data:`DUPLICATE_POLICIES` (the module docstring).

    Returns:
        the data; ``info`` adds ``source`` (the log's name), ``duplicate_rows`` (rows repeating
        an earlier (user, item, time), counted before the policy applied) and ``task_columns``
        (each task's declaration, transforms included).

    Raises:
        ValueError: one line per problem (the module docstring lists them).
        FileNotFoundError: a path that does not exist.
    """
    for name, value in (("user", user), ("item", item), ("time", time)):
        check_str(name, value, what="a column name")
    check_choice("duplicates", duplicates, DUPLICATE_POLICIES)
    declared = task_columns(tasks)
    table, source = _read(log, "log")
    if len(table) == 0:
        raise ValueError(f"{source.name} has no rows; a log needs at least one interaction")
    roles = {user: "user", item: "item", time: "time"}
    for task in declared:
        roles.setdefault(task.column, f"label of task {task.name!r}")
        if task.condition is not None:
            roles.setdefault(task.condition, f"observed {task.observed!r} of task {task.name!r}")
    leaking = sorted(set(roles) & {*context_sparse, *context_dense})
    if leaking:
        raise ValueError(
            f"context_sparse/context_dense must not name a label or id column (it would leak), got {leaking}"
        )
    for role, names in (("context_sparse", context_sparse), ("context_dense", context_dense)):
        roles.update({name: role for name in names})
    for role, name in (("positive", positive), ("split_column", split_column)):
        if name is not None:
            roles.setdefault(name, role)
    _require_columns(table, source, roles)
    reserved = sorted({C.USER_ID, C.ITEM_ID, C.TIMESTAMP} & (set(roles) - {user, item, time}))
    if reserved:
        raise ValueError(f"columns {reserved} of {source.name} are reserved for the user, item and time; rename them")
    if positive is None:
        positive = next((t.column for t in declared if t.kind == "binary" and t.observed == "all"), None)
    _check_labels(table, declared, positive, source)

    others = [name for name in roles if name not in (user, item, time)]
    frame = pd.DataFrame(
        {
            C.USER_ID: _keys(table, user, source, "user"),
            C.ITEM_ID: _keys(table, item, source, "item"),
            C.TIMESTAMP: _times(table, time, source),
            **{name: table[name].reset_index(drop=True) for name in others},
        }
    )
    frame, n_repeated = _duplicates(frame, duplicates, source, (user, item, time))
    users = _entity_table(user_features, user, C.USER_ID, "user_features")
    items = _entity_table(item_features, item, C.ITEM_ID, "item_features")
    data = build_multitask_data(
        frame, users, items, tasks=declared, split=split, split_column=split_column, positive=positive,
        seq_len=seq_len, n_negatives=n_negatives, n_eval_negatives=n_eval_negatives, split_fractions=split_fractions,
        user_sparse=user_sparse, user_dense=user_dense, item_sparse=item_sparse, item_dense=item_dense,
        context_sparse=context_sparse, context_dense=context_dense, seed=seed,
    )  # fmt: skip
    data.info.update(source=source.name, duplicate_rows=n_repeated, duplicates=duplicates)
    return data
