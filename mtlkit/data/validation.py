"""Check a parsed data file against a declarative schema before anything trusts it.

A checksum proves that a file is the one its publisher released; it says nothing about a copy
a user extracted and edited, or about a file that never had a checksum. So every loader in
``mtlkit.data`` describes each table it reads with a :class:`TableSchema` — what each
column may hold (:class:`Column`: integer, number or text; a range; a set of allowed values;
whether it may be empty), which columns form a unique key, and which columns must name a key
of another file (:class:`Reference`, a foreign key) — and passes the parsed table to
:func:`check_table`. The check is vectorised (one pass of NumPy/pandas per rule, a fraction of
a second for the million ratings of MovieLens 1M) and stops at the *first* offending record in
file order, over all rules, raising a one-line ``ValueError`` that says where and what::

    ml-100k/u.data line 17: rating must be an integer in 1..5, got 7
    ml-100k/u.data line 5: item_id 1700 is not in u.item
    ml-100k/u.user line 9: user_id must be unique, got 3 again (first on line 2)

Line numbers are those of the file, not row positions: :class:`SourceFile` maps a record back
to its line the way pandas' C parser counts records (blank lines skipped), and does so only
when there is an error to report, so a valid file pays nothing for it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

__all__ = ["Column", "Reference", "SourceFile", "TableSchema", "check_table"]

_LINE_END = re.compile(r"\r\n|\r|\n")  # the line ends pandas' C parser accepts


@dataclass(frozen=True)
class Column:
    """What every value of one column may be.

    ``kind``: ``"integer"`` (an integral number, whatever dtype or text the parser produced),
    ``"number"`` (a finite number) or ``"text"``. ``low`` / ``high``: inclusive bounds
    (either optional; numbers only). ``allowed``: the only values accepted (compared as
    parsed: ``"94"`` for a text column, ``94`` for an integer one). ``separator``: the field
    holds a list (``"Action|Comedy"``): every item of it must pass. ``nullable``: the field
    may be empty; otherwise an empty or missing field is an error.
    """

    name: str
    kind: Literal["integer", "number", "text"] = "text"
    low: float | None = None
    high: float | None = None
    allowed: tuple[object, ...] | None = None
    separator: str | None = None
    nullable: bool = False

    def expected(self) -> str:
        """What a valid value is, in words: ``"an integer in 1..5"``, ``"one of ['F', 'M']"``."""
        if self.allowed is not None:
            words = f"one of {list(self.allowed)}"
        elif self.kind == "text":
            words = "non-empty"
        else:
            words = "an integer" if self.kind == "integer" else "a number"
            if self.low is not None and self.high is not None:
                words += f" in {self.low}..{self.high}"
            elif self.low is not None:
                words += f" >= {self.low}"
            elif self.high is not None:
                words += f" <= {self.high}"
        if self.separator is not None:
            words = f"a {self.separator!r}-separated list of items each {words}"
        return words

    def bad(self, values: pd.Series) -> np.ndarray:
        """A bool mask, True where a value breaks this column's rule.

        ``values``: the column; for a list column (``separator``), its items, one per entry.
        """
        missing = values.isna().to_numpy()
        if self.kind == "text":
            bad = missing | (values.to_numpy(dtype=object) == "")
            if self.allowed is not None:
                bad |= ~values.isin(self.allowed).to_numpy()
        else:
            numbers = _as_float(values)
            bad = ~np.isfinite(numbers)
            if self.kind == "integer":
                bad |= np.floor(numbers) != numbers
            if self.low is not None:
                bad |= numbers < self.low
            if self.high is not None:
                bad |= numbers > self.high
            if self.allowed is not None:
                bad |= ~np.isin(numbers, np.asarray(self.allowed, dtype=np.float64))
        return bad & ~missing if self.nullable else bad


@dataclass(frozen=True)
class Reference:
    """A foreign key: every value of ``column`` must be a key of the file named ``table``."""

    column: str
    table: str  # the referenced file's name, as the message shows it: "u.item"


@dataclass(frozen=True)
class TableSchema:
    """The documented shape of one file: its columns, unique keys and foreign keys."""

    columns: tuple[Column, ...]
    unique: tuple[tuple[str, ...], ...] = ()  # each a key: no two records may share its values
    references: tuple[Reference, ...] = ()


@dataclass(frozen=True)
class SourceFile:
    """Where a parsed table came from: the path shown in messages, and its text for line numbers.

    ``text`` returns the text pandas parsed (called only to report an error); ``sep`` is the
    separator it was parsed with, which decides what pandas counts as a blank line.
    """

    path: Path
    sep: str
    text: Callable[[], str]

    def line(self, record: int) -> int:
        """The 1-based line number of ``record`` (0-based, in file order, no header).

        pandas' C parser skips blank lines: lines of spaces and tabs only, unless the
        separator is one of them (a line of tabs in a tab-separated file is a record of empty
        fields).
        """
        blank = set(" \t") - set(self.sep)
        lines = _LINE_END.split(self.text())
        return [number for number, text in enumerate(lines, start=1) if not set(text) <= blank][record]


@dataclass(frozen=True)
class _Problem:
    """The first offending record of one rule and what is wrong with it."""

    record: int  # 0-based record number in the file
    message: str  # what is wrong, without the location
    earlier: int | None = None  # the record it clashes with (a duplicate key)


def check_table(
    table: pd.DataFrame,
    schema: TableSchema,
    source: SourceFile,
    references: Mapping[str, Collection[object]] | None = None,
) -> None:
    """Raise a one-line ``ValueError`` at the first record of ``table`` that breaks ``schema``.

    Args:
        table: the parsed file, one row per record, index = the 0-based record number (as
            ``pd.read_csv`` numbers them), columns named as in ``schema``.
        schema: the columns' rules, unique keys and foreign keys.
        source: the file, for the message: ``"<path> line <n>: <column> must be <what>,
            got <value>"``.
        references: the keys of each referenced file, by the name a :class:`Reference` gives.
            A reference to a file not given here is not checked (an optional file a copy may
            lack, such as MovieLens 100K's ``u.occupation``).

    Every rule is checked on every record; the error names the record that comes first in
    the file (on a tie, the rule that comes first in ``schema``).
    """
    references = references or {}
    found = [_first_bad_value(table, column) for column in schema.columns]
    found += [_first_duplicate(table, key) for key in schema.unique]
    found += [
        _first_dangling(table, reference, references[reference.table])
        for reference in schema.references
        if reference.table in references
    ]
    problems = [problem for problem in found if problem is not None]
    if not problems:
        return
    first = min(problems, key=lambda problem: problem.record)  # min keeps the earliest rule on ties
    message = f"{source.path} line {source.line(first.record)}: {first.message}"
    if first.earlier is not None:
        message += f" (first on line {source.line(first.earlier)})"
    raise ValueError(message)


def _first_bad_value(table: pd.DataFrame, column: Column) -> _Problem | None:
    values = table[column.name]
    if column.separator is not None:
        # one entry per item; explode keeps each item's record number as its index
        values = values.str.split(column.separator, regex=False).explode()
    return _at_first(column.bad(values), values.index, lambda position: (
        f"{column.name} must be {column.expected()}, got {_shown(values.iloc[position])}"
    ))  # fmt: skip


def _first_dangling(table: pd.DataFrame, reference: Reference, keys: Collection[object]) -> _Problem | None:
    values = table[reference.column]
    return _at_first(~values.isin(keys).to_numpy(), table.index, lambda position: (
        f"{reference.column} {_shown(values.iloc[position])} is not in {reference.table}"
    ))  # fmt: skip


def _first_duplicate(table: pd.DataFrame, key: tuple[str, ...]) -> _Problem | None:
    repeated = table.duplicated(subset=list(key), keep="first").to_numpy()
    if not repeated.any():
        return None
    position = int(repeated.argmax())
    values = [table[name].iloc[position] for name in key]
    same = np.logical_and.reduce([table[name].to_numpy() == value for name, value in zip(key, values)])
    if len(key) == 1:
        names, shown = key[0], _shown(values[0])
    else:
        names, shown = f"({', '.join(key)})", f"({', '.join(_shown(v) for v in values)})"
    return _Problem(
        int(table.index[position]),
        f"{names} must be unique, got {shown} again",
        earlier=int(table.index[int(same.argmax())]),
    )


def _at_first(bad: np.ndarray, records: pd.Index, describe: Callable[[int], str]) -> _Problem | None:
    """The problem at the first position where ``bad`` is True (``records[position]`` is its
    record number, ``describe(position)`` what is wrong); None where nothing is."""
    if not bad.any():
        return None
    position = int(bad.argmax())
    return _Problem(int(records[position]), describe(position))


def _as_float(values: pd.Series) -> np.ndarray:
    """``values`` as float64; text that is not a number becomes NaN.

    Text is converted once per distinct value: a code column (census' industry recode) holds
    a few dozen values in 200,000 rows, and ``pd.to_numeric`` is slow per string.
    """
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    codes, distinct = pd.factorize(values, use_na_sentinel=False)
    numbers = pd.to_numeric(pd.Series(distinct, dtype=object), errors="coerce")
    return numbers.to_numpy(dtype=np.float64, na_value=np.nan)[codes]


def _shown(value: object) -> str:
    """A value as the message shows it: ``7``, ``'X'``, ``3.5``; an empty or missing field
    (NaN, or ``""`` where the parser keeps empty text) is ``nothing``."""
    if pd.api.types.is_scalar(value) and (pd.isna(value) or value == ""):
        return "nothing"
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 7.0 in a float column (another field was empty) was written 7
    return repr(value)
