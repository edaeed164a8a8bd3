"""build_model, the MODELS registry and the config dataclasses (validation, JSON round trip)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from fake_batches import ALL_MODELS, SMALL, make_batch, make_schema

import mtlkit.models
from mtlkit.models import MODELS, build_model, config_class
from mtlkit.models.base import ModelConfig
from mtlkit.models.esmm import ESMMConfig
from mtlkit.models.lm import LMConfig
from mtlkit.models.mmoe import MMoEConfig
from mtlkit.models.ple import PLEConfig
from mtlkit.models.shared_bottom import SharedBottomConfig
from mtlkit.models.single_task import SingleTaskConfig


def test_each_config_lives_beside_its_model():
    """A new architecture is one file (model and config) plus its MODELS line."""
    for cls in MODELS.values():
        assert cls.config_class.__module__ == cls.__module__, cls.__name__
        assert issubclass(cls.config_class, ModelConfig)
    # ...and users keep importing every config from the package
    for config in (ModelConfig, *(cls.config_class for cls in MODELS.values())):
        assert getattr(mtlkit.models, config.__name__) is config
        assert config.__name__ in mtlkit.models.__all__


def test_registry_names_and_config_classes():
    # "lm" (LMMultiTask) needs item titles and a pretrained encoder: tested in test_lm.py
    assert tuple(MODELS) == (*ALL_MODELS, "lm")
    assert config_class("lm") is LMConfig
    expected = [SingleTaskConfig, SharedBottomConfig, MMoEConfig, PLEConfig, ESMMConfig]
    assert [config_class(name) for name in ALL_MODELS] == expected
    assert all(MODELS[name].config_class is cls for name, cls in zip(ALL_MODELS, expected))


def test_unknown_model_name_lists_the_choices(schema):
    with pytest.raises(ValueError, match=r"name must be one of \['single', 'shared-bottom'.*got 'moe'"):
        build_model("moe", schema)
    with pytest.raises(ValueError, match="name"):
        config_class("transformer")


@pytest.mark.parametrize("name", ALL_MODELS)
def test_config_round_trips_through_json(name, schema, batch):
    model = build_model(name, schema, **SMALL, tower_hidden=[16, 8])
    assert model.config.tower_hidden == (16, 8)  # JSON lists become tuples
    values = json.loads(json.dumps(dataclasses.asdict(model.config)))
    config = config_class(name).from_dict(values)
    assert config == model.config
    torch.manual_seed(0)
    a = build_model(name, schema, values).eval()
    torch.manual_seed(0)
    b = build_model(name, schema, config).eval()
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        out_a, out_b = a(batch), b(batch)
    assert all(torch.equal(out_a[t], out_b[t]) for t in schema.task_names)


def test_a_stored_config_json_still_loads():
    """Run folders store configs as JSON: the field names are the contract."""
    stored = {
        "embedding_dim": 16, "d_model": 32, "n_heads": 2, "n_layers": 1, "d_ff": 64,
        "transformer_activation": "gelu", "positional": "learned", "sequence_pooling": "target",
        "use_text": True, "keep_attention_weights": True, "tower_hidden": [32], "dropout": 0.1,
        "activation": "relu", "n_levels": 2, "n_shared_experts": 2, "n_task_experts": 1,
        "expert_hidden": [64],
    }  # fmt: skip
    assert PLEConfig.from_dict(stored) == PLEConfig()
    assert json.loads(json.dumps(dataclasses.asdict(PLEConfig()))) == stored


def test_numpy_scalars_become_plain_json_values():
    config = MMoEConfig(n_experts=np.int64(3), dropout=np.float32(0.5), expert_hidden=(np.int64(8), 4))
    assert type(config.n_experts) is int and type(config.dropout) is float
    assert config.expert_hidden == (8, 4) and type(config.expert_hidden[0]) is int
    assert MMoEConfig.from_dict(json.loads(json.dumps(dataclasses.asdict(config)))) == config


def test_overrides_apply_on_top_of_a_config(schema):
    model = build_model("mmoe", schema, MMoEConfig(n_experts=2, dropout=0.0), n_experts=5)
    assert model.config.n_experts == 5 and model.config.dropout == 0.0
    assert model.experts.n_experts == 5
    with pytest.raises(TypeError, match="config"):
        build_model("mmoe", schema, PLEConfig())


def test_unknown_config_field_is_named(schema):
    with pytest.raises(ValueError, match="n_expert"):
        build_model("mmoe", schema, n_expert=3)
    with pytest.raises(ValueError, match="n_experts"):  # not a PLE field
        build_model("ple", schema, n_experts=3)


BAD_VALUES = [
    ("mmoe", "n_experts", 0),
    ("mmoe", "n_experts", 2.0),
    ("mmoe", "n_experts", True),
    ("mmoe", "expert_hidden", ()),
    ("mmoe", "expert_hidden", (16, 0)),
    ("ple", "n_levels", 0),
    ("ple", "n_shared_experts", -1),
    ("ple", "n_task_experts", 0),
    ("shared-bottom", "bottom_hidden", []),
    ("single", "bottom_hidden", "64"),
    ("esmm", "ctr_task", ""),
    ("esmm", "ctcvr_task", "click"),
    ("esmm", "ctr_task", "like"),  # not a task of the schema
    ("esmm", "ctcvr_task", "rating"),  # a regression task
    ("shared-bottom", "embedding_dim", 0),
    ("shared-bottom", "d_model", -8),
    ("shared-bottom", "n_heads", 3),  # does not divide d_model=32 -> named as d_model
    ("shared-bottom", "n_layers", -1),
    ("shared-bottom", "d_ff", 0),
    ("shared-bottom", "dropout", 1.0),
    ("shared-bottom", "dropout", -0.1),
    ("shared-bottom", "dropout", "0.1"),
    ("shared-bottom", "activation", "swish"),
    ("shared-bottom", "transformer_activation", "tanh"),
    ("shared-bottom", "positional", "rotary"),
    ("shared-bottom", "sequence_pooling", "max"),
    ("shared-bottom", "use_text", "yes"),
    ("shared-bottom", "tower_hidden", (8, -1)),
]


@pytest.mark.parametrize("name, field, value", BAD_VALUES)
def test_bad_config_values_name_the_field(schema, name, field, value):
    expected = "d_model" if field == "n_heads" else field
    with pytest.raises(ValueError, match=expected):
        build_model(name, schema, **{field: value})


def test_schema_task_errors_name_the_argument():
    with pytest.raises(ValueError, match="schema.tasks"):
        build_model("mmoe", make_schema(tasks=()))
    with pytest.raises(ValueError, match="schema.tasks"):
        build_model("mmoe", make_schema(tasks=(("click", "ranking"),)))


def test_defaults_build_every_model(schema, batch):
    for name in ALL_MODELS:
        model = build_model(name, schema)
        assert isinstance(model.config, ModelConfig)
        assert set(model(batch)) == set(schema.task_names)


def test_real_feature_schema_if_present():
    """The models accept the data package's own FeatureSchema/TaskSpec (once it exists)."""
    samples = pytest.importorskip("mtlkit.data.samples")
    fake = make_schema()
    real = samples.FeatureSchema(
        n_users=fake.n_users,
        n_items=fake.n_items,
        sparse_fields=fake.sparse_fields,
        sparse_cardinalities=fake.sparse_cardinalities,
        dense_fields=fake.dense_fields,
        seq_len=fake.seq_len,
        tasks=tuple(samples.TaskSpec(t.name, t.kind) for t in fake.tasks),
        item_text_embeddings=fake.item_text_embeddings,
    )
    batch = make_batch(fake)
    for name in ALL_MODELS:
        out = build_model(name, real, **SMALL)(batch)
        assert set(out) == set(real.task_names)
