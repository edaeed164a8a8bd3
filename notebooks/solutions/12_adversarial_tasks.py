"""Reference solutions to the checkable exercises of notebook 12. Try the exercises first!

Each answer is what the notebook's stub asks for; ``SOLUTIONS`` maps the exercise id to it,
and ``python -m mtlkit exercises --solutions`` runs every one through its check.
"""

import math

import numpy as np
from sklearn.metrics import roc_auc_score


def reverse_gradient(h, strength):
    """Forward: (1 + λ) h − λ h = h. Backward: the detached term has no gradient, so only −λ h's remains."""
    return (1.0 + strength) * h.detach() - strength * h


def macro_and_micro_auc(labels, logits, label_mask):
    """Macro: the mean of the per-task AUCs; micro: one AUC over every observed (label, logit) pair."""
    per_task = [roc_auc_score(labels[label_mask[:, j], j], logits[label_mask[:, j], j])
                for j in range(labels.shape[1])]
    pooled = roc_auc_score(labels[label_mask], logits[label_mask])
    return float(np.mean(per_task)), float(pooled)


# Predicting the base rate p = 0.1 everywhere costs the entropy −p ln p − (1 − p) ln(1 − p).
chance_adversary_loss = -0.1 * math.log(0.1) - 0.9 * math.log(0.9)


SOLUTIONS = {
    "12.1": reverse_gradient,
    "12.2": macro_and_micro_auc,
    "12.3": chance_adversary_loss,
}
