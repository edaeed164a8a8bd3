"""The math core's agreement with independent references, printed as one table.

Every from-scratch piece of mtlkit is compared, on seeded random inputs, with a reference
that shares none of its code: PyTorch's own kernels (``torch.nn.functional``,
``torch.nn.MultiheadAttention``, ``torch.nn.TransformerEncoderLayer``), scikit-learn's
metrics, or a closed form. ``python -m mtlkit selfcheck`` prints the table (and the README's
main job starts with it); the test suite asserts the same agreements with more inputs and
edge cases.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn import metrics as skm

from mtlkit import attention, losses, metrics, positional, transformer
from mtlkit.checks import check_int

# A comparison yields (ours, reference) pairs of arrays or floats for one random draw.
Comparison = Callable[[np.random.Generator, torch.Generator], Iterator[tuple[object, object]]]


@dataclass(frozen=True)
class Check:
    """One row of the table: a function, its reference and the largest deviation measured."""

    function: str
    reference: str
    max_abs_deviation: float
    tolerance: float
    n_trials: int

    @property
    def passed(self) -> bool:
        return self.max_abs_deviation <= self.tolerance


def _sdpa(rng: np.random.Generator, gen: torch.Generator):
    B, H, L, S, E = 2, 3, int(rng.integers(1, 9)), int(rng.integers(1, 9)), 8
    q, k, v = (torch.randn(B, H, n, E, generator=gen) for n in (L, S, S))
    bool_mask = torch.rand(B, 1, L, S, generator=gen) > 0.3
    bool_mask[..., 0] = True  # one key per row, so torch's reference is defined everywhere
    float_mask = torch.randn(L, S, generator=gen)
    for mask in (None, bool_mask, float_mask):
        yield attention.scaled_dot_product_attention(q, k, v, attn_mask=mask)[0], F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask
        )
    if L == S:
        yield attention.scaled_dot_product_attention(q, k, v, is_causal=True)[0], F.scaled_dot_product_attention(
            q, k, v, is_causal=True
        )


def _mha(rng: np.random.Generator, gen: torch.Generator):
    B, L, d_model, n_heads = 3, int(rng.integers(2, 9)), 16, 4
    reference = torch.nn.MultiheadAttention(d_model, n_heads, batch_first=True).eval()
    ours = attention.MultiHeadAttention.from_torch(reference).eval()
    x = torch.randn(B, L, d_model, generator=gen)
    padding = torch.zeros(B, L, dtype=torch.bool)
    padding[0, -1] = True  # torch: True = padding, as in mtlkit
    expected, expected_weights = reference(x, x, x, key_padding_mask=padding, average_attn_weights=False)
    got, got_weights = ours(x, key_padding_mask=padding)
    yield got, expected
    yield got_weights, expected_weights


def _encoder_layer(rng: np.random.Generator, gen: torch.Generator):
    B, L, d_model, n_heads = 2, int(rng.integers(2, 9)), 16, 4
    reference = torch.nn.TransformerEncoderLayer(
        d_model, n_heads, dim_feedforward=32, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
    ).eval()
    ours = transformer.TransformerEncoderLayer.from_torch(reference).eval()
    x = torch.randn(B, L, d_model, generator=gen)
    padding = torch.zeros(B, L, dtype=torch.bool)
    padding[1, -1] = True
    yield ours(x, key_padding_mask=padding), reference(x, src_key_padding_mask=padding)


def _sinusoidal(rng: np.random.Generator, gen: torch.Generator):
    max_len, d_model = int(rng.integers(1, 64)), 2 * int(rng.integers(1, 33))
    p = np.arange(max_len)[:, None]
    i = np.arange(d_model // 2)[None, :]
    angle = p / 10000.0 ** (2 * i / d_model)  # PE[p, 2i] = sin(angle), PE[p, 2i+1] = cos(angle)
    closed_form = np.empty((max_len, d_model))
    closed_form[:, 0::2], closed_form[:, 1::2] = np.sin(angle), np.cos(angle)
    yield positional.sinusoidal_positional_encoding(max_len, d_model), closed_form


def _relative_rotation(rng: np.random.Generator, gen: torch.Generator):
    d_model, k = 32, int(rng.integers(0, 50))
    pe = positional.sinusoidal_positional_encoding(200, d_model)
    yield pe[: 200 - k] @ positional.relative_rotation(k, d_model).T, pe[k:]  # PE(p+k) = M_k PE(p)


def _rope_offset(rng: np.random.Generator, gen: torch.Generator):
    head_dim, shift = 16, int(rng.integers(1, 40))
    rope = positional.RotaryPositionalEmbedding(head_dim, max_len=128)
    q, k = torch.randn(1, 8, head_dim, generator=gen), torch.randn(1, 8, head_dim, generator=gen)
    positions = torch.arange(8)
    scores = rope.rotate(q, positions) @ rope.rotate(k, positions).transpose(-1, -2)
    shifted = rope.rotate(q, positions + shift) @ rope.rotate(k, positions + shift).transpose(-1, -2)
    yield shifted, scores  # q·k after RoPE depends only on the offset of the two positions


def _losses(rng: np.random.Generator, gen: torch.Generator):
    n = int(rng.integers(1, 200))
    logits, target = 5 * torch.randn(n, generator=gen), torch.randn(n, generator=gen)
    labels = (torch.rand(n, generator=gen) > 0.5).float()
    mask = torch.rand(n, generator=gen) > 0.3
    mask[0] = True
    yield losses.binary_cross_entropy_with_logits(logits, labels, mask), F.binary_cross_entropy_with_logits(
        logits[mask], labels[mask]
    )
    yield losses.mean_squared_error(logits, target, mask), F.mse_loss(logits[mask], target[mask])
    yield losses.huber(logits, target, delta=1.5, mask=mask), F.huber_loss(logits[mask], target[mask], delta=1.5)


def _binary_metrics(rng: np.random.Generator, gen: torch.Generator):
    n = int(rng.integers(10, 500))
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]  # both classes present
    score = np.round(rng.random(n), 2)  # rounding creates ties
    yield metrics.roc_auc(y, score), skm.roc_auc_score(y, score)
    yield metrics.log_loss(y, score), skm.log_loss(y, score)
    yield metrics.f1(y, score), skm.f1_score(y, score >= 0.5)
    yield metrics.accuracy(y, score), skm.accuracy_score(y, score >= 0.5)


def _group_auc(rng: np.random.Generator, gen: torch.Generator):
    n = 300
    y, score, groups = rng.integers(0, 2, n), rng.random(n), rng.integers(0, 20, n)
    aucs, sizes = [], []
    for g in np.unique(groups):  # brute force: per-user AUC, weighted by impressions
        in_g = groups == g
        if len(np.unique(y[in_g])) == 2:
            aucs.append(skm.roc_auc_score(y[in_g], score[in_g]))
            sizes.append(in_g.sum())
    yield metrics.group_auc(y, score, groups), np.average(aucs, weights=sizes)


def _regression_metrics(rng: np.random.Generator, gen: torch.Generator):
    n = int(rng.integers(1, 500))
    y, pred = rng.normal(size=n), rng.normal(size=n)
    yield metrics.rmse(y, pred), np.sqrt(skm.mean_squared_error(y, pred))
    yield metrics.mae(y, pred), skm.mean_absolute_error(y, pred)


def _ndcg(rng: np.random.Generator, gen: torch.Generator):
    relevance = rng.integers(0, 4, (20, 30))
    relevance[:, 0] = 1  # every user has a relevant item (sklearn scores the others 0)
    scores, k = rng.random((20, 30)), int(rng.integers(1, 31))
    yield metrics.ndcg_at_k(relevance, scores, k), skm.ndcg_score(relevance, scores, k=k)


CHECKS: list[tuple[str, str, Comparison, float]] = [
    ("attention.scaled_dot_product_attention", "F.scaled_dot_product_attention", _sdpa, 1e-5),
    ("attention.MultiHeadAttention (output, weights)", "nn.MultiheadAttention", _mha, 1e-5),
    ("transformer.TransformerEncoderLayer", "nn.TransformerEncoderLayer(norm_first=True)", _encoder_layer, 1e-5),
    ("positional.sinusoidal_positional_encoding", "closed form sin/cos", _sinusoidal, 1e-6),
    ("positional.relative_rotation: PE(p+k) = M_k PE(p)", "PE table shifted by k", _relative_rotation, 1e-5),
    ("positional.RotaryPositionalEmbedding", "scores at shifted positions", _rope_offset, 1e-4),
    ("losses: BCE, MSE, Huber with mask", "F.*_loss on observed entries", _losses, 1e-5),
    ("metrics: roc_auc, log_loss, f1, accuracy", "sklearn.metrics", _binary_metrics, 1e-9),
    ("metrics.group_auc", "per-user sklearn roc_auc_score", _group_auc, 1e-9),
    ("metrics: rmse, mae", "sklearn.metrics", _regression_metrics, 1e-9),
    ("metrics.ndcg_at_k", "sklearn.metrics.ndcg_score", _ndcg, 1e-9),
]


def _deviation(ours: object, reference: object) -> float:
    ours = torch.as_tensor(np.asarray(ours.detach() if torch.is_tensor(ours) else ours), dtype=torch.float64)
    reference = torch.as_tensor(
        np.asarray(reference.detach() if torch.is_tensor(reference) else reference), dtype=torch.float64
    )
    return float((ours - reference).abs().max()) if ours.numel() else 0.0


def run_checks(n_trials: int = 20, seed: int = 0) -> list[Check]:
    """Run every comparison on ``n_trials`` seeded random draws; return one Check per row."""
    n_trials = check_int("n_trials", n_trials, low=1)
    seed = check_int("seed", seed, low=0)
    results = []
    for function, reference, comparison, tolerance in CHECKS:
        rng, gen = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
        worst = 0.0
        with torch.no_grad():
            for _ in range(n_trials):
                for ours, expected in comparison(rng, gen):
                    worst = max(worst, _deviation(ours, expected))
        results.append(Check(function, reference, worst, tolerance, n_trials))
    return results


def format_table(checks: list[Check]) -> str:
    """The checks as a Markdown table."""
    lines = [
        "| function | reference | max abs deviation | tolerance | status |",
        "| --- | --- | ---: | ---: | --- |",
    ]
    for c in checks:
        status = "ok" if c.passed else "FAIL"
        lines.append(
            f"| {c.function} | {c.reference} | {c.max_abs_deviation:.2e} | {c.tolerance:.0e} | {status} |"
        )
    return "\n".join(lines)


def main(n_trials: int = 20, seed: int = 0) -> int:
    """Print the agreement table; return 0 when every check is within tolerance, else 1."""
    checks = run_checks(n_trials, seed)
    print(f"mtlkit self-check: {len(checks)} comparisons, {n_trials} random draws each (float32 inputs)\n")
    print(format_table(checks))
    failed = [c.function for c in checks if not c.passed]
    print(f"\n{'all within tolerance' if not failed else 'FAILED: ' + ', '.join(failed)}")
    return 0 if not failed else 1
