"""Reference solutions to the checkable exercises of notebook 11. Try the exercises first!

Each answer is what the notebook's stub asks for; ``SOLUTIONS`` maps the exercise id to it,
and ``python -m mtlkit exercises --solutions`` runs every one through its check.
"""

import torch

CLS_ID, SEP_ID, JOINER_ID = 101, 102, 1025  # all-MiniLM-L6-v2's [CLS], [SEP] and ';'


def lora_parameters(d_model, n_layers, rank, n_adapted=2):
    """Per adapted d x d matrix A (r x d) and B (d x r): 2 r d weights."""
    per_matrix = rank * d_model + d_model * rank
    return n_layers * n_adapted * per_matrix


def compose_tokens(candidate, history, max_length):
    """[CLS] candidate [SEP] h1 ; h2 ; ... [SEP], skipping empty titles; a cut sequence ends in [SEP]."""
    tokens = [CLS_ID, *candidate, SEP_ID]
    titles = [title for title in history if title]
    for position, title in enumerate(titles):
        tokens += title if position == 0 else [JOINER_ID, *title]
    if titles:
        tokens.append(SEP_ID)
    if len(tokens) > max_length:
        tokens = tokens[: max_length - 1] + [SEP_ID]
    return tokens


def lora_forward(x, weight, bias, lora_a, lora_b, alpha):
    """The frozen layer plus the low-rank update scaled by α/r: x Wᵀ + b + (α/r) (x Aᵀ) Bᵀ."""
    rank = lora_a.shape[0]
    frozen = torch.nn.functional.linear(x, weight, bias)
    return frozen + (alpha / rank) * (x @ lora_a.T) @ lora_b.T


SOLUTIONS = {
    "11.1": lora_parameters,
    "11.2": compose_tokens,
    "11.3": lora_forward,
}
