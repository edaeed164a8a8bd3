"""Train / valid / test splits of an interaction log (:data:`SPLITS`).

Splits are made on the interactions; the builder's sampled negatives follow their positive.

* ``leave-last-out`` — per user in time order (ties broken by row order), the last positive
  and any rows after it go to test, the second-last positive and the rows up to the last one to
  valid, the rest to train (users with < 3 positives stay in train). The protocol of
  sequential recommenders, e.g. SASRec (W.-C. Kang and J. McAuley. 2018. Self-Attentive
  Sequential Recommendation. *ICDM 2018*).
* ``temporal`` — a global cut at the ``split_fractions`` quantiles of the timestamps: every
  training row is older than every valid row, every valid row older than every test row; items
  launched after the cut are cold.
* ``random`` — rows drawn at random with the ``split_fractions`` shares (a baseline only: its
  training histories may contain events from test rows).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["SPLITS", "split_rows"]

SPLITS = ("leave-last-out", "temporal", "random")


def split_rows(
    split: str, user: np.ndarray, time: np.ndarray, positive: np.ndarray, row_order: np.ndarray,
    fractions: Sequence[float], n_users: int, rng: np.random.Generator,
) -> np.ndarray:
    """Split code per interaction (n,) int8: 0 train, 1 valid, 2 test.

    Args:
        split: one of :data:`SPLITS`.
        user: (n,) user codes 0..n_users-1.
        time: (n,) int64 timestamps.
        positive: (n,) bool, True on the positives (clicked, or every row of a positive-only log).
        row_order: (n,) the permutation that sorts the interactions by (user, time, row):
            leave-last-out breaks timestamp ties by row order, so exactly one positive per
            user goes to test and one to valid.
        fractions: (train, valid, test) shares for ``temporal`` and ``random``.
        n_users: the number of user codes.
        rng: the generator of the ``random`` split.
    """
    if split == "random":
        r = rng.random(len(user))
        return (r >= fractions[0]).astype(np.int8) + (r >= fractions[0] + fractions[1])
    if split == "temporal":
        cut_valid, cut_test = np.quantile(time, [fractions[0], fractions[0] + fractions[1]], method="lower")
        return (time >= cut_valid).astype(np.int8) + (time >= cut_test)
    # leave-last-out: rows from the user's last positive on -> test, from the second-last
    # positive on -> valid; users with fewer than 3 positives stay in train.
    at = np.flatnonzero(positive[row_order])  # positions (in row_order) of the positives
    if len(at) == 0:
        return np.zeros(len(user), np.int8)
    counts = np.bincount(user[row_order[at]], minlength=n_users)
    last = np.cumsum(counts) - 1
    eligible = counts >= 3
    never = len(user)
    at_last = np.where(eligible, at[np.maximum(last, 0)], never)
    at_prev = np.where(eligible, at[np.maximum(last - 1, 0)], never)
    position = np.empty(len(user), np.int64)
    position[row_order] = np.arange(len(user))
    return (position >= at_prev[user]).astype(np.int8) + (position >= at_last[user])
