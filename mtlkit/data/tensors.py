"""Multi-task samples as tensors: :class:`TensorSamples` (one split) and :class:`MultiTaskData`.

Keys follow the batch contract (:mod:`mtlkit.data.batch`). :meth:`TensorSamples.tabular` builds
the samples of a tabular data set (no users, items or history), and :func:`split_statistics`
describes one split with the same keys for every data set (``MultiTaskData.info["splits"]``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mtlkit.data.batch import (
    DENSE, HISTORY, HISTORY_PADDING_MASK, IS_COLD_ITEM, ITEM, LABEL_MASK, LABELS, SPARSE, USER,
)  # fmt: skip
from mtlkit.data.schema import FeatureSchema

__all__ = ["TensorSamples", "MultiTaskData", "split_statistics"]


class TensorSamples:
    """A dict of equal-length tensors (keys as in the batch) with a fast batch iterator.

    ``batches`` slices all tensors with one index per batch (on whatever device they live), so
    the training loop never calls a per-sample ``__getitem__``; ``as_torch_dataset`` offers the
    classic ``Dataset`` view for comparison with a ``DataLoader``.
    """

    def __init__(self, tensors: Mapping[str, Tensor]):
        if not tensors:
            raise ValueError("tensors must hold at least one tensor, got an empty mapping")
        lengths = {k: int(v.shape[0]) for k, v in tensors.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"tensors must all have the same length, got {lengths}")
        self._tensors = dict(tensors)
        self._length = next(iter(lengths.values()))

    @classmethod
    def from_numpy(cls, arrays: Mapping[str, np.ndarray]) -> TensorSamples:
        """Tensors from numpy arrays: integers -> int64, floats -> float32, bools stay bool."""
        out = {}
        for key, a in arrays.items():
            a = np.asarray(a)
            dtype = np.bool_ if a.dtype == np.bool_ else np.int64 if a.dtype.kind in "iu" else np.float32
            out[key] = torch.from_numpy(np.ascontiguousarray(a, dtype=dtype))
        return cls(out)

    @classmethod
    def tabular(
        cls,
        sparse: np.ndarray,
        dense: np.ndarray,
        labels: np.ndarray,
        label_mask: np.ndarray | None = None,
    ) -> TensorSamples:
        """The samples of a tabular data set: rows without users, items or history.

        The batch contract holds as for any data set, so every model reads the same keys:
        ``user`` and ``item`` are 0 (OOV) on every row, ``history`` and
        ``history_padding_mask`` have no columns (``seq_len`` = 0). Used by census-income and
        synthetic-mmoe.

        Args:
            sparse: (n, n_sparse) integer field indices, 0 = OOV (``n_sparse`` may be 0).
            dense: (n, n_dense) float features.
            labels: (n, n_tasks) float labels, 0.0 where unobserved.
            label_mask: (n, n_tasks) bool, True = label observed; None: every label observed.

        Returns:
            int64 ``user`` (n,), ``item`` (n,), ``sparse`` and ``history`` (n, 0); float32
            ``dense`` and ``labels``; bool ``history_padding_mask`` (n, 0) and ``label_mask``.
        """
        labels = np.asarray(labels)
        label_mask = np.ones(labels.shape, bool) if label_mask is None else np.asarray(label_mask)
        for name, values in (("sparse", sparse), ("dense", dense), ("labels", labels)):
            if np.ndim(values) != 2:
                raise ValueError(f"{name} must be a 2-D array (n, k), got shape {np.shape(values)}")
        if label_mask.shape != labels.shape:
            raise ValueError(f"label_mask must have the shape of labels {labels.shape}, got {label_mask.shape}")
        n = len(labels)
        return cls.from_numpy(
            {
                USER: np.zeros(n, np.int64),
                ITEM: np.zeros(n, np.int64),
                SPARSE: sparse,
                DENSE: dense,
                HISTORY: np.zeros((n, 0), np.int64),
                HISTORY_PADDING_MASK: np.zeros((n, 0), bool),
                LABELS: labels,
                LABEL_MASK: label_mask,
            }
        )

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, key: str) -> Tensor:
        return self._tensors[key]

    def __contains__(self, key: object) -> bool:
        return key in self._tensors

    def keys(self):
        return self._tensors.keys()

    def items(self):
        return self._tensors.items()

    def to_dict(self) -> dict[str, Tensor]:
        """The whole split as one batch dict."""
        return dict(self._tensors)

    @property
    def device(self) -> torch.device:
        return next(iter(self._tensors.values())).device

    def to(self, device: str | torch.device) -> TensorSamples:
        """A copy on ``device`` (e.g. move a whole split to the GPU once, then slice there)."""
        return TensorSamples({k: v.to(device) for k, v in self._tensors.items()})

    def subset(self, index: Tensor | np.ndarray | Sequence[int]) -> TensorSamples:
        """Rows ``index`` (an integer index or a boolean mask) of every tensor."""
        index = torch.as_tensor(index, device=self.device)
        return TensorSamples({k: v[index] for k, v in self._tensors.items()})

    def gather(self, index: Tensor) -> dict[str, Tensor]:
        """One batch: rows ``index`` (a 1-D int64 tensor on this device) of every tensor.

        ``index_select`` rather than ``tensor[index]``: advanced indexing takes a slower,
        general path and cost about 4x more per step in the throughput benchmark.
        """
        return {k: v.index_select(0, index) for k, v in self._tensors.items()}

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
    ) -> Iterator[dict[str, Tensor]]:
        """Yield batch dicts of ``batch_size`` rows; each row exactly once per pass.

        Without shuffling, batches are contiguous slices (views, no copy). With shuffling, one
        random permutation (drawn with ``generator``) is applied by index slicing on the
        tensors' device.
        """
        if not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        n = self._length
        stop = n - n % batch_size if drop_last else n
        if shuffle:
            perm_device = generator.device if generator is not None else torch.device("cpu")
            order = torch.randperm(n, generator=generator, device=perm_device).to(self.device)
            for start in range(0, stop, batch_size):
                index = order[start : start + batch_size]
                yield self.gather(index)
        else:
            for start in range(0, stop, batch_size):
                yield {k: v[start : start + batch_size] for k, v in self._tensors.items()}

    def as_torch_dataset(self) -> torch.utils.data.Dataset:
        """A per-sample ``Dataset`` view (default ``collate`` rebuilds the same batch dicts)."""
        return _SampleDataset(self)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}: {tuple(v.shape)}" for k, v in self._tensors.items())
        return f"TensorSamples(n={self._length}, {shapes})"


class _SampleDataset(torch.utils.data.Dataset):
    def __init__(self, samples: TensorSamples):
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {k: v[i] for k, v in self.samples.items()}


@dataclass
class MultiTaskData:
    """A schema and three splits, plus the raw-id -> index maps and build statistics."""

    schema: FeatureSchema
    train: TensorSamples
    valid: TensorSamples
    test: TensorSamples
    item_index: dict[Any, int] = field(default_factory=dict)  # raw item id -> catalog index
    user_index: dict[Any, int] = field(default_factory=dict)  # raw user id -> index (train users)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def splits(self) -> dict[str, TensorSamples]:
        return {"train": self.train, "valid": self.valid, "test": self.test}

    def summary(self) -> str:
        """A few lines: sizes, tasks and label rates per split."""
        lines = [
            f"MultiTaskData({self.info.get('name', 'custom')}): users={self.schema.n_users - 1}, "
            f"items={self.schema.n_items - 1}, tasks={list(self.schema.task_names)}, "
            f"split={self.info.get('split')}, seq_len={self.schema.seq_len}"
        ]
        for name, split in self.splits.items():
            stats = self.info.get("splits", {}).get(name, {})
            rates = ", ".join(f"{t}={r:.3f}" for t, r in stats.get("label_rate", {}).items())
            lines.append(f"  {name}: {len(split)} rows; label rate/mean: {rates}")
        return "\n".join(lines)


def split_statistics(
    samples: TensorSamples, task_names: Sequence[str], negative: np.ndarray | None = None
) -> dict[str, Any]:
    """Sizes, cold-item and OOV counts, history lengths and label rates of one split.

    The same keys for every data set (``MultiTaskData.info["splits"][split]``): ``rows``;
    ``interactions`` and ``sampled_negatives`` (rows that are not / are sampled negatives);
    ``cold_item_rows`` (``is_cold_item``; 0 without that key); ``oov_user_rows`` (``user`` 0:
    every row of a tabular data set); ``mean_history_length`` and ``empty_history_share``;
    ``label_rate`` {task: the positive rate (binary) or the mean (regression) of the observed
    labels, NaN where none is observed} and ``observed_share`` {task: the share of rows with the
    label observed}.

    Args:
        samples: one split (on any device; the statistics are computed on the CPU).
        task_names: the names of the ``labels`` columns.
        negative: (n,) bool, True on sampled negatives; None: the split has none.
    """
    observed = samples[LABEL_MASK].numpy(force=True)  # (n, n_tasks)
    labels = samples[LABELS].numpy(force=True)  # (n, n_tasks)
    real = ~samples[HISTORY_PADDING_MASK].numpy(force=True)  # (n, seq_len)
    n_rows = len(labels)
    n_negatives = 0 if negative is None else int(negative.sum())
    return {
        "rows": n_rows,
        "interactions": n_rows - n_negatives,
        "sampled_negatives": n_negatives,
        "cold_item_rows": int(samples[IS_COLD_ITEM].sum()) if IS_COLD_ITEM in samples else 0,
        "oov_user_rows": int((samples[USER] == 0).sum()),
        "mean_history_length": float(real.sum(1).mean()) if n_rows else 0.0,
        "empty_history_share": float((~real).all(1).mean()) if n_rows else 0.0,
        "label_rate": {  # positive rate (binary) or mean (regression) over observed labels
            t: float(labels[observed[:, j], j].mean()) if observed[:, j].any() else float("nan")
            for j, t in enumerate(task_names)
        },
        "observed_share": {
            t: float(observed[:, j].mean()) if n_rows else 0.0 for j, t in enumerate(task_names)
        },
    }
