"""TrainConfig: every field validated once, naming the field; a JSON round trip."""

from __future__ import annotations

import pytest

from mtlkit.checks import SEED_LIMIT
from mtlkit.training import TrainConfig
from mtlkit.utils import read_json, write_json


@pytest.mark.parametrize(
    "field, value",
    [("epochs", 0), ("batch_size", -1), ("lr", 0.0), ("optimizer", "sgd"), ("scheduler", "linear"),
     ("amp", "yes"), ("grad_clip_norm", 0), ("early_stopping_mode", "up"), ("seed", -1), ("log_every", 0)],
)
def test_train_config_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value})


def test_train_config_round_trips_through_json(tmp_path):
    cfg = TrainConfig(epochs=3, weighting="static", weighting_kwargs={"weights": {"click": 2.0}}, grad_clip_norm=1)
    write_json(tmp_path / "c.json", cfg.to_dict())
    assert TrainConfig.from_dict(read_json(tmp_path / "c.json")) == cfg
    with pytest.raises(ValueError, match="unknown field"):
        TrainConfig.from_dict({"epochs": 1, "bogus": 2})


@pytest.mark.parametrize("seed", [SEED_LIMIT + 1, 2**64, True, 1.5])
def test_seed_beyond_64_bits_or_not_an_int_is_refused(seed):
    with pytest.raises(ValueError, match="seed"):
        TrainConfig(seed=seed)
    assert TrainConfig(seed=SEED_LIMIT).seed == SEED_LIMIT
