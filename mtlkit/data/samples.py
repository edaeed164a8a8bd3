"""The former home of the multi-task samples; the builder now lives in :mod:`mtlkit.data.builder`.

Users, notebooks and benchmarks import these names from here; they keep working.
"""

from __future__ import annotations

from mtlkit.data.builder import (
    DENSE, GROUND_TRUTH, HISTORY, HISTORY_PADDING_MASK, IS_BOT, IS_COLD_ITEM, IS_FEMALE, ITEM,
    ITEM_CONTENT, LABEL_MASK, LABELS, SPARSE, SPLITS, TASK_RECIPES, TIMESTAMP, USER,
    FeatureSchema, MultiTaskData, TaskSpec, TensorSamples, build_multitask_data,
)  # fmt: skip

__all__ = [
    "TaskSpec", "FeatureSchema", "TensorSamples", "MultiTaskData", "TASK_RECIPES", "SPLITS",
    "build_multitask_data",
]  # fmt: skip
