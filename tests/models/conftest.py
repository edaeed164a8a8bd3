"""Fixtures of the model tests: a small mixed-task schema, a batch for it, one torch thread."""

from __future__ import annotations

import pytest
import torch
from fake_batches import FakeSchema, make_batch, make_schema


@pytest.fixture()
def schema() -> FakeSchema:
    return make_schema()


@pytest.fixture()
def batch(schema: FakeSchema) -> dict[str, torch.Tensor]:
    return make_batch(schema)


@pytest.fixture(autouse=True)
def _tiny_models_on_one_thread(one_thread: None) -> None:
    """Every model test runs on one torch thread (``one_thread`` of tests/conftest.py)."""
