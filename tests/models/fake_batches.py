"""A tiny stand-in schema and batch for the model tests (independent of the data builders).

Imported by the tests as ``fake_batches`` (pytest puts this folder on ``sys.path``).

``FakeSchema`` has exactly the fields of ``mtlkit.data.samples.FeatureSchema`` that models
read; ``make_batch`` returns a batch dict with the contract's keys, dtypes and padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

ALL_MODELS = ("single", "shared-bottom", "mmoe", "ple", "esmm")
MIXED_TASKS = (("click", "binary"), ("purchase", "binary"), ("rating", "regression"))
# Small and deterministic: fast on CPU, no dropout noise unless a test asks for it.
SMALL = dict(embedding_dim=8, d_model=16, n_heads=2, n_layers=2, d_ff=32, dropout=0.0)


@dataclass(frozen=True)
class FakeTaskSpec:
    name: str
    kind: str


@dataclass
class FakeSchema:
    n_users: int
    n_items: int
    sparse_fields: tuple[str, ...]
    sparse_cardinalities: tuple[int, ...]
    dense_fields: tuple[str, ...]
    seq_len: int
    tasks: tuple[FakeTaskSpec, ...]
    item_text_embeddings: torch.Tensor | None = None
    item_titles: tuple[str, ...] | None = None

    @property
    def task_names(self) -> tuple[str, ...]:
        return tuple(task.name for task in self.tasks)

    @property
    def task_kinds(self) -> dict[str, str]:
        return {task.name: task.kind for task in self.tasks}


def make_schema(
    *,
    seq_len: int = 6,
    tasks=MIXED_TASKS,
    sparse_cardinalities=(4, 7),
    n_dense: int = 3,
    text_dim: int | None = 12,
    n_users: int = 11,
    n_items: int = 21,
) -> FakeSchema:
    """A schema with a text table of one row per catalog item (row 0 zeros)."""
    text = None
    if text_dim is not None:
        gen = torch.Generator().manual_seed(123)
        text = torch.randn(n_items, text_dim, generator=gen)
        text[0] = 0.0
    return FakeSchema(
        n_users=n_users,
        n_items=n_items,
        sparse_fields=tuple(f"field{i}" for i in range(len(sparse_cardinalities))),
        sparse_cardinalities=tuple(sparse_cardinalities),
        dense_fields=tuple(f"dense{i}" for i in range(n_dense)),
        seq_len=seq_len,
        tasks=tuple(FakeTaskSpec(name, kind) for name, kind in tasks),
        item_text_embeddings=text,
    )


def make_batch(schema: FakeSchema, batch_size: int = 16, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random batch following the contract: left-padded history with lengths 0..seq_len."""
    gen = torch.Generator().manual_seed(seed)
    B, S = batch_size, schema.seq_len

    def ints(high: int, *shape: int) -> torch.Tensor:
        return torch.randint(1, high, shape, generator=gen)

    lengths = torch.arange(B) % (S + 1)  # every history length 0..S appears
    padding = torch.arange(S).unsqueeze(0) < (S - lengths).unsqueeze(1)  # (B, S) left padding
    history = torch.where(padding, 0, ints(schema.n_items, B, S))
    sparse = torch.zeros(B, len(schema.sparse_cardinalities), dtype=torch.long)
    for field, cardinality in enumerate(schema.sparse_cardinalities):
        sparse[1:, field] = ints(cardinality, B - 1)  # row 0 stays all-OOV
    item = ints(schema.n_items, B)
    content = item.clone()
    if B > 1:  # a cold item: id 0 (never seen in training) but its catalog row for the text
        item[1], content[1] = 0, schema.n_items - 1

    labels, columns = [], []
    click = (torch.rand(B, generator=gen) < 0.5).float()
    for task in schema.tasks:
        if task.kind == "regression":
            labels.append(torch.randn(B, generator=gen))
        elif task.name == "purchase":
            labels.append(click * (torch.rand(B, generator=gen) < 0.5).float())
        elif task.name == "click":
            labels.append(click)
        else:
            labels.append((torch.rand(B, generator=gen) < 0.5).float())
        columns.append(task.name)
    return {
        "user": ints(schema.n_users, B),
        "item": item,
        "item_content": content,
        "sparse": sparse,
        "dense": torch.randn(B, len(schema.dense_fields), generator=gen),
        "history": history,
        "history_padding_mask": padding,
        "labels": torch.stack(labels, dim=1),
        "label_mask": torch.ones(B, len(columns), dtype=torch.bool),
        "is_cold_item": item == 0,  # an extra key models must ignore
        "timestamp": torch.arange(B),
    }
