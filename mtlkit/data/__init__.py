"""Data for mtlkit: real MovieLens, synthetic worlds with known truth, and multi-task samples.

Modules, one per concern: :mod:`~mtlkit.data.movielens` and :mod:`~mtlkit.data.census` (download, verify, parse),
:mod:`~mtlkit.data.synthetic` (generators), :mod:`~mtlkit.data.samples` (schema, tensors,
builder), :mod:`~mtlkit.data.datasets` (:func:`load_dataset`), :mod:`~mtlkit.data.text`
(pretrained language-model title embeddings) and :mod:`~mtlkit.data.columns` (column names).

The public names below are imported lazily (PEP 562), so ``import mtlkit.data`` stays light:
torch is imported on first use of the sample classes, transformers only by ``embed_texts``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "load_movielens": "mtlkit.data.movielens",
    "load_census_income": "mtlkit.data.census",
    "make_correlated_tasks": "mtlkit.data.synthetic",
    "make_recsys_funnel": "mtlkit.data.synthetic",
    "TaskSpec": "mtlkit.data.samples",
    "FeatureSchema": "mtlkit.data.samples",
    "TensorSamples": "mtlkit.data.samples",
    "MultiTaskData": "mtlkit.data.samples",
    "build_multitask_data": "mtlkit.data.samples",
    "load_dataset": "mtlkit.data.datasets",
    "DATASETS": "mtlkit.data.datasets",
    "embed_texts": "mtlkit.data.text",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # cache: the next access skips __getattr__
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
