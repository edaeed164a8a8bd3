"""mtlkit.data.samples, the former home of the samples, still exports every name it had."""

from __future__ import annotations

import mtlkit.data
from mtlkit.data import batch, builder, samples, schema, splits, tasks, tensors


def test_samples_re_exports_each_name_from_its_new_home():
    homes = {
        batch: (
            "USER", "ITEM", "SPARSE", "DENSE", "HISTORY", "HISTORY_PADDING_MASK", "LABELS", "LABEL_MASK",
            "IS_COLD_ITEM", "TIMESTAMP", "ITEM_CONTENT", "IS_BOT", "IS_FEMALE", "GROUND_TRUTH",
        ),
        schema: ("TaskSpec", "FeatureSchema"),
        tensors: ("TensorSamples", "MultiTaskData"),
        tasks: ("TASK_RECIPES",),
        splits: ("SPLITS",),
        builder: ("build_multitask_data",),
    }  # fmt: skip
    for home, names in homes.items():
        for name in names:
            assert getattr(samples, name) is getattr(home, name), name
    assert sorted(samples.__all__) == sorted(name for names in homes.values() for name in names)
    for name in ("TaskSpec", "FeatureSchema", "TensorSamples", "MultiTaskData", "build_multitask_data"):
        assert getattr(mtlkit.data, name) is getattr(samples, name)  # the package's lazy exports
