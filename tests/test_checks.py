"""mtlkit.checks: what each check accepts and returns, what it refuses, and how it says so."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from mtlkit.checks import (
    ArgumentTypeError,
    check_bool,
    check_choice,
    check_int,
    check_number,
    check_probability,
    check_sizes,
    check_str,
    check_tensor,
)


def refused(error: type[Exception], message: str, call, *args, **kwargs) -> pytest.ExceptionInfo:
    """``call(*args, **kwargs)`` raises ``error`` with exactly ``message``."""
    with pytest.raises(error, match=f"^{re.escape(message)}$") as info:
        call(*args, **kwargs)
    return info


def test_a_wrong_type_is_both_a_type_error_and_a_value_error():
    assert issubclass(ArgumentTypeError, TypeError) and issubclass(ArgumentTypeError, ValueError)
    for call in (lambda: check_int("n", "3"), lambda: check_number("x", None), lambda: check_bool("b", 1),
                 lambda: check_str("s", 3), lambda: check_sizes("h", "64"), lambda: check_tensor("t", [1.0])):
        with pytest.raises(TypeError):
            call()
        with pytest.raises(ValueError):
            call()


def test_an_out_of_range_value_is_a_value_error_only():
    info = refused(ValueError, "n_heads must be an int >= 1, got 0", check_int, "n_heads", 0, low=1)
    assert not isinstance(info.value, TypeError)


# --------------------------------------------------------------------------- check_int
@pytest.mark.parametrize("value", [3, np.int64(3), np.int8(3), np.uint16(3)])
def test_check_int_accepts_python_and_numpy_ints_and_returns_an_int(value):
    result = check_int("n", value, low=1)
    assert result == 3 and type(result) is int


@pytest.mark.parametrize("value", [True, False, np.bool_(True), 3.0, np.float64(3), "3", None, [3]])
def test_check_int_refuses_bools_floats_and_other_types(value):
    with pytest.raises(ArgumentTypeError, match=r"^n must be an int, got "):
        check_int("n", value)


def test_check_int_bounds_are_inclusive():
    assert check_int("k", 1, low=1) == 1 and check_int("k", 5, high=5) == 5
    assert check_int("i", -3, low=-3, high=2) == -3
    refused(ValueError, "k must be an int >= 1, got 0", check_int, "k", 0, low=1)
    refused(ValueError, "k must be an int <= 5, got 6", check_int, "k", 6, high=5)
    refused(ValueError, "i must be an int in [-3, 2], got 3", check_int, "i", 3, low=-3, high=2)
    refused(ArgumentTypeError, "i must be an int in [-3, 2], got 1.5", check_int, "i", 1.5, low=-3, high=2)


# --------------------------------------------------------------------------- check_number
@pytest.mark.parametrize("value", [2, 2.5, np.float32(2.5), np.float64(2.5), np.int64(2)])
def test_check_number_accepts_real_numbers_and_returns_a_float(value):
    result = check_number("lr", value)
    assert result == float(value) and type(result) is float


@pytest.mark.parametrize("value", [True, np.bool_(False), "0.1", None, 1j, torch.tensor(0.1)])
def test_check_number_refuses_bools_and_non_numbers(value):
    with pytest.raises(ArgumentTypeError, match=r"^lr must be a finite number, got "):
        check_number("lr", value)


def test_check_number_refuses_nan_always_and_infinity_unless_asked():
    refused(ValueError, "x must be a finite number, got nan", check_number, "x", math.nan)
    refused(ValueError, "x must be a number, got nan", check_number, "x", np.nan, finite=False)
    refused(ValueError, "x must be a finite number >= 0, got inf", check_number, "x", math.inf, low=0)
    refused(ValueError, "x must be a finite number, got -inf", check_number, "x", -np.inf)
    assert check_number("x", math.inf, low=0, finite=False) == math.inf


def test_check_number_open_and_closed_bounds():
    assert check_number("c", 0, low=0) == 0.0
    refused(ValueError, "lr must be a finite number > 0, got 0.0", check_number, "lr", 0.0, low=0, low_open=True)
    assert check_number("p", 1, high=1) == 1.0
    refused(ValueError, "p must be a finite number < 1, got 1.0", check_number, "p", 1.0, high=1, high_open=True)
    refused(ValueError, "s must be a finite number in [0, 1), got 1.0",
            check_number, "s", 1.0, low=0, high=1, high_open=True)
    refused(ValueError, "s must be a finite number in (0, 1], got 0.0",
            check_number, "s", 0.0, low=0, high=1, low_open=True)
    assert check_number("s", 0.5, low=0, high=1, low_open=True, high_open=True) == 0.5


# --------------------------------------------------------------------------- check_probability
def test_check_probability_is_a_number_in_zero_one_half_open():
    assert check_probability("dropout", 0) == 0.0 and check_probability("dropout", np.float32(0.5)) == 0.5
    refused(ValueError, "dropout must be a finite number in [0.0, 1.0), got 1.0", check_probability, "dropout", 1.0)
    refused(ValueError, "dropout must be a finite number in [0.0, 1.0), got -0.1", check_probability, "dropout", -0.1)
    refused(ArgumentTypeError, "dropout must be a finite number in [0.0, 1.0), got True",
            check_probability, "dropout", True)


# --------------------------------------------------------------------------- check_bool
def test_check_bool_accepts_only_bools():
    assert check_bool("use_text", True) is True and check_bool("use_text", False) is False
    refused(ArgumentTypeError, "use_text must be a bool, got 1", check_bool, "use_text", 1)
    refused(ArgumentTypeError, "use_text must be a bool, got 'yes'", check_bool, "use_text", "yes")
    refused(ArgumentTypeError, "use_text must be a bool, got None", check_bool, "use_text", None)


# --------------------------------------------------------------------------- check_str
def test_check_str_accepts_a_non_empty_string_and_says_what_it_names():
    assert check_str("ctr_task", "click") == "click"
    refused(ValueError, "ctr_task must be a non-empty string, got ''", check_str, "ctr_task", "")
    refused(ArgumentTypeError, "ctr_task must be a non-empty task name, got 3",
            check_str, "ctr_task", 3, what="a non-empty task name")
    info = refused(ValueError, "ctr_task must be a task, got ''", check_str, "ctr_task", "", what="a task")
    assert not isinstance(info.value, TypeError)


# --------------------------------------------------------------------------- check_choice
@pytest.mark.parametrize("choices", [("gelu", "relu"), ["gelu", "relu"], {"gelu": 1, "relu": 2}])
def test_check_choice_accepts_a_member_and_lists_the_choices(choices):
    assert check_choice("activation", "relu", choices) == "relu"
    refused(ValueError, "activation must be one of ['gelu', 'relu'], got 'tanh'",
            check_choice, "activation", "tanh", choices)


def test_check_choice_refuses_an_unhashable_value_as_a_value_error():
    refused(ValueError, "mode must be one of ['a'], got ['a']", check_choice, "mode", ["a"], {"a"})


# --------------------------------------------------------------------------- check_sizes
@pytest.mark.parametrize("value", [[64, 32], (64, 32), (np.int64(64), np.int32(32))])
def test_check_sizes_returns_a_tuple_of_ints(value):
    sizes = check_sizes("tower_hidden", value)
    assert sizes == (64, 32) and all(type(size) is int for size in sizes)


def test_check_sizes_empty_only_when_allowed():
    assert check_sizes("tower_hidden", [], allow_empty=True) == ()
    refused(ValueError, "bottom_hidden must have at least one layer size, got []", check_sizes, "bottom_hidden", [])


def test_check_sizes_refuses_non_sequences_and_bad_sizes_naming_the_entry():
    refused(ArgumentTypeError, "h must be a sequence of positive ints, got '64'", check_sizes, "h", "64")
    refused(ArgumentTypeError, "h must be a sequence of positive ints, got 64", check_sizes, "h", 64)
    refused(ValueError, "h[1] must be an int >= 1, got 0", check_sizes, "h", (8, 0))
    refused(ArgumentTypeError, "h[1] must be an int >= 1, got True", check_sizes, "h", (8, True))
    refused(ArgumentTypeError, "h[0] must be an int >= 1, got 8.0", check_sizes, "h", [8.0])


# --------------------------------------------------------------------------- check_tensor
def test_check_tensor_returns_the_tensor_itself():
    x = torch.zeros(2, dtype=torch.int64)
    assert check_tensor("x", x) is x
    refused(ArgumentTypeError, "x must be a torch.Tensor, got list", check_tensor, "x", [0.0, 1.0])
    refused(ArgumentTypeError, "x must be a torch.Tensor, got ndarray", check_tensor, "x", np.zeros(2))
