"""Configuration dataclasses for the multi-task models.

Every model is built from ``(schema, config)``. The configs are flat dataclasses so that a run's
``config.json`` holds them as plain JSON (``dataclasses.asdict(config)``) and a command line can
rebuild them (``ConfigClass(**json.load(f))``): lists in JSON become tuples here.

All models share the fields of :class:`ModelConfig` (the input encoder and the task towers); each
architecture adds its own (bottom, experts, levels, ESMM task names). Values are checked once,
when the config is created, and a bad value raises ``ValueError`` naming the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

ACTIVATIONS = ("relu", "gelu", "silu", "tanh", "leaky_relu")
TRANSFORMER_ACTIVATIONS = ("gelu", "relu")
POSITIONALS = ("learned", "sinusoidal")
SEQUENCE_POOLINGS = ("target", "mean", "target+mean")
FINETUNE_MODES = ("frozen", "last_n", "lora")
LM_EXPERTS = ("none", "mmoe", "ple")


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _as_sizes(name: str, value: Any, *, allow_empty: bool) -> tuple[int, ...]:
    """Normalise a list/tuple of layer sizes (JSON gives lists) to a tuple of positive ints."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValueError(f"{name} must be a sequence of positive ints, got {value!r}")
    sizes = tuple(value)
    if not allow_empty and not sizes:
        raise ValueError(f"{name} must have at least one layer size, got {value!r}")
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise ValueError(f"{name} must be a sequence of positive ints, got {value!r}")
    return sizes


def _check_choice(name: str, value: Any, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


@dataclass
class ModelConfig:
    """Fields every model shares: the input encoder (with its behaviour-sequence Transformer)
    and the per-task towers.

    Attributes:
        embedding_dim: width of the user-id and sparse-field embeddings and of the dense
            projection.
        d_model: width of the item embeddings and of the sequence Transformer.
        n_heads: attention heads per Transformer layer (must divide ``d_model``).
        n_layers: Transformer layers over the behaviour sequence (0: position-aware pooling
            of the item embeddings only, an ablation of the attention).
        d_ff: hidden width of the Transformer's feed-forward block.
        transformer_activation: the feed-forward activation, ``"gelu"`` or ``"relu"``.
        positional: ``"learned"`` position embeddings (as in BST) or ``"sinusoidal"``.
        sequence_pooling: what the sequence contributes to the feature vector: the
            ``"target"`` position's output (BST), the ``"mean"`` over non-padded positions,
            or both concatenated (``"target+mean"``).
        use_text: add a learned projection of the frozen item text embeddings to every item
            embedding (when the schema has text embeddings).
        keep_attention_weights: keep each layer's attention weights for
            ``attention_weights()`` (the from-scratch attention); False runs the fused kernel
            (faster on GPUs) and keeps none. Changes no parameter.
        tower_hidden: hidden layer sizes of each task tower (empty: a single linear layer).
        dropout: dropout probability in the Transformer, bottoms, experts and towers.
        activation: nonlinearity of the bottoms, experts and towers.
    """

    embedding_dim: int = 16
    d_model: int = 32
    n_heads: int = 2
    n_layers: int = 1
    d_ff: int = 64
    transformer_activation: str = "gelu"
    positional: str = "learned"
    sequence_pooling: str = "target"
    use_text: bool = True
    keep_attention_weights: bool = True
    tower_hidden: tuple[int, ...] = (32,)
    dropout: float = 0.1
    activation: str = "relu"

    def __post_init__(self) -> None:
        for name in ("embedding_dim", "d_model", "n_heads", "d_ff"):
            _check_positive_int(name, getattr(self, name))
        if isinstance(self.n_layers, bool) or not isinstance(self.n_layers, int) or self.n_layers < 0:
            raise ValueError(f"n_layers must be a non-negative int, got {self.n_layers!r}")
        if self.d_model % self.n_heads:
            raise ValueError(
                f"d_model must be divisible by n_heads={self.n_heads}, got {self.d_model!r}"
            )
        _check_choice("positional", self.positional, POSITIONALS)
        _check_choice("sequence_pooling", self.sequence_pooling, SEQUENCE_POOLINGS)
        _check_choice("activation", self.activation, ACTIVATIONS)
        _check_choice("transformer_activation", self.transformer_activation, TRANSFORMER_ACTIVATIONS)
        for name in ("use_text", "keep_attention_weights"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        self.tower_hidden = _as_sizes("tower_hidden", self.tower_hidden, allow_empty=True)
        if (
            isinstance(self.dropout, bool)
            or not isinstance(self.dropout, (int, float))
            or not 0.0 <= self.dropout < 1.0
        ):
            raise ValueError(f"dropout must be a float in [0, 1), got {self.dropout!r}")
        self.dropout = float(self.dropout)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelConfig:
        """Rebuild a config from ``dataclasses.asdict(config)`` (e.g. read back from JSON).

        Unknown keys raise ``ValueError`` naming them and the fields this config has.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"config has unknown field(s) {unknown} for {cls.__name__}; "
                f"fields are {sorted(known)}"
            )
        return cls(**values)


@dataclass
class SharedBottomConfig(ModelConfig):
    """Shared encoder → shared bottom MLP (``bottom_hidden``) → one tower per task."""

    bottom_hidden: tuple[int, ...] = (64,)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.bottom_hidden = _as_sizes("bottom_hidden", self.bottom_hidden, allow_empty=False)


@dataclass
class SingleTaskConfig(SharedBottomConfig):
    """One independent network per task: encoder → bottom MLP (``bottom_hidden``) → tower.

    The same layers as :class:`SharedBottomConfig`, only nothing is shared, so the two
    compare like for like.
    """


@dataclass
class MMoEConfig(ModelConfig):
    """``n_experts`` expert MLPs (``expert_hidden``; output width = its last size), mixed by
    one softmax gate per task."""

    n_experts: int = 4
    expert_hidden: tuple[int, ...] = (64,)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_positive_int("n_experts", self.n_experts)
        self.expert_hidden = _as_sizes("expert_hidden", self.expert_hidden, allow_empty=False)


@dataclass
class PLEConfig(ModelConfig):
    """``n_levels`` CGC levels, each with ``n_shared_experts`` shared experts and
    ``n_task_experts`` experts per task (``expert_hidden`` as in MMoE)."""

    n_levels: int = 2
    n_shared_experts: int = 2
    n_task_experts: int = 1
    expert_hidden: tuple[int, ...] = (64,)

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("n_levels", "n_shared_experts", "n_task_experts"):
            _check_positive_int(name, getattr(self, name))
        self.expert_hidden = _as_sizes("expert_hidden", self.expert_hidden, allow_empty=False)


@dataclass
class ESMMConfig(ModelConfig):
    """ESMM: a CTR tower for ``ctr_task`` and a CVR tower whose product with pCTR is the
    prediction for ``ctcvr_task`` (both binary tasks of the schema)."""

    ctr_task: str = "click"
    ctcvr_task: str = "purchase"

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("ctr_task", "ctcvr_task"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty task name, got {value!r}")
        if self.ctr_task == self.ctcvr_task:
            raise ValueError(
                f"ctcvr_task must differ from ctr_task={self.ctr_task!r}, got {self.ctcvr_task!r}"
            )


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
        if not isinstance(self.id_features, bool):
            raise ValueError(f"id_features must be a bool, got {self.id_features!r}")
        if not isinstance(self.model_name, str):
            raise ValueError(f"model_name must be a string ('' for the offline default), got {self.model_name!r}")
        for name in ("max_length", "title_max_tokens", "n_trainable_layers", "lora_r", "lora_alpha",
                     "d_projection", "n_experts", "n_levels", "n_shared_experts", "n_task_experts"):
            _check_positive_int(name, getattr(self, name))
        if self.max_length < 4:
            raise ValueError(f"max_length must be >= 4, got {self.max_length!r}")
        n = self.n_history_titles
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n_history_titles must be a non-negative int, got {n!r}")
        _check_choice("finetune", self.finetune, FINETUNE_MODES)
        _check_choice("experts", self.experts, LM_EXPERTS)
        value = self.lora_dropout
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
            raise ValueError(f"lora_dropout must be a float in [0, 1), got {value!r}")
        self.lora_dropout = float(value)
        modules = self.lora_target_modules
        if isinstance(modules, str) or not modules or not all(isinstance(m, str) and m for m in modules):
            raise ValueError(f"lora_target_modules must be a non-empty sequence of module names, got {modules!r}")
        self.lora_target_modules = tuple(modules)
        self.expert_hidden = _as_sizes("expert_hidden", self.expert_hidden, allow_empty=False)
