"""mtlkit.positional against the closed forms, and the rotation properties that make
sinusoidal encodings and RoPE work."""

from __future__ import annotations

import cmath
import math

import pytest
import torch

from mtlkit.positional import (
    LearnedPositionalEmbedding,
    RotaryPositionalEmbedding,
    SinusoidalPositionalEncoding,
    relative_rotation,
    sinusoidal_positional_encoding,
)

ATOL = 1e-5


def _loop_reference(max_len: int, d_model: int) -> torch.Tensor:
    """PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(p / 10000^(2i/d)), one entry at a time."""
    pe = torch.zeros(max_len, d_model, dtype=torch.float64)
    for p in range(max_len):
        for j in range(d_model):
            two_i = j - j % 2
            angle = p / 10000 ** (two_i / d_model)
            pe[p, j] = math.sin(angle) if j % 2 == 0 else math.cos(angle)
    return pe


def _rope_reference(x: torch.Tensor, positions: list[int], base: float = 10000.0) -> torch.Tensor:
    """RoPE with complex numbers (Su et al., 2021): pair (x_2i, x_2i+1) is x_2i + i·x_2i+1,
    multiplied by e^(i·p·θ_i), θ_i = base^(-2i/d)."""
    L, d = x.shape
    out = torch.zeros(L, d, dtype=torch.float64)
    for row, p in enumerate(positions):
        for i in range(d // 2):
            z = complex(x[row, 2 * i], x[row, 2 * i + 1]) * cmath.exp(1j * p * base ** (-2 * i / d))
            out[row, 2 * i], out[row, 2 * i + 1] = z.real, z.imag
    return out


# --------------------------------------------------------------------------- sinusoidal


@pytest.mark.parametrize("max_len,d_model", [(1, 1), (7, 2), (30, 8), (50, 7), (64, 16), (9, 33)])
def test_sinusoidal_matches_loop_reference(max_len, d_model):
    pe = sinusoidal_positional_encoding(max_len, d_model)
    assert pe.shape == (max_len, d_model) and pe.dtype == torch.float32
    torch.testing.assert_close(pe.double(), _loop_reference(max_len, d_model), atol=ATOL, rtol=0)
    pe64 = sinusoidal_positional_encoding(max_len, d_model, dtype=torch.float64)
    torch.testing.assert_close(pe64, _loop_reference(max_len, d_model), atol=1e-12, rtol=0)


@pytest.mark.parametrize("d_model", [2, 8, 16, 64])
def test_shift_is_a_fixed_rotation(d_model):
    """PE(p + k) = PE(p) M_kᵀ for many p and k, with one M_k for all p."""
    pe = sinusoidal_positional_encoding(600, d_model)
    g = torch.Generator().manual_seed(d_model)
    for k in torch.randint(-100, 100, (20,), generator=g).tolist():
        m = relative_rotation(k, d_model)
        p = torch.arange(max(0, -k), min(600, 600 - k))  # every p with p and p + k in the table
        torch.testing.assert_close(pe[p + k], pe[p] @ m.T, atol=ATOL, rtol=0)


@pytest.mark.parametrize("d_model", [2, 6, 32])
def test_relative_rotation_is_orthogonal_and_composes(d_model):
    eye = torch.eye(d_model, dtype=torch.float64)
    for j, k in [(0, 0), (1, 2), (-5, 3), (17, 40), (2.5, -0.5)]:
        mj = relative_rotation(j, d_model, dtype=torch.float64)
        mk = relative_rotation(k, d_model, dtype=torch.float64)
        torch.testing.assert_close(mk @ mk.T, eye)
        assert torch.linalg.det(mk).item() == pytest.approx(1.0)
        torch.testing.assert_close(mj @ mk, relative_rotation(j + k, d_model, dtype=torch.float64))
    torch.testing.assert_close(relative_rotation(0, d_model, dtype=torch.float64), eye)
    # block diagonal: nothing outside the 2x2 blocks on the diagonal
    m = relative_rotation(3, d_model)
    blocks = torch.block_diag(*[torch.ones(2, 2)] * (d_model // 2)).bool()
    assert torch.all(m[~blocks] == 0)


def test_sinusoidal_module_adds_the_table():
    module = SinusoidalPositionalEncoding(d_model=6, max_len=10)
    x = torch.randn(3, 4, 6)
    torch.testing.assert_close(module(x), x + sinusoidal_positional_encoding(10, 6)[:4])
    positions = torch.tensor([[5, 6, 7, 8]]).expand(3, 4)  # e.g. counted from a history's end
    torch.testing.assert_close(module(x, positions), x + sinusoidal_positional_encoding(10, 6)[5:9])
    assert module.state_dict() == {}  # a fixed function: nothing to save


def test_sinusoidal_module_dropout():
    torch.manual_seed(0)
    module = SinusoidalPositionalEncoding(d_model=8, max_len=10, dropout=0.5)
    x = torch.randn(2, 10, 8)
    module.train()
    out = module(x)
    kept = out != 0
    torch.testing.assert_close(out[kept], (module.pe + x)[kept] / 0.5)
    module.eval()
    torch.testing.assert_close(module(x), x + module.pe)


def test_learned_embedding_adds_a_trainable_vector_per_position():
    torch.manual_seed(0)
    module = LearnedPositionalEmbedding(max_len=5, d_model=4)
    x = torch.zeros(2, 3, 4)
    out = module(x)
    torch.testing.assert_close(out, module.embedding.weight[:3].expand(2, 3, 4))
    out.sum().backward()
    assert torch.all(module.embedding.weight.grad[:3] == 2) and torch.all(module.embedding.weight.grad[3:] == 0)
    assert 0.01 < module.embedding.weight.std().item() < 0.04


@pytest.mark.parametrize(
    "make",
    [
        lambda: SinusoidalPositionalEncoding(d_model=4, max_len=5),
        lambda: LearnedPositionalEmbedding(max_len=5, d_model=4),
        lambda: RotaryPositionalEmbedding(head_dim=4, max_len=5),
    ],
    ids=["sinusoidal", "learned", "rotary"],
)
def test_sequence_longer_than_max_len_raises(make):
    module = make()
    module(torch.randn(2, 5, 4))  # exactly max_len is fine
    with pytest.raises(ValueError, match=r"sequence length 6.*max_len=5"):
        module(torch.randn(2, 6, 4))
    with pytest.raises(ValueError, match="positions"):
        module(torch.randn(2, 3, 4), torch.tensor([0, 1, 5]))
    with pytest.raises(TypeError, match="positions"):
        module(torch.randn(2, 3, 4), torch.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="positions"):
        module(torch.randn(2, 3, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="x must"):
        module(torch.randn(2, 3, 5))


# --------------------------------------------------------------------------- RoPE


@pytest.mark.parametrize("head_dim", [2, 8, 16])
def test_rope_matches_complex_reference(head_dim):
    g = torch.Generator().manual_seed(head_dim)
    rope = RotaryPositionalEmbedding(head_dim, max_len=200)
    x = torch.randn(6, head_dim, generator=g)
    torch.testing.assert_close(rope.rotate(x).double(), _rope_reference(x, list(range(6))), atol=ATOL, rtol=0)
    positions = torch.randint(0, 200, (6,), generator=g)
    torch.testing.assert_close(
        rope.rotate(x, positions).double(), _rope_reference(x, positions.tolist()), atol=ATOL, rtol=0
    )


def test_rope_is_the_transposed_sinusoidal_shift():
    rope = RotaryPositionalEmbedding(8, max_len=50)
    x = torch.randn(8)
    for p in (0, 1, 7, 49):
        rotated = rope.rotate(x.expand(50, 8))[p]
        torch.testing.assert_close(rotated, x @ relative_rotation(p, 8), atol=ATOL, rtol=0)


def test_rope_dot_product_depends_only_on_offset():
    """⟨R_p q, R_r k⟩ = ⟨R_(p+s) q, R_(r+s) k⟩ for many p, r, s."""
    g = torch.Generator().manual_seed(0)
    rope = RotaryPositionalEmbedding(16, max_len=512)
    q, k = torch.randn(2, 16, generator=g, dtype=torch.float64)
    p, r, s = torch.randint(0, 256, (3, 200), generator=g)
    qs, ks = q.expand(200, 16), k.expand(200, 16)
    score = (rope.rotate(qs, p) * rope.rotate(ks, r)).sum(-1)  # (200,)
    shifted = (rope.rotate(qs, p + s) * rope.rotate(ks, r + s)).sum(-1)
    torch.testing.assert_close(score, shifted, atol=ATOL, rtol=0)
    # and it really depends on the offset: different offsets give different scores
    assert (rope.rotate(q[None], torch.tensor([0])) @ rope.rotate(k[None], torch.tensor([1])).T).item() != pytest.approx(
        (rope.rotate(q[None], torch.tensor([0])) @ rope.rotate(k[None], torch.tensor([5])).T).item()
    )


def test_rope_preserves_norms_and_batch_shapes():
    rope = RotaryPositionalEmbedding(8, max_len=32)
    x = torch.randn(2, 3, 32, 8)  # (B, H, L, head_dim)
    y = rope(x)
    assert y.shape == x.shape
    torch.testing.assert_close(y.norm(dim=-1), x.norm(dim=-1))
    torch.testing.assert_close(y[:, :, 0], x[:, :, 0])  # position 0: no rotation
    # per-sample positions (B, 1, L) broadcast over the heads
    positions = torch.stack([torch.arange(32), torch.arange(32).flip(0)])[:, None, :]
    z = rope(x, positions)
    torch.testing.assert_close(z[0], y[0])
    torch.testing.assert_close(z[1], rope(x[1].flip(-2)).flip(-2))  # position 31 - j at index j


def test_rope_gradcheck_float64():
    rope = RotaryPositionalEmbedding(4, max_len=8).double()
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(rope.rotate, (x,))


# --------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    "call,error,name",
    [
        (lambda: sinusoidal_positional_encoding(0, 4), ValueError, "max_len"),
        (lambda: sinusoidal_positional_encoding(4, 2.5), TypeError, "d_model"),
        (lambda: sinusoidal_positional_encoding(4, 4, base=1.0), ValueError, "base"),
        (lambda: relative_rotation(1, 5), ValueError, "d_model"),
        (lambda: relative_rotation("1", 4), TypeError, "k"),
        (lambda: SinusoidalPositionalEncoding(4, 8, dropout=1.5), ValueError, "dropout"),
        (lambda: LearnedPositionalEmbedding(0, 4), ValueError, "max_len"),
        (lambda: RotaryPositionalEmbedding(5, 8), ValueError, "head_dim"),
        (lambda: RotaryPositionalEmbedding(4, -1), ValueError, "max_len"),
        (lambda: RotaryPositionalEmbedding(4, 8)(torch.ones(2, 4, dtype=torch.int64)), TypeError, "x"),
    ],
)
def test_bad_inputs_name_the_argument(call, error, name):
    with pytest.raises(error, match=name):
        call()
