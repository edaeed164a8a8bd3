"""Tests for the schema: tasks, fields and the JSON round trip checkpoints rely on."""

from __future__ import annotations

import json

import pytest

from mtlkit.data import columns as C
from mtlkit.data.schema import FeatureSchema, TaskSpec


def test_schema_fields(ratings_data, funnel_data):
    s = ratings_data.schema
    assert s.task_names == ("click", "like", "rating")
    assert s.task_kinds == {"click": "binary", "like": "binary", "rating": "regression"}
    assert s.sparse_fields == (C.GENDER,)  # strings are sparse; age/year numbers are dense
    genres = ("genres=Action", "genres=Comedy", "genres=Drama", "genres=Horror")  # multi-hot
    assert s.dense_fields == (C.AGE, C.YEAR, *genres)
    assert s.item_titles[0] == "" and len(s.item_titles) == s.n_items
    f = funnel_data.schema
    assert f.sparse_fields == (C.AGE_BUCKET, C.REGION, C.DEVICE, C.CATEGORY)  # no is_bot / is_cold
    assert f.dense_fields == (C.PRICE,)
    assert f.task_kinds["conversion"] == "binary" and f.task_kinds["rating"] == "regression"


def test_schema_and_info_round_trip_through_json(ratings_data, funnel_data):
    for data in (ratings_data, funnel_data):
        assert json.loads(json.dumps(data.info))["splits"]["train"]["rows"] == len(data.train)
    schema = ratings_data.schema
    again = FeatureSchema.from_dict(json.loads(json.dumps(schema.to_dict())))
    assert again == schema
    with pytest.raises(ValueError, match="kind"):
        TaskSpec("x", "ranking")
    with pytest.raises(ValueError, match="sparse_cardinalities"):
        FeatureSchema(1, 1, ("a",), (), (), 0, ())
