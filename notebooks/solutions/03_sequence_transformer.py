"""Reference solutions to the checkable exercises of notebook 03. Try the exercises first!

Each answer is what the notebook's stub asks for; ``SOLUTIONS`` maps the exercise id to it,
and ``python -m mtlkit exercises --solutions`` runs every one through its check.
"""

import torch.nn.functional as F


def post_ln_layer(layer, x):
    """Post-LN: add each sub-layer's output to its input, then normalise the sum."""
    attended, _ = layer.self_attn(x, x, x, need_weights=False)
    x = layer.norm1(x + attended)
    hidden = F.gelu(layer.linear1(x))
    return layer.norm2(x + layer.linear2(hidden))


def smallest_width_above(count, limit):
    """The smallest d with count(d) > limit, for a count that grows with d."""
    width = 1
    while count(width) <= limit:
        width += 1
    return width


# With d_ff = 4d a layer has 4d² + 2d·4d + 9d + 4d = 12d² + 13d parameters (section 1.2).
million_parameter_width = smallest_width_above(lambda d: 12 * d * d + 13 * d, 1_000_000)


def crossover_length(d_model):
    """2 L² d (Q Kᵀ and A V) = 4 L d² (projections) + 8 L d² (FFN, d_ff = 4d) at L = 6d."""
    return 6 * d_model


SOLUTIONS = {
    "03.1": post_ln_layer,
    "03.2": million_parameter_width,
    "03.3": crossover_length,
}
