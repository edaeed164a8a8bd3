"""mtlkit.data.download: cache folder, verified fetch with URL fallback, atomic unzip."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from mtlkit.data import download
from mtlkit.data.download import ChecksumError, DownloadError, data_dir, extract_zip, fetch


@pytest.fixture
def source(tmp_path: Path) -> tuple[str, str]:
    """A local file served through a file:// URL, and its md5 in pooch's format."""
    path = tmp_path / "mirror" / "data.bin"
    path.parent.mkdir()
    path.write_bytes(b"mtlkit test payload\n" * 100)
    return path.as_uri(), "md5:" + hashlib.md5(path.read_bytes()).hexdigest()


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_data_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(download.DATA_DIR_ENV, raising=False)
    assert data_dir().name == "mtlkit"  # the user cache folder
    monkeypatch.setenv(download.DATA_DIR_ENV, str(tmp_path / "env"))
    assert data_dir() == tmp_path / "env"
    assert data_dir(tmp_path / "arg") == tmp_path / "arg"


def test_data_dir_rejects_non_path() -> None:
    with pytest.raises(TypeError, match="root"):
        data_dir(3)  # type: ignore[arg-type]


def test_fetch_downloads_once(tmp_path: Path, source, downloads) -> None:
    url, md5 = source
    cache = tmp_path / "cache"
    path = fetch("data.bin", [url], md5, cache)
    assert path == cache / "data.bin" and path.read_bytes().startswith(b"mtlkit")
    assert fetch("data.bin", [url], md5, cache) == path
    assert downloads == [url]  # the second call found the verified file
    assert files_in(cache) == ["data.bin"]


def test_fetch_falls_back_in_order(tmp_path: Path, source, downloads) -> None:
    url, md5 = source
    offline = "https://files.example.org/data.bin"  # refused by the network guard
    missing = (tmp_path / "nowhere.bin").as_uri()
    path = fetch("data.bin", [offline, missing, url], md5, tmp_path / "cache")
    assert path.is_file()
    assert downloads == [offline, missing, url]


def test_fetch_checksum_mismatch_leaves_nothing(tmp_path: Path, source) -> None:
    url, _ = source
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumError, match="hash") as err:
        fetch("data.bin", [url], "md5:" + "0" * 32, cache)
    assert isinstance(err.value, ValueError)  # a wrong checksum is a ValueError too
    assert files_in(cache) == []


def test_fetch_all_fail_says_how_to_download_by_hand(tmp_path: Path) -> None:
    urls = ["https://files.example.org/a.zip", (tmp_path / "gone.zip").as_uri()]
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError) as err:
        fetch("a.zip", urls, "md5:" + "0" * 32, cache, hint="Or extract it in the cache.")
    message = str(err.value)
    assert all(url in message for url in urls)
    assert "by hand" in message and str(cache / "a.zip") in message and "0" * 32 in message
    assert "Or extract it in the cache." in message
    assert files_in(cache) == []


def test_fetch_offline_mode(tmp_path: Path, source, downloads) -> None:
    url, md5 = source
    cache = tmp_path / "cache"
    with pytest.raises(FileNotFoundError, match="download=False"):
        fetch("data.bin", [url], md5, cache, download=False)
    cache.mkdir()
    (cache / "data.bin").write_bytes(b"something else")
    with pytest.raises(ChecksumError, match="expected"):
        fetch("data.bin", [url], md5, cache, download=False)
    (cache / "data.bin").write_bytes(b"mtlkit test payload\n" * 100)
    assert fetch("data.bin", [url], md5, cache, download=False) == cache / "data.bin"
    assert downloads == []


def test_fetch_validates_urls(tmp_path: Path, source) -> None:
    url, md5 = source
    with pytest.raises(TypeError, match="urls"):
        fetch("data.bin", url, md5, tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="urls"):
        fetch("data.bin", [], md5, tmp_path)


def test_fetch_unknown_protocol_is_a_failure(tmp_path: Path, source) -> None:
    _, md5 = source
    with pytest.raises(DownloadError, match="gopher"):
        fetch("data.bin", ["gopher://example.org/data.bin"], md5, tmp_path / "cache")


def make_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return path


def test_extract_zip(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", {"pkg/x.txt": b"x", "pkg/y.txt": b"y"})
    folder = extract_zip(archive, tmp_path / "out", "pkg", required=["x.txt", "y.txt"])
    assert folder == tmp_path / "out" / "pkg" and (folder / "y.txt").read_bytes() == b"y"
    assert files_in(tmp_path / "out") == ["pkg"]  # no staging folder left


def test_extract_truncated_zip_leaves_nothing(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", {"pkg/x.txt": b"x" * 1000})
    archive.write_bytes(archive.read_bytes()[:-30])  # cut the central directory
    with pytest.raises(ValueError, match="truncated or corrupt"):
        extract_zip(archive, tmp_path / "out", "pkg")
    assert not archive.exists()  # deleted, so the next call downloads it again
    assert files_in(tmp_path / "out") == []


def test_extract_zip_missing_file_leaves_nothing(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", {"pkg/x.txt": b"x"})
    with pytest.raises(FileNotFoundError, match="pkg/y.txt"):
        extract_zip(archive, tmp_path / "out", "pkg", required=["x.txt", "y.txt"])
    with pytest.raises(FileNotFoundError, match="the folder other/"):
        extract_zip(archive, tmp_path / "out", "other")
    assert files_in(tmp_path / "out") == []
