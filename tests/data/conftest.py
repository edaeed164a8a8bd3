"""Fixtures shared by the data tests: download spies, small sample sets and a frozen-summary check."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import torch

from mtlkit.data import columns as C
from mtlkit.data import download
from mtlkit.data.builder import build_multitask_data
from mtlkit.data.synthetic import make_recsys_funnel
from mtlkit.data.tensors import MultiTaskData


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every URL that ``download.fetch`` actually downloads from."""
    seen: list[str] = []
    real = download._downloader_for

    def spy(url: str):
        downloader = real(url)

        def recording(*args, **kwargs):
            seen.append(url)
            return downloader(*args, **kwargs)

        return recording

    monkeypatch.setattr(download, "_downloader_for", spy)
    return seen


def _ratings(seed: int = 0, n_users: int = 40, n_items: int = 80):
    """A positive-only log (MovieLens-like) with many timestamp ties, plus user/item tables."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(1, n_users + 1):
        k = int(rng.integers(4, 20))
        for i in rng.choice(np.arange(1, n_items + 1), k, replace=False):
            rows.append((u, int(i), int(rng.integers(1, 6)), int(1000 + rng.integers(0, 30))))
    ratings = pd.DataFrame(rows, columns=[C.USER_ID, C.ITEM_ID, C.RATING, C.TIMESTAMP])
    ratings = ratings.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # file order != time
    users = pd.DataFrame(
        {
            C.USER_ID: np.arange(1, n_users + 1),
            C.GENDER: rng.choice(["M", "F"], n_users),
            C.AGE: rng.integers(18, 70, n_users),
        }
    )
    genres = ["Action", "Comedy", "Drama", "Horror"]
    items = pd.DataFrame(
        {
            C.ITEM_ID: np.arange(1, n_items + 1),
            C.TITLE: [f"movie {i}" for i in range(1, n_items + 1)],
            C.YEAR: rng.integers(1950, 2000, n_items),
            C.GENRES: [list(rng.choice(genres, rng.integers(1, 3), replace=False)) for _ in range(n_items)],
        }
    )
    return ratings, users, items


@pytest.fixture(scope="session")
def ratings():
    """The positive-only log, users and items of :func:`_ratings`."""
    return _ratings()


@pytest.fixture(scope="session")
def ratings_data(ratings):
    """Leave-last-out samples of ``ratings``: 2 sampled negatives per training positive, 3 per evaluation one."""
    interactions, users, items = ratings
    return build_multitask_data(
        interactions, users, items, tasks=(C.CLICK, C.LIKE, C.RATING_TASK), split="leave-last-out",
        seq_len=6, n_negatives=2, n_eval_negatives=3, seed=1,
    )  # fmt: skip


@pytest.fixture(scope="session")
def world():
    """A small synthetic funnel: impressions with clicks, purchases, ratings and ground truth."""
    return make_recsys_funnel(120, 60, n_impressions=3_000, seed=3)


@pytest.fixture(scope="session")
def funnel_data(world):
    """Temporal-split samples of ``world`` with four tasks and no sampled negatives."""
    return build_multitask_data(
        world.interactions, world.users, world.items,
        tasks=(C.CLICK, C.PURCHASE, C.CONVERSION, C.RATING_TASK), split="temporal", seq_len=5, seed=0,
    )  # fmt: skip


# key -> (dtype, shape, position-weighted sum) over train, valid and test in that order
Fingerprint = dict[str, tuple[str, tuple[int, ...], float]]


@pytest.fixture(scope="session")
def check_fingerprint() -> Callable[[MultiTaskData, Fingerprint, str], None]:
    """A check that ``data`` has frozen tensors and schema.

    Per key, the tensors of the three splits are concatenated and summarised by dtype, shape
    and sum_i i·x_i over the flattened values (i = 1, 2, ...), so a changed value, row order,
    dtype or shape moves the summary; the schema is compared by the sha256 of its JSON.
    """

    def check(data: MultiTaskData, expected: Fingerprint, schema_sha256: str) -> None:
        assert list(data.train.keys()) == list(expected)
        for key, (dtype, shape, weighted_sum) in expected.items():
            values = torch.cat([split[key] for split in data.splits.values()])
            assert (str(values.dtype).removeprefix("torch."), tuple(values.shape)) == (dtype, shape), key
            flat = values.reshape(-1).double()
            position = torch.arange(1, flat.numel() + 1, dtype=torch.float64)
            assert float((flat * position).sum()) == pytest.approx(weighted_sum, rel=1e-6, abs=1e-9), key
        schema = json.dumps(data.schema.to_dict(), sort_keys=True).encode()
        assert hashlib.sha256(schema).hexdigest() == schema_sha256

    return check
