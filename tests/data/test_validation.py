"""mtlkit.data.validation: line numbers as pandas counts records, and the first bad record wins."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd
import pytest

from mtlkit.data.validation import (
    Column,
    Reference,
    SourceFile,
    TableSchema,
    check_table,
)

# (separator, text, the line of each record pandas reads from it)
TEXTS = [
    ("\t", "a\tx\nb\tx\nc\tx", [1, 2, 3]),  # no newline at the end
    ("\t", "a\tx\n\nb\tx\n  \nc\tx\n\n", [1, 3, 5]),  # blank and space-only lines are skipped
    ("\t", "a\tx\n\t\nb\tx\n", [1, 2, 3]),  # a line of one tab is a record of empty fields here...
    ("|", "a|x\n\t\nb|x\n \t \nc|x\n", [1, 3, 5]),  # ... but blank with any other separator
    ("|", "a|x\r\nb|x\r\n\r\nc|x\rd|x", [1, 2, 4, 5]),  # Windows and old Mac line ends
]


@pytest.mark.parametrize(("sep", "text", "lines"), TEXTS)
def test_record_lines_are_those_pandas_reads(sep: str, text: str, lines: list[int]) -> None:
    table = pd.read_csv(io.StringIO(text), sep=sep, names=["id", "value"], header=None, quoting=csv.QUOTE_NONE)
    source = SourceFile(Path("f.txt"), sep, lambda: text)
    assert [source.line(record) for record in range(len(table))] == lines


SCHEMA = TableSchema(
    columns=(Column("id", "integer", low=1), Column("score", "number", low=0, high=1),
             Column("note", nullable=True)),
    unique=(("id",),),
    references=(Reference("id", "ids.txt"),),
)  # fmt: skip


def check(rows: list[tuple[object, object, object]], **references: list[object]) -> None:
    text = "\n".join("|".join("" if value is None else str(value) for value in row) for row in rows)
    table = pd.read_csv(io.StringIO(text), sep="|", names=["id", "score", "note"], header=None, dtype={"note": str})
    known = {f"{name}.txt": values for name, values in references.items()}
    check_table(table, SCHEMA, SourceFile(Path("t.txt"), "|", lambda: text), known)


def test_the_first_bad_record_in_the_file_is_named_whatever_the_rule() -> None:
    rows = [(1, 0.5, None), (2, 0.5, "a"), (2, 0.5, None), (4, 1.5, None)]
    with pytest.raises(ValueError, match=r"^t.txt line 3: id must be unique, got 2 again \(first on line 2\)$"):
        check(rows)
    rows[2] = (3, 0.5, None)
    with pytest.raises(ValueError, match=r"^t.txt line 4: score must be a number in 0..1, got 1.5$"):
        check(rows)


def test_on_one_record_the_first_rule_of_the_schema_is_named() -> None:
    with pytest.raises(ValueError, match=r"^t.txt line 2: id must be an integer >= 1, got 0$"):
        check([(1, 0.5, None), (0, 2.0, None)], ids=[1])  # also a bad score and an unknown id


def test_references_are_checked_when_given() -> None:
    rows = [(1, 0.5, None), (7, 0.5, "a")]
    check(rows)  # no ids.txt given: not checked
    check(rows, ids=[1, 7])
    with pytest.raises(ValueError, match=r"^t.txt line 2: id 7 is not in ids.txt$"):
        check(rows, ids=[1, 2])


def test_an_empty_value_is_shown_as_nothing() -> None:
    with pytest.raises(ValueError, match=r"^t.txt line 1: score must be a number in 0..1, got nothing$"):
        check([(1, None, None)])
