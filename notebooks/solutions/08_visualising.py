"""Reference solutions to the checkable exercises of notebook 08. Try the exercises first!

Each answer is what the notebook's stub asks for; ``SOLUTIONS`` maps the exercise id to it,
and ``python -m mtlkit exercises --solutions`` runs every one through its check.
"""

import numpy as np
import torch


def smooth(values, smoothing):
    """Exponential moving average started at 0 and divided by 1 − s^t, so that early steps are not pulled to 0."""
    smoothed, average = [], 0.0
    for step, value in enumerate(values, start=1):
        average = smoothing * average + (1.0 - smoothing) * value
        smoothed.append(average / (1.0 - smoothing**step))
    return np.array(smoothed)


def attention_entropy(weights):
    """Per head: the mean over samples and query rows of −Σ_j a_j ln a_j, with 0 · ln 0 = 0 (xlogy)."""
    row_entropy = -torch.xlogy(weights, weights).sum(dim=-1)  # (B, H, L)
    return row_entropy.mean(dim=(0, 2))


def step_lowers_loss_a(norm_a, norm_b, cosine):
    """d L_a along −(g_a + g_b) is −g_a·(g_a + g_b) = −‖g_a‖ (‖g_a‖ + ‖g_b‖ cos)."""
    return norm_a + norm_b * cosine > 0


SOLUTIONS = {
    "08.1": smooth,
    "08.2": attention_entropy,
    "08.3": step_lowers_loss_a,
}
