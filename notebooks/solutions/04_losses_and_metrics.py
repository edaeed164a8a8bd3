"""Reference solutions to the checkable exercises of notebook 04. Try the exercises first!

Each answer is what the notebook's stub asks for; ``SOLUTIONS`` maps the exercise id to it,
and ``python -m mtlkit exercises --solutions`` runs every one through its check.
"""

import numpy as np
import torch
from sklearn.metrics import ndcg_score

from mtlkit import metrics


def masked_bce(logits, labels, mask):
    """Σ m ℓ / max(Σ m, 1) with the stable ℓ = max(z, 0) − y z + log(1 + e^{−|z|})."""
    elementwise = logits.clamp(min=0) - labels * logits + torch.log1p(torch.exp(-logits.abs()))
    observed = mask.to(logits.dtype)
    return (elementwise * observed).sum() / observed.sum().clamp(min=1)


def ndcg_tie_deviation(n_users=50, n_items=40, k=10, seed=0):
    """Section 9 with the scores rounded to integers: |mtlkit − scikit-learn| on the users with a relevant item."""
    rng = np.random.default_rng(seed)
    relevance = rng.choice([0, 0, 0, 0, 0, 0, 1, 1, 3], size=(n_users, n_items)).astype(float)
    scores = np.round(relevance + rng.normal(0, 1.5, relevance.shape))  # many ties
    has_relevant = relevance.max(axis=1) > 0
    return abs(metrics.ndcg_at_k(relevance, scores, k)
               - ndcg_score(relevance[has_relevant], scores[has_relevant], k=k))


# Both average a tie block's gain over its orders (McSherry & Najork, 2008): they still agree.
ndcg_with_ties = {"prediction": "yes", "max_deviation": ndcg_tie_deviation()}


def laplace_nll(prediction, target, scale):
    """−log[e^{−|t − y|/b} / (2b)], averaged over the samples."""
    return ((target - prediction).abs() / scale + torch.log(torch.tensor(2.0 * scale, dtype=prediction.dtype))).mean()


def fooling_scores(y_true, users):
    """Each impression scored with its user's click rate: the same score for all of a user's items."""
    users = np.asarray(users)
    clicks = np.bincount(users, weights=np.asarray(y_true, dtype=float))
    impressions = np.bincount(users)
    return (clicks / np.maximum(impressions, 1))[users]


SOLUTIONS = {
    "04.1": masked_bce,
    "04.2": ndcg_with_ties,
    "04.3": laplace_nll,
    "04.4": fooling_scores,
}
