"""KuaiRand-Pure: read the extracted folder, verify it against its documentation, build tasks.

KuaiRand (C. Gao, S. Li, Y. Zhang, J. Chen, B. Li, W. Lei, P. Jiang and X. He. 2022. KuaiRand:
An Unbiased Sequential Recommendation Dataset with Randomly Exposed Videos. *CIKM 2022*,
https://doi.org/10.1145/3511808.3557624) logs the short-video app Kuaishou: every impression
carries a dozen feedback signals (click, like, follow, comment, forward, hate, long view, play
time, ...). Beside the *standard* exposures, chosen by the app's recommenders, it logs
*random* exposures: videos of the candidate pool inserted at random into the same users'
feeds, so their feedback is free of the recommender's selection. The Pure version keeps the
interactions with the 7,583 videos of that pool.

Files, columns and counts are those of the data set's README
(https://github.com/chongminggao/KuaiRand, also https://kuairand.com). The archive
``KuaiRand-Pure.tar.gz`` is published at https://zenodo.org/records/10439422 without a
checksum beside it, so mtlkit does not download it (it could not verify the bytes): download
and extract it yourself (license CC BY-SA 4.0; mtlkit never ships it) and point ``root`` at the
folder. :func:`load_kuairand_pure` then checks what it can instead: every file and documented
column is there, no log cell is empty (a truncated file), and the logs hold the documented
numbers of rows, users and videos (:data:`DOCUMENTED_COUNTS`).

``video_features_statistic_pure.csv`` is not read: its daily statistics are averaged over the
whole month, test weeks included, so as features they would leak the future.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mtlkit.checks import check_choice
from mtlkit.data.download import data_dir
from mtlkit.data.interactions import load_interactions
from mtlkit.data.tasks import TaskColumn
from mtlkit.data.tensors import MultiTaskData

__all__ = [
    "ARCHIVE_URL", "DOCUMENTED_COUNTS", "KUAIRAND_TASKS", "KuaiRandPure", "LogCounts", "TEST_EXPOSURES",
    "build_kuairand_multitask", "load_kuairand_pure",
]  # fmt: skip

FOLDER = "KuaiRand-Pure"
ARCHIVE_URL = "https://zenodo.org/records/10439422/files/KuaiRand-Pure.tar.gz"
STANDARD_LOGS = ("log_standard_4_08_to_4_21_pure.csv", "log_standard_4_22_to_5_08_pure.csv")
RANDOM_LOG = "log_random_4_22_to_5_08_pure.csv"
USER_FEATURES = "user_features_pure.csv"
VIDEO_FEATURES = "video_features_basic_pure.csv"

LOG_COLUMNS = (
    "user_id", "video_id", "date", "hourmin", "time_ms", "is_click", "is_like", "is_follow", "is_comment",
    "is_forward", "is_hate", "long_view", "play_time_ms", "duration_ms", "profile_stay_time", "comment_stay_time",
    "is_profile_enter", "is_rand", "tab",
)  # fmt: skip
ONEHOT_FEATURES = tuple(f"onehot_feat{k}" for k in range(18))  # encrypted user categories
USER_COLUMNS = (
    "user_id", "user_active_degree", "is_lowactive_period", "is_live_streamer", "is_video_author",
    "follow_user_num", "follow_user_num_range", "fans_user_num", "fans_user_num_range", "friend_user_num",
    "friend_user_num_range", "register_days", "register_days_range", *ONEHOT_FEATURES,
)  # fmt: skip
VIDEO_COLUMNS = (
    "video_id", "author_id", "video_type", "upload_dt", "upload_type", "visible_status", "video_duration",
    "server_width", "server_height", "music_id", "music_type", "tag",
)  # fmt: skip
#: The log's 0/1 signals (the README's "binary feedback signal"s and is_rand).
BINARY_SIGNALS = (
    "is_click", "is_like", "is_follow", "is_comment", "is_forward", "is_hate", "long_view", "is_profile_enter",
    "is_rand",
)  # fmt: skip
FILE_COLUMNS = {
    **{name: LOG_COLUMNS for name in (*STANDARD_LOGS, RANDOM_LOG)},
    USER_FEATURES: USER_COLUMNS,
    VIDEO_FEATURES: VIDEO_COLUMNS,
}

# Model inputs. Users: the documented categories (the raw counts are kept out: their bucketed
# "_range" twins carry them without the heavy tails). Videos: type, upload type, music type,
# duration and the tags (multi-hot). Context: the app page (tab) the impression was shown on.
USER_SPARSE = (
    "user_active_degree", "is_lowactive_period", "is_live_streamer", "is_video_author", "follow_user_num_range",
    "fans_user_num_range", "friend_user_num_range", "register_days_range", *ONEHOT_FEATURES,
)  # fmt: skip
VIDEO_SPARSE = ("video_type", "upload_type", "music_type")
VIDEO_DENSE = ("video_duration", "tag")
CONTEXT_SPARSE = ("tab",)

#: The default tasks: four binary signals on every impression and the watch time (log1p of
#: milliseconds: the play time is heavy-tailed).
KUAIRAND_TASKS: dict[str, Any] = {
    "is_click": "binary",
    "is_like": "binary",
    "is_follow": "binary",
    "long_view": "binary",
    "play_time_ms": {"kind": "regression", "transform": "log1p"},
}

#: ``"standard"``: the standard logs, split in time; ``"random"``: train on the standard log of
#: 04-08..04-21, validate on the standard log of 04-22..05-08, test on the random exposures of
#: the same weeks.
TEST_EXPOSURES = ("standard", "random")
#: The log files of each kind of exposure.
LOG_FILES = {"standard": STANDARD_LOGS, "random": (RANDOM_LOG,)}
SPLIT_COLUMN = "split"


@dataclass(frozen=True)
class LogCounts:
    """Rows, distinct users and distinct videos of a log."""

    rows: int
    users: int
    videos: int

    def __str__(self) -> str:
        return f"{self.rows:,} rows, {self.users:,} users, {self.videos:,} videos"


#: The README's statistics of KuaiRand-Pure: "15 policies" (the two standard logs together)
#: and "Random policy".
DOCUMENTED_COUNTS = {
    "standard": LogCounts(rows=1_436_609, users=27_285, videos=7_551),
    "random": LogCounts(rows=1_186_059, users=27_285, videos=7_583),
}


@dataclass(frozen=True)
class KuaiRandPure:
    """The tables of KuaiRand-Pure, as in the files (``videos.tag`` parsed into a list)."""

    logs: dict[str, pd.DataFrame]  # file name -> log; the random log only when it was read
    users: pd.DataFrame
    videos: pd.DataFrame
    path: Path  # the folder the files were read from

    def counts(self, exposures: str) -> LogCounts:
        """:class:`LogCounts` of the ``"standard"`` logs together or of the ``"random"`` log."""
        frames = [self.logs[name] for name in LOG_FILES[check_choice("exposures", exposures, TEST_EXPOSURES)]]
        ids = {key: pd.concat([frame[key] for frame in frames]) for key in ("user_id", "video_id")}
        return LogCounts(sum(map(len, frames)), ids["user_id"].nunique(), ids["video_id"].nunique())

    def statistics(self) -> dict[str, dict[str, float]]:
        """Per log read (``"standard"``, ``"random"``): its counts, the share of impressions with
        each binary signal = 1 and the mean and median play time in seconds."""
        result = {}
        for exposures, names in LOG_FILES.items():
            if not all(name in self.logs for name in names):
                continue
            log = pd.concat([self.logs[name] for name in names])
            signals = [signal for signal in BINARY_SIGNALS if signal != "is_rand"]
            result[exposures] = {
                **vars(self.counts(exposures)),
                **{f"{signal}_rate": float(log[signal].mean()) for signal in signals},
                "mean_play_seconds": float(log["play_time_ms"].mean() / 1000),
                "median_play_seconds": float(log["play_time_ms"].median() / 1000),
            }
        return result


def _find_folder(base: Path) -> Path:
    """The folder holding the files: ``base/KuaiRand-Pure/data``, ``base/data`` or ``base``."""
    candidates = (base / FOLDER / "data", base / "data", base)
    for folder in candidates:
        if any((folder / name).is_file() for name in FILE_COLUMNS):
            return folder
    looked = ", ".join(str(folder) for folder in candidates)
    raise FileNotFoundError(
        f"KuaiRand-Pure is not in {base} (looked in {looked}): download KuaiRand-Pure.tar.gz from {ARCHIVE_URL} "
        f"(license CC BY-SA 4.0), extract it with `tar -xzf KuaiRand-Pure.tar.gz -C {base}` and pass that folder "
        "as root (--data-root)"
    )


def _read_file(folder: Path, name: str, *, log: bool) -> pd.DataFrame:
    """A CSV of the data set, its documented columns checked; a ``log`` also has no empty cell
    and 0/1 in every :data:`BINARY_SIGNALS` column."""
    path = folder / name
    try:
        table = pd.read_csv(path, low_memory=False)
    except (ValueError, UnicodeDecodeError, OSError) as error:
        raise ValueError(f"could not parse {path}: {' '.join(str(error).split())}") from None
    missing = [column for column in FILE_COLUMNS[name] if column not in table.columns]
    if missing:
        raise ValueError(
            f"{path} lacks the documented column(s) {missing}: it is not the KuaiRand-Pure file or it is damaged"
        )
    if not log:
        return table
    empty = table[list(LOG_COLUMNS)].isna().to_numpy()
    if empty.any():
        row, column = np.argwhere(empty)[0]
        raise ValueError(
            f"{path} has an empty {LOG_COLUMNS[column]!r} at line {row + 2}: the file is truncated or damaged; "
            "extract it again"
        )
    for column in BINARY_SIGNALS:
        bad = ~table[column].isin((0, 1)).to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            value = table[column].iloc[row : row + 1].tolist()[0]  # a Python object: 2, not np.int64(2)
            raise ValueError(f"{path} has {value!r} in the 0/1 column {column!r} at line {row + 2}")
    return table


def _tags(values: pd.Series) -> pd.Series:
    """``"12,65"`` -> ``["12", "65"]``; empty -> ``[]``."""
    return values.map(lambda text: [] if pd.isna(text) else [t.strip() for t in str(text).split(",") if t.strip()])


def load_kuairand_pure(
    root: str | os.PathLike[str] | None = None, *, random_log: bool = True, verify_counts: bool = True
) -> KuaiRandPure:
    """Read KuaiRand-Pure from an extracted folder and verify it.

    Args:
        root: the folder holding ``KuaiRand-Pure/`` (as the archive extracts), or that folder,
            or its ``data/`` folder; None: ``$MTLKIT_DATA_DIR``, else the user cache folder.
        random_log: also read (and verify) ``log_random_4_22_to_5_08_pure.csv``.
        verify_counts: check the logs' rows, users and videos against
            :data:`DOCUMENTED_COUNTS` (False: structure only, e.g. for a sample of the files).

    Returns:
        a :class:`KuaiRandPure`.

    Raises:
        FileNotFoundError: no KuaiRand-Pure files under ``root`` (the message says where to
            download them and where to put them), or some of them missing.
        ValueError: a file that does not parse or lacks a documented column; a log with an
            empty cell (truncated) or a value other than 0/1 in a 0/1 signal; logs with other
            counts than documented. Each names the file.
    """
    folder = _find_folder(data_dir(root))
    log_names = (*STANDARD_LOGS, RANDOM_LOG) if random_log else STANDARD_LOGS
    missing = [name for name in (*log_names, USER_FEATURES, VIDEO_FEATURES) if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{folder} holds part of KuaiRand-Pure but lacks {', '.join(missing)}: extract KuaiRand-Pure.tar.gz "
            f"({ARCHIVE_URL}) again"
        )
    logs = {name: _read_file(folder, name, log=True) for name in log_names}
    videos = _read_file(folder, VIDEO_FEATURES, log=False)
    videos["tag"] = _tags(videos["tag"])
    kuairand = KuaiRandPure(logs=logs, users=_read_file(folder, USER_FEATURES, log=False), videos=videos, path=folder)
    if verify_counts:
        for exposures in ("standard", "random") if random_log else ("standard",):
            found, documented = kuairand.counts(exposures), DOCUMENTED_COUNTS[exposures]
            if found != documented:
                files = ", ".join(LOG_FILES[exposures])
                raise ValueError(
                    f"{files} in {folder} hold {found}; KuaiRand-Pure documents {documented}: the folder holds a "
                    "partial or another copy (extract the archive again, or pass verify_counts=False to use it as "
                    "it is)"
                )
    return kuairand


def build_kuairand_multitask(
    kuairand: KuaiRandPure,
    *,
    tasks: Mapping[str, Any] | Sequence[TaskColumn | str] | None = None,
    test_exposures: str = "standard",
    seq_len: int = 20,
    split_fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> MultiTaskData:
    """Multi-task samples of KuaiRand-Pure, through :func:`~mtlkit.data.interactions.load_interactions`.

    One sample per impression (no sampled negatives: the unclicked impressions are the
    negatives); the behaviour sequence holds the clicked videos (``is_click`` = 1). Features:
    :data:`USER_SPARSE`, :data:`VIDEO_SPARSE`, :data:`VIDEO_DENSE` and the page ``tab``.

    Args:
        kuairand: the tables (:func:`load_kuairand_pure`; with the random log for
            ``test_exposures="random"``).
        tasks: as ``load_interactions`` reads them; None: :data:`KUAIRAND_TASKS`.
        test_exposures: ``"standard"`` — the two standard logs with a temporal split at the
            ``split_fractions`` quantiles of time; ``"random"`` — train on
            ``log_standard_4_08_to_4_21``, validate on ``log_standard_4_22_to_5_08`` and test on
            ``log_random_4_22_to_5_08``: valid and test cover the same two weeks, one exposed by
            the recommender and one at random, so their gap measures the exposure bias.
        seq_len, seed: as in ``load_interactions``.
    """
    check_choice("test_exposures", test_exposures, TEST_EXPOSURES)
    if test_exposures == "standard":
        log, split_column = pd.concat([kuairand.logs[name] for name in STANDARD_LOGS], ignore_index=True), None
    else:
        if RANDOM_LOG not in kuairand.logs:
            raise ValueError("test_exposures='random' needs the random log: load_kuairand_pure(..., random_log=True)")
        parts = zip((*STANDARD_LOGS, RANDOM_LOG), ("train", "valid", "test"))
        logs = [kuairand.logs[name].assign(**{SPLIT_COLUMN: split}) for name, split in parts]
        log = pd.concat(logs, ignore_index=True)
        split_column = SPLIT_COLUMN
    data = load_interactions(
        log, user="user_id", item="video_id", time="time_ms", tasks=KUAIRAND_TASKS if tasks is None else tasks,
        user_features=kuairand.users, item_features=kuairand.videos, user_sparse=USER_SPARSE, user_dense=(),
        item_sparse=VIDEO_SPARSE, item_dense=VIDEO_DENSE, context_sparse=CONTEXT_SPARSE, split="temporal",
        split_fractions=split_fractions, split_column=split_column, seq_len=seq_len, duplicates="keep", seed=seed,
    )  # fmt: skip
    data.info.update(source=str(kuairand.path), test_exposures=test_exposures)
    return data
