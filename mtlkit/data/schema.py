"""The schema of multi-task samples: the tasks and the input fields a model sizes itself by."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from torch import Tensor

__all__ = ["TaskSpec", "FeatureSchema"]


@dataclass(frozen=True)
class TaskSpec:
    """One prediction task: its name (a column of ``labels``) and kind."""

    name: str
    kind: Literal["binary", "regression"]

    def __post_init__(self) -> None:
        if self.kind not in ("binary", "regression"):
            raise ValueError(f"kind must be 'binary' or 'regression', got {self.kind!r}")


@dataclass
class FeatureSchema:
    """What a model needs to size its embeddings and heads (see :mod:`mtlkit.data.batch`)."""

    n_users: int  # vocabulary size incl. 0
    n_items: int  # vocabulary size incl. 0: the whole catalog ("Item indices" in data.batch)
    sparse_fields: tuple[str, ...]
    sparse_cardinalities: tuple[int, ...]  # each incl. OOV 0
    dense_fields: tuple[str, ...]
    seq_len: int
    tasks: tuple[TaskSpec, ...]
    item_text_embeddings: Tensor | None = field(default=None, repr=False)  # (n_items, d_text) float32, row 0 = zeros
    item_titles: tuple[str, ...] | None = field(default=None, repr=False)  # index -> title ("" at 0)

    def __post_init__(self) -> None:
        if len(self.sparse_fields) != len(self.sparse_cardinalities):
            raise ValueError(
                f"sparse_cardinalities must have one entry per sparse field, got "
                f"{len(self.sparse_cardinalities)} for {len(self.sparse_fields)} fields"
            )
        if self.item_text_embeddings is not None and self.item_text_embeddings.shape[0] != self.n_items:
            raise ValueError(
                f"item_text_embeddings must have n_items={self.n_items} rows, "
                f"got {tuple(self.item_text_embeddings.shape)}"
            )

    @property
    def task_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tasks)

    @property
    def task_kinds(self) -> dict[str, str]:
        return {t.name: t.kind for t in self.tasks}

    @property
    def n_sparse(self) -> int:
        return len(self.sparse_fields)

    @property
    def n_dense(self) -> int:
        return len(self.dense_fields)

    @property
    def d_text(self) -> int | None:
        return None if self.item_text_embeddings is None else int(self.item_text_embeddings.shape[1])

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (without the text-embedding tensor) for checkpoints/configs."""
        return {
            "n_users": int(self.n_users),
            "n_items": int(self.n_items),
            "sparse_fields": list(self.sparse_fields),
            "sparse_cardinalities": [int(c) for c in self.sparse_cardinalities],
            "dense_fields": list(self.dense_fields),
            "seq_len": int(self.seq_len),
            "tasks": [{"name": t.name, "kind": t.kind} for t in self.tasks],
            "item_titles": None if self.item_titles is None else list(self.item_titles),
            "d_text": self.d_text,
        }

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], item_text_embeddings: Tensor | None = None
    ) -> FeatureSchema:
        """Inverse of :meth:`to_dict`; pass the text-embedding table separately if any."""
        titles = data.get("item_titles")
        return cls(
            n_users=int(data["n_users"]),
            n_items=int(data["n_items"]),
            sparse_fields=tuple(data["sparse_fields"]),
            sparse_cardinalities=tuple(int(c) for c in data["sparse_cardinalities"]),
            dense_fields=tuple(data["dense_fields"]),
            seq_len=int(data["seq_len"]),
            tasks=tuple(TaskSpec(t["name"], t["kind"]) for t in data["tasks"]),
            item_text_embeddings=item_text_embeddings,
            item_titles=None if titles is None else tuple(titles),
        )
