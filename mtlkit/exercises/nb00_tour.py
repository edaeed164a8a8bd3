"""Exercises of notebook 00 (the tour): the cost of a matrix product, and how papermill
reads and overrides a notebook's parameters."""

from __future__ import annotations

import ast
import copy
from typing import Any

from mtlkit.exercises.exercise import (
    Mistake,
    NotebookExercises,
    call,
    reject_slips,
    require_function,
    require_number,
)

EXERCISES = NotebookExercises("00_tour")


# --------------------------------------------------------------------------- 00.1
@EXERCISES.add("00.1", "derive", "arithmetic_intensity(n, bytes_per_element): flops per byte moved by an n x n matmul")
def judge_arithmetic_intensity(answer: Any) -> str:
    """Arithmetic intensity of C = A B for n x n matrices: flops / bytes moved = 2n³ / (3n² b) = 2n / (3b).

    n³ multiply-adds are 2n³ floating-point operations; A and B are read and C written once,
    3n² elements of b bytes each (the minimum any kernel must move).
    """
    intensity = require_function(answer, "arithmetic_intensity(n, bytes_per_element)")
    cases = [(256, 4), (4096, 4), (1000, 2), (3, 8)]
    got = [require_number(call(intensity, n, b), f"arithmetic_intensity({n}, {b})") for n, b in cases]
    slips = {
        "half": [n / (3 * b) for n, b in cases],
        "two matrices": [n / b for n, b in cases],
        "elements": [2 * n / 3 for n, b in cases],
        "flops": [2 * n**3 for n, b in cases],
    }
    hints = {
        "half": "your intensity is half the true one: n³ multiply-adds are 2n³ floating-point operations "
                "(a multiply and an add each)",
        "two matrices": "you counted only A and B as moved: C = A B is written back too, 3n² elements in all",
        "elements": "you counted elements, not bytes: divide by bytes_per_element",
        "flops": "you returned the flops, 2n³; divide them by the bytes moved, 3n² · bytes_per_element",
    }
    reject_slips(got, slips, hints)
    expected = [2 * n / (3 * b) for n, b in cases]
    for (n, b), value, target in zip(cases, got, expected):
        if abs(value - target) > 1e-9 * target:
            raise Mistake(f"for n = {n}, {b} bytes per element you return {value:.6g}, expected {target:.6g} "
                          "flops per byte (2n³ flops over 3n² elements moved)")
    return ("2n/(3b): 683 flops per byte at n = 4096 in float32 but 43 at n = 256. A GPU needs about a hundred "
            "flops per byte to keep its cores busy, so a small product waits on memory and a large one does not: "
            "that is why its advantage grows with n.")


# --------------------------------------------------------------------------- 00.2
PARAMETER_SOURCES = (
    "QUICK = True  # True: quick = small sizes\nSEED = 0\nDEVICE = \"auto\"  # auto, cpu or cuda\n",
    "# LR = 0.1 was the old default\nLR = 0.02\nSTEPS = None  # quick 300, full 2000\n",
    "N_PAIRS: int = 20_000  # pairs per estimate\nBASE=10000.0\n\nWORLD = {\"n_users\": 300}  # a dict value\n",
    "D_VALUES = None  # quick [4, 16], full [4, 16, 64]\nCHECK = SEED == 0  # a comparison == is not an assignment\n",
)


def _assigned_names(source: str) -> list[str]:
    """The names a cell assigns at top level, in order, read with ``ast`` (the reference)."""
    names = []
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        names += [target.id for target in targets if isinstance(target, ast.Name)]
    return names


@EXERCISES.add("00.2", "derive-and-verify",
               "parameter_names(source): the names a parameters cell assigns, as papermill reads them")
def judge_parameter_names(answer: Any) -> str:
    """The names a parameters cell assigns, as papermill's ``inspect_notebook`` reports them."""
    parameter_names = require_function(answer, "parameter_names(source)")
    for source in PARAMETER_SOURCES:
        got = call(parameter_names, source)
        if not isinstance(got, (list, tuple)) or not all(isinstance(name, str) for name in got):
            raise Mistake(f"parameter_names must return a list of names (str), got {got!r:.80}")
        expected = _assigned_names(source)
        if list(got) == expected:
            continue
        extra = [name for name in got if name not in expected]
        missing = [name for name in expected if name not in got]
        if any("#" in name for name in extra):
            raise Mistake(f"for the cell\n{source}you return {list(got)}: {extra} come from a comment, which assigns "
                          "nothing; parse the source (ast.parse) instead of splitting lines at '='")
        if any(name != name.strip() or ":" in name or " " in name for name in extra):
            raise Mistake(f"for the cell\n{source}you return {list(got)}: a name must not keep the spaces or the "
                          "type annotation around it (N_PAIRS: int = ... assigns N_PAIRS)")
        if missing:
            raise Mistake(f"for the cell\n{source}you return {list(got)} and miss {missing}: every top-level "
                          "assignment is a parameter, with or without a type annotation or spaces around '='")
        raise Mistake(f"for the cell\n{source}you return {list(got)}, expected {expected} (in the cell's order)")
    return ("you read the names as Python does, so comments, comparisons and annotations cannot fool you; "
            "papermill's inspect_notebook gives the same lists.")


# --------------------------------------------------------------------------- 00.3
def _code_cell(source: str, tags: list[str] | None = None) -> dict[str, Any]:
    metadata = {"tags": list(tags)} if tags else {}
    return {"cell_type": "code", "execution_count": None, "metadata": metadata, "outputs": [], "source": source}


def _example_notebook() -> dict[str, Any]:
    """A small notebook whose parameters cell is not the first cell."""
    return {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": "# A notebook"},
            _code_cell("QUICK = True  # small sizes\nDEVICE = \"auto\"\nSTEPS = None", ["parameters"]),
            _code_cell("import sys"),
            _code_cell("if STEPS is None:\n    STEPS = 300 if QUICK else 2000"),
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _cell_source(cell: Any) -> str:
    source = cell.get("source", "") if isinstance(cell, dict) else ""
    return "".join(source) if isinstance(source, list) else str(source)


@EXERCISES.add("00.3", "derive-and-verify",
               "inject_parameters(notebook, parameters): papermill's injected-parameters cell")
def judge_inject_parameters(answer: Any) -> str:
    """papermill's injection: a new code cell tagged ``injected-parameters``, right after the
    cell tagged ``parameters``, assigning each new value with its ``repr``."""
    inject_parameters = require_function(answer, "inject_parameters(notebook, parameters)")
    notebook = _example_notebook()
    given = copy.deepcopy(notebook)
    parameters = {"QUICK": False, "DEVICE": "cuda", "STEPS": 50}
    result = call(inject_parameters, given, dict(parameters))
    if given != notebook:
        raise Mistake("your function changed the notebook it was given; papermill writes a new one and leaves the "
                      "input as it was (copy it first, e.g. with copy.deepcopy)")
    cells = result.get("cells") if isinstance(result, dict) else None
    if not isinstance(cells, list):
        raise Mistake(f"inject_parameters must return a notebook dict with a 'cells' list, got {type(result).__name__}")
    if len(cells) != len(notebook["cells"]) + 1:
        raise Mistake(f"your notebook has {len(cells)} cells; the input has {len(notebook['cells'])} and papermill "
                      "adds exactly one")
    tagged = [i for i, cell in enumerate(cells)
              if isinstance(cell, dict) and "injected-parameters" in cell.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        raise Mistake(f"{len(tagged)} cells carry the tag 'injected-parameters' (in metadata['tags']); exactly the "
                      "new cell must")
    position = tagged[0]
    if position != 2:
        raise Mistake(f"your injected cell is cell {position}; papermill puts it right after the cell tagged "
                      "'parameters' (cell 1), so the new values replace the defaults before any later cell runs")
    if cells[position].get("cell_type") != "code":
        raise Mistake("the injected cell must be a code cell (cell_type 'code')")
    others = cells[:position] + cells[position + 1:]
    if others != notebook["cells"]:
        raise Mistake("you changed the other cells (the parameters cell keeps its defaults: the injected cell "
                      "after it overrides them)")
    namespace: dict[str, Any] = {}
    try:
        exec(_cell_source(cells[position]), namespace)  # noqa: S102 - the cell the learner's function generated
    except Exception as error:  # noqa: BLE001 - whatever running it raises is the learner's feedback
        raise Mistake(f"running your injected cell raised {type(error).__name__}: {error} — write each value "
                      "with repr(), so that the string 'cuda' becomes DEVICE = 'cuda' and not DEVICE = cuda") from None
    assigned = {name: namespace[name] for name in parameters if name in namespace}
    if assigned != parameters:
        wrong = {name: namespace.get(name, "<not set>") for name in parameters if namespace.get(name) != parameters[name]
                 or type(namespace.get(name)) is not type(parameters[name])}
        raise Mistake(f"running your injected cell sets {wrong}, expected {parameters}: write each value with "
                      "repr() so that a bool stays a bool and a str a str")
    return ("this is what `papermill -p QUICK False -p DEVICE cuda` does: the defaults stay readable in the "
            "parameters cell and the run's values follow in their own tagged cell.")
