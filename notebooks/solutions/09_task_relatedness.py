"""Reference solutions to the checkable exercises of notebook 09. Try the exercises first!

Each answer is what the notebook's stub asks for; ``SOLUTIONS`` maps the exercise id to it,
and ``python -m mtlkit exercises --solutions`` runs every one through its check.
"""

import math

import numpy as np


def correlated_tastes(z, correlation):
    """b_u = L z_u with L the Cholesky factor of the correlation (L Lᵀ = C), for every user and coordinate."""
    lower = np.linalg.cholesky(correlation)  # (T, T)
    return np.einsum("st,utd->usd", lower, z)  # (users, T, dim)


def bayes_click_probability(score, n_nodes=40):
    """E[σ(s + η)] = (1/√π) Σ_k w_k σ(s + √2 x_k) with the Gauss–Hermite nodes x_k and weights w_k."""
    nodes, weights = np.polynomial.hermite.hermgauss(n_nodes)
    shifted = np.asarray(score, dtype=float)[:, None] + math.sqrt(2.0) * nodes[None, :]  # (N, n_nodes)
    return (weights / (1.0 + np.exp(-shifted))).sum(axis=1) / math.sqrt(math.pi)


def paired_gain(model, baseline):
    """Mean of the per-seed differences and its standard error s_d / √n."""
    differences = np.asarray(model, dtype=float) - np.asarray(baseline, dtype=float)
    return differences.mean(), differences.std(ddof=1) / math.sqrt(differences.size)


SOLUTIONS = {
    "09.1": correlated_tastes,
    "09.2": bayes_click_probability,
    "09.3": paired_gain,
}
