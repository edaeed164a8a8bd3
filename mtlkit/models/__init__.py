"""Multi-task models over a behaviour-sequence Transformer encoder.

Every model is a plain ``nn.Module`` built from ``(schema, config)`` whose ``forward(batch)``
returns ``{task: (B,) tensor}`` — logits for binary tasks, values for regression tasks:

===============  ================  ==================  ==========================================
name             module            class, config       idea
===============  ================  ==================  ==========================================
single           single_task.py    SingleTask          one independent network per task (the
                                   SingleTaskConfig    baseline)
shared-bottom    shared_bottom.py  SharedBottom        shared encoder and bottom MLP, one tower
                                   SharedBottomConfig  per task
mmoe             mmoe.py           MMoE, MMoEConfig    shared experts, one softmax gate per task
ple              ple.py            PLE, PLEConfig      CGC levels of shared and task-specific
                                                       experts
esmm             esmm.py           ESMM, ESMMConfig    pCTCVR = pCTR · pCVR over the entire
                                                       impression space
lm               lm.py             LMMultiTask         a pretrained language model over the sample
                                   LMConfig            as text (frozen, last-N layers or LoRA), by
                                                       default beside the ID features
                                                       (``id_features``), optionally with MMoE/PLE
                                                       experts
===============  ================  ==================  ==========================================

Each module holds its model and, beside it, the model's config dataclass (as nanoGPT keeps
``GPTConfig`` beside ``GPT``), which extends the shared :class:`ModelConfig` of ``base.py``
(the input encoder and the towers). A new architecture is one new file, model and config,
plus its line in :data:`MODELS`.

Build one by name with :func:`build_model`; ``MODELS[name].config_class`` (or
:func:`config_class`) is its config dataclass, and ``dataclasses.asdict(model.config)`` /
``config_class(name).from_dict(values)`` round-trip it through JSON.

Every model also offers ``summary()`` (one line with the parameter count),
``shared_parameters()`` and ``last_shared_parameters()`` (for gradient-based task weighting),
``init_output_biases(labels, label_mask)`` (start each task at its base rate; call once before
training) and ``attention_weights()`` (the sequence Transformer's per-layer weights of the last
forward); MMoE and PLE add ``gate_weights()``, ESMM ``predict_cvr(batch)``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from mtlkit.models.base import ModelConfig, MultiTaskModel
from mtlkit.models.encoder import FeatureEncoder
from mtlkit.models.esmm import ESMM, ESMMConfig, ctcvr_logit
from mtlkit.models.lm import LMConfig, LMMultiTask
from mtlkit.models.mmoe import MMoE, MMoEConfig
from mtlkit.models.ple import PLE, CGCLevel, PLEConfig
from mtlkit.models.shared_bottom import SharedBottom, SharedBottomConfig
from mtlkit.models.single_task import SingleTask, SingleTaskConfig

if TYPE_CHECKING:
    from mtlkit.data.schema import FeatureSchema

__all__ = [
    "CGCLevel",
    "ESMM",
    "ESMMConfig",
    "FeatureEncoder",
    "LMConfig",
    "LMMultiTask",
    "MMoE",
    "MMoEConfig",
    "MODELS",
    "ModelConfig",
    "MultiTaskModel",
    "PLE",
    "PLEConfig",
    "SharedBottom",
    "SharedBottomConfig",
    "SingleTask",
    "SingleTaskConfig",
    "build_model",
    "config_class",
    "ctcvr_logit",
]

MODELS: dict[str, type[MultiTaskModel]] = {
    "single": SingleTask,
    "shared-bottom": SharedBottom,
    "mmoe": MMoE,
    "ple": PLE,
    "esmm": ESMM,
    "lm": LMMultiTask,
}


def config_class(name: str) -> type[ModelConfig]:
    """The config dataclass of the model called ``name``."""
    if name not in MODELS:
        raise ValueError(f"name must be one of {list(MODELS)}, got {name!r}")
    return MODELS[name].config_class


def build_model(
    name: str,
    schema: FeatureSchema,
    config: ModelConfig | dict[str, Any] | None = None,
    **overrides: Any,
) -> MultiTaskModel:
    """Build the model called ``name`` (one of ``MODELS``) for ``schema``.

    Args:
        name: ``"single"``, ``"shared-bottom"``, ``"mmoe"``, ``"ple"``, ``"esmm"`` or ``"lm"``.
        schema: the data's ``FeatureSchema``.
        config: a config dataclass, or a dict of its fields (e.g. read from JSON), or None
            for the defaults.
        **overrides: config fields to change, e.g. ``n_experts=8, dropout=0.0``.

    Raises:
        ValueError: unknown ``name``, an unknown config field, or a bad value (the message
            names the field).
    """
    cls = config_class(name)
    if config is None:
        values: dict[str, Any] = {}
    elif isinstance(config, dict):
        values = dict(config)
    elif isinstance(config, cls):
        values = dataclasses.asdict(config)
    else:
        raise TypeError(f"config must be a {cls.__name__}, a dict or None, got {type(config).__name__}")
    values.update(overrides)
    return MODELS[name](schema, cls.from_dict(values))
