"""Reference solutions to the checkable exercises of notebook 07. Try the exercises first!

Each answer is what the notebook's stub asks for; ``SOLUTIONS`` maps the exercise id to it,
and ``python -m mtlkit exercises --solutions`` runs every one through its check.
"""

import numpy as np
import torch


def stable_ctcvr_logit(ctr_logit, cvr_logit):
    """(1 − p)/p = e^{−a} + e^{−b} + e^{−a−b} for p = σ(a)σ(b), so logit p = −logsumexp of those exponents."""
    exponents = torch.stack([-ctr_logit, -cvr_logit, -ctr_logit - cvr_logit], dim=-1)
    return -torch.logsumexp(exponents, dim=-1)


def expected_calibration_error(prob, label, n_bins=10):
    """Σ over bins of (bin share) · |observed rate − mean prediction|, bin b = (b/n, (b+1)/n]."""
    bin_of = np.clip(np.ceil(prob * n_bins).astype(int) - 1, 0, n_bins - 1)
    error = 0.0
    for b in range(n_bins):
        members = bin_of == b
        if members.any():
            error += members.mean() * abs(label[members].mean() - prob[members].mean())
    return error


def fit_temperature(logits, labels):
    """T = 1/s with s the zero of d/ds mean BCE(s · z) = mean((σ(s z) − y) z), found by bisection: the loss
    is convex in s, so its slope increases with s."""
    logits, labels = logits.to(torch.float64), labels.to(torch.float64)
    low, high = 0.0, 100.0
    for _ in range(100):
        middle = (low + high) / 2
        slope = ((torch.sigmoid(middle * logits) - labels) * logits).mean()
        low, high = (middle, high) if slope < 0 else (low, middle)
    return 2.0 / (low + high)


SOLUTIONS = {
    "07.1": stable_ctcvr_logit,
    "07.2": expected_calibration_error,
    "07.3": fit_temperature,
}
