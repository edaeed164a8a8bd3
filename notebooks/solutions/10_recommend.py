"""Reference solutions to the checkable exercises of notebook 10. Try the exercises first!

Each answer is what the notebook's stub asks for; ``SOLUTIONS`` maps the exercise id to it,
and ``python -m mtlkit exercises --solutions`` runs every one through its check.
"""

import math

import torch


def top_k_unseen(scores, seen, k):
    """Seen items can never win: give them −inf, then the k best of each row."""
    return torch.topk(torch.where(seen, torch.full_like(scores, -math.inf), scores), k, dim=1).indices


# Relevance by rank: 0 1 0 1 0 0 1 0 (three relevant items), K = 2.
ranking_by_hand = {
    "hr": 1.0,  # rank 2 is relevant
    "recall": 1 / 3,  # one of the three relevant items is in the top 2
    "ndcg": (1 / math.log2(3)) / (1 / math.log2(2) + 1 / math.log2(3)),  # DCG@2 / IDCG@2
    "mrr": 1 / 2,  # the first relevant item sits at rank 2
}


def random_hit_rate(n_items, n_relevant, k):
    """1 − P(none of the k shown items is relevant) = 1 − C(n − r, k) / C(n, k)."""
    return 1.0 - math.comb(n_items - n_relevant, k) / math.comb(n_items, k)


SOLUTIONS = {
    "10.1": top_k_unseen,
    "10.2": ranking_by_hand,
    "10.3": random_hit_rate,
}
