"""Every model can fit a tiny fixed batch: each task's loss falls by at least 90%."""

from __future__ import annotations

import pytest
import torch
from fake_batches import ALL_MODELS, SMALL, make_batch, make_schema

from mtlkit.losses import task_loss
from mtlkit.models import build_model


def _task_losses(schema, batch, out) -> dict[str, torch.Tensor]:
    return {
        task: task_loss(
            schema.task_kinds[task],
            out[task],
            batch["labels"][:, i],
            batch["label_mask"][:, i],
            validate=False,
        )
        for i, task in enumerate(schema.task_names)
    }


@pytest.mark.parametrize("name", ALL_MODELS)
def test_overfits_a_tiny_batch(name):
    schema = make_schema()
    batch = make_batch(schema, batch_size=32, seed=1)
    batch["label_mask"][::3, 2] = False  # some ratings unobserved
    torch.manual_seed(0)
    model = build_model(name, schema, **{**SMALL, "n_layers": 1})
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    with torch.no_grad():
        first = _task_losses(schema, batch, model(batch))
    for _ in range(60):
        optimizer.zero_grad()
        sum(_task_losses(schema, batch, model(batch)).values()).backward()
        optimizer.step()
    with torch.no_grad():
        last = _task_losses(schema, batch, model(batch))
    for task in schema.task_names:
        assert last[task] <= 0.1 * first[task], (task, float(first[task]), float(last[task]))
