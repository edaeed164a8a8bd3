"""The builder: an interaction log (and user / item tables) -> :class:`MultiTaskData`.

:func:`build_multitask_data` turns a log into samples that follow the batch contract of
:mod:`mtlkit.data.batch` (features, behaviour sequence, labels), with the tasks of
:mod:`mtlkit.data.tasks` and a split of :mod:`mtlkit.data.splits`. The helpers below do one
step each: entity codes and the (user, time) order, negative sampling, feature tables fitted on
the training split, and the histories.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from mtlkit.data import columns as C
from mtlkit.data.batch import (
    DENSE, GROUND_TRUTH, HISTORY, HISTORY_PADDING_MASK, IS_BOT, IS_COLD_ITEM, IS_FEMALE, ITEM, ITEM_CONTENT,
    LABEL_MASK, LABELS, SPARSE, TIMESTAMP, USER,
)  # fmt: skip
from mtlkit.data.schema import FeatureSchema
from mtlkit.data.splits import SPLITS, split_rows
from mtlkit.data.tasks import TASK_RECIPES, Task, TaskColumn, labels_from_recipes, task_spec
from mtlkit.data.tensors import MultiTaskData, TensorSamples, split_statistics

__all__ = ["SPLIT_NAMES", "build_multitask_data"]

#: The splits of a :class:`~mtlkit.data.tensors.MultiTaskData`, in order (split code 0, 1, 2).
SPLIT_NAMES = ("train", "valid", "test")

# Columns never used as features by the automatic field detection: identifiers, text, ground
# truth and the nuisance attribute of the synthetic funnel.
_NOT_FEATURES = {C.USER_ID, C.ITEM_ID, C.TITLE, C.IS_COLD, C.IS_BOT}


def _is_list_column(series: pd.Series) -> bool:
    first = series.dropna()
    return len(first) > 0 and isinstance(first.iloc[0], (list, tuple, np.ndarray))


def _auto_fields(table: pd.DataFrame | None) -> tuple[list[str], list[str]]:
    """(sparse, dense) columns: strings/categories/bools are sparse, numbers and lists dense."""
    if table is None:
        return [], []
    sparse, dense = [], []
    for name in table.columns:
        if name in _NOT_FEATURES:
            continue
        col = table[name]
        numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
        if _is_list_column(col) or numeric:
            dense.append(name)
        else:
            sparse.append(name)
    return sparse, dense


def _sorted_categories(values: pd.Series) -> list:
    unique = pd.unique(values.dropna())
    try:
        return sorted(unique)
    except TypeError:  # mixed types: keep first-seen order
        return list(unique)


def _entity_table(
    table: pd.DataFrame | None,
    key: str,
    codes_of: Callable[[np.ndarray], np.ndarray],
    n_codes: int,
    in_train: np.ndarray,
    sparse: Sequence[str],
    dense: Sequence[str],
) -> tuple[np.ndarray, list[int], np.ndarray, list[str]]:
    """Per-entity feature tables (row = entity code): sparse ids fitted on train entities only
    (0 = OOV/missing) and raw dense values (NaN = missing); list columns become multi-hot."""
    sparse_ids = np.zeros((n_codes, len(sparse)), dtype=np.int64)
    cardinalities: list[int] = []
    dense_cols: list[np.ndarray] = []
    dense_names: list[str] = []
    if table is None:
        return sparse_ids, cardinalities, np.zeros((n_codes, 0)), dense_names
    codes = codes_of(table[key].to_numpy())
    train_rows = in_train[codes]
    for j, name in enumerate(sparse):
        col = table[name]
        if _is_list_column(col):
            raise ValueError(f"sparse field {name!r} holds lists; list it as a dense field (multi-hot)")
        categories = _sorted_categories(col[train_rows])
        sparse_ids[codes, j] = pd.Index(categories).get_indexer(col) + 1  # unseen / NaN -> 0
        cardinalities.append(len(categories) + 1)
    for name in dense:
        col = table[name]
        if _is_list_column(col):
            exploded = col[train_rows].explode()
            for value in _sorted_categories(exploded):
                flags = np.zeros(n_codes)
                flags[codes] = [isinstance(v, (list, tuple, np.ndarray)) and value in v for v in col]
                dense_cols.append(flags)
                dense_names.append(f"{name}={value}")
        else:
            values = np.full(n_codes, np.nan)
            values[codes] = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            dense_cols.append(values)
            dense_names.append(name)
    dense_values = np.stack(dense_cols, axis=1) if dense_cols else np.zeros((n_codes, 0))
    return sparse_ids, cardinalities, dense_values, dense_names


def _zscore(values: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(float32 z-scores with NaN -> 0, mean, std) of the columns of ``values`` (rows, k), using
    row weights ``weight`` (the number of training samples of each row; NaN values ignored)."""
    observed = ~np.isnan(values)
    w = weight[:, None] * observed  # (rows, k)
    total = w.sum(0)
    x = np.where(observed, values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(total > 0, (w * x).sum(0) / total, 0.0)
        var = np.where(total > 0, (w * (x - mean) ** 2).sum(0) / total, 1.0)
    std = np.sqrt(var)
    std = np.where(std > 0, std, 1.0)
    return np.where(observed, (x - mean) / std, 0.0).astype(np.float32), mean, std


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (sort-based: numpy's hash-based ``np.unique`` is slow on big int64)."""
    ordered = np.sort(values)
    keep = np.ones(len(ordered), bool)
    keep[1:] = ordered[1:] != ordered[:-1]
    return ordered[keep]


def _user_time_key(user: np.ndarray, time: np.ndarray) -> np.ndarray:
    """An int64 per row that sorts like (user, time): user·(span + 1) + (time − min), or with
    dense time ranks when that could overflow."""
    t0, span = int(time.min()), int(time.max()) - int(time.min())
    if (int(user.max()) + 1) * (span + 1) >= 2**62:
        time = np.searchsorted(_sorted_unique(time), time)
        t0, span = 0, int(time.max())
    return user.astype(np.int64) * (span + 1) + (time - t0)


class _PairSet:
    """Membership of (user, item) pairs: a bitmap when users x items is small, else sorted keys."""

    def __init__(self, user: np.ndarray, item: np.ndarray, n_users: int, n_items: int):
        self.width = n_items + 1
        keys = user.astype(np.int64) * self.width + item
        if n_users * self.width <= 200_000_000:  # <= 200 MB of bools
            self.bitmap = np.zeros(n_users * self.width, bool)
            self.bitmap[keys] = True
        else:
            self.bitmap, self.keys = None, np.sort(keys)

    def contains(self, user: np.ndarray, item: np.ndarray) -> np.ndarray:
        keys = user.astype(np.int64) * self.width + item
        if self.bitmap is not None:
            return self.bitmap[keys]
        pos = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        return self.keys[pos] == keys


def _sample_negatives(
    user: np.ndarray, n_warm: int, seen: _PairSet, rng: np.random.Generator, max_rounds: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    """One warm item (catalog 1..n_warm) per entry of ``user`` that the user never interacted
    with, by vectorised rejection sampling. Returns (items, ok); ok is False where the user had
    seen nearly every warm item and no unseen one was found."""
    items = rng.integers(1, n_warm + 1, len(user))
    bad = seen.contains(user, items)
    for _ in range(max_rounds):
        if not bad.any():
            break
        idx = np.flatnonzero(bad)
        items[idx] = rng.integers(1, n_warm + 1, len(idx))
        bad[idx] = seen.contains(user[idx], items[idx])
    return items, ~bad


def _histories(
    query: np.ndarray, query_user: np.ndarray, event: np.ndarray, event_user: np.ndarray,
    event_item: np.ndarray, seq_len: int,
) -> tuple[np.ndarray, np.ndarray]:
    """For each sample, the last ``seq_len`` events of the same user with a smaller key.

    ``event`` holds the sorted (user, time) keys of the positive events. Keys of one user are
    contiguous, so "strictly before in time" is "key < query key" and "same user" is "index
    >= the user's first event". Returns the item matrix, oldest first and left-padded with 0,
    and the padding mask (True = padding), both (n, seq_len).
    """
    n = len(query)
    if seq_len == 0 or len(event) == 0:
        return np.zeros((n, seq_len), np.int64), np.ones((n, seq_len), bool)
    end = np.searchsorted(event, query, side="left")  # first event not strictly before
    first = np.searchsorted(event_user, query_user, side="left")  # the user's first event
    count = np.minimum(end - first, seq_len)  # (n,)
    # window k of the zero-prefixed events = events k - seq_len .. k - 1: one row gather
    prefixed = np.concatenate([np.zeros(seq_len, np.int64), event_item])
    windows = np.lib.stride_tricks.sliding_window_view(prefixed, seq_len)
    history = windows[end]  # (n, seq_len), a copy
    padding = np.arange(seq_len)[None, :] < (seq_len - count)[:, None]
    history[padding] = 0  # older events of the previous user
    return history, padding


def build_multitask_data(
    interactions: pd.DataFrame,
    users: pd.DataFrame | None = None,
    items: pd.DataFrame | None = None,
    *,
    tasks: Sequence[Task] = (C.CLICK, C.LIKE, C.RATING_TASK),
    split: str = "leave-last-out",
    split_column: str | None = None,
    positive: str | None = None,
    seq_len: int = 20,
    n_negatives: int = 0,
    n_eval_negatives: int | None = None,
    split_fractions: Sequence[float] = (0.8, 0.1, 0.1),
    user_sparse: Sequence[str] | None = None,
    user_dense: Sequence[str] | None = None,
    item_sparse: Sequence[str] | None = None,
    item_dense: Sequence[str] | None = None,
    context_sparse: Sequence[str] = (),
    context_dense: Sequence[str] = (),
    text_embeddings: np.ndarray | Tensor | None = None,
    like_threshold: float = C.LIKE_MIN_RATING,
    seed: int = 0,
) -> MultiTaskData:
    """Turn an interaction log into multi-task samples (features, behaviour sequence, labels).

    Rows. One sample per interaction (a rating, or an impression when ``interactions`` has a
    ``click`` column), plus ``n_negatives`` sampled negatives per *positive* in train and
    ``n_eval_negatives`` (default: the same) in valid/test. A positive is an interaction whose
    ``positive`` column is 1 (default: the ``click`` column when the log has one), or every
    interaction of a positive-only log such as MovieLens. Negatives are items the user never
    interacted with, drawn uniformly from the items seen in training; they inherit the
    positive's user, timestamp and split, and carry only the click/watch label (0): every other
    recipe is masked on them (a :class:`~mtlkit.data.tasks.TaskColumn` reads 0 in its binary
    columns and NaN in its regression ones there).

    Tasks. Each entry of ``tasks`` is a recipe name of :data:`~mtlkit.data.tasks.TASK_RECIPES`
    (``click`` / ``watch``, ``like``, ``click_like``, ``rating``, ``purchase``, ``conversion``)
    or a :class:`~mtlkit.data.tasks.TaskColumn` read from the log's own columns;
    :mod:`mtlkit.data.tasks` says which rows each labels and observes.

    Splits (:data:`~mtlkit.data.splits.SPLITS`, on interactions; negatives follow their
    positive): ``leave-last-out``, ``temporal`` (cut at the ``split_fractions`` quantiles of
    the timestamps) or ``random``, as :mod:`mtlkit.data.splits` describes; or, with
    ``split_column``, the split each interaction names in that column (``"train"``,
    ``"valid"`` or ``"test"``; ``split`` is then not used), e.g. a test set logged apart.

    Features. ``user`` / ``item`` and every categorical field use vocabularies fitted on the
    training split only (0 = OOV); dense fields are z-scored with training-split statistics
    (missing -> 0 = the mean); list columns (e.g. MovieLens genres) become multi-hot dense
    fields. ``None`` field lists are detected from the tables: strings, categories and bools are
    sparse, numbers and lists dense (``is_bot``, ``is_cold``, ``title`` and ids are skipped).
    Sparse fields are ordered user, item, context. ``text_embeddings`` (one row per row of
    ``items``) becomes ``schema.item_text_embeddings`` in catalog order with row 0 = zeros.

    Behaviour sequence. ``history`` holds the user's last ``seq_len`` positive items (clicked or
    rated; never sampled negatives or unclicked impressions) with a timestamp strictly before
    the sample's timestamp, oldest first and left-padded with 0; ``history_padding_mask`` is
    True on padding (torch ``key_padding_mask`` convention). A user's first sample has an
    all-padding history. Items unseen in training appear as 0 with mask False.

    Returns:
        a :class:`MultiTaskData`; ``info`` holds the statistics of each split
        (:func:`~mtlkit.data.tensors.split_statistics`: sizes, label rates, cold-item counts,
        history lengths), the catalog counts and the dense statistics.
    """
    text_embeddings = _check_arguments(
        interactions, users, items, tasks, split, split_column, positive, seq_len, n_negatives, n_eval_negatives,
        split_fractions, context_sparse, context_dense, text_embeddings,
    )  # fmt: skip
    task_names = tuple(task_spec(task).name for task in tasks)
    n_eval_negatives = n_negatives if n_eval_negatives is None else n_eval_negatives
    fractions = [float(f) for f in split_fractions]
    rng = np.random.default_rng(seed)

    # ---- entity codes (0-based, sorted raw ids) and the (user, time) order ------------------
    raw_user = interactions[C.USER_ID].to_numpy()
    raw_item = interactions[C.ITEM_ID].to_numpy()
    # users / items of the tables without interactions still get codes (for their features)
    user_ids = _sorted_unique(raw_user if users is None else np.concatenate([raw_user, users[C.USER_ID]]))
    item_ids = _sorted_unique(raw_item if items is None else np.concatenate([raw_item, items[C.ITEM_ID]]))
    user = np.searchsorted(user_ids, raw_user)
    item = np.searchsorted(item_ids, raw_item)
    time = interactions[C.TIMESTAMP].to_numpy().astype(np.int64)
    time_key = _user_time_key(user, time)  # one int64 per row, ordered like (user, time)
    row_order = np.argsort(time_key, kind="stable")  # (user, time, row)
    if positive is None and C.CLICK in interactions.columns:
        positive = C.CLICK
    if positive is None:  # positive-only log: every interaction is a positive
        positive_column = None
        positive = np.ones(len(user), bool)
    else:
        positive_column = positive
        positive = interactions[positive_column].to_numpy(dtype=float, na_value=np.nan) == 1

    # ---- split and train-only vocabularies ---------------------------------------------------
    if split_column is None:
        split_code = split_rows(split, user, time, positive, row_order, fractions, len(user_ids), rng)
    else:
        split_code = pd.Index(SPLIT_NAMES).get_indexer(interactions[split_column]).astype(np.int8)
    train_rows = split_code == 0
    user_in_train = np.zeros(len(user_ids), bool)
    user_in_train[user[train_rows]] = True
    item_in_train = np.zeros(len(item_ids), bool)
    item_in_train[item[train_rows]] = True
    user_index_of = np.zeros(len(user_ids), np.int64)  # code -> index, 0 = OOV
    user_index_of[user_in_train] = np.arange(1, user_in_train.sum() + 1)
    n_warm = int(item_in_train.sum())
    catalog_order = np.concatenate([np.flatnonzero(item_in_train), np.flatnonzero(~item_in_train)])
    catalog_of = np.empty(len(item_ids), np.int64)  # code -> catalog index 1..n_catalog
    catalog_of[catalog_order] = np.arange(1, len(item_ids) + 1)
    n_catalog = len(item_ids)
    catalog = catalog_of[item]

    # ---- sample rows: interactions by (split, user, time), each followed by its negatives ------
    # (so every split is one contiguous block of rows and needs no copy)
    n_per_row = np.where(positive, np.where(train_rows, n_negatives, n_eval_negatives), 0)
    split_order = row_order[np.argsort(split_code[row_order], kind="stable")]
    source = np.repeat(split_order, 1 + n_per_row[split_order])  # the interaction of each row
    negative = np.ones(len(source), bool)
    negative[np.cumsum(1 + n_per_row[split_order]) - 1 - n_per_row[split_order]] = False
    s_catalog = catalog[source]
    n_dropped = 0
    if n_per_row.any():  # negatives: warm items the user never interacted with
        seen = _PairSet(user, catalog, len(user_ids), n_catalog)
        s_catalog[negative], ok = _sample_negatives(user[source[negative]], n_warm, seen, rng)
        n_dropped = int((~ok).sum())
        if n_dropped:
            keep = np.ones(len(source), bool)
            keep[np.flatnonzero(negative)[~ok]] = False
            source, negative, s_catalog = source[keep], negative[keep], s_catalog[keep]
    s_user = user[source]
    s_split = split_code[source]
    s_warm = s_catalog <= n_warm

    # ---- features ------------------------------------------------------------------------------
    item_in_train_by_catalog = np.zeros(n_catalog + 1, bool)
    item_in_train_by_catalog[1 : n_warm + 1] = True
    features = _features(
        interactions, users, items, source, s_user, s_catalog, s_split == 0,
        user_tables=(lambda ids: np.searchsorted(user_ids, ids), len(user_ids), user_in_train),
        item_tables=(
            lambda ids: catalog_of[np.searchsorted(item_ids, ids)], n_catalog + 1, item_in_train_by_catalog
        ),
        fields=(user_sparse, user_dense, item_sparse, item_dense, context_sparse, context_dense),
    )  # fmt: skip

    # ---- behaviour sequence: earlier positives of the same user -------------------------------
    events = row_order[positive[row_order]]  # positive interactions in (user, time) order
    id_of_catalog = np.arange(n_catalog + 1)
    id_of_catalog[n_warm + 1 :] = 0  # ID space: items unseen in train -> 0 (OOV)
    history, padding = _histories(
        time_key[source], s_user, time_key[events], user[events], id_of_catalog[catalog[events]], int(seq_len)
    )

    # ---- labels ----------------------------------------------------------------------------------
    labels, label_mask, per_row = labels_from_recipes(interactions, tasks, source, negative, float(like_threshold))

    arrays = {
        USER: user_index_of[s_user],
        ITEM: id_of_catalog[s_catalog],  # ID space: items unseen in train -> 0 (OOV)
        SPARSE: features[SPARSE],
        DENSE: features[DENSE],
        HISTORY: history,
        HISTORY_PADDING_MASK: padding,
        LABELS: labels,
        LABEL_MASK: label_mask,
        IS_COLD_ITEM: ~s_warm,
        TIMESTAMP: time[source],
        ITEM_CONTENT: s_catalog,
        **{name: values.astype(np.float32) for name, values in per_row.items() if name in GROUND_TRUTH},
    }
    if users is not None and C.IS_BOT in users.columns:
        bot = np.zeros(len(user_ids), bool)
        bot[np.searchsorted(user_ids, users[C.USER_ID].to_numpy())] = users[C.IS_BOT].to_numpy(dtype=bool)
        arrays[IS_BOT] = bot[s_user]
    if users is not None and C.GENDER in users.columns:  # a protected attribute (adversarial tasks)
        female = np.zeros(len(user_ids), bool)
        is_female = users[C.GENDER].astype(str).str.upper().eq("F").to_numpy()
        female[np.searchsorted(user_ids, users[C.USER_ID].to_numpy())] = is_female
        arrays[IS_FEMALE] = female[s_user]

    # ---- splits (rows stay ordered by user, time, interaction before its negatives) ------------
    splits, info_splits = {}, {}
    bounds = np.searchsorted(s_split, [0, 1, 2, 3])  # rows are grouped by split
    for code, name in enumerate(SPLIT_NAMES):
        rows = slice(bounds[code], bounds[code + 1])
        splits[name] = TensorSamples.from_numpy({k: v[rows] for k, v in arrays.items()})
        info_splits[name] = split_statistics(splits[name], task_names, negative[rows])

    # ---- schema: the catalog (warm items first) with titles and text embeddings ---------------
    catalog_raw = item_ids[catalog_order]  # catalog index k -> raw id catalog_raw[k - 1]
    text_table = None
    if text_embeddings is not None:
        table = np.zeros((n_catalog + 1, text_embeddings.shape[1]), np.float32)
        table[catalog_of[np.searchsorted(item_ids, items[C.ITEM_ID].to_numpy())]] = text_embeddings
        text_table = torch.from_numpy(table)
    titles = None
    if items is not None and C.TITLE in items.columns:
        title_of = dict(zip(items[C.ITEM_ID].tolist(), items[C.TITLE].astype(str).tolist()))
        titles = ("",) + tuple(title_of.get(raw, "") for raw in catalog_raw.tolist())
    schema = FeatureSchema(
        n_users=int(user_in_train.sum()) + 1,
        n_items=n_catalog + 1,
        sparse_fields=features["sparse_fields"],
        sparse_cardinalities=features["sparse_cardinalities"],
        dense_fields=features["dense_fields"],
        seq_len=int(seq_len),
        tasks=tuple(task_spec(task) for task in tasks),
        item_text_embeddings=text_table,
        item_titles=titles,
    )
    info = {
        "split": split if split_column is None else f"column {split_column!r}",
        "split_fractions": tuple(fractions),
        "positive": positive_column,
        "seed": int(seed),
        "n_negatives": int(n_negatives),
        "n_eval_negatives": int(n_eval_negatives),
        "dropped_negatives": n_dropped,
        "n_interactions": int(len(user)),
        "n_positives": int(positive.sum()),
        "n_warm_items": n_warm,
        "n_cold_items": int(n_catalog - n_warm),
        "n_catalog_items": int(n_catalog),
        "n_oov_users": int(len(user_ids) - user_in_train.sum()),
        "dense_stats": features["dense_stats"],
        "splits": info_splits,
    }
    if any(isinstance(task, TaskColumn) for task in tasks):
        info["task_columns"] = {task.name: task.spec() for task in tasks if isinstance(task, TaskColumn)}
    return MultiTaskData(
        schema=schema,
        train=splits["train"],
        valid=splits["valid"],
        test=splits["test"],
        item_index=dict(zip(catalog_raw.tolist(), range(1, n_catalog + 1))),
        user_index={
            raw: int(user_index_of[k]) for k, raw in enumerate(user_ids.tolist()) if user_in_train[k]
        },
        info=info,
    )


def _check_arguments(
    interactions, users, items, tasks, split, split_column, positive, seq_len, n_negatives, n_eval_negatives,
    split_fractions, context_sparse, context_dense, text_embeddings,
) -> np.ndarray | None:
    """Validate the builder's arguments once; returns the text embeddings as float32 numpy."""
    if not isinstance(interactions, pd.DataFrame):
        raise TypeError(f"interactions must be a pandas DataFrame, got {type(interactions).__name__}")
    missing = [c for c in (C.USER_ID, C.ITEM_ID, C.TIMESTAMP) if c not in interactions.columns]
    if missing:
        raise ValueError(f"interactions must have columns user_id, item_id, timestamp; missing {missing}")
    if len(interactions) == 0:
        raise ValueError("interactions must not be empty, got 0 rows")
    if isinstance(tasks, str) or len(tasks) == 0:
        raise ValueError(f"tasks must be a non-empty sequence of task names or TaskColumns, got {tasks!r}")
    for task in tasks:
        if not isinstance(task, TaskColumn) and task not in TASK_RECIPES:
            raise ValueError(f"tasks must be names from {sorted(TASK_RECIPES)} or TaskColumns, got {task!r}")
        need = task.columns if isinstance(task, TaskColumn) else TASK_RECIPES[task][1]
        need = [c for c in need if c not in interactions.columns]
        if need:
            raise ValueError(f"tasks: {task_spec(task).name!r} needs column(s) {need} in interactions")
    names = [task_spec(task).name for task in tasks]
    if len(set(names)) != len(names):
        raise ValueError(f"tasks must not repeat, got {names!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    for name, column in (("split_column", split_column), ("positive", positive)):
        if column is not None and column not in interactions.columns:
            raise ValueError(f"{name} must be a column of interactions, got {column!r}")
    if split_column is not None:
        values = set(interactions[split_column].unique())
        if not values <= set(SPLIT_NAMES):
            raise ValueError(f"split_column {split_column!r} must hold {SPLIT_NAMES}, got {sorted(map(str, values))}")
    if not isinstance(seq_len, (int, np.integer)) or seq_len < 0:
        raise ValueError(f"seq_len must be a non-negative integer, got {seq_len!r}")
    for name, value in (("n_negatives", n_negatives), ("n_eval_negatives", n_eval_negatives)):
        if value is not None and (not isinstance(value, (int, np.integer)) or value < 0):
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    implicit_click = C.CLICK not in interactions.columns and any(t in (C.CLICK, C.WATCH) for t in tasks)
    if implicit_click and n_negatives == 0:
        raise ValueError(
            "n_negatives must be >= 1 when a click/watch task is derived from a positive-only log "
            f"(no click column): every label would be 1, got n_negatives={n_negatives!r}"
        )
    fractions = [float(f) for f in split_fractions]
    if len(fractions) != 3 or min(fractions) < 0 or fractions[0] <= 0 or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(
            f"split_fractions must be 3 non-negative shares summing to 1, got {split_fractions!r}"
        )
    for name, table, key in (("users", users, C.USER_ID), ("items", items, C.ITEM_ID)):
        if table is not None and (key not in table.columns or not table[key].is_unique):
            raise ValueError(f"{name} must have a unique {key!r} column")
    for name in (*context_sparse, *context_dense):
        if name not in interactions.columns:
            raise ValueError(f"context field {name!r} is not a column of interactions")
    if text_embeddings is None:
        return None
    if items is None:
        raise ValueError("text_embeddings needs the items table (one embedding per row of items)")
    text_embeddings = np.asarray(text_embeddings, dtype=np.float32)
    if text_embeddings.ndim != 2 or text_embeddings.shape[0] != len(items):
        raise ValueError(
            f"text_embeddings must have shape (len(items)={len(items)}, d), got {text_embeddings.shape}"
        )
    return text_embeddings


def _features(
    interactions, users, items, source, s_user, s_catalog, in_train, *, user_tables, item_tables, fields
):
    """Sparse ids (B, n_sparse) and z-scored dense values (B, n_dense) of every sample row.

    Field order: user, item, context. Vocabularies and statistics come from the training rows.
    ``None`` field lists are detected from the tables (:func:`_auto_fields`).
    """
    user_sparse, user_dense, item_sparse, item_dense, context_sparse, context_dense = fields
    auto_user, auto_item = _auto_fields(users), _auto_fields(items)
    user_sparse = auto_user[0] if user_sparse is None else list(user_sparse)
    user_dense = auto_user[1] if user_dense is None else list(user_dense)
    item_sparse = auto_item[0] if item_sparse is None else list(item_sparse)
    item_dense = auto_item[1] if item_dense is None else list(item_dense)
    for name, names, table in (
        ("users", user_sparse + user_dense, users), ("items", item_sparse + item_dense, items)
    ):
        absent = [f for f in names if table is None or f not in table.columns]
        if absent:
            raise ValueError(f"{name} table has no field(s) {absent}")
    u_sparse, u_card, u_dense, u_names = _entity_table(
        users, C.USER_ID, *user_tables, user_sparse, user_dense
    )
    i_sparse, i_card, i_dense, i_names = _entity_table(
        items, C.ITEM_ID, *item_tables, item_sparse, item_dense
    )

    sparse_blocks = [u_sparse[s_user], i_sparse[s_catalog]]
    cardinalities = u_card + i_card
    for name in context_sparse:  # per-row fields of the interactions (negatives copy their positive's)
        values = interactions[name].iloc[source].reset_index(drop=True)
        categories = _sorted_categories(values[in_train])
        sparse_blocks.append((pd.Index(categories).get_indexer(values) + 1)[:, None])
        cardinalities.append(len(categories) + 1)

    # z-scores with statistics over the training samples. Entity fields are normalised on their
    # small per-entity tables, each entity weighted by its number of training samples.
    dense_blocks, stats = [], []
    for table, rows in ((u_dense, s_user), (i_dense, s_catalog)):
        weight = np.bincount(rows[in_train], minlength=len(table)).astype(float)
        normalised, mean, std = _zscore(table, weight)
        dense_blocks.append(normalised[rows])
        stats += list(zip(mean, std))
    if context_dense:
        numeric = [pd.to_numeric(interactions[name], errors="coerce") for name in context_dense]
        values = np.stack([col.to_numpy(dtype=float, na_value=np.nan)[source] for col in numeric], axis=1)
        normalised, mean, std = _zscore(values, in_train.astype(float))
        dense_blocks.append(normalised)
        stats += list(zip(mean, std))
    dense_fields = tuple(u_names + i_names + list(context_dense))
    return {
        SPARSE: _hstack(sparse_blocks, np.int64, len(source)),
        DENSE: _hstack(dense_blocks, np.float32, len(source)),
        "sparse_fields": tuple(user_sparse + item_sparse + list(context_sparse)),
        "sparse_cardinalities": tuple(cardinalities),
        "dense_fields": dense_fields,
        "dense_stats": {f: (float(m), float(sd)) for f, (m, sd) in zip(dense_fields, stats)},
    }


def _hstack(blocks: list[np.ndarray], dtype, n: int) -> np.ndarray:
    """Column-stack the non-empty blocks (no copy when only one has columns)."""
    blocks = [b for b in blocks if b.shape[1]]
    if len(blocks) == 1 and blocks[0].dtype == dtype:
        return blocks[0]
    return np.concatenate(blocks, axis=1).astype(dtype, copy=False) if blocks else np.zeros((n, 0), dtype)
