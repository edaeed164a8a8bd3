"""Reference solutions to the checkable exercises of notebook 06. Try the exercises first!

Each answer is what the notebook's stub asks for; ``SOLUTIONS`` maps the exercise id to it,
and ``python -m mtlkit exercises --solutions`` runs every one through its check.
"""

import numpy as np

from mtlkit.data import columns as C
from mtlkit.data import make_recsys_funnel


def history_before(times, items, t, seq_len):
    """Clicks strictly before t (times are sorted), the seq_len most recent, oldest first."""
    end = np.searchsorted(times, t, side="left")  # index of the first click at or after t
    return items[max(0, end - seq_len) : end]


def sample_negatives(popularity, interacted, n, rng):
    """n items drawn with probability proportional to popularity, never one the user interacted with."""
    weights = np.asarray(popularity, dtype=float).copy()
    weights[interacted] = 0.0
    return rng.choice(len(weights), size=n, p=weights / weights.sum())


def measured_bias(selection_bias, n_users=1000, n_items=400, seed=0):
    """Section 2's bias in one world: the purchase rate among clicks minus the mean true CVR."""
    log = make_recsys_funnel(n_users, n_items, seed=seed, selection_bias=selection_bias).interactions
    return log[log[C.CLICK] == 1][C.PURCHASE].mean() - log[C.TRUE_CVR].mean()


# The intent η enters the conversion logit with weight s: the larger s, the more buyers among clicks.
bias_scaling = {"prediction": "grows", "biases": [measured_bias(s) for s in (0.5, 1.0, 2.0)]}


SOLUTIONS = {
    "06.1": history_before,
    "06.2": sample_negatives,
    "06.3": bias_scaling,
}
