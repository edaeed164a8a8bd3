"""Exercises a learner can check: one module per notebook, one registry, one :func:`check`.

    from mtlkit import exercises
    exercises.check("01.2", causal_attention)   # prints the feedback, returns a CheckResult

Each notebook's Exercises section holds, for every checkable exercise, its statement, a stub
cell the learner fills in (a function raising ``NotImplementedError``, or ``answer = None``)
and a cell that calls :func:`check`; an untouched stub prints "not attempted yet" and never
stops the notebook. ``python -m mtlkit exercises`` lists them; with ``--solutions`` it runs
every reference solution through its check.

The reference solutions are not part of the package, so that a learner does not read them
by accident: they live in ``notebooks/solutions/`` of a repository checkout, one file per
notebook (``notebooks/solutions/01_attention.py``) holding a dict ``SOLUTIONS`` from
exercise id to answer. :func:`solution` runs that file with :func:`runpy.run_path`, which
imports nothing into ``sys.modules`` and writes no bytecode next to the notebooks.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import runpy
from pathlib import Path
from typing import Any

from mtlkit.exercises.exercise import KINDS, CheckResult, Exercise

__all__ = ["EXERCISES", "KINDS", "SOLUTIONS_DIR", "CheckResult", "Exercise", "check", "exercise", "exercises_of",
           "solution"]

#: One module per notebook, ``nbNN_<notebook>.py``, each with a tuple ``EXERCISES``: adding a
#: notebook's exercises means adding its module, nothing else.
_MODULES = tuple(importlib.import_module(f"{__name__}.{module.name}")
                 for module in sorted(pkgutil.iter_modules(__path__), key=lambda module: module.name)
                 if module.name.startswith("nb"))


def _registry() -> dict[str, Exercise]:
    registry: dict[str, Exercise] = {}
    for module in _MODULES:
        for item in module.EXERCISES:
            if item.id in registry:
                raise ValueError(f"exercise ids must be unique, got {item.id!r} twice")
            registry[item.id] = item
    return registry


#: Every checkable exercise, by id, in the order of the notebooks.
EXERCISES: dict[str, Exercise] = _registry()

#: Where the reference solutions live: ``notebooks/solutions/`` of the repository checkout.
SOLUTIONS_DIR = Path(__file__).resolve().parents[2] / "notebooks" / "solutions"


def exercise(exercise_id: str) -> Exercise:
    """The exercise with this id, e.g. ``"01.2"``."""
    if exercise_id not in EXERCISES:
        raise ValueError(f"exercise_id must be one of {', '.join(EXERCISES)}, got {exercise_id!r}")
    return EXERCISES[exercise_id]


def check(exercise_id: str, answer: Any) -> CheckResult:
    """Judge ``answer`` to exercise ``exercise_id``, print the feedback and return the result.

    ``answer`` is what the exercise asks for (usually a function, a number or a dict); ``None``
    or a function that still raises ``NotImplementedError`` is reported as not attempted.
    """
    return exercise(exercise_id).check(answer)


def exercises_of(notebook: str) -> list[Exercise]:
    """The exercises of one notebook, given by number (``"01"``) or file stem (``"01_attention"``)."""
    number = notebook.split("_")[0]
    found = [item for item in EXERCISES.values() if item.notebook.split("_")[0] == number]
    if not found:
        notebooks = sorted({item.notebook for item in EXERCISES.values()})
        raise ValueError(f"notebook must be one of {notebooks} (or its number), got {notebook!r}")
    return found


@functools.cache
def _solutions_file(path: Path) -> dict[str, Any]:
    return runpy.run_path(str(path))["SOLUTIONS"]


def solution(exercise_id: str, solutions_dir: Path | None = None) -> Any:
    """The reference answer to ``exercise_id``, read from ``<solutions_dir>/<notebook>.py``
    (default :data:`SOLUTIONS_DIR`)."""
    item = exercise(exercise_id)
    path = Path(SOLUTIONS_DIR if solutions_dir is None else solutions_dir) / f"{item.notebook}.py"
    if not path.is_file():
        raise FileNotFoundError(
            f"the reference solutions live in notebooks/solutions/ of a repository checkout; {path} does not exist "
            "(an installed wheel ships without them)"
        )
    solutions = _solutions_file(path.resolve())
    if exercise_id not in solutions:
        raise ValueError(f"{path} must define SOLUTIONS[{exercise_id!r}], got the ids {sorted(solutions)}")
    return solutions[exercise_id]
