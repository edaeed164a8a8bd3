"""What an exercise is, what checking an answer returns, and the helpers every check uses.

An exercise of a notebook has an id (``"01.2"``: notebook 01, exercise 2), a one-line
statement, a kind, and a *judge*: ``judge(answer) -> str`` returns the feedback for a
correct answer and raises :class:`Mistake` with specific feedback for a wrong one — what the
answer got wrong, in the learner's terms ("your rows sum to 1.7; a softmax row sums to 1"),
not only that it is wrong. A judge compares with an independent reference (the ``mtlkit``
implementation, PyTorch, scikit-learn or a closed form), never with the reference solution;
:func:`reject_slips` lets it name the typical slips (a missing factor 2, a swapped pair) by
what they compute. Each notebook's module declares its exercises on their judges with
:class:`NotebookExercises`.

:meth:`Exercise.evaluate` turns the judge's verdict into a :class:`CheckResult`. An answer
that is still ``None``, or a stub that raises ``NotImplementedError`` when the judge calls
it, is "not attempted yet" — never an error — so a notebook whose exercise stubs are left as
they are runs to the end under papermill. Any other exception the learner's code raises is
reported as feedback, never re-raised.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = [
    "KINDS",
    "CheckResult",
    "Exercise",
    "Mistake",
    "NotebookExercises",
    "as_array",
    "as_tensor",
    "call",
    "deviation",
    "reject_slips",
    "require_function",
    "require_mapping",
    "require_number",
    "require_prediction",
    "seeded",
]

#: What kind of work an exercise asks for: derive a closed form, implement something and
#: verify it against mtlkit or a library, predict an outcome and then measure it, or run a
#: small experiment whose number the check judges within a tolerance.
KINDS = ("derive", "derive-and-verify", "predict-then-run", "experiment")

Judge = Callable[[Any], str]

_ID_PATTERN = re.compile(r"(?P<notebook>\d\d)\.(?P<number>[1-9]\d*)")


class Mistake(Exception):
    """A wrong answer; the message is the feedback shown to the learner."""


@dataclass(frozen=True)
class CheckResult:
    """The verdict on one answer: ``passed``, whether it was ``attempted``, and the ``feedback``."""

    exercise_id: str
    passed: bool
    attempted: bool
    feedback: str

    @property
    def status(self) -> str:
        """"passed", "failed" or "not attempted yet"."""
        if not self.attempted:
            return "not attempted yet"
        return "passed" if self.passed else "failed"

    def __str__(self) -> str:
        return f"{self.exercise_id} {self.status}: {self.feedback}"

    def _ipython_display_(self) -> None:
        """Show nothing more in a notebook: :meth:`Exercise.check` has printed the feedback
        already (``print(result)`` shows it again)."""


@dataclass(frozen=True)
class Exercise:
    """One checkable exercise of a notebook.

    Attributes:
        id: ``"NN.k"``, exercise k of notebook NN.
        notebook: the notebook's file stem, e.g. ``"01_attention"``.
        statement: the task in one line (the notebook holds the full statement).
        kind: one of :data:`KINDS`.
        judge: ``judge(answer) -> feedback``; raises :class:`Mistake` for a wrong answer.
    """

    id: str
    notebook: str
    statement: str
    kind: str
    judge: Judge

    def __post_init__(self) -> None:
        match = _ID_PATTERN.fullmatch(self.id)
        if match is None or not self.notebook.startswith(match["notebook"] + "_"):
            raise ValueError(f"id must be 'NN.k' with NN the notebook number of {self.notebook!r}, got {self.id!r}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")

    def evaluate(self, answer: Any) -> CheckResult:
        """Judge ``answer`` without printing; never raises for anything the learner wrote."""
        if answer is None:
            return CheckResult(self.id, False, False, "fill in the cell above, run it, then run this check again.")
        try:
            praise = self.judge(answer)
        except NotImplementedError:
            return CheckResult(self.id, False, False, "your function still raises NotImplementedError; "
                               "write its body, run the cell, then run this check again.")
        except Mistake as mistake:
            return CheckResult(self.id, False, True, str(mistake))
        except Exception as error:  # noqa: BLE001 - an answer of a shape or type the judge cannot use
            return CheckResult(self.id, False, True, f"could not use your answer: {type(error).__name__}: {error}")
        return CheckResult(self.id, True, True, praise)

    def check(self, answer: Any) -> CheckResult:
        """Judge ``answer``, print the feedback and return the result."""
        result = self.evaluate(answer)
        print(result)
        return result


class NotebookExercises:
    """The exercises of one notebook, each declared on its judge::

        EXERCISES = NotebookExercises("01_attention")

        @EXERCISES.add("01.2", "derive-and-verify", "causal_attention(query, key, value): ...")
        def judge_causal_attention(answer: Any) -> str: ...

    Iterating yields the :class:`Exercise` objects in the order they were declared.
    """

    def __init__(self, notebook: str) -> None:
        self.notebook = notebook
        self._exercises: list[Exercise] = []

    def add(self, exercise_id: str, kind: str, statement: str) -> Callable[[Judge], Judge]:
        """A decorator that registers its judge as exercise ``exercise_id`` and returns it unchanged."""

        def register(judge: Judge) -> Judge:
            self._exercises.append(Exercise(exercise_id, self.notebook, statement, kind, judge))
            return judge

        return register

    def __iter__(self) -> Iterator[Exercise]:
        return iter(self._exercises)


# --------------------------------------------------------------------------- helpers for judges
def require_function(answer: Any, signature: str) -> Callable[..., Any]:
    """The answer as a callable, or a Mistake naming the function that was expected."""
    if not callable(answer):
        raise Mistake(f"the answer must be the function {signature}, got {type(answer).__name__} {answer!r:.60}")
    return answer


def require_number(answer: Any, what: str = "the answer") -> float:
    """The answer as a finite float (a 0-dim tensor or NumPy scalar is fine), or a Mistake."""
    if isinstance(answer, torch.Tensor) and answer.numel() == 1 or isinstance(answer, np.ndarray) and answer.size == 1:
        answer = answer.item()
    if answer is None:
        raise Mistake(f"{what} must be a number, got None (did you forget `return`?)")
    if isinstance(answer, bool) or not isinstance(answer, numbers.Real):
        raise Mistake(f"{what} must be a number, got {type(answer).__name__} {answer!r:.60}")
    value = float(answer)
    if not math.isfinite(value):
        raise Mistake(f"{what} must be a finite number, got {value}")
    return value


def require_mapping(answer: Any, keys: Iterable[str]) -> dict[str, float]:
    """A dict answer with exactly ``keys``, each a finite number, or a Mistake naming what is off."""
    keys = list(keys)
    if not isinstance(answer, Mapping):
        raise Mistake(f"the answer must be a dict with the keys {keys}, got {type(answer).__name__}")
    if sorted(answer) != sorted(keys):
        raise Mistake(f"the answer must have exactly the keys {keys}, got {sorted(answer)}")
    return {key: require_number(answer[key], f"answer[{key!r}]") for key in keys}


def call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call the learner's function. ``NotImplementedError`` passes through (a stub); any other
    exception becomes a :class:`Mistake` whose ``__cause__`` is the original error."""
    try:
        return function(*args, **kwargs)
    except NotImplementedError:
        raise
    except Exception as error:
        raise Mistake(f"your function raised {type(error).__name__}: {error}") from error


def as_tensor(value: Any, what: str, shape: tuple[int, ...] | None = None) -> torch.Tensor:
    """A returned tensor (or array) as a CPU float64 tensor, checked against ``shape``."""
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor):
        returned = "None (did you forget `return`?)" if value is None else type(value).__name__
        raise Mistake(f"{what} must be a tensor, got {returned}")
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise Mistake(f"{what} has shape {tuple(value.shape)}, expected {tuple(shape)}")
    return value.detach().to("cpu", torch.float64)


def as_array(value: Any, what: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """A returned array (or tensor, or list) as a float64 NumPy array, checked against ``shape``."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if value is None:
        raise Mistake(f"{what} must be an array, got None (did you forget `return`?)")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise Mistake(f"{what} must be an array of numbers, got {type(value).__name__}") from None
    if shape is not None and array.shape != tuple(shape):
        raise Mistake(f"{what} has shape {array.shape}, expected {tuple(shape)}")
    return array


def deviation(got: torch.Tensor | np.ndarray, expected: torch.Tensor | np.ndarray) -> float:
    """max |got − expected| (inf when either holds a NaN where the other does not)."""
    got_array = np.atleast_1d(np.asarray(got.detach().cpu() if isinstance(got, torch.Tensor) else got,
                                         dtype=np.float64))
    expected_array = np.atleast_1d(np.asarray(expected.detach().cpu() if isinstance(expected, torch.Tensor)
                                              else expected, dtype=np.float64))
    if np.isnan(got_array).any() or np.isnan(expected_array).any():
        return 0.0 if np.array_equal(got_array, expected_array, equal_nan=True) else math.inf
    difference = np.abs(got_array - expected_array)
    difference[np.isinf(got_array) & (got_array == expected_array)] = 0.0  # the same infinity
    return float(difference.max()) if difference.size else 0.0


def reject_slips(got: Any, slips: Mapping[str, Any], hints: Mapping[str, str], tolerance: float = 1e-6) -> None:
    """Raise a :class:`Mistake` with ``hints[name]`` for the first slip whose value ``got`` equals.

    A judge lists what typical slips compute on its own inputs (a missing factor 2, a swapped
    pair, a forgotten mask) and says, in ``hints``, what each got wrong; the feedback then names
    the mistake instead of only reporting a wrong number. Equality is up to ``tolerance``,
    relative to the slip's largest entry (or absolute below 1); shapes must match.
    """
    for name, value in slips.items():
        if np.shape(got) != np.shape(value):
            continue
        if deviation(got, value) <= tolerance * max(deviation(value, np.zeros(np.shape(value))), 1.0):
            raise Mistake(hints[name])


def require_prediction(answer: Any, choices: Iterable[str], measured: str, what_measured: str) -> tuple[str, Any]:
    """A predict-then-run answer ``{"prediction": one of choices, measured: the value measured}``."""
    choices = tuple(choices)
    if not isinstance(answer, Mapping) or sorted(answer) != sorted(["prediction", measured]):
        spelled = " or ".join(repr(choice) for choice in choices)
        raise Mistake(f"the answer must be a dict {{'prediction': {spelled}, {measured!r}: {what_measured}}}")
    if answer["prediction"] not in choices:
        raise Mistake(f"answer['prediction'] must be one of {choices}, got {answer['prediction']!r}")
    return answer["prediction"], answer[measured]


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with torch's global generator seeded, restoring its state afterwards, so that a
    check building a module (whose initialisation draws from that generator) leaves the
    learner's random numbers as they were."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
