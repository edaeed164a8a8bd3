"""Task recipes: how each task's label and mask (where the label is observed) come from a log.

A recipe reads per-sample columns of the interaction log (click, purchase, rating; NaN where
unobserved and on sampled negatives) and returns a label and a mask per row:

* ``click`` / ``watch`` (binary): the logged click, or 1 on interactions and 0 on sampled
  negatives; observed on every row.
* ``like`` (binary): rating >= ``like_threshold``, observed on real rated rows (a
  conditional, CVR-like label: like given watched).
* ``click_like`` (binary): click AND rating >= ``like_threshold`` over *every* row, 0 on
  sampled negatives and on unclicked or unrated rows — the entire-space twin of ``like``,
  as ``purchase`` is of ``conversion``; with ``click`` it gives ESMM its CTR and CTCVR
  tasks on a rating log (pCVR = p(like | watched)).
* ``rating`` (regression): the rating, observed where it exists (funnel: after a purchase).
* ``purchase`` (binary): with a click column, click AND purchase over *all impressions*
  (ESMM's CTCVR space, mask True on every impression); otherwise the purchase column.
* ``conversion`` (binary): purchase given click, observed on clicked impressions only.

The entire-space labels follow ESMM: pCTCVR = pCTR · pCVR, with CTR and CTCVR both observed on
every impression (X. Ma, L. Zhao, G. Huang, Z. Wang, Z. Hu, X. Zhu and K. Gai. 2018. Entire
Space Multi-Task Model: An Effective Approach for Estimating Post-Click Conversion Rate.
*SIGIR 2018*). Adding a task touches this module only: a recipe and its entry in
:data:`TASK_RECIPES`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mtlkit.data import columns as C
from mtlkit.data.batch import GROUND_TRUTH

__all__ = ["TASK_RECIPES", "labels_from_recipes"]


@dataclass
class _RowColumns:
    """Per-sample columns the recipes read (sampled negatives: NaN / not observed)."""

    negative: np.ndarray  # bool: a sampled negative (never an interaction)
    click: np.ndarray | None  # float 0/1 from the interactions' click column, NaN on negatives
    purchase: np.ndarray | None  # float 1/0, NaN where unobserved
    rating: np.ndarray | None  # float, NaN where unobserved
    like_threshold: float


def _click(rows: _RowColumns) -> tuple[np.ndarray, np.ndarray]:
    # Impressions (a click column): the click as logged. Positive-only logs: 1 on every
    # interaction, 0 on sampled negatives. Observed everywhere.
    label = np.where(rows.negative, 0.0, 1.0 if rows.click is None else rows.click)
    return label, np.ones(len(label), dtype=bool)


def _like(rows: _RowColumns) -> tuple[np.ndarray, np.ndarray]:
    mask = ~rows.negative & ~np.isnan(rows.rating)
    return (np.nan_to_num(rows.rating) >= rows.like_threshold) & mask, mask


def _click_like(rows: _RowColumns) -> tuple[np.ndarray, np.ndarray]:
    # Entire space (ESMM's CTCVR, with "like" as the conversion): click AND rating >=
    # like_threshold, observed on every row; 0 on sampled negatives, unclicked and unrated rows.
    clicked = _click(rows)[0] == 1
    liked = ~np.isnan(rows.rating) & (np.nan_to_num(rows.rating) >= rows.like_threshold)
    return clicked & liked, np.ones(len(clicked), dtype=bool)


def _rating(rows: _RowColumns) -> tuple[np.ndarray, np.ndarray]:
    mask = ~rows.negative & ~np.isnan(rows.rating)
    return np.where(mask, np.nan_to_num(rows.rating), 0.0), mask


def _purchase(rows: _RowColumns) -> tuple[np.ndarray, np.ndarray]:
    # Entire impression space (ESMM's CTCVR): purchase = click AND purchase, observed on every
    # impression. Without a click column: the purchase column where it is not NaN.
    bought = np.nan_to_num(rows.purchase) == 1
    if rows.click is None:
        mask = ~rows.negative & ~np.isnan(rows.purchase)
        return bought & mask, mask
    mask = ~rows.negative
    return bought & (np.nan_to_num(rows.click) == 1) & mask, mask


def _conversion(rows: _RowColumns) -> tuple[np.ndarray, np.ndarray]:
    # P(purchase | click): labelled on clicked impressions only (the biased CVR space).
    clicked = np.ones(len(rows.negative), bool) if rows.click is None else np.nan_to_num(rows.click) == 1
    mask = ~rows.negative & clicked & ~np.isnan(rows.purchase)
    return (np.nan_to_num(rows.purchase) == 1) & mask, mask


# name -> (kind, columns it needs, recipe)
_Recipe = Callable[[_RowColumns], tuple[np.ndarray, np.ndarray]]  # rows -> (label, mask)
TASK_RECIPES: dict[str, tuple[str, tuple[str, ...], _Recipe]] = {
    C.CLICK: ("binary", (), _click),
    C.WATCH: ("binary", (), _click),
    C.LIKE: ("binary", (C.RATING,), _like),
    C.CLICK_LIKE: ("binary", (C.RATING,), _click_like),
    C.RATING_TASK: ("regression", (C.RATING,), _rating),
    C.PURCHASE: ("binary", (C.PURCHASE,), _purchase),
    C.CONVERSION: ("binary", (C.PURCHASE,), _conversion),
}


def labels_from_recipes(
    interactions: pd.DataFrame,
    tasks: Sequence[str],
    source: np.ndarray,
    negative: np.ndarray,
    like_threshold: float,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Labels and masks (B, n_tasks) of the sample rows from :data:`TASK_RECIPES`.

    Args:
        interactions: the interaction log (the columns the recipes and the ground truth read).
        tasks: names of :data:`TASK_RECIPES`, one ``labels`` column each.
        source: (B,) the interaction each sample row comes from (a row of ``interactions``).
        negative: (B,) bool, True on sampled negatives (never an interaction).
        like_threshold: the lowest rating that counts as a like.

    Returns:
        float32 labels (0.0 where unobserved) and bool masks (True = observed), both
        (B, n_tasks), and the per-row float columns they were read from, with the synthetic
        ground truth (:data:`~mtlkit.data.batch.GROUND_TRUTH`) where the log has it: NaN on
        sampled negatives.
    """
    per_row = {}
    for name in (C.CLICK, C.PURCHASE, C.RATING, *GROUND_TRUTH):
        if name in interactions.columns:
            values = interactions[name].to_numpy(dtype=float, na_value=np.nan)[source]
            values[negative] = np.nan
            per_row[name] = values
    rows = _RowColumns(
        negative=negative, click=per_row.get(C.CLICK), purchase=per_row.get(C.PURCHASE),
        rating=per_row.get(C.RATING), like_threshold=like_threshold,
    )  # fmt: skip
    labels = np.zeros((len(source), len(tasks)), np.float32)
    label_mask = np.zeros((len(source), len(tasks)), bool)
    for j, name in enumerate(tasks):
        labels[:, j], label_mask[:, j] = TASK_RECIPES[name][2](rows)
    return labels, label_mask, per_row
