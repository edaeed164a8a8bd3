"""mtlkit.data.movielens: the real 100K files, and tiny fake archives for the download paths.

No test touches the network: downloads are served from file:// URLs in a temporary folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mtlkit.data import download, movielens
from mtlkit.data.columns import GENRES, ITEM_ID, LIKE_MIN_RATING, RATING, TITLE, USER_ID, YEAR
from mtlkit.data.download import ChecksumError, DownloadError
from mtlkit.data.movielens import GENRES_1M, MOVIELENS, load_movielens


# --- the real MovieLens 100K (local copy) ---------------------------------------------------


@pytest.fixture(scope="module")
def ml100k(shared_data_dir: Path) -> movielens.MovieLens:
    if not (shared_data_dir / "ml-100k" / "u.data").is_file():
        pytest.skip(f"{shared_data_dir / 'ml-100k'} is absent (local checks only)")
    return load_movielens("100k", root=shared_data_dir, download=False)


@pytest.mark.realdata
def test_real_100k_counts(ml100k: movielens.MovieLens) -> None:
    assert len(ml100k.users) == 943
    assert len(ml100k.items) == 1682
    assert len(ml100k.ratings) == 99_999  # the local copy lacks one of the 100,000 ratings
    assert ml100k.ratings[USER_ID].nunique() == 943
    assert ml100k.ratings[RATING].between(1, 5).all()
    assert ml100k.ratings.groupby(USER_ID).size().min() == 20  # "at least 20 movies" each


@pytest.mark.realdata
def test_real_100k_dtypes(ml100k: movielens.MovieLens) -> None:
    assert ml100k.ratings.dtypes.astype(str).tolist() == ["int64"] * 4
    assert list(ml100k.items.columns) == [ITEM_ID, TITLE, YEAR, GENRES]
    assert str(ml100k.items[YEAR].dtype) == "Int64"
    assert list(ml100k.users.columns) == ["user_id", "gender", "age", "occupation", "zip"]
    assert ml100k.users["age"].dtype == np.int64
    assert pd.api.types.is_string_dtype(ml100k.users["zip"])  # "T8H1N" and leading zeros
    assert ml100k.users["zip"].str.startswith("0").any()
    assert set(ml100k.users["gender"]) == {"M", "F"}


@pytest.mark.realdata
def test_real_100k_items(ml100k: movielens.MovieLens) -> None:
    items = ml100k.items.set_index(ITEM_ID)
    assert items.loc[1, TITLE] == "Toy Story (1995)"
    assert items.loc[1, YEAR] == 1995
    assert items.loc[1, GENRES] == ["Animation", "Children's", "Comedy"]
    assert items.loc[181, YEAR] == 1983  # the film's year, not the 1997 re-release date
    assert items.loc[267, TITLE] == "unknown" and pd.isna(items.loc[267, YEAR])
    assert len(ml100k.genre_names) == 19 and ml100k.genre_names[0] == "unknown"
    assert ml100k.genre_names[-1] == "Western"


@pytest.mark.realdata
def test_real_100k_multi_hot_and_statistics(ml100k: movielens.MovieLens) -> None:
    flags = ml100k.genre_multi_hot()
    assert flags.shape == (1682, 19) and flags.dtypes.unique().tolist() == [np.int8]
    assert flags.loc[1][flags.loc[1] == 1].index.tolist() == ["Animation", "Children's", "Comedy"]
    assert (flags.sum(axis=1).to_numpy() == ml100k.items[GENRES].map(len).to_numpy()).all()
    stats = ml100k.statistics()
    assert (stats["users"], stats["items"], stats["ratings"]) == (943, 1682, 99_999)
    like_rate = (ml100k.ratings[RATING] >= LIKE_MIN_RATING).mean()
    assert stats["like_rate"] == pytest.approx(like_rate) and 0.5 < like_rate < 0.6
    assert stats["density"] == pytest.approx(99_999 / (943 * 1682))
    assert stats["mean_ratings_per_user"] == pytest.approx(99_999 / 943)


@pytest.mark.realdata
def test_real_100k_root_may_be_the_folder_itself(shared_data_dir: Path) -> None:
    folder = shared_data_dir / "ml-100k"
    if not (folder / "u.data").is_file():
        pytest.skip(f"{folder} is absent (local checks only)")
    ml = load_movielens("ml-100K", root=folder, download=False)
    assert ml.path == folder and ml.variant == "100k" and len(ml.items) == 1682


# --- tiny fake archives: download, checksum, caching -----------------------------------------

MOVIELENS_100K_URL = MOVIELENS["100k"].urls[0]  # the real one, before a test patches it

GENRE_100K = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
              "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
              "Romance", "Sci-Fi", "Thriller", "War", "Western"]  # fmt: skip


def flags(*genres: str) -> str:
    return "|".join("1" if name in genres else "0" for name in GENRE_100K)


FAKE_100K = {
    # like the real file: tab-separated, no trailing newline
    "u.data": "1\t1\t5\t874965758\n1\t2\t3\t876893171\n2\t1\t4\t888550871".encode(),
    "u.item": (
        f"1|Toy Story (1995)|01-Jan-1995||http://x|{flags('Animation', 'Comedy')}\n"
        f"2|Misérables, Les (1995)|01-Jan-1996||http://y|{flags('Drama')}\n"
        f"3|No Year|07-Mar-1997||http://z|{flags('unknown')}\n"
    ).encode("latin-1"),
    "u.user": b"1|24|M|technician|85711\n2|53|F|other|02138\n",
    "u.genre": ("\n".join(f"{name}|{i}" for i, name in enumerate(GENRE_100K)) + "\n\n").encode(),
}
FAKE_1M = {
    "ratings.dat": b"1::1::5::978300760\n2::2::3::978302109\n2::1::4::978301968\n",
    "movies.dat": (
        "1::Toy Story (1995)::Animation|Children's|Comedy\n"
        "2::Café Society: A Tale (2000)::Drama\n"
    ).encode("latin-1"),
    "users.dat": b"1::F::1::10::48067\n2::M::56::16::T8H1N\n",
}


def make_archive(path: Path, folder: str, files: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in files.items():
            zf.writestr(f"{folder}/{name}", content)
    return path


def serve(monkeypatch: pytest.MonkeyPatch, variant: str, archive: Path) -> str:
    """Make `archive` the official source of `variant` (its URL and published MD5)."""
    url = archive.as_uri()
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    patched = dataclasses.replace(MOVIELENS[variant], md5=md5, urls=(url,))
    monkeypatch.setitem(MOVIELENS, variant, patched)
    return url


@pytest.fixture
def mirror_100k(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    archive = make_archive(tmp_path / "mirror" / "ml-100k.zip", "ml-100k", FAKE_100K)
    return serve(monkeypatch, "100k", archive)


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_extract_and_parse_100k(tmp_path: Path, mirror_100k: str, downloads) -> None:
    cache = tmp_path / "cache"
    ml = load_movielens("100k", root=cache)
    assert downloads == [mirror_100k]
    assert listing(cache) == ["ml-100k", "ml-100k.zip"]  # no temporary file or folder left
    assert ml.path == cache / "ml-100k"
    assert ml.ratings.to_numpy().tolist() == [
        [1, 1, 5, 874965758], [1, 2, 3, 876893171], [2, 1, 4, 888550871]
    ]
    items = ml.items.set_index(ITEM_ID)
    assert items.loc[2, TITLE] == "Misérables, Les (1995)"  # latin-1 decoded
    assert items.loc[1, GENRES] == ["Animation", "Comedy"]
    assert items.loc[3, YEAR] == 1997  # no year in the title: the release date's year
    assert ml.users["zip"].tolist() == ["85711", "02138"]


def test_second_call_reads_the_cache(tmp_path: Path, mirror_100k: str, downloads) -> None:
    cache = tmp_path / "cache"
    first = load_movielens("100k", root=cache)
    second = load_movielens("100k", root=cache)
    pd.testing.assert_frame_equal(first.ratings, second.ratings)
    assert downloads == [mirror_100k]
    # The verified archive alone is enough too: it is extracted again, not downloaded.
    for name in listing(cache / "ml-100k"):
        (cache / "ml-100k" / name).unlink()
    (cache / "ml-100k").rmdir()
    assert len(load_movielens("100k", root=cache, download=False).items) == 3
    assert downloads == [mirror_100k]


def test_env_var_sets_the_cache(tmp_path: Path, mirror_100k: str, monkeypatch) -> None:
    monkeypatch.setenv(download.DATA_DIR_ENV, str(tmp_path / "from-env"))
    ml = load_movielens("100k")
    assert ml.path == tmp_path / "from-env" / "ml-100k"


def test_url_fallback_in_order(tmp_path: Path, mirror_100k: str, downloads: list[str]) -> None:
    official = MOVIELENS["100k"].urls[0]
    dead = MOVIELENS_100K_URL  # refused by the network guard
    ml = load_movielens("100k", root=tmp_path / "cache", urls=[dead, official])
    assert downloads == [dead, official] and len(ml.users) == 2


def test_all_urls_fail(tmp_path: Path, mirror_100k: str) -> None:
    cache = tmp_path / "cache"
    urls = [MOVIELENS_100K_URL, (tmp_path / "no.zip").as_uri()]
    with pytest.raises(DownloadError) as err:
        load_movielens("100k", root=cache, urls=urls)
    message = str(err.value)
    assert "by hand" in message and str(cache / "ml-100k.zip") in message
    assert str(cache / "ml-100k") in message  # or where the extracted files may go
    assert listing(cache) == []


def test_checksum_mismatch_leaves_nothing(tmp_path: Path, mirror_100k: str, monkeypatch) -> None:
    monkeypatch.setitem(MOVIELENS, "100k", dataclasses.replace(MOVIELENS["100k"], md5="0" * 32))
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumError, match="0" * 32):
        load_movielens("100k", root=cache)
    assert listing(cache) == []


def test_truncated_archive_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = make_archive(tmp_path / "mirror" / "ml-100k.zip", "ml-100k", FAKE_100K)
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    serve(monkeypatch, "100k", archive)  # the checksum matches, the zip is broken
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="ml-100k.zip is truncated or corrupt"):
        load_movielens("100k", root=cache)
    assert listing(cache) == []


def test_archive_missing_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = {name: content for name, content in FAKE_100K.items() if name != "u.user"}
    serve(monkeypatch, "100k", make_archive(tmp_path / "mirror" / "ml-100k.zip", "ml-100k", files))
    cache = tmp_path / "cache"
    with pytest.raises(FileNotFoundError, match="ml-100k/u.user"):
        load_movielens("100k", root=cache)
    assert listing(cache) == ["ml-100k.zip"]  # the verified archive stays; no partial folder


def test_extracted_folder_missing_a_file(tmp_path: Path) -> None:
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    for name in ("u.data", "u.item", "u.genre"):
        (folder / name).write_bytes(FAKE_100K[name])
    with pytest.raises(FileNotFoundError, match="lacks u.user"):
        load_movielens("100k", root=tmp_path, download=False)


def test_offline_with_nothing_local(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="download=False") as err:
        load_movielens("1m", root=tmp_path, download=False)
    assert "ml-1m.zip" in str(err.value) and "by hand" in str(err.value)
    assert listing(tmp_path) == []


def test_malformed_file_names_it(tmp_path: Path) -> None:
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    for name, content in FAKE_100K.items():
        (folder / name).write_bytes(content)
    for bad in (b"1\t1\t5\t874965758\n1\t2\t3\n", b"1\t1\t5\t874965758\n1\t2\t3.5\t876893171\n"):
        (folder / "u.data").write_bytes(bad)  # a field short; a rating that is not an integer
        with pytest.raises(ValueError, match="u.data"):
            load_movielens("100k", root=tmp_path)


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="variant"):
        load_movielens("10m")
    with pytest.raises(TypeError, match="variant"):
        load_movielens(100)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="urls"):
        load_movielens("100k", urls="https://example.org/ml-100k.zip")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="root"):
        load_movielens("100k", root=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="urls"):
        load_movielens("100k", root=tmp_path, urls=[])


def test_download_and_parse_1m(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, downloads) -> None:
    archive = make_archive(tmp_path / "mirror" / "ml-1m.zip", "ml-1m", FAKE_1M)
    url = serve(monkeypatch, "1m", archive)
    ml = load_movielens("1m", root=tmp_path / "cache")
    assert downloads == [url] and ml.variant == "1m"
    assert ml.ratings.dtypes.astype(str).tolist() == ["int64"] * 4 and len(ml.ratings) == 3
    items = ml.items.set_index(ITEM_ID)
    assert items.loc[1, GENRES] == ["Animation", "Children's", "Comedy"]
    assert items.loc[2, TITLE] == "Café Society: A Tale (2000)" and items.loc[2, YEAR] == 2000
    users = ml.users.set_index(USER_ID)
    assert users.loc[1].tolist() == ["F", 1, "K-12 student", "48067"]  # age group 1: under 18
    assert users.loc[2].tolist() == ["M", 56, "self-employed", "T8H1N"]
    assert ml.genre_multi_hot().shape == (2, 18)


# --- every file is checked against its documented schema -------------------------------------

FAKE_OCCUPATIONS = b"other\ntechnician\n"  # u.occupation: only the official archive has it
FAKE_FILES = {"100k": {**FAKE_100K, "u.occupation": FAKE_OCCUPATIONS}, "1m": FAKE_1M}
TOY_STORY = "Toy Story (1995)|01-Jan-1995||http://x"
GENRE_LIST = f"a '|'-separated list of items each one of {list(GENRES_1M)}"

# One row per bad input: (variant, file, line number, what that line becomes, the message after
# "<file> line <n>: "). A replacement holding "\n" adds lines, to check the line numbering.
BAD_MOVIELENS = [
    ("100k", "u.data", 3, "2\t1\t7\t888550871", "rating must be an integer in 1..5, got 7"),  # last line, no newline
    ("100k", "u.data", 2, "1\t2\t0\t876893171", "rating must be an integer in 1..5, got 0"),
    ("100k", "u.data", 2, "1\t2\t-3\t876893171", "rating must be an integer in 1..5, got -3"),
    ("100k", "u.data", 2, "1\t2\t3.5\t876893171", "rating must be an integer in 1..5, got 3.5"),
    ("100k", "u.data", 2, "1\t2\tfive\t876893171", "rating must be an integer in 1..5, got 'five'"),
    ("100k", "u.data", 2, "1\t2\t3", "timestamp must be an integer >= 0, got nothing"),  # a field short
    ("100k", "u.data", 2, "1\t2\t3\t-1", "timestamp must be an integer >= 0, got -1"),
    ("100k", "u.data", 2, "0\t2\t3\t876893171", "user_id must be an integer >= 1, got 0"),
    ("100k", "u.data", 2, "3\t2\t3\t876893171", "user_id 3 is not in u.user"),
    ("100k", "u.data", 2, "1\t1700\t3\t876893171", "item_id 1700 is not in u.item"),
    ("100k", "u.data", 3, "1\t2\t4\t888550871",
     "(user_id, item_id) must be unique, got (1, 2) again (first on line 2)"),
    ("100k", "u.data", 2, "\n \n1\t2\t7\t876893171", "rating must be an integer in 1..5, got 7"),  # now line 4
    ("100k", "u.data", 2, "1\t2\t3\t876893171\r\n1\t2\t9\t876893171", "rating must be an integer in 1..5, got 9"),
    ("100k", "u.user", 2, "2|53|X|other|02138", "gender must be one of ['F', 'M'], got 'X'"),
    ("100k", "u.user", 2, "2|-5|F|other|02138", "age must be an integer in 1..120, got -5"),
    ("100k", "u.user", 2, "2|121|F|other|02138", "age must be an integer in 1..120, got 121"),
    ("100k", "u.user", 2, "2|53|F|pilot|02138", "occupation 'pilot' is not in u.occupation"),
    ("100k", "u.user", 2, "2|53|F|other|", "zip must be non-empty, got nothing"),
    ("100k", "u.user", 2, "1|53|F|other|02138", "user_id must be unique, got 1 again (first on line 1)"),
    ("100k", "u.item", 1, f"1|{TOY_STORY}|{flags('Drama').replace('1', '2')}", "Drama must be one of [0, 1], got 2"),
    ("100k", "u.item", 1, f"1|{TOY_STORY}|{flags('Drama')[:-2]}", "Western must be one of [0, 1], got nothing"),
    ("100k", "u.item", 2, f"2||01-Jan-1996||http://y|{flags('Drama')}", "title must be non-empty, got nothing"),
    ("100k", "u.item", 2, f"two|{TOY_STORY}|{flags('Drama')}", "item_id must be an integer >= 1, got 'two'"),
    ("100k", "u.item", 3, f"1|{TOY_STORY}|{flags('Drama')}", "item_id must be unique, got 1 again (first on line 1)"),
    ("100k", "u.genre", 3, "Action|2", "name must be unique, got 'Action' again (first on line 2)"),
    ("100k", "u.genre", 3, "Adventure|-2", "index must be an integer >= 0, got -2"),
    ("100k", "u.occupation", 2, "other", "occupation must be unique, got 'other' again (first on line 1)"),
    ("1m", "ratings.dat", 2, "2::2::6::978302109", "rating must be an integer in 1..5, got 6"),
    ("1m", "ratings.dat", 2, "2::2::3::-978302109", "timestamp must be an integer >= 0, got -978302109"),
    ("1m", "ratings.dat", 2, "6041::2::3::978302109", "user_id must be an integer in 1..6040, got 6041"),
    ("1m", "ratings.dat", 2, "2::3953::3::978302109", "item_id must be an integer in 1..3952, got 3953"),
    ("1m", "ratings.dat", 2, "2::3::3::978302109", "item_id 3 is not in movies.dat"),
    ("1m", "ratings.dat", 2, "3::2::3::978302109", "user_id 3 is not in users.dat"),
    ("1m", "ratings.dat", 3, "2::2::4::978301968",
     "(user_id, item_id) must be unique, got (2, 2) again (first on line 2)"),
    ("1m", "users.dat", 2, "2::X::56::16::T8H1N", "gender must be one of ['F', 'M'], got 'X'"),
    ("1m", "users.dat", 2, "2::M::20::16::T8H1N", "age must be one of [1, 18, 25, 35, 45, 50, 56], got 20"),
    ("1m", "users.dat", 2, "2::M::56::21::T8H1N", "occupation must be an integer in 0..20, got 21"),
    ("1m", "users.dat", 2, "1::M::56::16::T8H1N", "user_id must be unique, got 1 again (first on line 1)"),
    ("1m", "movies.dat", 2, "2::Heat (1995)::Drama|Sci-fi", f"genres must be {GENRE_LIST}, got 'Sci-fi'"),
    ("1m", "movies.dat", 2, "2::Heat (1995)::", f"genres must be {GENRE_LIST}, got nothing"),
    ("1m", "movies.dat", 2, "2::::Drama", "title must be non-empty, got nothing"),
    ("1m", "movies.dat", 2, "1::Heat (1995)::Drama", "item_id must be unique, got 1 again (first on line 1)"),
]  # fmt: skip


def write_variant(root: Path, variant: str, files: dict[str, bytes]) -> Path:
    """An extracted folder ``<root>/ml-<variant>`` holding ``files``."""
    folder = root / MOVIELENS[variant].folder
    folder.mkdir(parents=True)
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return folder


@pytest.mark.parametrize(("variant", "name", "line", "replacement", "message"), BAD_MOVIELENS)
def test_a_bad_record_is_one_line_naming_file_line_and_value(
    tmp_path: Path, variant: str, name: str, line: int, replacement: str, message: str
) -> None:
    files = dict(FAKE_FILES[variant])
    lines = files[name].decode("latin-1").split("\n")
    lines[line - 1] = replacement
    files[name] = "\n".join(lines).encode("latin-1")
    folder = write_variant(tmp_path, variant, files)
    shifted = line + replacement.count("\n")  # the bad record is the replacement's last line
    with pytest.raises(ValueError) as err:
        load_movielens(variant, root=tmp_path, download=False)
    assert str(err.value) == f"{folder / name} line {shifted}: {message}"


@pytest.mark.parametrize("variant", ["100k", "1m"])
def test_the_valid_fixtures_pass(tmp_path: Path, variant: str) -> None:
    write_variant(tmp_path, variant, FAKE_FILES[variant])
    assert len(load_movielens(variant, root=tmp_path, download=False).ratings) == 3


def test_occupations_are_free_text_where_u_occupation_is_absent(tmp_path: Path) -> None:
    files = {**FAKE_100K, "u.user": b"1|24|M|technician|85711\n2|53|F|pilot|02138\n"}
    write_variant(tmp_path, "100k", files)
    assert load_movielens("100k", root=tmp_path, download=False).users["occupation"].tolist() == [
        "technician", "pilot"
    ]  # fmt: skip


def test_a_verified_archive_is_still_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = {**FAKE_100K, "u.data": b"1\t1\t5\t874965758\n1\t2\t7\t876893171\n"}
    serve(monkeypatch, "100k", make_archive(tmp_path / "mirror" / "ml-100k.zip", "ml-100k", files))
    with pytest.raises(ValueError, match=r"ml-100k/u.data line 2: rating must be an integer in 1..5, got 7$"):
        load_movielens("100k", root=tmp_path / "cache")


@pytest.mark.realdata
def test_real_100k_copy_with_a_bad_last_line(shared_data_dir: Path, tmp_path: Path) -> None:
    """The real u.data has 99,999 lines, the last without a newline: its number is still right."""
    real = shared_data_dir / "ml-100k"
    if not (real / "u.data").is_file():
        pytest.skip(f"{real} is absent (local checks only)")
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    for name in ("u.item", "u.user", "u.genre", "u.occupation"):
        (folder / name).write_bytes((real / name).read_bytes())
    head, _, last = (real / "u.data").read_bytes().rpartition(b"\n")
    user, item, _, timestamp = last.split(b"\t")
    (folder / "u.data").write_bytes(head + b"\n" + b"\t".join([user, item, b"6", timestamp]))
    with pytest.raises(ValueError) as err:
        load_movielens("100k", root=tmp_path, download=False)
    assert str(err.value) == f"{folder / 'u.data'} line 99999: rating must be an integer in 1..5, got 6"
