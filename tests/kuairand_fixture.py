"""A tiny KuaiRand-Pure folder written in the real file format (names, columns, value kinds).

The values are random, but every file has the documented header, the logs hold ints in every
column and a feed's ``is_click`` = 1 rows have longer play times, so the tasks have some signal.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mtlkit.data import kuairand as K

START_MS = 1_649_376_000_000  # 2022-04-08 00:00 UTC
DAY_MS = 86_400_000


def _log(rng: np.random.Generator, n: int, n_users: int, videos: np.ndarray, days: tuple[int, int], rand: int):
    time_ms = START_MS + rng.integers(days[0] * DAY_MS, days[1] * DAY_MS, n)
    stamp = pd.to_datetime(time_ms, unit="ms")
    click = (rng.random(n) < 0.4).astype(int)
    play = np.where(click == 1, rng.exponential(20_000, n), rng.exponential(2_000, n)).astype(int)
    duration = rng.integers(5_000, 120_000, n)
    log = pd.DataFrame(
        {
            "user_id": rng.integers(0, n_users, n),
            "video_id": rng.choice(videos, n),
            "date": stamp.strftime("%Y%m%d").astype(int),
            "hourmin": (stamp.hour * 100 + (stamp.minute // 10) * 10).astype(int),
            "time_ms": time_ms,
            "is_click": click,
            "is_like": (click & (rng.random(n) < 0.2)).astype(int),
            "is_follow": (rng.random(n) < 0.05).astype(int),
            "is_comment": (rng.random(n) < 0.02).astype(int),
            "is_forward": (rng.random(n) < 0.02).astype(int),
            "is_hate": (rng.random(n) < 0.01).astype(int),
            "long_view": (play >= np.minimum(duration, 18_000)).astype(int),
            "play_time_ms": play,
            "duration_ms": duration,
            "profile_stay_time": rng.integers(0, 3, n),
            "comment_stay_time": rng.integers(0, 3, n),
            "is_profile_enter": (rng.random(n) < 0.03).astype(int),
            "is_rand": np.full(n, rand),
            "tab": rng.integers(0, 15, n),
        }
    )
    return log.sort_values(["user_id", "time_ms"], kind="stable").reset_index(drop=True)


def write_kuairand_pure(
    root: Path, *, n_users: int = 30, n_videos: int = 40, rows: tuple[int, int, int] = (240, 90, 120), seed: int = 0
) -> dict[str, K.LogCounts]:
    """Write ``root/KuaiRand-Pure/data/`` (as the archive extracts) with ``rows`` rows in the
    standard logs of 04-08..04-21 and 04-22..05-08 and in the random log; returns the
    :class:`~mtlkit.data.kuairand.LogCounts` of the standard logs together and of the random log."""
    rng = np.random.default_rng(seed)
    folder = root / K.FOLDER / "data"
    folder.mkdir(parents=True, exist_ok=True)
    videos = np.arange(n_videos) * 7 + 3  # re-indexed ids, not 0..n-1
    standard_videos = videos[: n_videos - 5]  # the random log reaches the whole candidate pool
    logs = {
        K.STANDARD_LOGS[0]: _log(rng, rows[0], n_users, standard_videos, (0, 14), 0),
        K.STANDARD_LOGS[1]: _log(rng, rows[1], n_users, standard_videos, (14, 31), 0),
        K.RANDOM_LOG: _log(rng, rows[2], n_users, videos, (14, 31), 1),
    }
    for name, log in logs.items():
        log.to_csv(folder / name, index=False)
    ranges = {
        "follow_user_num_range": ["0", "(0,10]", "(10,50]", "500+"],
        "fans_user_num_range": ["0", "[1,10)", "[10,100)"],
        "friend_user_num_range": ["0", "[1,5)", "[5,30)"],
        "register_days_range": ["15-30", "181-365", "730+"],
    }
    users = pd.DataFrame(
        {
            "user_id": np.arange(n_users),
            "user_active_degree": rng.choice(["high_active", "full_active", "middle_active", "UNKNOWN"], n_users),
            "is_lowactive_period": rng.integers(0, 2, n_users),
            "is_live_streamer": rng.integers(0, 2, n_users),
            "is_video_author": rng.integers(0, 2, n_users),
            "follow_user_num": rng.integers(0, 600, n_users),
            "follow_user_num_range": rng.choice(ranges["follow_user_num_range"], n_users),
            "fans_user_num": rng.integers(0, 100, n_users),
            "fans_user_num_range": rng.choice(ranges["fans_user_num_range"], n_users),
            "friend_user_num": rng.integers(0, 30, n_users),
            "friend_user_num_range": rng.choice(ranges["friend_user_num_range"], n_users),
            "register_days": rng.integers(15, 3000, n_users),
            "register_days_range": rng.choice(ranges["register_days_range"], n_users),
            **{name: rng.integers(0, 3, n_users) for name in K.ONEHOT_FEATURES},
        }
    )
    users.to_csv(folder / K.USER_FEATURES, index=False)
    tags = ["12", "65", "8", "12,65", "3,8,12", None]
    pd.DataFrame(
        {
            "video_id": videos,
            "author_id": rng.integers(0, 8_839_734, n_videos),
            "video_type": rng.choice(["NORMAL", "AD"], n_videos, p=[0.9, 0.1]),
            "upload_dt": rng.choice(["2021-12-01", "2022-03-15"], n_videos),
            "upload_type": rng.choice(["ShortImport", "LongImport", "Web"], n_videos),
            "visible_status": rng.integers(0, 2, n_videos),
            "video_duration": rng.integers(5_000, 120_000, n_videos).astype(float),
            "server_width": rng.choice([720, 1080], n_videos),
            "server_height": rng.choice([1280, 1920], n_videos),
            "music_id": rng.integers(0, 10**9, n_videos),
            "music_type": rng.choice([4, 8, 9], n_videos),
            "tag": [tags[k % len(tags)] for k in range(n_videos)],
        }
    ).to_csv(folder / K.VIDEO_FEATURES, index=False)

    def counts(*names: str) -> K.LogCounts:
        frame = pd.concat([logs[name] for name in names])
        return K.LogCounts(len(frame), frame["user_id"].nunique(), frame["video_id"].nunique())

    return {"standard": counts(*K.STANDARD_LOGS), "random": counts(K.RANDOM_LOG)}
