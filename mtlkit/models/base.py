"""What every multi-task model has in common: config, task towers, summary, shared parameters."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor, nn

from mtlkit.checks import check_bool, check_choice, check_int, check_probability, check_sizes
from mtlkit.models.encoder import POSITIONALS, SEQUENCE_POOLINGS
from mtlkit.models.experts import ACTIVATIONS, MLP
from mtlkit.transformer import ACTIVATIONS as TRANSFORMER_ACTIVATIONS

if TYPE_CHECKING:
    from mtlkit.data.schema import FeatureSchema

TASK_KINDS = ("binary", "regression")


@dataclass
class ModelConfig:
    """Fields every model shares: the input encoder (with its behaviour-sequence Transformer)
    and the per-task towers.

    Each architecture's config extends this one beside its model (``MMoEConfig`` in
    ``mmoe.py``, ...). Configs are flat dataclasses, so a run's ``config.json`` holds them as
    plain JSON (``dataclasses.asdict(config)``) and :meth:`from_dict` rebuilds them (JSON
    lists become tuples). Values are checked once, when the config is created; a bad value
    raises ``ValueError`` naming the field.

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
            setattr(self, name, check_int(name, getattr(self, name), low=1))
        self.n_layers = check_int("n_layers", self.n_layers, low=0)
        if self.d_model % self.n_heads:
            raise ValueError(
                f"d_model must be divisible by n_heads={self.n_heads}, got {self.d_model!r}"
            )
        check_choice("positional", self.positional, POSITIONALS)
        check_choice("sequence_pooling", self.sequence_pooling, SEQUENCE_POOLINGS)
        check_choice("activation", self.activation, ACTIVATIONS)
        check_choice("transformer_activation", self.transformer_activation, TRANSFORMER_ACTIVATIONS)
        for name in ("use_text", "keep_attention_weights"):
            check_bool(name, getattr(self, name))
        self.tower_hidden = check_sizes("tower_hidden", self.tower_hidden, allow_empty=True)
        self.dropout = check_probability("dropout", self.dropout)

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


class MultiTaskModel(nn.Module):
    """Base class: ``forward(batch) -> {task: (B,) prediction}`` for the schema's tasks.

    Binary tasks predict a logit (the trainer applies BCE-with-logits), regression tasks a
    value. Subclasses build their layers in ``__init__`` (an ``encoder`` and ``towers``, a
    ``ModuleDict`` task → :class:`MLP`) and implement ``forward``, ``shared_parameters`` and
    ``last_shared_parameters``.

    Attributes:
        config: the model's config dataclass (``dataclasses.asdict`` gives JSON-able values).
        task_names: the tasks in schema order.
        task_kinds: task name → ``"binary"`` or ``"regression"``.
    """

    config_class: ClassVar[type[ModelConfig]] = ModelConfig

    def __init__(self, schema: FeatureSchema, config: ModelConfig | None = None) -> None:
        super().__init__()
        config = self.config_class() if config is None else config
        if not isinstance(config, self.config_class):
            raise TypeError(
                f"config must be a {self.config_class.__name__}, got {type(config).__name__}"
            )
        tasks = tuple(schema.tasks)
        if not tasks:
            raise ValueError(f"schema.tasks must name at least one task, got {tasks!r}")
        for task in tasks:
            if not isinstance(task.name, str) or not task.name or "." in task.name:
                raise ValueError(f"schema.tasks names must be non-empty without '.', got {task.name!r}")
            if task.kind not in TASK_KINDS:
                raise ValueError(f"schema.tasks kind must be one of {list(TASK_KINDS)}, got {task.kind!r}")
        self.config = config
        self.task_names: tuple[str, ...] = tuple(task.name for task in tasks)
        self.task_kinds: dict[str, str] = {task.name: task.kind for task in tasks}

    def make_towers(self, in_dim: int) -> nn.ModuleDict:
        """One tower MLP per task: ``in_dim → tower_hidden → 1``."""
        config = self.config
        return nn.ModuleDict(
            {
                name: MLP(
                    in_dim,
                    config.tower_hidden,
                    out_dim=1,
                    activation=config.activation,
                    dropout=config.dropout,
                )
                for name in self.task_names
            }
        )

    @torch.no_grad()
    def init_output_biases(self, labels: Tensor, label_mask: Tensor | None = None) -> dict[str, float]:
        """Start every task at its base rate: set each tower's output bias from training labels.

        A binary task starts at logit(positive rate) and a regression task at the mean label,
        so the first steps are not spent learning a constant ("init well", Karpathy, 2019, "A
        Recipe for Training Neural Networks"). This matters most for regression labels on a
        raw scale (ratings 1–5), whose initial squared error would otherwise swamp the other
        tasks' losses in the shared layers. Call it once before training.

        Args:
            labels: ``(N, n_tasks)`` training labels in ``task_names`` order.
            label_mask: ``(N, n_tasks)`` bool, True = observed (default: all observed).

        Returns:
            task → the bias set (tasks without an observed label are left as they are).
        """
        means = observed_label_means(labels, label_mask, self.task_names)
        biases = self.output_biases(means)
        for name, bias in biases.items():
            self.tower(name).last_linear().bias.fill_(bias)
        return biases

    def tower(self, name: str) -> MLP:
        """The tower that makes task ``name``'s output (for ESMM's conversion task: the CVR tower)."""
        return self.towers[name]

    def output_biases(self, means: dict[str, float]) -> dict[str, float]:
        """Task → the output bias that predicts ``means[task]`` when the rest outputs 0."""
        return {
            name: probability_logit(mean) if self.task_kinds[name] == "binary" else mean
            for name, mean in means.items()
        }

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:  # pragma: no cover
        raise NotImplementedError

    def shared_parameters(self) -> list[nn.Parameter]:
        """Parameters every task's loss reaches (the input encoder and the shared layers);
        gradient-based weighting strategies combine the task gradients on these."""
        raise NotImplementedError

    def last_shared_parameters(self) -> list[nn.Parameter]:
        """Parameters of the last shared layer, where GradNorm (Chen et al., ICML 2018)
        measures each task's gradient norm."""
        raise NotImplementedError

    def attention_weights(self) -> list[Tensor]:
        """The sequence Transformer's per-layer ``(B, n_heads, L, L)`` weights of the last
        forward (L = seq_len + 1, the target item last)."""
        return self.encoder.attention_weights()

    def num_parameters(self) -> int:
        """Number of trainable parameters (the frozen text embeddings are a buffer, not counted)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def summary(self) -> str:
        """One line: model, tasks, trainable and shared parameter counts."""
        shared = sum(p.numel() for p in self.shared_parameters())
        tasks = ", ".join(f"{name}:{self.task_kinds[name]}" for name in self.task_names)
        return (
            f"{type(self).__name__}(tasks={tasks}) — {self.num_parameters()} trainable "
            f"parameters, {shared} shared by all tasks"
        )


def probability_logit(p: float, eps: float = 1e-4) -> float:
    """log(p / (1 - p)) with p clipped to [eps, 1 - eps]."""
    p = min(max(p, eps), 1.0 - eps)
    return math.log(p / (1.0 - p))


def observed_label_means(
    labels: Tensor, label_mask: Tensor | None, task_names: tuple[str, ...]
) -> dict[str, float]:
    """Task → mean of its observed labels (tasks with none observed are left out)."""
    if not isinstance(labels, Tensor) or labels.dim() != 2 or labels.size(1) != len(task_names):
        shape = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
        raise ValueError(f"labels must be a tensor (N, n_tasks={len(task_names)}), got {shape}")
    if label_mask is None:
        label_mask = torch.ones_like(labels, dtype=torch.bool)
    if not isinstance(label_mask, Tensor) or label_mask.shape != labels.shape:
        shape = tuple(label_mask.shape) if isinstance(label_mask, Tensor) else type(label_mask).__name__
        raise ValueError(f"label_mask must have the shape of labels {tuple(labels.shape)}, got {shape}")
    observed = label_mask.bool()
    counts = observed.sum(0)  # (n_tasks,)
    sums = torch.where(observed, labels.to(torch.float64), 0.0).sum(0)  # (n_tasks,)
    return {
        name: float(sums[i] / counts[i]) for i, name in enumerate(task_names) if counts[i] > 0
    }
