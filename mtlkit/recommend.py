"""Top-k recommendation and ranking evaluation with a trained multi-task model.

A pointwise model scores one (user, item) pair per row, so recommending means scoring the
user against every candidate item and keeping the k best. Each pair's batch row is built
from the user's *context*: one real sample of the user supplies the user fields, the
context fields and the behaviour sequence (``history``); the candidate item supplies the
item id and the item fields. The scores come in chunks of ``batch_size`` pairs
(users × items), so all ~3.7k items of MovieLens-1M against all of its ~6k users never
materialise at once.

Which sample is the context, and which items count as *seen* (excluded), is decided by
``at``:

- ``at="end"`` (serving, :func:`recommend`'s default): the user's latest sample in any
  split; seen = every item the user interacted with in any split.
- ``at="valid"`` / ``at="test"`` (offline evaluation, :func:`evaluate_ranking`): the user's
  *earliest* sample in that split, whose history holds exactly the interactions before the
  held-out period; seen = the user's interactions in the earlier splits (train, and valid
  for test). The held-out positives are the relevant items.

Fused rankings. A two-stage model such as ESMM predicts pCTR and pCVR = P(buy | click); a
common serving score is their product of powers, which ranks like
s_α = (1 − α) log pCTR + α log pCVR (α = ½: pCTCVR, the expected purchases). :func:`fused_ranking`
scores a set of users once and gives the ranking, the top-k and the ranking metrics at any α.

"Interacted" means an observed positive label of the relevance task (by default the
click task: clicked impressions in the synthetic funnel, rated movies in MovieLens). Items
in the context's history are always seen.

Item fields (sparse and dense columns) are recognised as the columns whose value is a
function of the item (``item_content``, the catalog index); all other columns come from the
user's context sample. An item that never occurs in any split gets OOV (0) sparse values
and the train mean (0 after z-scoring) for dense values. Items never seen in training
(cold items) are scored with item id 0 and their ``item_content`` index, as in the data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

import torch.nn.functional as F

from mtlkit.checks import check_int, check_number
from mtlkit.data.batch import (
    DENSE, HISTORY, HISTORY_PADDING_MASK, ITEM, ITEM_CONTENT, LABEL_MASK, LABELS, SPARSE, TIMESTAMP, USER, Batch,
)  # fmt: skip

if TYPE_CHECKING:
    from mtlkit.data.tensors import MultiTaskData

__all__ = [
    "UserContext",
    "build_user_context",
    "candidate_batch",
    "recommend",
    "evaluate_ranking",
    "ranking_targets",
    "FusedRanking",
    "fused_ranking",
    "user_indices",
    "raw_item_ids",
]

SPLITS = ("train", "valid", "test")
Score = str | Callable[[Mapping[str, Tensor]], Tensor]


# --------------------------------------------------------------------------- the context
@dataclass
class UserContext:
    """Everything needed to build candidate rows, as tensors on one device.

    Attributes:
        at: "end", "valid" or "test" (see the module docstring).
        has_context: (n_users,) bool, True where the user has a context sample.
        user_sparse, user_dense: (n_users, n_sparse) / (n_users, n_dense) the context
            sample's fields (item columns included; they are overwritten per candidate).
        history, history_padding_mask: (n_users, seq_len) the context sample's sequence.
        item_columns_sparse, item_columns_dense: bool masks of the item-determined columns.
        item_sparse, item_dense: (n_items, ...) those columns' values per catalog index.
        seen: (n_users, n_items) bool, items to exclude.
        n_warm_items: catalog indices 1..n_warm_items have an id embedding; others are cold.
        has_item_content: whether batches carry ``item_content``.
    """

    at: str
    has_context: Tensor
    user_sparse: Tensor
    user_dense: Tensor
    history: Tensor
    history_padding_mask: Tensor
    item_columns_sparse: Tensor
    item_columns_dense: Tensor
    item_sparse: Tensor
    item_dense: Tensor
    seen: Tensor
    n_warm_items: int
    has_item_content: bool

    @property
    def n_items(self) -> int:
        return int(self.seen.shape[1])

    def to(self, device: str | torch.device) -> UserContext:
        values = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in vars(self).items()}
        return UserContext(**values)


def _item_determined(keys: np.ndarray, values: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which columns of ``values`` (N, F) are a function of ``keys`` (N,), and their table.

    Returns (is_function (F,), table (n_keys, F), known (n_keys,)). Vectorised: write every
    row's value at its key (the last write wins) and check all rows agree with the table.
    """
    table = np.zeros((n_keys, values.shape[1]), dtype=values.dtype)
    known = np.zeros(n_keys, dtype=bool)
    if len(keys) == 0:
        return np.zeros(values.shape[1], dtype=bool), table, known
    table[keys] = values
    known[keys] = True
    is_function = (table[keys] == values).all(axis=0)
    return is_function, table, known


def _require_users_and_items(data: MultiTaskData) -> None:
    """Recommendation ranks items for users: refuse a tabular data set that has neither."""
    if data.schema.n_users <= 1 or data.schema.n_items <= 1:
        name = data.info.get("name", "this data set")
        raise ValueError(
            f"data must have users and items to recommend, but {name} has none (a tabular data set: "
            f"n_users={data.schema.n_users - 1}, n_items={data.schema.n_items - 1})"
        )


def build_user_context(
    data: MultiTaskData, *, at: str = "end", relevance_task: str | None = None
) -> UserContext:
    """Collect each user's context sample, the item fields and the seen items (CPU tensors).

    Args:
        data: the data set the model was trained on.
        at: "end", "valid" or "test" (see the module docstring).
        relevance_task: the binary task whose positive labels mark interactions (default:
            the click task, else the first binary task).
    """
    if at not in ("end", "valid", "test"):
        raise ValueError(f"at must be 'end', 'valid' or 'test', got {at!r}")
    _require_users_and_items(data)
    relevance_column = _task_column(data, relevance_task)
    schema = data.schema
    parts = {name: getattr(data, name) for name in SPLITS}
    rows: dict[str, list[np.ndarray]] = {}
    wanted = (USER, ITEM, SPARSE, DENSE, HISTORY, HISTORY_PADDING_MASK, LABELS, LABEL_MASK)
    has_content = all(ITEM_CONTENT in split for split in parts.values() if len(split))
    for code, name in enumerate(SPLITS):
        split = parts[name]
        if not len(split):
            continue
        n = len(split)
        columns = {key: split[key].cpu().numpy() for key in wanted}
        columns["content"] = split[ITEM_CONTENT].cpu().numpy() if has_content else columns[ITEM]
        columns["time"] = split[TIMESTAMP].cpu().numpy() if TIMESTAMP in split else np.zeros(n, np.int64)
        columns["split"] = np.full(n, code)
        for key, value in columns.items():
            rows.setdefault(key, []).append(value)
    if not rows:
        raise ValueError("data must hold at least one sample in train, valid or test, got none")
    table = {key: np.concatenate(values) for key, values in rows.items()}
    n_rows = len(table[USER])
    position = np.arange(n_rows)
    n_users, n_items = int(schema.n_users), int(schema.n_items)

    # Item fields: the columns determined by the catalog index.
    is_item_sparse, item_sparse, _ = _item_determined(table["content"], table[SPARSE], n_items)
    is_item_dense, item_dense, _ = _item_determined(table["content"], table[DENSE], n_items)

    # The context sample of each user.
    # Rows sorted by (user, time, split, position); "end" takes each user's last row, a split
    # its first row within that split.
    keep = table[USER] > 0
    if at != "end":
        keep &= table["split"] == SPLITS.index(at)
    order = np.lexsort((position, table["split"], table["time"], table[USER]))
    order = order[keep[order]]
    users_sorted = table[USER][order]
    if at == "end":
        boundary = np.r_[users_sorted[1:] != users_sorted[:-1], True]  # last row per user
    else:
        boundary = np.r_[True, users_sorted[1:] != users_sorted[:-1]]  # first row per user
    chosen = order[boundary[: len(order)]]
    context_user = table[USER][chosen]
    has_context = np.zeros(n_users, dtype=bool)
    has_context[context_user] = True

    def per_user(values: np.ndarray, fill: Any = 0) -> np.ndarray:
        out = np.full((n_users, *values.shape[1:]), fill, dtype=values.dtype)
        out[context_user] = values[chosen]
        return out

    history = per_user(table[HISTORY])
    padding = per_user(table[HISTORY_PADDING_MASK], fill=True)

    # Seen items: interactions before the held-out period (all of them for "end").
    positive = table[LABEL_MASK][:, relevance_column] & (table[LABELS][:, relevance_column] == 1)
    if at != "end":
        positive &= table["split"] < SPLITS.index(at)
    positive &= table[USER] > 0
    seen = np.zeros((n_users, n_items), dtype=bool)
    seen[table[USER][positive], table["content"][positive]] = True
    history_users = np.repeat(np.arange(n_users), history.shape[1]) if history.size else np.zeros(0, np.int64)
    flat_history = history.reshape(-1)
    seen[history_users[~padding.reshape(-1)], flat_history[~padding.reshape(-1)]] = True
    seen[:, 0] = True  # index 0 is the OOV item, never a candidate

    return UserContext(
        at=at,
        has_context=torch.from_numpy(has_context),
        user_sparse=torch.from_numpy(per_user(table[SPARSE])),
        user_dense=torch.from_numpy(per_user(table[DENSE])),
        history=torch.from_numpy(history),
        history_padding_mask=torch.from_numpy(padding),
        item_columns_sparse=torch.from_numpy(is_item_sparse),
        item_columns_dense=torch.from_numpy(is_item_dense),
        item_sparse=torch.from_numpy(item_sparse),
        item_dense=torch.from_numpy(item_dense),
        seen=torch.from_numpy(seen),
        n_warm_items=int(data.info.get("n_warm_items", n_items - 1)),
        has_item_content=has_content,
    )


def candidate_batch(context: UserContext, users: Tensor, items: Tensor) -> Batch:
    """The batch of all (user, item) pairs, user-major: row ``u * len(items) + i``.

    Args:
        context: from :func:`build_user_context`, on the model's device.
        users: (U,) user indices with a context sample.
        items: (I,) catalog item indices.

    Returns:
        a batch dict with U·I rows (the keys of the data contract models read).
    """
    n_users, n_items = len(users), len(items)
    user_rows = users.repeat_interleave(n_items)  # (U*I,)
    item_rows = items.repeat(n_users)  # (U*I,)
    sparse = context.user_sparse[user_rows]  # (U*I, n_sparse)
    sparse = torch.where(context.item_columns_sparse, context.item_sparse[item_rows], sparse)
    dense = context.user_dense[user_rows]  # (U*I, n_dense)
    dense = torch.where(context.item_columns_dense, context.item_dense[item_rows], dense)
    warm = item_rows <= context.n_warm_items
    batch: Batch = {
        USER: user_rows,
        ITEM: torch.where(warm, item_rows, torch.zeros_like(item_rows)),
        SPARSE: sparse,
        DENSE: dense,
        HISTORY: context.history[user_rows],
        HISTORY_PADDING_MASK: context.history_padding_mask[user_rows],
    }
    if context.has_item_content:
        batch[ITEM_CONTENT] = item_rows
    return batch


# --------------------------------------------------------------------------- scoring
def _task_column(data: MultiTaskData, task: str | None) -> int:
    """Column of the relevance task: ``task``, else "click", else the first binary task."""
    names = list(data.schema.task_names)
    kinds = data.schema.task_kinds
    if task is None:
        binary = [n for n in names if kinds[n] == "binary"]
        if not binary:
            raise ValueError(f"relevance_task must be given when no task is binary, tasks are {names}")
        task = "click" if "click" in binary else binary[0]
    if task not in names or kinds[task] != "binary":
        raise ValueError(f"relevance_task must be a binary task of {names}, got {task!r}")
    return names.index(task)


def _ctr_task(task_kinds: Mapping[str, str]) -> str:
    """The click task: "click", else the first binary task."""
    binary = [n for n, kind in task_kinds.items() if kind == "binary"]
    if not binary:
        raise ValueError(f"score 'ctr' needs a binary task, tasks are {list(task_kinds)}")
    return "click" if "click" in binary else binary[0]


def _ctcvr_task(model: nn.Module, task_kinds: Mapping[str, str]) -> str:
    """The conversion task: ``model.config.ctcvr_task`` (ESMM, whose output for it already is
    pCTCVR = pCTR·pCVR), else "purchase"."""
    task = getattr(getattr(model, "config", None), "ctcvr_task", "purchase")
    if task not in task_kinds:
        raise ValueError(f"score 'ctcvr' needs the conversion task {task!r}, tasks are {list(task_kinds)}")
    return task


def _scorer(model: nn.Module, task_kinds: Mapping[str, str], score: Score) -> Callable[[Mapping[str, Tensor]], Tensor]:
    """Turn ``score`` into a function of the model's output dict giving (B,) scores.

    "ctr": σ(click logit) (the click task, else the first binary task); "ctcvr": the
    probability of the conversion task (:func:`_ctcvr_task`); a task name: that task's
    probability (binary) or value (regression); a callable: used as is.
    """
    if callable(score):
        return score
    names = list(task_kinds)
    if score == "ctr":
        task = _ctr_task(task_kinds)
    elif score == "ctcvr":
        task = _ctcvr_task(model, task_kinds)
    elif isinstance(score, str) and score in names:
        task = score
    else:
        raise ValueError(f"score must be 'ctr', 'ctcvr', a task name of {names} or a callable, got {score!r}")
    if task_kinds[task] == "binary":
        return lambda outputs: torch.sigmoid(outputs[task].float())
    return lambda outputs: outputs[task].float()


def _model_device(model: nn.Module) -> torch.device:
    parameter = next(iter(model.parameters()), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _check_users(context: UserContext, users: Any) -> Tensor:
    users = torch.as_tensor(users, dtype=torch.long).reshape(-1).cpu()
    n_users = len(context.has_context)
    if len(users) == 0:
        raise ValueError("users must name at least one user, got none")
    bad = users[(users < 1) | (users >= n_users)]
    if len(bad):
        raise ValueError(f"users must be user indices in 1..{n_users - 1}, got {bad[:5].tolist()}")
    without = users[~context.has_context.cpu()[users]]
    if len(without):
        raise ValueError(f"users must have at least one sample to use as context, got {without[:5].tolist()}")
    return users


def _check_items(context: UserContext, candidates: Any) -> Tensor:
    if candidates is None:
        return torch.arange(1, context.n_items)
    items = torch.as_tensor(candidates, dtype=torch.long).reshape(-1).cpu()
    if len(items) == 0:
        raise ValueError("candidates must hold at least one item, got none")
    bad = items[(items < 1) | (items >= context.n_items)]
    if len(bad):
        raise ValueError(f"candidates must be item indices in 1..{context.n_items - 1}, got {bad[:5].tolist()}")
    return items


@torch.no_grad()
def _score_chunks(model, context, users, items, scorer, batch_size, exclude_seen):
    """Yield (user chunk, (Uc, I) scores with excluded pairs at -inf), all on the device."""
    device = context.seen.device
    items_device = items.to(device)
    n_items = len(items)
    users_per_chunk = max(1, batch_size // n_items)
    items_per_chunk = min(n_items, batch_size)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(users), users_per_chunk):
            chunk = users[start : start + users_per_chunk].to(device)
            scores = torch.empty(len(chunk), n_items, device=device)
            for item_start in range(0, n_items, items_per_chunk):
                part = items_device[item_start : item_start + items_per_chunk]
                outputs = model(candidate_batch(context, chunk, part))
                scores[:, item_start : item_start + len(part)] = scorer(outputs).reshape(len(chunk), len(part))
            if exclude_seen:
                seen = context.seen[chunk][:, items_device]  # (Uc, I)
                scores = scores.masked_fill(seen, float("-inf"))
            yield chunk, scores
    finally:
        model.train(was_training)


def recommend(
    model: nn.Module,
    data: MultiTaskData,
    users: int | Sequence[int] | Tensor,
    k: int = 10,
    *,
    candidates: Sequence[int] | Tensor | None = None,
    exclude_seen: bool = True,
    score: Score = "ctr",
    batch_size: int = 8192,
    at: str = "end",
    context: UserContext | None = None,
) -> tuple[Tensor, Tensor]:
    """The top-k items for each user, with their scores.

    Args:
        model: a trained model (``forward(batch) -> {task: (B,)}``); it runs on its own device.
        data: the data it was trained on (for the users' contexts and the item fields).
        users: user *indices* (1..n_users-1); map raw ids with :func:`user_indices`.
        k: number of items per user.
        candidates: catalog item indices to rank (default: the whole catalog).
        exclude_seen: drop the items the user already interacted with (see the module doc).
        score: "ctr", "ctcvr", a task name or ``callable(outputs) -> (B,)``; see
            :func:`_scorer`.
        batch_size: (user, item) pairs per forward pass.
        at: which sample is the context and what is seen: "end" (default), "valid", "test".
        context: a prebuilt :func:`build_user_context` (reuse it across calls).

    Returns:
        ``(items, scores)``, CPU tensors of shape (U, k): catalog item indices (map them to
        raw ids with :func:`raw_item_ids`) sorted by descending score. Where fewer than k
        candidates remain, the rest is padded with item -1 and score -inf.
    """
    k = check_int("k", k, low=1)
    batch_size = check_int("batch_size", batch_size, low=1)
    device = _model_device(model)
    if context is None:
        context = build_user_context(data, at=at)
    context = context.to(device)
    users = _check_users(context, users)
    items = _check_items(context, candidates)
    scorer = _scorer(model, data.schema.task_kinds, score)
    top_items, top_scores = [], []
    for _, scores in _score_chunks(model, context, users, items, scorer, batch_size, exclude_seen):
        values, columns = torch.topk(scores, min(k, len(items)), dim=1)  # (Uc, k')
        chosen = items.to(device)[columns]
        chosen = torch.where(torch.isneginf(values), torch.full_like(chosen, -1), chosen)
        if k > len(items):
            pad = k - len(items)
            chosen = torch.cat([chosen, chosen.new_full((len(chosen), pad), -1)], dim=1)
            values = torch.cat([values, values.new_full((len(values), pad), float("-inf"))], dim=1)
        top_items.append(chosen.cpu())
        top_scores.append(values.cpu())
    return torch.cat(top_items), torch.cat(top_scores)


def _relevant(data: MultiTaskData, split: str, relevance_task: str | None, context: UserContext) -> Tensor:
    """(n_users, n_items) bool: the items each user interacted with in the held-out ``split``."""
    if split not in ("valid", "test"):
        raise ValueError(f"split must be 'valid' or 'test', got {split!r}")
    column = _task_column(data, relevance_task)
    held_out = getattr(data, split)
    content = held_out[ITEM_CONTENT] if context.has_item_content else held_out[ITEM]
    positive = held_out[LABEL_MASK][:, column] & (held_out[LABELS][:, column] == 1) & (held_out[USER] > 0)
    relevant = torch.zeros(context.seen.shape, dtype=torch.bool)
    relevant[held_out[USER][positive].cpu(), content[positive].cpu()] = True
    relevant[:, 0] = False
    return relevant


def ranking_targets(
    data: MultiTaskData, users: Sequence[int] | Tensor, *, split: str = "test", relevance_task: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """What an offline ranking of ``users`` is judged on: ``(relevant, seen)``.

    Both are ``(U, n_items - 1)`` bool arrays over the catalog items 1..n_items-1 (column j is
    item j + 1), in the order of ``users``: ``relevant`` marks the positives of
    ``relevance_task`` in the held-out ``split``, ``seen`` the items interacted with before it
    (excluded from the ranking; see the module docstring), as :func:`evaluate_ranking` uses them.
    """
    context = build_user_context(data, at=split, relevance_task=relevance_task)
    users = _check_users(context, users)
    relevant = _relevant(data, split, relevance_task, context)
    return relevant[users][:, 1:].numpy(), context.seen[users][:, 1:].numpy()


def _bottom(scores: np.ndarray, excluded: np.ndarray) -> np.ndarray:
    """Excluded pairs go to the bottom with one finite score (the metrics reject -inf)."""
    return np.where(excluded, np.finfo(scores.dtype).min, scores)


def _metric_sums(relevant: np.ndarray, scores: np.ndarray, k: int) -> dict[str, float]:
    """Sums over users (rows, each with a relevant item) of HR@k, NDCG@k, recall@k and MRR."""
    from mtlkit import metrics

    n = len(relevant)
    return {"hr": metrics.hit_rate_at_k(relevant, scores, k) * n, "ndcg": metrics.ndcg_at_k(relevant, scores, k) * n,
            "recall": metrics.recall_at_k(relevant, scores, k) * n, "mrr": metrics.mrr(relevant, scores) * n}  # fmt: skip


def _metric_means(totals: Mapping[str, float], n_users: int, k: int) -> dict[str, float]:
    return {f"hr@{k}": totals["hr"] / n_users, f"ndcg@{k}": totals["ndcg"] / n_users,
            f"recall@{k}": totals["recall"] / n_users, "mrr": totals["mrr"] / n_users, "users": n_users}  # fmt: skip


def evaluate_ranking(
    model: nn.Module,
    data: MultiTaskData,
    k: int = 10,
    *,
    split: str = "test",
    relevance_task: str | None = None,
    score: Score = "ctr",
    exclude_seen: bool = True,
    users: Sequence[int] | Tensor | None = None,
    max_users: int | None = None,
    seed: int = 0,
    batch_size: int = 8192,
) -> dict[str, float]:
    """Full-catalog ranking metrics on the held-out positives of a split.

    For every user with a positive of ``relevance_task`` in ``split``, all catalog items are
    scored from the user's context at the start of the split (the seen items excluded) and
    the held-out positives are the relevant items. Returns ``{"hr@k", "ndcg@k",
    "recall@k", "mrr", "users"}`` (means over users; see :mod:`mtlkit.metrics`: HR, He et
    al. WWW 2017; NDCG, Järvelin & Kekäläinen TOIS 2002; MRR, Voorhees TREC 1999).

    Args:
        users: evaluate only these users (user indices; those without a held-out positive
            are skipped), e.g. one segment of the population. None: every user.
        max_users: evaluate a random subset of this many users (seeded by ``seed``).
        others: as in :func:`recommend`.
    """
    k = check_int("k", k, low=1)
    column = _task_column(data, relevance_task)
    context = build_user_context(data, at=split, relevance_task=relevance_task)
    relevant = _relevant(data, split, relevance_task, context)
    candidates = relevant.any(dim=1) & context.has_context
    subset = users is not None
    if subset:
        requested = torch.zeros_like(candidates)
        requested[_check_users(context, users)] = True
        candidates &= requested
    users = torch.nonzero(candidates).reshape(-1)
    if len(users) == 0:
        raise ValueError(f"split {split!r} has no user with a positive {data.schema.task_names[column]!r} label"
                         + (" among the users asked for" if subset else ""))
    if max_users is not None:
        max_users = check_int("max_users", max_users, low=1)
        if max_users < len(users):
            generator = torch.Generator().manual_seed(seed)
            users = users[torch.randperm(len(users), generator=generator)[:max_users]].sort().values
    device = _model_device(model)
    context = context.to(device)
    items = torch.arange(1, context.n_items)
    scorer = _scorer(model, data.schema.task_kinds, score)
    totals = dict.fromkeys(("hr", "ndcg", "recall", "mrr"), 0.0)
    for chunk, scores in _score_chunks(model, context, users, items, scorer, batch_size, exclude_seen):
        scores = torch.where(torch.isneginf(scores), torch.full_like(scores, torch.finfo(scores.dtype).min), scores)
        rel = relevant[chunk.cpu()][:, 1:].double().numpy()  # (Uc, I); every user of the chunk has a relevant item
        for key, value in _metric_sums(rel, scores.double().cpu().numpy(), k).items():
            totals[key] += value
    return _metric_means(totals, len(users), k)


# --------------------------------------------------------------------------- fused rankings
@dataclass
class FusedRanking:
    """log pCTR and log pCVR of every catalog item for a set of users, scored once.

    The fused score of a product of powers pCTR^a · pCVR^b ranks like its logarithm divided by
    a + b, so one knob α = b / (a + b) ∈ [0, 1] says everything about the ranking:

        s_α(u, i) = (1 − α) log pCTR(u, i) + α log pCVR(u, i),

    α = 0 ranks by clicks, α = 1 by conversion once clicked, and α = ½ like pCTCVR = pCTR·pCVR,
    the expected purchases per impression (Ma et al., "Entire Space Multi-Task Model", SIGIR
    2018, for the pCTCVR decomposition). Every α reuses the same two matrices.

    Attributes:
        users: (U,) user indices, the rows.
        log_ctr, log_cvr: (U, n_items - 1) float64 over catalog items 1..n_items-1 (column j
            is item j + 1).
    """

    users: Tensor
    log_ctr: np.ndarray
    log_cvr: np.ndarray

    def scores(self, alpha: float) -> np.ndarray:
        """(U, n_items - 1) fused log scores s_α."""
        alpha = check_number("alpha", alpha, low=0, high=1)
        return (1.0 - alpha) * self.log_ctr + alpha * self.log_cvr

    def top_k(self, alpha: float, k: int, exclude: np.ndarray | None = None,
              rows: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The k best items per user under s_α: ``(items, scores)`` of shape (U, k), catalog
        indices best first and their fused score pCTR^(1−α) pCVR^α; ``exclude`` (U, n_items - 1)
        bool (e.g. the seen items of :func:`ranking_targets`) never enters a list. ``rows``:
        only these rows (positions in :attr:`users`), e.g. one user's list for a widget."""
        k = check_int("k", k, low=1, high=self.log_ctr.shape[1])
        scores = self.scores(alpha)
        if exclude is not None:
            scores = np.where(self._check_shape(exclude, "exclude"), -np.inf, scores)
        if rows is not None:
            scores = scores[np.asarray(rows, dtype=np.int64)]
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return order + 1, np.exp(np.take_along_axis(scores, order, axis=1))

    def ranking_metrics(self, alpha: float, relevant: np.ndarray, k: int,
                        exclude: np.ndarray | None = None) -> dict[str, float]:
        """HR@k, NDCG@k, recall@k and MRR of s_α over the users with a relevant item, as
        :func:`evaluate_ranking` computes them (``exclude`` at the bottom, tied)."""
        k = check_int("k", k, low=1)
        relevant = self._check_shape(relevant, "relevant")
        scores = self.scores(alpha)
        if exclude is not None:
            scores = _bottom(scores, self._check_shape(exclude, "exclude"))
        keep = relevant.any(axis=1)
        if not keep.any():
            raise ValueError("relevant must mark at least one item of one user, got none")
        return _metric_means(_metric_sums(relevant[keep].astype(np.float64), scores[keep], k), int(keep.sum()), k)

    def _check_shape(self, array: np.ndarray, name: str) -> np.ndarray:
        array = np.asarray(array, dtype=bool)
        if array.shape != self.log_ctr.shape:
            raise ValueError(f"{name} must have shape {self.log_ctr.shape} (users, catalog items), got {array.shape}")
        return array


def fused_ranking(
    model: nn.Module,
    data: MultiTaskData,
    users: Sequence[int] | Tensor,
    *,
    at: str = "test",
    batch_size: int = 8192,
    context: UserContext | None = None,
) -> FusedRanking:
    """Score every catalog item for ``users`` once, as log pCTR and log pCVR (:class:`FusedRanking`).

    pCTR is the click task's probability and pCVR = pCTCVR / pCTR, from the conversion task
    (ESMM's ``config.ctcvr_task``, else "purchase"): log pCVR = log σ(z_ctcvr) − log σ(z_ctr),
    computed with ``logsigmoid`` so that no probability underflows. Arguments as in
    :func:`recommend`; ``at="test"`` (default) scores from each user's context at the start of
    the test period, as :func:`evaluate_ranking` does.
    """
    batch_size = check_int("batch_size", batch_size, low=1)
    kinds = data.schema.task_kinds
    ctr, ctcvr = _ctr_task(kinds), _ctcvr_task(model, kinds)
    if context is None:
        context = build_user_context(data, at=at)
    context = context.to(_model_device(model))
    users = _check_users(context, users)
    items = torch.arange(1, context.n_items)

    def log_ctr(outputs: Mapping[str, Tensor]) -> Tensor:
        return F.logsigmoid(outputs[ctr].float())

    def log_cvr(outputs: Mapping[str, Tensor]) -> Tensor:
        return F.logsigmoid(outputs[ctcvr].float()) - F.logsigmoid(outputs[ctr].float())

    matrices = [
        torch.cat([s.cpu() for _, s in _score_chunks(model, context, users, items, scorer, batch_size, False)])
        for scorer in (log_ctr, log_cvr)
    ]  # two passes: (U, I) each
    return FusedRanking(users, matrices[0].double().numpy(), matrices[1].double().numpy())


# --------------------------------------------------------------------------- raw ids
def user_indices(data: MultiTaskData, raw_ids: Sequence[Any]) -> Tensor:
    """Map raw user ids (as in the source data) to user indices; unknown ids raise ValueError.

    Ids given as strings (e.g. from a command line) also match integer raw ids.
    """
    _require_users_and_items(data)
    index = data.user_index
    by_text = {str(key): value for key, value in index.items()}
    out, unknown = [], []
    for raw in raw_ids:
        value = index.get(raw, by_text.get(str(raw)))
        if value is None:
            unknown.append(raw)
        else:
            out.append(value)
    if unknown:
        raise ValueError(f"user ids must be users seen in training, got unknown {unknown[:5]!r}")
    return torch.tensor(out, dtype=torch.long)


def raw_item_ids(data: MultiTaskData, items: Tensor | Sequence[int]) -> list:
    """Catalog item indices → raw item ids (None for the padding index -1 or 0), same shape as lists."""
    reverse = {index: raw for raw, index in data.item_index.items()}
    array = torch.as_tensor(items).cpu()
    return np.vectorize(lambda i: reverse.get(int(i)), otypes=[object])(array.numpy()).tolist()
