"""Exercises of notebook 10 (recommending): a top-K list without seen items, the ranking metrics
of one list by hand, and the hit rate of a random order."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from mtlkit import metrics
from mtlkit.exercises.exercise import (
    Mistake,
    NotebookExercises,
    call,
    reject_slips,
    require_function,
    require_mapping,
    require_number,
)

EXERCISES = NotebookExercises("10_recommend")


# --------------------------------------------------------------------------- 10.1
@EXERCISES.add("10.1", "derive-and-verify",
               "top_k_unseen(scores, seen, k): each user's top k items among those she has not seen")
def judge_top_k_unseen(answer: Any) -> str:
    """Per user, the k highest-scored items she has not seen, best first:
    ``topk(scores.masked_fill(seen, −inf), k)``."""
    top_k_unseen = require_function(answer, "top_k_unseen(scores, seen, k)")
    generator = torch.Generator().manual_seed(17)
    scores = torch.rand(4, 12, generator=generator)  # (users, items), no ties
    seen = torch.rand(4, 12, generator=generator) < 0.4
    seen[0, scores[0].argmax()] = True  # the best-scored item of user 0 was seen
    k = 3
    got = call(top_k_unseen, scores.clone(), seen.clone(), k)
    if not isinstance(got, torch.Tensor):
        raise Mistake(f"top_k_unseen must return a tensor of item indices, got {type(got).__name__}")
    if got.is_floating_point():
        raise Mistake("you returned scores (a float tensor); return the item indices (int64), e.g. the indices of "
                      "torch.topk")
    if tuple(got.shape) != (4, k):
        raise Mistake(f"your lists have shape {tuple(got.shape)}; expected (4, {k}): k items per user")
    expected = scores.masked_fill(seen, float("-inf")).topk(k, dim=1).indices
    if torch.equal(got, expected):
        return ("the k best unseen items, best first — what mtlkit.recommend.recommend returns for each user after "
                "scoring the whole catalogue.")
    user, rank = (int(x) for x in torch.nonzero(got != expected)[0])
    item = int(got[user, rank])
    if bool(seen[user, item]):
        raise Mistake(f"user {user}'s list holds item {item}, which she has already seen: set the scores of seen items "
                      "to −inf before taking the top k")
    if torch.equal(got, scores.masked_fill(seen, float("inf")).topk(k, dim=1, largest=False).indices):
        raise Mistake("your lists start with the lowest-scored items: recommend the highest scores first")
    if torch.equal(got.sort(dim=1).values, expected.sort(dim=1).values):
        raise Mistake(f"right items, wrong order: user {user}'s list must be sorted by descending score")
    raise Mistake(f"user {user}'s item at rank {rank + 1} is {item}; the best unseen items are "
                  f"{expected[user].tolist()}")


# --------------------------------------------------------------------------- 10.2
# One user's ranked list: relevance of the items at ranks 1..8 (3 relevant items), cut-off K = 2.
RANKED_RELEVANCE = (0, 1, 0, 1, 0, 0, 1, 0)
K = 2


@EXERCISES.add("10.2", "derive", "ranking_by_hand: HR@2, Recall@2, NDCG@2 and MRR of one ranked list, by hand")
def judge_ranking_by_hand(answer: Any) -> str:
    """HR@2, Recall@2, NDCG@2 and MRR of one list, against ``mtlkit.metrics``."""
    values = require_mapping(answer, ("hr", "recall", "ndcg", "mrr"))
    relevance = np.array([RANKED_RELEVANCE], dtype=float)
    scores = -np.arange(len(RANKED_RELEVANCE), dtype=float)[None, :]  # rank 1 scores highest
    expected = {
        "hr": metrics.hit_rate_at_k(relevance, scores, K),
        "recall": metrics.recall_at_k(relevance, scores, K),
        "ndcg": metrics.ndcg_at_k(relevance, scores, K),
        "mrr": metrics.mrr(relevance, scores),
    }
    discount = [1 / math.log2(r + 1) for r in range(1, 9)]
    dcg = sum(g * d for g, d in zip(RANKED_RELEVANCE[:K], discount))
    slips = (  # (metric, what a typical slip gives, what it got wrong)
        ("recall", 1 / K, "recall divides the hits by the number of relevant items, |R| = 3, not by K"),
        ("ndcg", dcg / sum(discount[:3]),
         "your ideal DCG sums all three relevant items; only K = 2 ranks can hold them: IDCG@2 = 1 + 1/log2(3)"),
        ("ndcg", dcg, "that is the DCG; divide it by the DCG of the ideal order, IDCG@2"),
        ("mrr", 1 / 4, "MRR looks at the first relevant item only (rank 2)"),
        ("hr", 1 / 3, "HR@K is 1 if any relevant item is in the top K, else 0"),
    )
    for metric, target in expected.items():
        if abs(values[metric] - target) <= 1e-3:
            continue
        for name, value, hint in slips:
            if name == metric and abs(values[metric] - value) <= 1e-3:
                raise Mistake(f"{metric} = {values[metric]:.4f}: {hint}")
        raise Mistake(f"{metric} = {values[metric]:.4f} is off; check it against the definitions of section 4 "
                      "(ranks are 1-based, the discount of rank r is 1/log2(r + 1))")
    return ("HR@2 = 1, Recall@2 = 1/3, NDCG@2 = (1/log2 3) / (1 + 1/log2 3) ≈ 0.387, MRR = 1/2 — the same list, four "
            "different questions.")


# --------------------------------------------------------------------------- 10.3
@EXERCISES.add("10.3", "derive", "random_hit_rate(n_items, n_relevant, k): HR@k of a random order (all scores tied)")
def judge_random_hit_rate(answer: Any) -> str:
    """HR@k of a random order of n items, r relevant: 1 − C(n − r, k) / C(n, k), against
    ``mtlkit.metrics.hit_rate_at_k`` on all-tied scores (it averages over the orders of ties)."""
    random_hit_rate = require_function(answer, "random_hit_rate(n_items, n_relevant, k)")
    cases = [(40, 1, 5), (40, 3, 5), (10, 10, 1), (20, 2, 20), (100, 5, 10)]
    got = [require_number(call(random_hit_rate, n, r, k), f"random_hit_rate({n}, {r}, {k})") for n, r, k in cases]
    expected = []
    for n, r, k in cases:
        relevance = np.zeros((1, n))
        relevance[0, :r] = 1.0
        expected.append(metrics.hit_rate_at_k(relevance, np.zeros((1, n)), k))
    if all(abs(g - e) <= 1e-9 for g, e in zip(got, expected)):
        return ("1 − C(n − r, k)/C(n, k): 0.125 for one relevant cold item among 40 and a top 5 — the number a model "
                "without text scores on cold items, since it ties them all.")
    slips = {
        "k r / n": [min(1.0, k * r / n) for n, r, k in cases],
        "k / n": [min(1.0, k / n) for n, r, k in cases],
        "with replacement": [1 - (1 - r / n) ** k for n, r, k in cases],
    }
    hints = {
        "k r / n": "k·r/n counts a list that holds two relevant items twice; count the lists with none: "
                   "1 − C(n − r, k)/C(n, k)",
        "k / n": "k/n is right for one relevant item only; with r of them, 1 − C(n − r, k)/C(n, k)",
        "with replacement": "1 − (1 − r/n)^k draws with replacement; a list never shows an item twice: "
                            "1 − C(n − r, k)/C(n, k)",
    }
    reject_slips(got, slips, hints, tolerance=1e-9)
    (n, r, k), g, e = next((case, g, e) for case, g, e in zip(cases, got, expected) if abs(g - e) > 1e-9)
    raise Mistake(f"for n = {n}, r = {r}, k = {k} you return {g:.6g}; a random order hits with probability {e:.6g}")
