"""The input encoder every model shares: feature embeddings and a behaviour-sequence Transformer.

One sample (a user seeing a target item) becomes one feature vector, the concatenation of

    [ e_user | v_item | e_field_1 … e_field_F | W_dense x_dense | pool(BST(history ⊕ item)) ]

- id and sparse-field embeddings (index 0 = padding/OOV → the zero vector);
- item vectors v_i = E_item[i] + P t_i: a learned id embedding plus a learned projection P
  of the item's frozen pretrained text embedding t_i, so an item unseen in training (id 0)
  still has a content vector;
- a linear layer for the dense fields;
- the behaviour-sequence Transformer (BST; Chen, Zhao, Li, Huang & Ou, 2019, "Behavior
  Sequence Transformer for E-commerce Recommendation in Alibaba", DLP-KDD): the user's
  history with the target item appended as the last position, plus position embeddings,
  through pre-LN Transformer layers; the target position's output (and/or the mean over the
  non-padded positions) summarises how the target relates to what the user did before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from mtlkit.data.batch import DENSE, HISTORY, HISTORY_PADDING_MASK, ITEM, ITEM_CONTENT, SPARSE, USER
from mtlkit.models.experts import init_linear
from mtlkit.positional import LearnedPositionalEmbedding, SinusoidalPositionalEncoding
from mtlkit.transformer import TransformerEncoder

if TYPE_CHECKING:
    from mtlkit.models.base import ModelConfig

EMBEDDING_STD = 0.05  # small normal init for every embedding table (row 0 is then zeroed)
# The choices of ModelConfig.positional and .sequence_pooling (.transformer_activation: the
# Transformer's own mtlkit.transformer.ACTIVATIONS).
POSITIONALS = ("learned", "sinusoidal")
SEQUENCE_POOLINGS = ("target", "mean", "target+mean")


def _embedding(n_rows: int, dim: int) -> nn.Embedding:
    """An embedding table with small normal init and a zero, never-updated padding row 0."""
    table = nn.Embedding(n_rows, dim, padding_idx=0)
    nn.init.normal_(table.weight, std=EMBEDDING_STD)
    with torch.no_grad():
        table.weight[0].zero_()
    return table


class FeatureEncoder(nn.Module):
    """Encode a batch (see :mod:`mtlkit.data.batch`) into one feature vector per sample.

    Args:
        schema: the data's ``FeatureSchema`` (vocabulary sizes, fields, ``seq_len``, text
            embeddings).
        config: a :class:`~mtlkit.models.base.ModelConfig` (embedding widths, Transformer
            size, positional kind, pooling, dropout).

    Attributes:
        out_dim: width of the output vector ``d_out``.
        item_text: the frozen text embeddings ``(n_text_rows, d_text)`` as a buffer (saved in
            the state dict, never trained), or None.

    Batch keys read: ``user``, ``item``, ``sparse``, ``dense``, ``history``,
    ``history_padding_mask`` (True = padding, the torch ``key_padding_mask`` convention) and,
    when present, ``item_content`` (the target's row in the text table, valid for cold items
    whose ``item`` is 0); other keys are ignored.
    """

    def __init__(self, schema, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.seq_len = int(schema.seq_len)
        self.n_sparse = len(schema.sparse_cardinalities)
        self.n_dense = len(schema.dense_fields)
        d_emb, d_model = config.embedding_dim, config.d_model

        self.user_embedding = _embedding(schema.n_users, d_emb)
        self.item_embedding = _embedding(schema.n_items, d_model)  # target and history share it

        text = schema.item_text_embeddings if config.use_text else None
        if text is not None:
            if not isinstance(text, Tensor) or text.dim() != 2 or text.size(0) < schema.n_items:
                shape = tuple(text.shape) if isinstance(text, Tensor) else type(text).__name__
                raise ValueError(
                    f"schema.item_text_embeddings must be a tensor (n_text_rows >= n_items="
                    f"{schema.n_items}, d_text), got {shape}"
                )
            # A buffer, not a Parameter: the pretrained vectors stay frozen; only the
            # projection learns how to use them.
            self.register_buffer("item_text", text.detach().to(torch.float32))
            self.text_projection = nn.Linear(text.size(1), d_model, bias=False)
            init_linear(self.text_projection)
        else:
            self.item_text = None
            self.text_projection = None

        # All sparse fields in one table: value i >= 1 of field f is row 1 + Σ_{g<f} (c_g - 1)
        # + (i - 1), and value 0 of every field is the shared zero row 0. One lookup instead
        # of a loop over fields.
        cardinalities = torch.tensor(schema.sparse_cardinalities, dtype=torch.long)
        offsets = torch.cumsum(cardinalities - 1, 0) - (cardinalities - 1)  # (n_sparse,)
        self.register_buffer("sparse_offsets", offsets, persistent=False)
        n_rows = 1 + int((cardinalities - 1).sum())
        self.sparse_embedding = _embedding(n_rows, d_emb) if self.n_sparse else None

        self.dense_projection = nn.Linear(self.n_dense, d_emb) if self.n_dense else None
        if self.dense_projection is not None:
            init_linear(self.dense_projection)

        self.positional: nn.Module | None = None
        self.transformer: TransformerEncoder | None = None
        if self.seq_len > 0:
            max_len = self.seq_len + 1  # the history plus the target item
            if config.positional == "learned":  # BST learns its position embeddings
                self.positional = LearnedPositionalEmbedding(max_len=max_len, d_model=d_model)
            else:
                self.positional = SinusoidalPositionalEncoding(d_model=d_model, max_len=max_len)
            if config.n_layers > 0:
                self.transformer = TransformerEncoder(
                    d_model=d_model,
                    n_heads=config.n_heads,
                    d_ff=config.d_ff,
                    n_layers=config.n_layers,
                    dropout=config.dropout,
                    activation=config.transformer_activation,
                )

        n_pooled = {"target": 1, "mean": 1, "target+mean": 2}[config.sequence_pooling]
        self.out_dim = (
            d_emb  # user
            + d_model  # target item
            + self.n_sparse * d_emb
            + (d_emb if self.n_dense else 0)
            + (n_pooled * d_model if self.seq_len > 0 else 0)
        )

    def item_vectors(
        self, items: Tensor, content: Tensor | None = None, text_table: Tensor | None = None
    ) -> Tensor:
        """v = E_item[items] + P · text[content]: ``(...)`` indices → ``(..., d_model)``.

        ``content`` indexes the text table (default: ``items``); it differs from ``items``
        only for items without an id embedding (cold items, id 0). ``text_table`` is the
        already projected table P · text ``(n_text_rows, d_model)``, if the caller has it.
        """
        vectors = self.item_embedding(items)
        if self.text_projection is not None:
            rows = items if content is None else content
            if text_table is None:
                vectors = vectors + self.text_projection(self.item_text[rows])
            else:
                vectors = vectors + text_table[rows]
        return vectors

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """Return the feature vectors ``(B, out_dim)`` of a batch."""
        text_table = None
        if self.text_projection is not None:
            n_lookups = batch[ITEM].numel() + (batch[HISTORY].numel() if self.seq_len else 0)
            # (P t)[rows] = P (t[rows]): project the whole table once when that is fewer rows
            # than the batch looks up (small catalogs, long histories), else only the rows.
            if self.item_text.size(0) < n_lookups:
                text_table = self.text_projection(self.item_text)  # (n_text_rows, d_model)
        target = self.item_vectors(batch[ITEM], batch.get(ITEM_CONTENT), text_table)  # (B, D)
        parts = [self.user_embedding(batch[USER]), target]
        if self.sparse_embedding is not None:
            sparse = batch[SPARSE]  # (B, n_sparse)
            rows = torch.where(sparse == 0, sparse, sparse + self.sparse_offsets)
            fields = self.sparse_embedding(rows)  # (B, n_sparse, d_emb)
            parts.append(fields.flatten(1))  # (B, n_sparse * d_emb)
        if self.dense_projection is not None:
            parts.append(self.dense_projection(batch[DENSE]))  # (B, d_emb)
        if self.seq_len > 0:
            parts.append(self._encode_sequence(batch, target, text_table))
        return torch.cat(parts, dim=-1)

    def _encode_sequence(
        self, batch: dict[str, Tensor], target: Tensor, text_table: Tensor | None
    ) -> Tensor:
        """BST: history ⊕ target → positions → Transformer → pooled ``(B, k · d_model)``."""
        history = batch[HISTORY]  # (B, S), left-padded, most recent last
        padding = batch[HISTORY_PADDING_MASK]  # (B, S), True = padding
        history_vectors = self.item_vectors(history, text_table=text_table)  # (B, S, D)
        tokens = torch.cat([history_vectors, target.unsqueeze(1)], dim=1)  # (B, L, D)
        # The target is never padding, so every query has at least one key to attend to.
        padding = torch.cat([padding, padding.new_zeros(padding.size(0), 1)], dim=1)  # (B, L)
        h = self.positional(tokens)  # (B, L, D); L = S + 1, the target at position L-1
        if self.transformer is not None:
            h = self.transformer(
                h, key_padding_mask=padding, need_weights=self.config.keep_attention_weights
            )
        pooled = []
        if self.config.sequence_pooling in ("target", "target+mean"):
            pooled.append(h[:, -1])  # (B, D)
        if self.config.sequence_pooling in ("mean", "target+mean"):
            valid = ~padding.unsqueeze(-1)  # (B, L, 1)
            total = torch.where(valid, h, torch.zeros_like(h)).sum(dim=1)  # (B, D)
            pooled.append(total / valid.sum(dim=1))  # the target is valid: count >= 1
        return torch.cat(pooled, dim=-1)

    def attention_weights(self) -> list[Tensor]:
        """Per-layer attention weights ``(B, n_heads, L, L)`` of the last forward (L = seq_len
        + 1, the target last); [] without a sequence, without layers, or when
        ``config.keep_attention_weights`` is False (the fused kernel keeps none)."""
        return [] if self.transformer is None else list(self.transformer.attention_weights)
