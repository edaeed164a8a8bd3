"""Tests for the batch contract: the key constants, the ``Batch`` dict and the samples built."""

from __future__ import annotations

import pytest
import torch

from mtlkit.data.batch import (
    DENSE, GROUND_TRUTH, HISTORY, HISTORY_PADDING_MASK, IS_BOT, IS_COLD_ITEM, IS_FEMALE, ITEM, ITEM_CONTENT,
    LABEL_MASK, LABELS, SPARSE, TIMESTAMP, USER, Batch,
)  # fmt: skip

CONTRACT_DTYPES = {
    "user": torch.int64,
    "item": torch.int64,
    "sparse": torch.int64,
    "dense": torch.float32,
    "history": torch.int64,
    "history_padding_mask": torch.bool,
    "labels": torch.float32,
    "label_mask": torch.bool,
    "is_cold_item": torch.bool,
    "timestamp": torch.int64,
    "item_content": torch.int64,
}


def test_batch_declares_every_key_once_under_its_constant():
    keys = (
        USER, ITEM, SPARSE, DENSE, HISTORY, HISTORY_PADDING_MASK, LABELS, LABEL_MASK,
        IS_COLD_ITEM, TIMESTAMP, ITEM_CONTENT, IS_BOT, IS_FEMALE, *GROUND_TRUTH,
    )  # fmt: skip
    assert tuple(Batch.__annotations__) == keys
    assert keys[:11] == tuple(CONTRACT_DTYPES)  # the spelling saved data, notebooks and models rely on
    assert keys[11:] == ("is_bot", "is_female", "true_click_prob", "true_cvr", "true_purchase_prob",
                         "bayes_click_prob", "bayes_cvr", "bayes_purchase_prob")
    assert Batch.__required_keys__ == frozenset()  # total=False: keys differ by source


@pytest.mark.parametrize("which", ["ratings_data", "funnel_data"])
def test_shapes_and_dtypes_follow_the_contract(which, request):
    data = request.getfixturevalue(which)
    schema = data.schema
    for split in (data.train, data.valid, data.test):
        n = len(split)
        assert n > 0
        for key, dtype in CONTRACT_DTYPES.items():
            assert split[key].dtype == dtype, key
            assert split[key].shape[0] == n
        assert split["sparse"].shape == (n, schema.n_sparse)
        assert split["dense"].shape == (n, schema.n_dense)
        assert split["history"].shape == (n, schema.seq_len)
        assert split["labels"].shape == (n, len(schema.tasks))
        assert split["label_mask"].shape == split["labels"].shape
        assert int(split["user"].min()) >= 0 and int(split["user"].max()) < schema.n_users
        assert int(split["item"].min()) >= 0 and int(split["item"].max()) < schema.n_items
        assert int(split["history"].max()) < schema.n_items
        assert int(split["item_content"].min()) >= 1 and int(split["item_content"].max()) < schema.n_items
        for j, card in enumerate(schema.sparse_cardinalities):
            assert 0 <= int(split["sparse"][:, j].min()) and int(split["sparse"][:, j].max()) < card
        assert torch.isfinite(split["dense"]).all() and torch.isfinite(split["labels"]).all()
        assert (split["labels"][~split["label_mask"]] == 0).all()  # 0.0 where unobserved
        assert set(split.keys()) <= set(Batch.__annotations__)  # no key outside the contract
