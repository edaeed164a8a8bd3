"""Argument checks shared by the whole package: one wording, one behaviour, one place.

Every public function of mtlkit validates its arguments once, at the boundary, with these
helpers, so a bad value always fails the same way:

* a value of the wrong *type* raises :class:`ArgumentTypeError` — a ``TypeError`` that is
  also a ``ValueError``, so code that catches bad values (the command line does) catches it
  too;
* a value of the right type but out of range raises ``ValueError``;
* the message names the argument, says what was expected and shows what was given:
  ``"n_heads must be an int >= 1, got 0"``.

``bool`` is never accepted where a number is expected (``True`` is an ``int`` to Python, but
``n_layers=True`` is a mistake), and NumPy scalars are accepted where Python numbers are.
Each check returns the value normalised (``int``, ``float``, ``tuple``), so a caller writes
``self.lr = check_number("lr", lr, low=0, low_open=True)``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection, Sequence
from typing import Any, TypeVar

__all__ = [
    "ArgumentTypeError",
    "check_bool",
    "check_choice",
    "check_int",
    "check_number",
    "check_probability",
    "check_seed",
    "check_sizes",
    "check_str",
    "check_tensor",
]

T = TypeVar("T")

#: The largest seed: torch's generators take unsigned 64-bit seeds, NumPy's legacy one 32-bit
#: (mtlkit reduces it modulo 2**32 there); below 2**63 every generator and JSON reader copes.
SEED_LIMIT = 2**63 - 1


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type (a ``TypeError``, and a ``ValueError`` for callers that
    catch every bad argument as one)."""


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    """The accepted range in words: ``">= 1"``, ``"in [0, 1)"``, ``"> 0"``."""
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high}"
    return ""


def _in_range(value: float, low: float | None, high: float | None, low_open: bool, high_open: bool) -> bool:
    if low is not None and (value <= low if low_open else value < low):
        return False
    return not (high is not None and (value >= high if high_open else value > high))


def check_int(name: str, value: Any, *, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an ``int`` in [low, high] (either bound optional)."""
    words = _interval(low, high, False, False)
    expected = f"an int{' ' + words if words else ''}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(f"{name} must be {expected}, got {value!r}")
    if not _in_range(value, low, high, False, False):
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return int(value)


def check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    finite: bool = True,
) -> float:
    """``value`` as a ``float`` in the interval from ``low`` to ``high``.

    ``low_open`` / ``high_open`` exclude the bound itself (``low=0, low_open=True``: > 0).
    NaN is always refused; infinity too unless ``finite=False``.
    """
    words = _interval(low, high, low_open, high_open)
    expected = f"a {'finite ' if finite else ''}number{' ' + words if words else ''}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(f"{name} must be {expected}, got {value!r}")
    value = float(value)
    if math.isnan(value) or (finite and math.isinf(value)) or not _in_range(value, low, high, low_open, high_open):
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return value


def check_probability(name: str, value: Any) -> float:
    """A dropout-like probability: a number in [0, 1)."""
    return check_number(name, value, low=0.0, high=1.0, high_open=True)


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is a ``bool`` (not merely truthy)."""
    if not isinstance(value, bool):
        raise ArgumentTypeError(f"{name} must be a bool, got {value!r}")
    return value


def check_str(name: str, value: Any, *, what: str = "a non-empty string") -> str:
    """``value`` if it is a non-empty ``str``; ``what`` says what the string names."""
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{name} must be {what}, got {value!r}")
    if not value:
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return value


def check_choice(name: str, value: T, choices: Collection[T]) -> T:
    """``value`` if it is one of ``choices`` (listed in the message)."""
    try:
        known = value in choices
    except TypeError:  # unhashable value against a set or dict
        known = False
    if not known:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def check_tensor(name: str, value: Any) -> Any:
    """``value`` if it is a ``torch.Tensor`` (dtype and shape are the caller's to check).

    torch is imported here, not at the top: ``mtlkit.viz`` uses these checks and loads no torch.
    """
    import torch

    if not isinstance(value, torch.Tensor):
        raise ArgumentTypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def check_sizes(name: str, value: Any, *, allow_empty: bool = False) -> tuple[int, ...]:
    """Layer sizes: a sequence of ints >= 1 (a JSON list becomes a tuple)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ArgumentTypeError(f"{name} must be a sequence of positive ints, got {value!r}")
    if not allow_empty and not value:
        raise ValueError(f"{name} must have at least one layer size, got {value!r}")
    return tuple(check_int(f"{name}[{i}]", size, low=1) for i, size in enumerate(value))


def check_seed(name: str, value: Any) -> int:
    """A random seed: an int in [0, 2**63 - 1] (:data:`SEED_LIMIT`)."""
    return check_int(name, value, low=0, high=SEED_LIMIT)
