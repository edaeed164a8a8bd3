"""Tests for the task recipes: which rows each task labels, and where its label is observed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mtlkit.data import columns as C
from mtlkit.data.builder import build_multitask_data
from mtlkit.data.schema import TaskSpec
from mtlkit.data.tasks import TaskColumn, labels_from_recipes, task_columns, task_spec


def test_recipes_on_sample_rows_with_a_sampled_negative():
    # Two impressions (clicked and bought and rated 5; not clicked) and one sampled negative
    # that copies the first impression's row.
    log = pd.DataFrame(
        {
            C.CLICK: [1.0, 0.0], C.PURCHASE: [1.0, 0.0], C.RATING: [5.0, np.nan],
            C.TRUE_CVR: [0.3, 0.1],
        }
    )  # fmt: skip
    tasks = (C.CLICK, C.PURCHASE, C.CONVERSION, C.RATING_TASK, C.LIKE)
    labels, mask, per_row = labels_from_recipes(
        log, tasks, source=np.array([0, 0, 1]), negative=np.array([False, True, False]), like_threshold=4
    )
    assert labels.dtype == np.float32 and mask.dtype == bool and labels.shape == (3, len(tasks))
    np.testing.assert_array_equal(labels[:, 0], [1, 0, 0])  # click; 0 on the negative
    np.testing.assert_array_equal(mask[:, 0], [True, True, True])
    np.testing.assert_array_equal(mask[:, 1], [True, False, True])  # purchase: every impression
    np.testing.assert_array_equal(mask[:, 2], [True, False, False])  # conversion: clicked only
    np.testing.assert_array_equal(mask[:, 3], [True, False, False])  # rating: where rated
    np.testing.assert_array_equal(labels[:, 3], [5, 0, 0])
    np.testing.assert_array_equal(labels[:, 4], [1, 0, 0])  # like: 5 >= 4
    np.testing.assert_array_equal(per_row[C.TRUE_CVR], [0.3, np.nan, 0.1])  # NaN on the negative


def test_funnel_labels_follow_the_impressions(world, funnel_data):
    d = world.interactions
    key = dict(zip(zip(d[C.USER_ID], d[C.ITEM_ID], d[C.TIMESTAMP]), range(len(d))))
    raw_user = {index: raw for raw, index in funnel_data.user_index.items()}
    raw_item = {index: raw for raw, index in funnel_data.item_index.items()}
    click, purchase, rating = d[C.CLICK].to_numpy(), d[C.PURCHASE].to_numpy(), d[C.RATING].to_numpy()
    n_rows = 0
    for samples in funnel_data.splits.values():
        columns = (samples["user"].tolist(), samples["item_content"].tolist(), samples["timestamp"].tolist())
        rows = np.array([key[(raw_user[u], raw_item[i], t)] for u, i, t in zip(*columns)])
        n_rows += len(rows)
        labels, mask = samples["labels"].numpy(), samples["label_mask"].numpy()
        np.testing.assert_array_equal(labels[:, 0], click[rows])
        assert mask[:, 0].all()
        # purchase = click AND purchase over the entire impression space (CTCVR)
        np.testing.assert_array_equal(labels[:, 1], (click[rows] == 1) & (purchase[rows] == 1))
        assert mask[:, 1].all()
        # conversion = purchase given click, observed on clicked impressions only
        np.testing.assert_array_equal(mask[:, 2], click[rows] == 1)
        np.testing.assert_array_equal(labels[mask[:, 2], 2], purchase[rows][mask[:, 2]])
        # rating only after a purchase
        np.testing.assert_array_equal(mask[:, 3], purchase[rows] == 1)
        np.testing.assert_array_equal(labels[mask[:, 3], 3], rating[rows][mask[:, 3]])
        truth = d[C.TRUE_PURCHASE_PROB].to_numpy()[rows]
        np.testing.assert_allclose(samples["true_purchase_prob"].numpy(), truth, rtol=1e-6)
    assert n_rows == len(d)  # every impression exactly once, no sampled negatives


def test_click_like_is_the_entire_space_twin_of_like():
    # User 1 leaves item 11 unrated (NaN); user 3 (two ratings) stays in train, so items 14 and
    # 15 are training items users 1 and 2 never rated: their sampled negatives.
    interactions = pd.DataFrame(
        {
            C.USER_ID: [1, 1, 1, 1, 2, 2, 2, 3, 3],
            C.ITEM_ID: [10, 11, 12, 13, 10, 12, 11, 14, 15],
            C.RATING: [5, np.nan, 2, 4, 4, 1, 5, 3, 4],
            C.TIMESTAMP: [1, 2, 3, 4, 5, 6, 7, 8, 9],
        }
    )
    data = build_multitask_data(
        interactions, tasks=(C.CLICK, C.LIKE, C.CLICK_LIKE), split="leave-last-out", seq_len=2, n_negatives=1,
    )  # fmt: skip
    assert data.schema.task_kinds[C.CLICK_LIKE] == "binary"
    click_like = {1: 1.0, 2: 0.0, 3: 0.0, 4: 1.0, 5: 1.0, 6: 0.0, 7: 1.0, 8: 0.0, 9: 1.0}  # by timestamp
    n_negatives = 0
    for samples in data.splits.values():
        labels, mask = samples["labels"], samples["label_mask"]
        positive = labels[:, 0] == 1
        n_negatives += int((~positive).sum())
        assert mask[:, 2].all()  # observed on every row, sampled negatives included
        assert (labels[~positive, 2] == 0).all()
        expected = [click_like[t] for t in samples["timestamp"][positive].tolist()]
        assert labels[positive, 2].tolist() == expected
        # like: the conditional twin, observed on rated real rows only
        rated = positive & (samples["timestamp"] != 2)
        assert mask[:, 1].tolist() == rated.tolist()
        assert labels[rated, 1].tolist() == labels[rated, 2].tolist()
    assert n_negatives == len(interactions)  # one sampled negative per rating


# ---------------------------------------------------------------------------------------------
# TaskColumn: tasks declared on a log's own columns
# ---------------------------------------------------------------------------------------------


def test_task_columns_label_and_observe_by_their_space():
    # Four impressions (clicked + liked, clicked + like not logged, not clicked, click not
    # logged) and a sampled negative copying the first one.
    log = pd.DataFrame(
        {"is_click": [1, 1, 0, np.nan], "is_like": [1, np.nan, 0, 0], "watch": [9.0, 0.0, np.nan, 3.0]}
    )
    tasks = (
        TaskColumn("is_click", "binary"),
        TaskColumn("is_like", "binary", observed="where:is_click"),
        TaskColumn("is_like", "binary", observed="entire:is_click", name="click_like"),
        TaskColumn("watch", "regression", transform="log1p"),
        TaskColumn("watch", "regression", observed="where:is_click", name="watch_after_click"),
    )
    labels, mask, _ = labels_from_recipes(
        log, tasks, source=np.array([0, 1, 2, 3, 0]), negative=np.array([False] * 4 + [True]), like_threshold=4
    )
    np.testing.assert_array_equal(mask[:, 0], [True, True, True, False, True])  # NaN click: not logged
    np.testing.assert_array_equal(labels[:, 0], [1, 1, 0, 0, 0])  # the negative reads 0
    np.testing.assert_array_equal(mask[:, 1], [True, False, False, False, False])  # like given click
    np.testing.assert_array_equal(mask[:, 2], [True, False, True, False, True])  # click AND like
    np.testing.assert_array_equal(labels[:, 2], [1, 0, 0, 0, 0])
    np.testing.assert_array_equal(mask[:, 3], [True, True, False, True, False])  # regression: NaN on negatives
    np.testing.assert_allclose(labels[:, 3], np.log1p([9.0, 0.0, 0.0, 3.0, 0.0]) * mask[:, 3], rtol=1e-6)
    np.testing.assert_array_equal(mask[:, 4], [True, True, False, False, False])
    assert labels.dtype == np.float32 and not labels[~mask].any()


def test_task_column_spellings_round_trip():
    like = TaskColumn.parse("is_like:binary:where=is_click")
    assert like == TaskColumn("is_like", "binary", observed="where:is_click")
    assert like.spec() == {"kind": "binary", "observed": "where:is_click"} and like.condition == "is_click"
    pair = TaskColumn.parse("is_like:binary:entire=is_click:name=click_like")
    assert (pair.name, pair.column, pair.space) == ("click_like", "is_like", "entire")
    watch = TaskColumn.parse("play_time_ms:regression:log1p")
    assert watch.transform == "log1p" and watch.spec() == {"kind": "regression", "transform": "log1p"}
    assert TaskColumn.parse("is_click:binary").spec() == "binary"
    declared = (TaskColumn.parse("is_click:binary"), like, pair, watch)
    assert task_columns({task.name: task.spec() for task in declared}) == declared  # config.json and back
    assert task_columns(["is_click:binary", like]) == declared[:2]
    assert task_spec(pair) == TaskSpec("click_like", "binary") and task_spec(C.RATING_TASK).kind == "regression"


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: TaskColumn.parse("is_click"), "COLUMN:KIND"),
        (lambda: TaskColumn.parse("is_click:bool"), "kind must be one of"),
        (lambda: TaskColumn.parse("is_click:binary:log1p"), "transform needs a regression task"),
        (lambda: TaskColumn.parse("watch:regression:entire=is_click"), "needs a binary task"),
        (lambda: TaskColumn.parse("is_like:binary:when=is_click"), "unknown option 'when=is_click'"),
        (lambda: TaskColumn("is_like", "binary", observed="where:is_like"), "another column"),
        (lambda: TaskColumn("is_like", "binary", observed="after:is_click"), "observed must be"),
        (lambda: TaskColumn("watch", "regression", transform="sqrt"), "transform must be one of"),
        (lambda: task_columns({}), "at least one task"),
        (lambda: task_columns(["a:binary", "a:regression"]), "each name once"),
        (lambda: task_columns({"a": {"kind": "binary", "space": "all"}}), "optionally 'column'"),
        (lambda: task_columns("a:binary"), "mapping name -> kind"),
    ],
)
def test_task_column_errors_are_one_line(make, words):
    with pytest.raises(ValueError, match=words) as error:
        make()
    assert "\n" not in str(error.value)
