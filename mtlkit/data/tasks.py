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

Any other log declares its tasks with :class:`TaskColumn`: one label column each, binary or
regression, observed on every row (``"all"``), only where another binary column is 1
(``"where:<column>"``, the conditional space of a post-click task) or, for a binary task, on
every row as the AND of the two columns (``"entire:<column>"``, ESMM's entire space); a
regression target may be transformed (``"log1p"``). Any number of them: the same columns can
feed a conditional task and its entire-space twin, as ``like`` and ``click_like`` above.

The entire-space labels follow ESMM: pCTCVR = pCTR · pCVR, with CTR and CTCVR both observed on
every impression (X. Ma, L. Zhao, G. Huang, Z. Wang, Z. Hu, X. Zhu and K. Gai. 2018. Entire
Space Multi-Task Model: An Effective Approach for Estimating Post-Click Conversion Rate.
*SIGIR 2018*). Adding a named task touches this module only: a recipe and its entry in
:data:`TASK_RECIPES`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mtlkit.checks import ArgumentTypeError, check_choice, check_str
from mtlkit.data import columns as C
from mtlkit.data.batch import GROUND_TRUTH
from mtlkit.data.schema import TaskSpec

__all__ = [
    "OBSERVED_SPACES", "TASK_KINDS", "TASK_RECIPES", "TASK_SPELLING", "TASK_TRANSFORMS", "Task", "TaskColumn",
    "labels_from_recipes", "task_columns", "task_spec",
]  # fmt: skip

TASK_KINDS = ("binary", "regression")
#: ``observed`` of a :class:`TaskColumn`: "all", or one of the others followed by ":<column>".
OBSERVED_SPACES = ("all", "where", "entire")
#: Transforms of a regression target: name -> elementwise function.
TASK_TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"log1p": np.log1p}
#: The command-line spelling of a :class:`TaskColumn` (:meth:`TaskColumn.parse`).
TASK_SPELLING = "COLUMN:KIND[:where=OTHER|:entire=OTHER][:log1p][:name=NAME]"


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


@dataclass(frozen=True)
class TaskColumn:
    """A task read from one label column of the log.

    With ``y`` the column, ``x`` the column named in ``observed`` and NaN = not logged:

    =====================  =====================================  ===============================
    ``observed``           label                                  observed (mask True) where
    =====================  =====================================  ===============================
    ``"all"``              y                                      y is logged
    ``"where:x"``          y (e.g. like given click: a CVR task)  x == 1 and y is logged
    ``"entire:x"``         x AND y (binary only: ESMM's CTCVR)    x == 0, or x == 1 and y logged
    =====================  =====================================  ===============================

    ``"where:x"`` is the post-click space a naive conversion model is trained in;
    ``"entire:x"`` its entire-space twin, which ESMM fits as pCTCVR = pCTR · pCVR over every
    impression (X. Ma et al. 2018, *SIGIR*), so declaring ``x`` and ``"entire:x"`` gives ESMM its
    CTR and CTCVR tasks from the data's own columns. ``transform`` maps a regression target
    before training, e.g. ``"log1p"``: y -> log(1 + y) for a heavy-tailed watch time (its RMSE
    is then on that scale). On a sampled negative (a row that was never shown) every binary
    column reads 0 and every regression column NaN, so a binary task observed on ``"all"`` rows
    is 0 there and the others are masked.

    Args:
        column: the label column.
        kind: ``"binary"`` (0/1) or ``"regression"`` (a number).
        observed: ``"all"``, ``"where:<column>"`` or ``"entire:<column>"`` (another binary
            column of the log).
        transform: None, or a name of :data:`TASK_TRANSFORMS` (regression only).
        name: the task's name (default: ``column``); two tasks may read one column.
    """

    column: str
    kind: str
    observed: str = "all"
    transform: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        check_str("column", self.column, what="a label column name")
        check_choice("kind", self.kind, TASK_KINDS)
        space, _, condition = self.observed.partition(":") if isinstance(self.observed, str) else ("", "", "")
        if not (self.observed == "all" or (space in OBSERVED_SPACES[1:] and condition)):
            raise ValueError(f"observed must be 'all', 'where:<column>' or 'entire:<column>', got {self.observed!r}")
        if space == "entire" and self.kind != "binary":
            raise ValueError(f"observed 'entire:...' needs a binary task, got kind {self.kind!r} for {self.column!r}")
        if condition == self.column:
            raise ValueError(f"observed must name another column than {self.column!r}, got {self.observed!r}")
        if self.transform is not None:
            check_choice("transform", self.transform, TASK_TRANSFORMS)
            if self.kind != "regression":
                raise ValueError(
                    f"transform needs a regression task, got {self.transform!r} for binary {self.column!r}"
                )
        if self.name is None:
            object.__setattr__(self, "name", self.column)
        check_str("name", self.name, what="a task name")

    @property
    def space(self) -> str:
        """``"all"``, ``"where"`` or ``"entire"``."""
        return self.observed.partition(":")[0]

    @property
    def condition(self) -> str | None:
        """The column ``observed`` names (None for ``"all"``)."""
        return self.observed.partition(":")[2] or None

    @property
    def columns(self) -> tuple[str, ...]:
        """The log columns the task reads."""
        return (self.column,) if self.condition is None else (self.column, self.condition)

    def spec(self) -> str | dict[str, Any]:
        """The JSON-able form :func:`task_columns` reads back: the kind alone when nothing else
        differs from the defaults, else a dict of the fields that do (``column`` when it is not
        the name)."""
        fields = {"observed": self.observed, "transform": self.transform}
        extra = {key: value for key, value in fields.items() if value != TaskColumn.__dataclass_fields__[key].default}
        if self.column != self.name:
            extra["column"] = self.column
        return {"kind": self.kind, **extra} if extra else self.kind

    @classmethod
    def from_spec(cls, name: str, spec: str | Mapping[str, Any]) -> TaskColumn:
        """The task ``name`` from its :meth:`spec`: a kind, or a mapping with ``kind`` and
        optionally ``column`` (default ``name``), ``observed`` and ``transform``."""
        if isinstance(spec, str):
            return cls(name, spec)
        if not isinstance(spec, Mapping):
            raise ArgumentTypeError(f"tasks[{name!r}] must be a kind or a mapping with 'kind', got {spec!r}")
        unknown = sorted(set(spec) - {"kind", "column", "observed", "transform"})
        if unknown or "kind" not in spec:
            raise ValueError(
                f"tasks[{name!r}] must have 'kind' and optionally 'column', 'observed', 'transform', got {dict(spec)!r}"
            )
        return cls(spec.get("column", name), spec["kind"], spec.get("observed", "all"), spec.get("transform"), name)

    @classmethod
    def parse(cls, text: str) -> TaskColumn:
        """The command-line spelling ``COLUMN:KIND[:OPTION]...``, options ``where=X``,
        ``entire=X``, ``log1p`` (any name of :data:`TASK_TRANSFORMS`) and ``name=NAME``: e.g.
        ``"is_like:binary:where=is_click"``, ``"play_time_ms:regression:log1p"``."""
        parts = check_str("task", text, what=TASK_SPELLING).split(":")
        if len(parts) < 2:
            raise ValueError(f"task must be {TASK_SPELLING}, got {text!r}")
        column, kind, *options = parts
        fields: dict[str, Any] = {"observed": "all", "transform": None, "name": None}
        for option in options:
            key, equals, value = option.partition("=")
            if not equals and key in TASK_TRANSFORMS:
                fields["transform"] = key
            elif equals and value and key in ("where", "entire"):
                fields["observed"] = f"{key}:{value}"
            elif equals and value and key == "name":
                fields["name"] = value
            else:
                raise ValueError(f"task must be {TASK_SPELLING}, got {text!r} (unknown option {option!r})")
        return cls(column, kind, **fields)


#: A task: a name of :data:`TASK_RECIPES` or a :class:`TaskColumn`.
Task = str | TaskColumn


def task_spec(task: Task) -> TaskSpec:
    """The schema's :class:`~mtlkit.data.schema.TaskSpec` (name, kind) of a task."""
    if isinstance(task, TaskColumn):
        return TaskSpec(task.name, task.kind)
    return TaskSpec(task, TASK_RECIPES[task][0])


def task_columns(tasks: Mapping[str, str | Mapping[str, Any]] | Sequence[TaskColumn | str]) -> tuple[TaskColumn, ...]:
    """Task declarations as :class:`TaskColumn` objects, checked: at least one, names unique.

    Args:
        tasks: a mapping task name -> :meth:`TaskColumn.spec` (JSON-able, e.g.
            ``{"is_click": "binary", "is_like": {"kind": "binary", "observed": "where:is_click"}}``),
            or a sequence of :class:`TaskColumn` objects or their command-line spellings
            (:meth:`TaskColumn.parse`).
    """
    if isinstance(tasks, Mapping):
        parsed = [TaskColumn.from_spec(name, spec) for name, spec in tasks.items()]
    elif isinstance(tasks, Sequence) and not isinstance(tasks, str):
        parsed = [task if isinstance(task, TaskColumn) else TaskColumn.parse(task) for task in tasks]
    else:
        raise ArgumentTypeError(f"tasks must be a mapping name -> kind or a sequence of TaskColumn, got {tasks!r}")
    names = [task.name for task in parsed]
    if not parsed or len(set(names)) != len(names):
        raise ValueError(f"tasks must declare at least one task, each name once, got {names}")
    return tuple(parsed)


def _column_labels(task: TaskColumn, interactions: pd.DataFrame, source: np.ndarray, negative: np.ndarray):
    """(label, mask) of a :class:`TaskColumn` on the sample rows (see its docstring)."""

    def read(column: str, kind: str) -> np.ndarray:
        values = interactions[column].to_numpy(dtype=float, na_value=np.nan)[source]
        values[negative] = 0.0 if kind == "binary" else np.nan  # never shown
        return values

    values = read(task.column, task.kind)
    if task.transform is not None:
        values = TASK_TRANSFORMS[task.transform](values)
    logged = ~np.isnan(values)
    if task.condition is None:
        return np.where(logged, values, 0.0), logged
    condition = read(task.condition, "binary")
    if task.space == "where":
        mask = logged & (condition == 1)
        return np.where(mask, values, 0.0), mask
    mask = (condition == 0) | ((condition == 1) & logged)  # entire space: x AND y
    return (condition == 1) & (values == 1), mask


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
    tasks: Sequence[Task],
    source: np.ndarray,
    negative: np.ndarray,
    like_threshold: float,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Labels and masks (B, n_tasks) of the sample rows, from :data:`TASK_RECIPES` and
    :class:`TaskColumn` declarations.

    Args:
        interactions: the interaction log (the columns the tasks and the ground truth read).
        tasks: names of :data:`TASK_RECIPES` or :class:`TaskColumn` objects, one ``labels``
            column each.
        source: (B,) the interaction each sample row comes from (a row of ``interactions``).
        negative: (B,) bool, True on sampled negatives (never an interaction).
        like_threshold: the lowest rating that counts as a like.

    Returns:
        float32 labels (0.0 where unobserved) and bool masks (True = observed), both
        (B, n_tasks), and the per-row float columns the recipes read, with the synthetic
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
    for j, task in enumerate(tasks):
        if isinstance(task, TaskColumn):
            labels[:, j], label_mask[:, j] = _column_labels(task, interactions, source, negative)
        else:
            labels[:, j], label_mask[:, j] = TASK_RECIPES[task][2](rows)
    return labels, label_mask, per_row
