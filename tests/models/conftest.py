"""Fixtures of the model tests: a small mixed-task schema and a batch for it."""

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
def _one_thread():
    """These models are tiny: one intra-op thread is fastest, above all on a busy shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
