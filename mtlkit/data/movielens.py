"""MovieLens 100K and 1M: download once, verify, cache, and parse into pandas DataFrames.

MovieLens (Harper & Konstan, "The MovieLens Datasets: History and Context", ACM TiiS 2015)
is the standard small real data set for recommender systems: explicit 1–5 star ratings with
timestamps, movie titles and genres, and user demographics. Its license forbids
redistribution, so mtlkit never ships it: :func:`load_movielens` downloads the official
GroupLens archive at run time (see :mod:`mtlkit.data.download` for the cache folder, the
checksum and the URL fallback), or reads files you already have.

Tables returned (column names from :mod:`mtlkit.data.columns`):

``ratings`` — one row per rating, in file order
    ``user_id`` int64, ``item_id`` int64, ``rating`` int64 (1..5),
    ``timestamp`` int64 (seconds since 1970-01-01 UTC)
``items`` — one row per movie, sorted by ``item_id``
    ``item_id`` int64, ``title`` str (as in the file, e.g. ``"Toy Story (1995)"``),
    ``year`` Int64 (nullable; the year in the title, else the release date's year),
    ``genres`` object (a list of genre names, in the data set's genre order)
``users`` — one row per user, sorted by ``user_id``
    ``user_id`` int64, ``gender`` str (``"M"``/``"F"``), ``age`` int64, ``occupation`` str,
    ``zip`` str

Two differences between the variants are kept, because they are in the data: in 1M ``age``
is an age-group code (1: under 18, 18: 18–24, 25: 25–34, 35: 35–44, 45: 45–49, 50: 50–55,
56: 56+) rather than an age, and 100K has an ``"unknown"`` genre (item 267) that 1M lacks.
1M's occupation codes are mapped to the names its README gives. Multi-hot genres:
:meth:`MovieLens.genre_multi_hot`.
"""

from __future__ import annotations

import csv
import io
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mtlkit.data.columns import (
    AGE,
    GENDER,
    GENRES,
    ITEM_ID,
    LIKE_MIN_RATING,
    OCCUPATION,
    RATING,
    TIMESTAMP,
    TITLE,
    USER_ID,
    YEAR,
    ZIP,
)
from mtlkit.data.download import data_dir, extract_zip, fetch

__all__ = ["MOVIELENS", "MovieLens", "MovieLensSource", "load_movielens"]


@dataclass(frozen=True)
class MovieLensSource:
    """Where a MovieLens variant comes from and which files its archive must hold."""

    archive: str  # file name of the zip in the cache folder
    folder: str  # folder inside the zip (and in the cache folder once extracted)
    md5: str  # published by GroupLens beside the archive
    urls: tuple[str, ...]  # tried in order; the official one first
    files: tuple[str, ...]  # files the parser reads


MOVIELENS: dict[str, MovieLensSource] = {
    "100k": MovieLensSource(
        archive="ml-100k.zip",
        folder="ml-100k",
        md5="0e33842e24a9c977be4e0107933c0723",
        urls=("https://files.grouplens.org/datasets/movielens/ml-100k.zip",),
        files=("u.data", "u.item", "u.user", "u.genre"),
    ),
    "1m": MovieLensSource(
        archive="ml-1m.zip",
        folder="ml-1m",
        md5="c4d9eecfca2ab87c1945afe126590906",
        urls=("https://files.grouplens.org/datasets/movielens/ml-1m.zip",),
        files=("ratings.dat", "movies.dat", "users.dat"),
    ),
}

# ml-1m/README: "Occupation is chosen from the following choices".
OCCUPATIONS_1M = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
)  # fmt: skip

# ml-1m/README: the 18 genres, in this order.
GENRES_1M = (
    "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)  # fmt: skip

RATING_COLUMNS = (USER_ID, ITEM_ID, RATING, TIMESTAMP)
_TITLE_YEAR = re.compile(r"\((\d{4})\)\s*$")  # "Toy Story (1995)" -> 1995


@dataclass(frozen=True)
class MovieLens:
    """A parsed MovieLens variant: three DataFrames (columns in the module docstring)."""

    variant: str
    ratings: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    genre_names: tuple[str, ...]
    path: Path  # the folder the files were read from

    def genre_multi_hot(self) -> pd.DataFrame:
        """Multi-hot genres: int8 (n_items, n_genres), index ``item_id``, one column per genre."""
        column = {name: j for j, name in enumerate(self.genre_names)}
        flags = np.zeros((len(self.items), len(self.genre_names)), dtype=np.int8)
        for row, genres in enumerate(self.items[GENRES]):
            flags[row, [column[name] for name in genres]] = 1
        return pd.DataFrame(
            flags, index=pd.Index(self.items[ITEM_ID], name=ITEM_ID), columns=list(self.genre_names)
        )

    def statistics(self) -> dict[str, float]:
        """Counts and rates for a dataset card.

        density = ratings / (users · items); like_rate = share of ratings ≥ 4 (the "like" task).
        """
        per_user = self.ratings.groupby(USER_ID).size()
        n_users, n_items, n_ratings = len(self.users), len(self.items), len(self.ratings)
        return {
            "users": n_users,
            "items": n_items,
            "ratings": n_ratings,
            "density": n_ratings / (n_users * n_items),
            "like_rate": float((self.ratings[RATING] >= LIKE_MIN_RATING).mean()),
            "mean_rating": float(self.ratings[RATING].mean()),
            "mean_ratings_per_user": float(per_user.mean()),
            "min_ratings_per_user": int(per_user.min()),
            "max_ratings_per_user": int(per_user.max()),
        }


def load_movielens(
    variant: str = "100k",
    root: str | os.PathLike[str] | None = None,
    download: bool = True,
    urls: Sequence[str] | None = None,
) -> MovieLens:
    """Load MovieLens 100K or 1M, downloading the official archive once if needed.

    Looks, in order, for the extracted files in ``<root>/ml-100k/`` (or ``ml-1m/``), then in
    ``<root>`` itself (so ``root`` may point straight at an extracted folder), then for the
    archive ``<root>/ml-100k.zip`` (checked against its MD5 and extracted atomically), and only
    then downloads the archive from ``urls``. ``root`` defaults to ``$MTLKIT_DATA_DIR``, else
    the user cache folder (``~/.cache/mtlkit`` on Linux).

    Args:
        variant: ``"100k"`` or ``"1m"`` (``"ml-100k"`` and upper case accepted too).
        root: the cache folder, or a folder that directly holds the extracted files.
        download: if False, never touch the network; the files or the archive must be there.
        urls: sources tried in order, each checked against the published MD5. Default: the
            official GroupLens URL, ``MOVIELENS[variant].urls``. Pass your own list to add
            mirrors (e.g. the official URL followed by a mirror, or a ``file://`` copy).

    Returns:
        a :class:`MovieLens` with ``ratings``, ``items``, ``users`` (see the module docstring).

    Raises:
        ValueError: unknown ``variant``; a file that does not parse; a corrupt archive.
        FileNotFoundError: ``download=False`` with nothing local; an extracted folder that
            lacks a file.
        mtlkit.data.download.DownloadError: every URL failed (the message says how to
            download by hand); ``ChecksumError`` (also a ValueError) when the checksums differ.
    """
    if not isinstance(variant, str):
        raise TypeError(f"variant must be a str ('100k' or '1m'), got {variant!r}")
    key = variant.lower().removeprefix("ml-")
    if key not in MOVIELENS:
        raise ValueError(f"variant must be one of {sorted(MOVIELENS)}, got {variant!r}")
    if urls is not None and (isinstance(urls, str) or not isinstance(urls, Sequence)):
        raise TypeError(f"urls must be a sequence of URL strings or None, got {urls!r}")
    source = MOVIELENS[key]
    base = data_dir(root)

    folder = _find_extracted(base, source)
    if folder is None:
        hint = f"Or put the extracted files in {base / source.folder}."
        urls = source.urls if urls is None else urls
        archive = fetch(
            source.archive, urls, f"md5:{source.md5}", base, download=download, hint=hint
        )
        folder = extract_zip(archive, base, source.folder, required=source.files)
    return MovieLens(key, *_PARSERS[key](folder), path=folder)


def _find_extracted(base: Path, source: MovieLensSource) -> Path | None:
    """The folder holding the extracted files, or None if there is none.

    A folder that holds some but not all of the files is an error (not silently replaced).
    """
    for folder in (base / source.folder, base):
        present = [name for name in source.files if (folder / name).is_file()]
        if len(present) == len(source.files):
            return folder
        if present:
            missing = sorted(set(source.files) - set(present))
            raise FileNotFoundError(
                f"{folder} holds {', '.join(present)} but lacks {', '.join(missing)}; restore "
                f"the missing file(s) or delete the folder so that {source.archive} is "
                "extracted again"
            )
    return None


def _read_table(
    path: Path, sep: str, names: Sequence[str], *, text: str | None = None, **kwargs
) -> pd.DataFrame:
    """``pd.read_csv`` for MovieLens files (no header, no quoting); errors name the file.

    Every line must have exactly ``len(names)`` fields. ``text``: the file's content, if
    already read (and rewritten) by the caller.
    """
    source = io.StringIO(text) if text is not None else path
    try:
        with warnings.catch_warnings():
            # pandas only warns when every line has more fields than names: make it an error.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            table = pd.read_csv(source, sep=sep, names=list(names), header=None, index_col=False,
                                quoting=csv.QUOTE_NONE, **kwargs)  # fmt: skip
    except (ValueError, UnicodeDecodeError, pd.errors.ParserWarning) as err:
        raise ValueError(f"could not parse {path}: {err}") from err
    short = table.iloc[:, -1].isna().to_numpy()
    if short.any():
        line = int(np.flatnonzero(short)[0]) + 1
        raise ValueError(f"could not parse {path}: record {line} has < {len(names)} fields")
    return table


def _read_double_colon(path: Path, names: Sequence[str], **kwargs) -> pd.DataFrame:
    """ml-1m files use the two-character separator ``::``; map it to a tab for the C parser."""
    text = path.read_text(encoding="latin-1").replace("::", "\t")
    return _read_table(path, "\t", names, text=text, **kwargs)


def _year(titles: pd.Series, fallback: pd.Series | None = None) -> pd.Series:
    """The year in parentheses at the end of each title; else ``fallback``'s year."""
    year = pd.to_numeric(titles.str.extract(_TITLE_YEAR, expand=False), errors="coerce")
    if fallback is not None:
        year = year.fillna(pd.to_numeric(fallback.str[-4:], errors="coerce"))
    return year.astype("Int64")


def _parse_100k(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, tuple[str, ...]]:
    """u.data (tab), u.item / u.user / u.genre (``|``, latin-1)."""
    ratings = _read_table(folder / "u.data", "\t", RATING_COLUMNS, dtype="int64")

    genre_table = _read_table(folder / "u.genre", "|", ["name", "index"], encoding="latin-1")
    genre_names = tuple(genre_table.sort_values("index")["name"].astype(str))

    item_columns = [ITEM_ID, TITLE, "release_date", "video_release_date", "imdb_url", *genre_names]
    raw = _read_table(
        folder / "u.item", "|", item_columns, encoding="latin-1",
        dtype={TITLE: str, "release_date": str, "video_release_date": str, "imdb_url": str},
    )  # fmt: skip
    flags = raw[list(genre_names)].to_numpy()
    if not np.isin(flags, (0, 1)).all():
        raise ValueError(f"could not parse {folder / 'u.item'}: genre flags must be 0 or 1")
    items = pd.DataFrame(
        {
            ITEM_ID: raw[ITEM_ID].astype("int64"),
            TITLE: raw[TITLE].astype(str),
            YEAR: _year(raw[TITLE], fallback=raw["release_date"]),
            GENRES: [[genre_names[j] for j in np.flatnonzero(row)] for row in flags],
        }
    )

    raw_users = _read_table(
        folder / "u.user", "|", [USER_ID, AGE, GENDER, OCCUPATION, ZIP], encoding="latin-1",
        dtype={GENDER: str, OCCUPATION: str, ZIP: str},
    )  # fmt: skip
    users = raw_users[[USER_ID, GENDER, AGE, OCCUPATION, ZIP]]
    users = users.astype({USER_ID: "int64", AGE: "int64"})
    return ratings, _sorted(items, ITEM_ID), _sorted(users, USER_ID), genre_names


def _parse_1m(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, tuple[str, ...]]:
    """ratings.dat, movies.dat, users.dat: ``::``-separated, latin-1; genres ``Genre|Genre``."""
    ratings = _read_double_colon(folder / "ratings.dat", RATING_COLUMNS, dtype="int64")

    raw = _read_double_colon(
        folder / "movies.dat", [ITEM_ID, TITLE, GENRES], dtype={TITLE: str, GENRES: str}
    )
    genres = [value.split("|") if value else [] for value in raw[GENRES].fillna("")]
    unknown = sorted({name for names in genres for name in names} - set(GENRES_1M))
    if unknown:
        raise ValueError(f"could not parse {folder / 'movies.dat'}: unknown genres {unknown}")
    items = pd.DataFrame(
        {
            ITEM_ID: raw[ITEM_ID].astype("int64"),
            TITLE: raw[TITLE].astype(str),
            YEAR: _year(raw[TITLE]),
            GENRES: genres,
        }
    )

    raw_users = _read_double_colon(
        folder / "users.dat", [USER_ID, GENDER, AGE, OCCUPATION, ZIP], dtype={GENDER: str, ZIP: str}
    )
    codes = raw_users[OCCUPATION].astype("int64")
    if not codes.between(0, len(OCCUPATIONS_1M) - 1).all():
        raise ValueError(f"could not parse {folder / 'users.dat'}: occupation codes must be 0..20")
    users = raw_users.astype({USER_ID: "int64", AGE: "int64"})
    users[OCCUPATION] = pd.Series(np.asarray(OCCUPATIONS_1M, dtype=object)[codes.to_numpy()],
                                  index=users.index, dtype=str)  # fmt: skip
    return ratings, _sorted(items, ITEM_ID), _sorted(users, USER_ID), GENRES_1M


def _sorted(table: pd.DataFrame, key: str) -> pd.DataFrame:
    return table.sort_values(key, kind="stable").reset_index(drop=True)


_PARSERS = {"100k": _parse_100k, "1m": _parse_1m}
