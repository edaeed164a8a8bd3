"""Reference solutions to the checkable exercises of notebook 05. Try the exercises first!

Each answer is what the notebook's stub asks for; ``SOLUTIONS`` maps the exercise id to it,
and ``python -m mtlkit exercises --solutions`` runs every one through its check.
"""

import numpy as np

KAPPA = 10.0

# t* = κ w2 / (w1 + κ w2) = 1/4  <=>  w1 = 3 κ w2
quarter_weights = {"f1": 3 * KAPPA, "f2": 1.0}


def dwa_weights(previous, before_previous, temperature=2.0):
    """T · softmax(r / τ) with r_t = L_t(e−1) / L_t(e−2): the task that improved least gains weight."""
    ratio = previous / before_previous
    scaled = np.exp((ratio - ratio.max()) / temperature)  # shifted: the softmax is unchanged, exp cannot overflow
    return len(ratio) * scaled / scaled.sum()


def pcgrad_update(g1, g2):
    """Project each gradient off the other (original) one when they conflict, then add."""
    if g1 @ g2 >= 0:
        return g1 + g2
    projected_1 = g1 - (g1 @ g2) / (g2 @ g2) * g2
    projected_2 = g2 - (g2 @ g1) / (g1 @ g1) * g1
    return projected_1 + projected_2


SOLUTIONS = {
    "05.1": quarter_weights,
    "05.2": dwa_weights,
    "05.3": pcgrad_update,
}
