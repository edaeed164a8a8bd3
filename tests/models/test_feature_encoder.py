"""The input encoder: feature vector layout, BST masks, text embeddings, seq_len 0."""

from __future__ import annotations

import pytest
import torch
from fake_batches import ALL_MODELS, SMALL, make_batch, make_schema

from mtlkit.models import FeatureEncoder, ModelConfig, build_model


def _encoder(schema, **overrides) -> FeatureEncoder:
    torch.manual_seed(0)
    return FeatureEncoder(schema, ModelConfig(**{**SMALL, **overrides})).eval()


@pytest.mark.parametrize("pooling, n_pooled", [("target", 1), ("mean", 1), ("target+mean", 2)])
def test_output_width_is_the_sum_of_the_parts(schema, batch, pooling, n_pooled):
    encoder = _encoder(schema, sequence_pooling=pooling)
    out = encoder(batch)
    e, d = SMALL["embedding_dim"], SMALL["d_model"]
    expected = e + d + len(schema.sparse_cardinalities) * e + e + n_pooled * d
    assert encoder.out_dim == expected
    assert out.shape == (len(batch["user"]), expected) and out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_without_sparse_dense_or_text_fields():
    schema = make_schema(sparse_cardinalities=(), n_dense=0, text_dim=None)
    batch = make_batch(schema)
    encoder = _encoder(schema)
    assert encoder.out_dim == SMALL["embedding_dim"] + 2 * SMALL["d_model"]
    assert encoder(batch).shape == (16, encoder.out_dim)
    assert encoder.item_text is None and encoder.text_projection is None


@pytest.mark.parametrize("positional", ["learned", "sinusoidal"])
def test_attention_never_reaches_padded_history(schema, batch, positional):
    encoder = _encoder(schema, positional=positional)
    encoder(batch)
    weights = encoder.attention_weights()
    L = schema.seq_len + 1
    assert len(weights) == SMALL["n_layers"]
    keys_padded = torch.cat([batch["history_padding_mask"], torch.zeros(16, 1, dtype=torch.bool)], 1)
    for w in weights:
        assert w.shape == (16, SMALL["n_heads"], L, L)
        # (B, H, L, S): every query row puts exactly zero weight on padded keys ...
        assert (w.masked_select(keys_padded[:, None, None, :].expand_as(w)) == 0).all()
        # ... and is a distribution over the others.
        torch.testing.assert_close(w.sum(-1), torch.ones(16, SMALL["n_heads"], L))


@pytest.mark.parametrize("name", ALL_MODELS)
@pytest.mark.parametrize("pooling", ["target", "target+mean"])
def test_padded_history_items_do_not_change_outputs(schema, batch, name, pooling):
    torch.manual_seed(0)
    model = build_model(name, schema, **SMALL, sequence_pooling=pooling).eval()
    garbage = dict(batch)
    noise = torch.randint(1, schema.n_items, batch["history"].shape)
    garbage["history"] = torch.where(batch["history_padding_mask"], noise, batch["history"])
    assert not torch.equal(garbage["history"], batch["history"])
    with torch.no_grad():
        clean, dirty = model(batch), model(garbage)
    for task in schema.task_names:
        assert torch.equal(clean[task], dirty[task]), task


def test_history_changes_outputs_where_not_padded(schema, batch):
    """The converse: the sequence is actually used."""
    encoder = _encoder(schema)
    other = dict(batch)
    shifted = batch["history"] % (schema.n_items - 1) + 1  # another item at every position
    other["history"] = torch.where(batch["history_padding_mask"], 0, shifted)
    with torch.no_grad():
        diff = (encoder(batch) - encoder(other)).abs().sum(-1)
    has_history = (~batch["history_padding_mask"]).any(-1)
    assert (diff[has_history] > 0).all() and (diff[~has_history] == 0).all()


def test_fused_attention_path_gives_the_same_features(schema, batch):
    keep, fused = _encoder(schema), _encoder(schema, keep_attention_weights=False)
    fused.load_state_dict(keep.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(fused(batch), keep(batch), atol=1e-5, rtol=1e-5)
    assert fused.attention_weights() == []


@pytest.mark.parametrize("name", ALL_MODELS)
def test_seq_len_zero_skips_the_transformer(name):
    schema = make_schema(seq_len=0)
    batch = make_batch(schema)
    assert batch["history"].shape == (16, 0)
    model = build_model(name, schema, **SMALL)
    out = model(batch)
    assert all(out[task].shape == (16,) for task in schema.task_names)
    assert model.attention_weights() == []
    encoder = _encoder(schema)
    assert encoder.transformer is None and encoder.positional is None
    assert encoder.out_dim == SMALL["embedding_dim"] * 4 + SMALL["d_model"]  # user, 2 sparse, dense


def test_zero_layers_pools_embeddings_without_attention(schema, batch):
    encoder = _encoder(schema, n_layers=0, sequence_pooling="mean")
    assert encoder.transformer is None
    assert encoder(batch).shape == (16, encoder.out_dim)
    assert encoder.attention_weights() == []


def test_text_embeddings_are_a_frozen_buffer(schema, batch):
    torch.manual_seed(0)
    model = build_model("mmoe", schema, **SMALL)
    encoder = model.encoder
    text = encoder.item_text
    assert torch.equal(text, schema.item_text_embeddings)
    assert not text.requires_grad
    assert all(p is not text and p.data_ptr() != text.data_ptr() for p in model.parameters())
    assert "encoder.item_text" in model.state_dict()  # checkpoints carry it
    before = text.clone()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    sum(out.sum() for out in model(batch).values()).backward()
    assert text.grad is None and encoder.text_projection.weight.grad is not None
    optimizer.step()
    assert torch.equal(encoder.item_text, before)


def test_cold_item_uses_its_text_row(schema, batch):
    """Item id 0 has no id embedding; its content row in the text table still informs it."""
    encoder = _encoder(schema)
    assert batch["item"][1] == 0 and batch["item_content"][1] > 0
    target = slice(SMALL["embedding_dim"], SMALL["embedding_dim"] + SMALL["d_model"])
    with torch.no_grad():
        with_content = encoder(batch)[1, target]
        without = dict(batch)
        del without["item_content"]  # falls back to "item" = 0: the zero text row
        assert torch.equal(encoder(without)[1, target], torch.zeros(SMALL["d_model"]))
    assert with_content.abs().sum() > 0


def test_padding_and_oov_rows_are_zero_and_stay_zero(schema, batch):
    encoder = _encoder(schema)
    e = SMALL["embedding_dim"]
    optimizer = torch.optim.Adam(encoder.parameters(), lr=0.1)
    encoder.train()
    encoder(batch).pow(2).sum().backward()
    optimizer.step()
    for table in (encoder.user_embedding, encoder.item_embedding, encoder.sparse_embedding):
        assert torch.equal(table.weight[0], torch.zeros_like(table.weight[0]))
    with torch.no_grad():
        out = encoder.eval()(batch)
    sparse_part = out[0, e + SMALL["d_model"] : e + SMALL["d_model"] + 2 * e]
    assert torch.equal(sparse_part, torch.zeros(2 * e))  # row 0 of the batch is all-OOV


def test_sparse_fields_have_separate_rows(schema):
    """Value i of field 0 and value i of field 1 are different embeddings (one shared table)."""
    encoder = _encoder(schema)
    rows = torch.where(torch.tensor([[1, 1]]) == 0, 0, torch.tensor([[1, 1]]) + encoder.sparse_offsets)
    assert rows.tolist() == [[1, schema.sparse_cardinalities[0]]]
    assert encoder.sparse_embedding.num_embeddings == 1 + sum(c - 1 for c in schema.sparse_cardinalities)


def test_text_table_smaller_than_item_vocabulary_is_rejected(schema):
    schema.item_text_embeddings = torch.zeros(schema.n_items - 1, 4)
    with pytest.raises(ValueError, match="item_text_embeddings"):
        FeatureEncoder(schema, ModelConfig())


def test_use_text_false_ignores_the_text_table(schema, batch):
    encoder = _encoder(schema, use_text=False)
    assert encoder.item_text is None
    assert encoder(batch).shape == (16, encoder.out_dim)


def test_projecting_the_text_table_or_the_rows_gives_the_same_vectors(schema, batch):
    """Small batches project only the looked-up text rows, large ones the whole table."""
    encoder = _encoder(schema)
    assert encoder.item_text.size(0) < batch["history"].numel()  # the whole-table path
    with torch.no_grad():
        full = encoder(batch)
        for i in range(3):  # one row: 1 + seq_len lookups < n_items, the per-row path
            row = encoder({key: value[i : i + 1] for key, value in batch.items()})
            torch.testing.assert_close(row[0], full[i], atol=1e-5, rtol=1e-5)
