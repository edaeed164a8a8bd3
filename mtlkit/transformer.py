"""A pre-LayerNorm Transformer encoder built on :class:`mtlkit.attention.MultiHeadAttention`.

Each layer is the Transformer block of Vaswani et al. (2017, NeurIPS) with the LayerNorm
moved in front of each sub-layer ("pre-LN"; Xiong et al., 2020, "On Layer Normalization in
the Transformer Architecture", ICML), which trains stably without a learning-rate warm-up:

    x = x + Dropout(MHA(LN_1(x)))
    x = x + Dropout(W_2 Dropout(act(W_1 LN_2(x))))

The encoder stacks ``n_layers`` such layers and applies a final LayerNorm (needed with
pre-LN, since the residual stream itself is never normalised). It is numerically the same
as ``torch.nn.TransformerEncoder`` of ``torch.nn.TransformerEncoderLayer(norm_first=True,
batch_first=True)`` (see ``from_torch``), but keeps each layer's attention weights of the
last forward pass for visualisation.

Masks follow ``torch.nn.functional.scaled_dot_product_attention``: a bool ``attn_mask``
True = may attend (the opposite of torch's encoder ``mask``), or a float mask added to
the scores; ``key_padding_mask`` (B, L) True = padding, as in torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from mtlkit.attention import MultiHeadAttention, _check_sequence
from mtlkit.checks import check_choice, check_int, check_probability

__all__ = ["ACTIVATIONS", "TransformerConfig", "TransformerEncoder", "TransformerEncoderLayer"]

#: The feed-forward activations, by name: exact (erf-based) GELU and ReLU.
ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu}


@dataclass
class TransformerConfig:
    """Hyper-parameters of :class:`TransformerEncoder` (and of each of its layers)."""

    d_model: int = 64
    n_heads: int = 4
    d_ff: int = 256
    n_layers: int = 2
    dropout: float = 0.0
    activation: str = "gelu"  # "gelu" (exact, erf-based) or "relu"
    bias: bool = True  # bias in the linear layers and LayerNorms
    layer_norm_eps: float = 1e-5
    final_norm: bool = True  # LayerNorm after the last layer


class TransformerEncoderLayer(nn.Module):
    """One pre-LN Transformer encoder layer (Xiong et al., 2020, ICML).

        x = x + dropout1(self_attn(norm1(x)))
        x = x + dropout2(linear2(dropout(activation(linear1(norm2(x))))))

    Attribute names follow ``torch.nn.TransformerEncoderLayer`` so weights map one to one.
    After each forward, ``attention_weights`` holds the detached (B, n_heads, L, L)
    weights (None when called with ``need_weights=False``).
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        dropout: float = 0.0,
        activation: str = "gelu",
        *,
        bias: bool = True,
        layer_norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        d_model = check_int("d_model", d_model, low=1)
        d_ff = check_int("d_ff", d_ff, low=1)
        dropout = check_probability("dropout", dropout)
        self.d_model = d_model
        self.activation_name = check_choice("activation", activation, ACTIVATIONS)
        self.activation = ACTIVATIONS[activation]
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout=dropout, bias=bias)
        self.dropout1 = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.linear1 = nn.Linear(d_model, d_ff, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(d_ff, d_model, bias=bias)
        self.dropout2 = nn.Dropout(dropout)
        self.attention_weights: Tensor | None = None

    def forward(
        self,
        x: Tensor,
        *,
        key_padding_mask: Tensor | None = None,
        attn_mask: Tensor | None = None,
        is_causal: bool = False,
        need_weights: bool = True,
    ) -> Tensor:
        """x (B, L, d_model) -> (B, L, d_model); masks as in :class:`MultiHeadAttention`."""
        _check_sequence("x", x, "d_model", self.d_model, batched=True)
        h = self.norm1(x)  # (B, L, d_model)
        attn, weights = self.self_attn(
            h,
            key_padding_mask=key_padding_mask,
            attn_mask=attn_mask,
            is_causal=is_causal,
            need_weights=need_weights,
        )
        self.attention_weights = None if weights is None else weights.detach()  # (B, H, L, L)
        x = x + self.dropout1(attn)
        h = self.activation(self.linear1(self.norm2(x)))  # (B, L, d_ff)
        return x + self.dropout2(self.linear2(self.dropout(h)))

    @classmethod
    def from_torch(cls, layer: nn.TransformerEncoderLayer) -> TransformerEncoderLayer:
        """A copy of a ``torch.nn.TransformerEncoderLayer(norm_first=True)`` (gelu or relu).

        The copy is batch-first and reads bool masks as "may attend" (invert torch's).
        """
        if not isinstance(layer, nn.TransformerEncoderLayer):
            raise TypeError(
                f"layer must be a torch.nn.TransformerEncoderLayer, got {type(layer).__name__}"
            )
        if not layer.norm_first:
            raise ValueError("layer must have norm_first=True (post-LN is not supported), got False")
        names = {1: "relu", 2: "gelu"}
        if layer.activation_relu_or_gelu not in names:
            raise ValueError(f"layer must use activation 'relu' or 'gelu', got {layer.activation!r}")
        attn = MultiHeadAttention.from_torch(layer.self_attn)
        new = cls(
            attn.d_model,
            attn.n_heads,
            layer.linear1.out_features,
            dropout=layer.dropout.p,
            activation=names[layer.activation_relu_or_gelu],
            bias=layer.linear1.bias is not None,
            layer_norm_eps=layer.norm1.eps,
        )
        new = new.to(device=attn.q_proj.weight.device, dtype=attn.q_proj.weight.dtype)
        new.self_attn = attn
        # Same attribute names: the other weights load straight from torch's state dict.
        state = {k: v for k, v in layer.state_dict().items() if not k.startswith("self_attn.")}
        missing, unexpected = new.load_state_dict(state, strict=False)
        assert not unexpected and all(k.startswith("self_attn.") for k in missing), (missing, unexpected)
        return new.train(layer.training)


class TransformerEncoder(nn.Module):
    """A stack of ``n_layers`` pre-LN :class:`TransformerEncoderLayer` and a final LayerNorm.

    Build it with keywords, ``TransformerEncoder(d_model=64, n_heads=4, d_ff=256,
    n_layers=2)``, or from a config, ``TransformerEncoder.from_config(TransformerConfig())``.

    After each forward, ``attention_weights`` is a list with one detached
    (B, n_heads, L, L) tensor per layer (empty after ``need_weights=False``).
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        n_layers: int,
        dropout: float = 0.0,
        activation: str = "gelu",
        *,
        bias: bool = True,
        layer_norm_eps: float = 1e-5,
        final_norm: bool = True,
    ) -> None:
        super().__init__()
        check_int("n_layers", n_layers, low=1)
        self.config = TransformerConfig(
            d_model, n_heads, d_ff, n_layers, dropout, activation, bias, layer_norm_eps, final_norm
        )
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(
                d_model, n_heads, d_ff, dropout, activation, bias=bias, layer_norm_eps=layer_norm_eps
            )
            for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias) if final_norm else None
        self.attention_weights: list[Tensor] = []

    @classmethod
    def from_config(cls, config: TransformerConfig) -> TransformerEncoder:
        if not isinstance(config, TransformerConfig):
            raise TypeError(f"config must be a TransformerConfig, got {type(config).__name__}")
        return cls(**asdict(config))

    def forward(
        self,
        x: Tensor,
        *,
        key_padding_mask: Tensor | None = None,
        attn_mask: Tensor | None = None,
        is_causal: bool = False,
        need_weights: bool = True,
    ) -> Tensor:
        """Encode x (B, L, d_model) -> (B, L, d_model).

        Args:
            x: (B, L, d_model).
            key_padding_mask: (B, L), True = padding (torch convention).
            attn_mask: (L, L), (B, L, L) or (B, n_heads, L, L); bool True = may attend
                (``torch.nn.functional.scaled_dot_product_attention`` convention), or float
                added to the scores.
            is_causal: position i attends to positions 0..i only (not with ``attn_mask``).
            need_weights: keep the attention weights (from-scratch attention) or use the
                fused kernel and keep none.
        """
        for layer in self.layers:
            x = layer(
                x,
                key_padding_mask=key_padding_mask,
                attn_mask=attn_mask,
                is_causal=is_causal,
                need_weights=need_weights,
            )
        self.attention_weights = [layer.attention_weights for layer in self.layers] if need_weights else []
        return x if self.norm is None else self.norm(x)

    @classmethod
    def from_torch(cls, encoder: nn.TransformerEncoder) -> TransformerEncoder:
        """A copy of a ``torch.nn.TransformerEncoder`` of pre-LN layers (see the layer's)."""
        if not isinstance(encoder, nn.TransformerEncoder):
            raise TypeError(f"encoder must be a torch.nn.TransformerEncoder, got {type(encoder).__name__}")
        layers = [TransformerEncoderLayer.from_torch(layer) for layer in encoder.layers]
        first = layers[0]
        new = cls(
            first.d_model,
            first.self_attn.n_heads,
            first.linear1.out_features,
            len(layers),
            dropout=first.dropout.p,
            activation=first.activation_name,
            bias=first.linear1.bias is not None,
            layer_norm_eps=first.norm1.eps,
            final_norm=encoder.norm is not None,
        )
        ref = first.linear1.weight
        new = new.to(device=ref.device, dtype=ref.dtype)
        new.layers = nn.ModuleList(layers)
        if encoder.norm is not None:
            new.norm.load_state_dict(encoder.norm.state_dict())
        return new.train(encoder.training)
