"""mtlkit.transformer against torch.nn.TransformerEncoder(Layer)(norm_first=True, batch_first=True)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mtlkit.transformer import TransformerConfig, TransformerEncoder, TransformerEncoderLayer

ATOL = 1e-5


def _torch_layer(d_model=8, n_heads=2, d_ff=16, activation="gelu", bias=True, seed=0):
    torch.manual_seed(seed)
    layer = nn.TransformerEncoderLayer(
        d_model, n_heads, d_ff, dropout=0.0, activation=activation, norm_first=True, batch_first=True, bias=bias
    ).eval()
    with torch.no_grad():  # torch initialises biases and LayerNorms to 0/1; perturb to test the copy
        for p in layer.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return layer


def _masks(g, B, L, H):
    """A few mask settings as (ours, torch's): torch's bool attention mask means 'blocked'."""
    kpm = torch.rand(B, L, generator=g) > 0.6
    kpm[:, -1] = False  # left padding keeps the most recent position
    allowed = torch.rand(L, L, generator=g) > 0.3
    allowed.fill_diagonal_(True)
    float_mask = torch.randn(L, L, generator=g)
    causal_blocked = torch.ones(L, L, dtype=torch.bool).triu(1)
    return {
        "none": ({}, {}),
        "padding": ({"key_padding_mask": kpm}, {"src_key_padding_mask": kpm}),
        "bool": ({"attn_mask": allowed}, {"mask": ~allowed}),
        "float+padding": (
            {"attn_mask": float_mask, "key_padding_mask": kpm},
            {"mask": float_mask, "src_key_padding_mask": torch.zeros(B, L).masked_fill(kpm, float("-inf"))},
        ),
        "causal": ({"is_causal": True}, {"mask": causal_blocked, "is_causal": True}),
    }


@pytest.mark.parametrize("activation", ["gelu", "relu"])
def test_layer_matches_torch(activation):
    g = torch.Generator().manual_seed(0)
    for trial in range(6):
        H = 1 + trial % 3
        d_model, d_ff = 4 * H, 12
        B, L = 3, 2 + trial
        ref = _torch_layer(d_model, H, d_ff, activation, bias=trial != 5, seed=trial)
        ours = TransformerEncoderLayer.from_torch(ref)
        x = torch.randn(B, L, d_model, generator=g)
        for name, (our_masks, torch_masks) in _masks(g, B, L, H).items():
            layer_masks = {("src_mask" if k == "mask" else k): v for k, v in torch_masks.items()}
            expected = ref(x, **layer_masks)
            torch.testing.assert_close(ours(x, **our_masks), expected, atol=ATOL, rtol=0, msg=name)
            torch.testing.assert_close(ours(x, need_weights=False, **our_masks), expected, atol=ATOL, rtol=0)


def test_encoder_matches_torch_and_keeps_weights():
    g = torch.Generator().manual_seed(1)
    B, L, H, d_model = 4, 7, 2, 8
    ref = nn.TransformerEncoder(
        _torch_layer(d_model, H, 32), num_layers=3, norm=nn.LayerNorm(d_model), enable_nested_tensor=False
    ).eval()
    with torch.no_grad():
        for i, layer in enumerate(ref.layers):  # make the deep-copied layers differ
            for p in layer.parameters():
                p.add_(0.05 * (i + 1) * torch.randn_like(p))
    ours = TransformerEncoder.from_torch(ref)
    assert ours.config.n_layers == 3 and ours.config.d_ff == 32
    x = torch.randn(B, L, d_model, generator=g)
    for name, (our_masks, torch_masks) in _masks(g, B, L, H).items():
        torch.testing.assert_close(ours(x, **our_masks), ref(x, **torch_masks), atol=ATOL, rtol=0, msg=name)
        weights = ours.attention_weights
        assert len(weights) == 3 and all(w.shape == (B, H, L, L) and not w.requires_grad for w in weights)
        for w in weights:
            torch.testing.assert_close(w.sum(-1), torch.ones(B, H, L))
            if "key_padding_mask" in our_masks:
                assert torch.all(w.masked_select(our_masks["key_padding_mask"][:, None, None, :]) == 0)
    ours(x, need_weights=False)
    assert ours.attention_weights == []


def test_encoder_without_final_norm_matches_torch():
    ref = nn.TransformerEncoder(_torch_layer(), num_layers=2, enable_nested_tensor=False).eval()
    ours = TransformerEncoder.from_torch(ref)
    assert ours.norm is None
    x = torch.randn(2, 5, 8)
    torch.testing.assert_close(ours(x), ref(x), atol=ATOL, rtol=0)


def test_fully_padded_sequence_stays_finite():
    torch.manual_seed(0)
    encoder = TransformerEncoder(d_model=8, n_heads=2, d_ff=16, n_layers=2)
    x = torch.randn(2, 4, 8, requires_grad=True)
    kpm = torch.tensor([[True] * 4, [True, True, False, False]])  # user 0 has no history
    outputs = []
    for need_weights in (True, False):
        out = encoder(x, key_padding_mask=kpm, need_weights=need_weights)
        assert torch.isfinite(out).all()
        out.sum().backward()
        assert torch.isfinite(x.grad).all()
        outputs.append(out.detach())
        if need_weights:  # the empty history attends to nothing: all its weights are 0
            assert all(torch.all(w[0] == 0) for w in encoder.attention_weights)
    torch.testing.assert_close(outputs[0], outputs[1], atol=ATOL, rtol=0)


def test_causal_output_does_not_see_the_future():
    torch.manual_seed(0)
    encoder = TransformerEncoder(d_model=8, n_heads=2, d_ff=16, n_layers=2).eval()
    x = torch.randn(1, 6, 8)
    changed = x.clone()
    changed[:, 4:] = torch.randn(1, 2, 8)
    a, b = encoder(x, is_causal=True), encoder(changed, is_causal=True)
    torch.testing.assert_close(a[:, :4], b[:, :4])
    assert not torch.allclose(a[:, 4:], b[:, 4:])


def test_dropout_only_in_training_mode():
    torch.manual_seed(0)
    encoder = TransformerEncoder.from_config(TransformerConfig(d_model=8, n_heads=2, d_ff=16, n_layers=1, dropout=0.3))
    x = torch.randn(2, 5, 8)
    encoder.train()
    assert not torch.allclose(encoder(x), encoder(x))
    encoder.eval()
    torch.testing.assert_close(encoder(x), encoder(x))


def test_from_config_equals_keywords():
    config = TransformerConfig(d_model=12, n_heads=3, d_ff=20, n_layers=2, activation="relu", final_norm=False)
    torch.manual_seed(0)
    a = TransformerEncoder.from_config(config)
    torch.manual_seed(0)
    b = TransformerEncoder(d_model=12, n_heads=3, d_ff=20, n_layers=2, activation="relu", final_norm=False)
    assert a.config == b.config == config
    x = torch.randn(2, 3, 12)
    torch.testing.assert_close(a(x), b(x))


def test_layer_gradcheck_float64():
    torch.manual_seed(0)
    layer = TransformerEncoderLayer(4, 2, 8).double()
    x = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    kpm = torch.tensor([[False, False, True], [True, True, True]])
    assert torch.autograd.gradcheck(lambda x: layer(x, key_padding_mask=kpm), (x,))


@pytest.mark.parametrize(
    "kwargs,error,name",
    [
        ({"activation": "tanh"}, ValueError, "activation"),
        ({"n_heads": 3}, ValueError, "d_model"),
        ({"d_ff": 0}, ValueError, "d_ff"),
        ({"n_layers": 0}, ValueError, "n_layers"),
        ({"dropout": 1.0}, ValueError, "dropout"),
        ({"d_model": 8.0}, TypeError, "d_model"),
    ],
)
def test_constructor_bad_inputs(kwargs, error, name):
    args = {"d_model": 8, "n_heads": 2, "d_ff": 16, "n_layers": 2} | kwargs
    with pytest.raises(error, match=name):
        TransformerEncoder(**args)


def test_forward_bad_inputs():
    encoder = TransformerEncoder(d_model=8, n_heads=2, d_ff=16, n_layers=1)
    with pytest.raises(ValueError, match="x must"):
        encoder(torch.randn(2, 5, 6))
    with pytest.raises(TypeError, match="x must"):
        encoder(torch.ones(2, 5, 8, dtype=torch.int64))
    with pytest.raises(ValueError, match="key_padding_mask"):
        encoder(torch.randn(2, 5, 8), key_padding_mask=torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="attn_mask"):
        encoder(torch.randn(2, 5, 8), attn_mask=torch.ones(4, 4, dtype=torch.bool))


def test_from_torch_refuses_post_ln_and_other_activations():
    with pytest.raises(ValueError, match="norm_first"):
        TransformerEncoderLayer.from_torch(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True))
    with pytest.raises(ValueError, match="activation"):
        TransformerEncoderLayer.from_torch(
            nn.TransformerEncoderLayer(8, 2, 16, activation=torch.tanh, norm_first=True, batch_first=True)
        )
    with pytest.raises(TypeError, match="layer must"):
        TransformerEncoderLayer.from_torch(nn.Linear(2, 2))
