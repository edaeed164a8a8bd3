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

Every file is checked when read, against the schema its README documents (:data:`U_DATA`,
:data:`U_USER`, :func:`u_item`, ... :data:`RATINGS_DAT`; see :mod:`mtlkit.data.validation`):
ratings whole stars 1..5, timestamps non-negative, ids positive (1M: within the README's
ranges), each (user, movie) rated once, every rated user and movie present in the users and
movies files, genre flags 0/1 (1M: genre names from its list), gender M/F, ages 1..120 (1M:
one of the seven age-group codes), occupations from ``u.occupation`` where the folder has it
(1M: codes 0..20), ids unique, titles and zip codes non-empty. The first bad record fails
with one line: ``ml-100k/u.data line 17: rating must be an integer in 1..5, got 7``.
"""

from __future__ import annotations

import csv
import io
import os
import re
import warnings
from collections.abc import Collection, Mapping, Sequence
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
from mtlkit.data.validation import (
    Column,
    Reference,
    SourceFile,
    TableSchema,
    check_table,
)

__all__ = ["MOVIELENS", "MovieLens", "MovieLensSource", "load_movielens"]


@dataclass(frozen=True)
class MovieLensSource:
    """Where a MovieLens variant comes from and which files its archive must hold."""

    archive: str  # file name of the zip in the cache folder
    folder: str  # folder inside the zip (and in the cache folder once extracted)
    md5: str  # published by GroupLens beside the archive
    urls: tuple[str, ...]  # tried in order; the official one first
    files: tuple[str, ...]  # files the parser needs (100K also reads u.occupation, if present)


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

# The schema of each file, from its README (ml-100k/README, ml-1m/README): the columns in file
# order and what each may hold. A file is checked against it when read, so an extracted copy
# a user edited fails at its first bad line, even if the archive's checksum once matched.


def _ratings(user_id: Column, item_id: Column, users_file: str, items_file: str) -> TableSchema:
    """Ratings, in both variants: "5-star scale (whole-star ratings only)", "seconds since the
    epoch"; a user rates a movie once; every user and movie is one of the other files'."""
    return TableSchema(
        columns=(user_id, item_id, Column(RATING, "integer", low=1, high=5),
                 Column(TIMESTAMP, "integer", low=0)),
        unique=((USER_ID, ITEM_ID),),
        references=(Reference(USER_ID, users_file), Reference(ITEM_ID, items_file)),
    )  # fmt: skip


# ml-100k: "Users and items are numbered consecutively from 1"; genres and occupations are
# listed in u.genre and u.occupation. No age range is documented: an age in years, 1..120
# (the data has 7..73). Gender: "M" or "F", as in the data (and ml-1m/README).
U_DATA = _ratings(Column(USER_ID, "integer", low=1), Column(ITEM_ID, "integer", low=1),
                  "u.user", "u.item")  # fmt: skip
U_USER = TableSchema(
    columns=(Column(USER_ID, "integer", low=1), Column(AGE, "integer", low=1, high=120),
             Column(GENDER, allowed=("F", "M")), Column(OCCUPATION), Column(ZIP)),
    unique=((USER_ID,),),
    references=(Reference(OCCUPATION, "u.occupation"),),
)  # fmt: skip
U_GENRE = TableSchema(
    columns=(Column("name"), Column("index", "integer", low=0)), unique=(("name",), ("index",))
)
U_OCCUPATION = TableSchema(columns=(Column(OCCUPATION),), unique=((OCCUPATION,),))


def u_item(genre_names: Sequence[str]) -> TableSchema:
    """u.item: "movie id | movie title | release date | video release date | IMDb URL |"
    then one 0/1 flag per genre of u.genre (the dates and the URL may be empty)."""
    return TableSchema(
        columns=(
            Column(ITEM_ID, "integer", low=1), Column(TITLE),
            *(Column(name, nullable=True) for name in ("release_date", "video_release_date", "imdb_url")),
            *(Column(name, "integer", allowed=(0, 1)) for name in genre_names),
        ),
        unique=((ITEM_ID,),),
    )  # fmt: skip


# ml-1m: "UserIDs range between 1 and 6040", "MovieIDs range between 1 and 3952"; gender "M"
# or "F"; age one of the seven group codes; occupation a code 0..20; genres from the 18 names.
RATINGS_DAT = _ratings(Column(USER_ID, "integer", low=1, high=6040),
                       Column(ITEM_ID, "integer", low=1, high=3952), "users.dat", "movies.dat")  # fmt: skip
USERS_DAT = TableSchema(
    columns=(Column(USER_ID, "integer", low=1, high=6040), Column(GENDER, allowed=("F", "M")),
             Column(AGE, "integer", allowed=(1, 18, 25, 35, 45, 50, 56)),
             Column(OCCUPATION, "integer", low=0, high=len(OCCUPATIONS_1M) - 1), Column(ZIP)),
    unique=((USER_ID,),),
)  # fmt: skip
MOVIES_DAT = TableSchema(
    columns=(Column(ITEM_ID, "integer", low=1, high=3952), Column(TITLE),
             Column(GENRES, allowed=GENRES_1M, separator="|")),
    unique=((ITEM_ID,),),
)  # fmt: skip

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
        ValueError: unknown ``variant``; a file that does not parse, or a record that breaks
            the file's schema (one line: the file, the line number, the column and the value);
            a corrupt archive.
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
    path: Path,
    sep: str,
    schema: TableSchema,
    *,
    text: str | None = None,
    references: Mapping[str, Collection[object]] | None = None,
    **kwargs,
) -> pd.DataFrame:
    """Read a MovieLens file (no header, no quoting) and check it against ``schema``.

    The schema's columns are the file's fields, in order; text columns are read as ``str``,
    integer columns become int64 once checked. Errors name the file (and, for a bad value,
    the line). ``text``: the file's content, if already read (and rewritten) by the caller;
    ``references``: the keys of the files ``schema`` refers to (see
    :func:`~mtlkit.data.validation.check_table`).
    """
    names = [column.name for column in schema.columns]
    dtype = {column.name: str for column in schema.columns if column.kind == "text"}
    try:
        with warnings.catch_warnings():
            # pandas only warns when every line has more fields than names: make it an error.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            table = pd.read_csv(io.StringIO(text) if text is not None else path, sep=sep, names=names,
                                header=None, index_col=False, quoting=csv.QUOTE_NONE, dtype=dtype,
                                **kwargs)  # fmt: skip
    except (ValueError, UnicodeDecodeError, pd.errors.ParserWarning) as err:
        raise ValueError(f"could not parse {path}: {err}") from err
    # the text for line numbers, read only on error: latin-1 decodes any byte and keeps line ends
    source = SourceFile(path, sep, lambda: path.read_text(encoding="latin-1") if text is None else text)
    check_table(table, schema, source, references)
    return table.astype({column.name: "int64" for column in schema.columns if column.kind == "integer"})


def _read_double_colon(path: Path, schema: TableSchema, **kwargs) -> pd.DataFrame:
    """ml-1m files use the two-character separator ``::``; map it to a tab for the C parser."""
    text = path.read_text(encoding="latin-1").replace("::", "\t")
    return _read_table(path, "\t", schema, text=text, **kwargs)


def _year(titles: pd.Series, fallback: pd.Series | None = None) -> pd.Series:
    """The year in parentheses at the end of each title; else ``fallback``'s year."""
    year = pd.to_numeric(titles.str.extract(_TITLE_YEAR, expand=False), errors="coerce")
    if fallback is not None:
        year = year.fillna(pd.to_numeric(fallback.str[-4:], errors="coerce"))
    return year.astype("Int64")


def _parse_100k(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, tuple[str, ...]]:
    """u.data (tab), u.item / u.user / u.genre / u.occupation (``|``, latin-1), checked in that
    order of dependence: genres, items, occupations, users, then the ratings that refer to them."""
    genre_table = _read_table(folder / "u.genre", "|", U_GENRE, encoding="latin-1")
    genre_names = tuple(genre_table.sort_values("index")["name"])

    raw = _read_table(folder / "u.item", "|", u_item(genre_names), encoding="latin-1")
    flags = raw[list(genre_names)].to_numpy()
    items = pd.DataFrame(
        {
            ITEM_ID: raw[ITEM_ID],
            TITLE: raw[TITLE].astype(str),
            YEAR: _year(raw[TITLE], fallback=raw["release_date"]),
            GENRES: [[genre_names[j] for j in np.flatnonzero(row)] for row in flags],
        }
    )

    occupations = {}
    if (folder / "u.occupation").is_file():  # in the official archive; an older copy may lack it
        table = _read_table(folder / "u.occupation", "|", U_OCCUPATION, encoding="latin-1")
        occupations["u.occupation"] = table[OCCUPATION]
    raw_users = _read_table(
        folder / "u.user", "|", U_USER, encoding="latin-1", references=occupations
    )
    users = raw_users[[USER_ID, GENDER, AGE, OCCUPATION, ZIP]]
    ratings = _read_table(
        folder / "u.data", "\t", U_DATA,
        references={"u.user": users[USER_ID], "u.item": items[ITEM_ID]},
    )  # fmt: skip
    return ratings, _sorted(items, ITEM_ID), _sorted(users, USER_ID), genre_names


def _parse_1m(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, tuple[str, ...]]:
    """ratings.dat, movies.dat, users.dat: ``::``-separated, latin-1; genres ``Genre|Genre``."""
    raw = _read_double_colon(folder / "movies.dat", MOVIES_DAT)
    items = pd.DataFrame(
        {
            ITEM_ID: raw[ITEM_ID],
            TITLE: raw[TITLE].astype(str),
            YEAR: _year(raw[TITLE]),
            GENRES: list(raw[GENRES].str.split("|", regex=False)),
        }
    )
    users = _read_double_colon(folder / "users.dat", USERS_DAT)
    users[OCCUPATION] = pd.Series(np.asarray(OCCUPATIONS_1M, dtype=object)[users[OCCUPATION].to_numpy()],
                                  index=users.index, dtype=str)  # fmt: skip
    ratings = _read_double_colon(
        folder / "ratings.dat", RATINGS_DAT,
        references={"users.dat": users[USER_ID], "movies.dat": items[ITEM_ID]},
    )  # fmt: skip
    return ratings, _sorted(items, ITEM_ID), _sorted(users, USER_ID), GENRES_1M


def _sorted(table: pd.DataFrame, key: str) -> pd.DataFrame:
    return table.sort_values(key, kind="stable").reset_index(drop=True)


_PARSERS = {"100k": _parse_100k, "1m": _parse_1m}
