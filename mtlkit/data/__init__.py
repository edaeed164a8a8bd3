"""Data for mtlkit: real MovieLens, synthetic worlds with known truth, and multi-task samples.

Modules, one per concern: :mod:`~mtlkit.data.movielens`, :mod:`~mtlkit.data.census` and
:mod:`~mtlkit.data.kuairand` (download or find, verify, parse), :mod:`~mtlkit.data.interactions`
(your own log, any tasks), :mod:`~mtlkit.data.synthetic` (generators), :mod:`~mtlkit.data.batch`
(the batch keys every model reads), :mod:`~mtlkit.data.schema` (tasks and fields),
:mod:`~mtlkit.data.tensors` (split tensors, batches), :mod:`~mtlkit.data.tasks` (label recipes and
declared tasks), :mod:`~mtlkit.data.splits` (train / valid / test), :mod:`~mtlkit.data.builder`
(a log -> samples), :mod:`~mtlkit.data.datasets` (:func:`load_dataset`, a registry of named data
sets), :mod:`~mtlkit.data.text` (pretrained language-model title embeddings) and
:mod:`~mtlkit.data.columns` (column names). :mod:`~mtlkit.data.samples` re-exports the names it
held before the split.

The public names below are imported lazily (PEP 562), so ``import mtlkit.data`` stays light:
torch is imported on first use of the sample classes, transformers only by ``embed_texts``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "load_movielens": "mtlkit.data.movielens",
    "load_census_income": "mtlkit.data.census",
    "load_kuairand_pure": "mtlkit.data.kuairand",
    "load_interactions": "mtlkit.data.interactions",
    "TaskColumn": "mtlkit.data.tasks",
    "make_correlated_tasks": "mtlkit.data.synthetic",
    "make_recsys_funnel": "mtlkit.data.synthetic",
    "Batch": "mtlkit.data.batch",
    "TaskSpec": "mtlkit.data.schema",
    "FeatureSchema": "mtlkit.data.schema",
    "TensorSamples": "mtlkit.data.tensors",
    "MultiTaskData": "mtlkit.data.tensors",
    "build_multitask_data": "mtlkit.data.builder",
    "load_dataset": "mtlkit.data.datasets",
    "dataset_parameters": "mtlkit.data.datasets",
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
