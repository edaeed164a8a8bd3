"""A practitioner's own interaction log, as tests build it: a short-video feed with several
feedback columns under the names such a log would use (not mtlkit's), plus user and item
tables.

The click probability depends on a latent user taste and item topic, so a model has
something to learn; likes exist only after a click (NaN elsewhere, "not logged").
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: The command-line declaration of the log's tasks; the API spelling is the same strings.
OWN_TASKS = (
    "is_click:binary",
    "is_like:binary:where=is_click",
    "is_like:binary:entire=is_click:name=click_like",
    "is_follow:binary",
    "play_time_ms:regression:log1p",
)


def make_own_log(
    n_users: int = 40, n_items: int = 30, n_rows: int = 600, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(log, users, videos): the log has uid, video_id, ts (dates as text), is_click,
    is_like, is_follow, play_time_ms and page; users uid, country, age; videos video_id,
    category, duration_s."""
    rng = np.random.default_rng(seed)
    taste = rng.normal(size=n_users)
    topic = rng.normal(size=n_items)
    user = rng.integers(0, n_users, n_rows)
    item = rng.integers(0, n_items, n_rows)
    click = rng.random(n_rows) < 1 / (1 + np.exp(-(taste[user] * topic[item] - 0.5)))
    like = np.where(click, (rng.random(n_rows) < 0.3).astype(float), np.nan)
    seconds = np.sort(rng.integers(0, 30 * 86_400, n_rows))
    log = pd.DataFrame(
        {
            "uid": user + 100,
            "video_id": [f"v{k:03d}" for k in item],
            "ts": (pd.Timestamp("2024-03-01") + pd.to_timedelta(seconds, unit="s")).strftime("%Y-%m-%d %H:%M:%S"),
            "is_click": click.astype(int),
            "is_like": like,
            "is_follow": (rng.random(n_rows) < 0.05).astype(int),
            "play_time_ms": np.where(click, rng.exponential(30_000, n_rows), rng.exponential(1_500, n_rows)).round(),
            "page": rng.choice(["home", "follow", "nearby"], n_rows),
        }
    )
    users = pd.DataFrame(
        {"uid": np.arange(n_users) + 100, "country": rng.choice(["br", "de", "jp"], n_users),
         "age": rng.integers(15, 70, n_users)}
    )  # fmt: skip
    videos = pd.DataFrame(
        {"video_id": [f"v{k:03d}" for k in range(n_items)], "category": rng.choice(["music", "food", "game"], n_items),
         "duration_s": rng.integers(5, 300, n_items).astype(float)}
    )  # fmt: skip
    return log, users, videos
