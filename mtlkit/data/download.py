"""Fetch a data file once into a cache folder, verified against a published checksum.

Every loader in ``mtlkit.data`` that needs a public data set goes through :func:`fetch`:

1. the cache folder is ``root`` if given, else the ``MTLKIT_DATA_DIR`` environment variable,
   else the user's cache directory (``platformdirs.user_cache_dir("mtlkit")``, e.g.
   ``~/.cache/mtlkit`` on Linux);
2. a file already there whose checksum matches is used as is (no network), so an archive
   downloaded by hand works offline;
3. otherwise each URL is tried in order with `pooch <https://www.fatiando.org/pooch>`_,
   which downloads to a temporary file in the cache folder, checks the hash and only then
   moves the file into place — a failed or corrupt download never leaves a half-written
   file behind;
4. when every URL fails, the error lists why each one failed and says how to download the
   file by hand and where to put it.

``file://`` URLs are accepted too (a mirror on a shared disk), and are verified the same way.
:func:`extract_zip` unpacks an archive atomically: into a temporary folder first, then one
rename.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import platformdirs
import pooch

DATA_DIR_ENV = "MTLKIT_DATA_DIR"


class DownloadError(OSError):
    """No URL produced the file with the expected checksum."""


class ChecksumError(DownloadError, ValueError):
    """Every source that answered served a file whose checksum differs from the published one."""


def data_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """The cache folder for data sets: ``root``, else ``$MTLKIT_DATA_DIR``, else the user cache.

    The folder is not created here; :func:`fetch` creates it when it writes.
    """
    if root is not None:
        if not isinstance(root, (str, os.PathLike)):
            raise TypeError(f"root must be a path (str or os.PathLike) or None, got {root!r}")
        return Path(root).expanduser()
    from_env = os.environ.get(DATA_DIR_ENV)
    if from_env:
        return Path(from_env).expanduser()
    return Path(platformdirs.user_cache_dir("mtlkit"))


def _file_downloader(url: str, output_file: str | IO[bytes], pooch_instance: object = None) -> None:
    """A pooch downloader for ``file://`` URLs: copy the local file to ``output_file``."""
    source = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
    if not source.is_file():
        raise FileNotFoundError(f"no file at {source} (from {url})")
    if isinstance(output_file, (str, os.PathLike)):
        shutil.copyfile(source, output_file)
    else:
        with open(source, "rb") as src:
            shutil.copyfileobj(src, output_file)


def _downloader_for(url: str):
    """The pooch downloader for ``url``'s protocol (``file://`` is handled here)."""
    scheme = urllib.parse.urlparse(url).scheme
    if scheme == "file":
        return _file_downloader
    if scheme in ("http", "https"):
        return pooch.HTTPDownloader(progressbar=True)
    if scheme == "ftp":
        return pooch.FTPDownloader(progressbar=True)
    raise ValueError(f"unsupported URL protocol {scheme!r} in {url!r} (use https, http, ftp, file)")


def _manual_instructions(filename: str, urls: Sequence[str], known_hash: str, target: Path) -> str:
    algorithm, _, digest = known_hash.rpartition(":")
    return (
        f"To install it by hand, download {filename} from {urls[0]} (or a mirror), check that "
        f"its {(algorithm or 'sha256').upper()} is {digest}, and save it as {target}"
    )


def fetch(
    filename: str,
    urls: Sequence[str],
    known_hash: str,
    folder: str | os.PathLike[str],
    *,
    download: bool = True,
    hint: str = "",
) -> Path:
    """Return ``folder / filename``, verified against ``known_hash``; download it if needed.

    Args:
        filename: the file's name in ``folder``.
        urls: sources tried in order until one serves a file with the right checksum
            (``http(s)://``, ``ftp://`` or ``file://``).
        known_hash: ``"md5:<hex>"`` or ``"sha256:<hex>"`` (pooch's format); every URL is
            checked against this same hash.
        folder: the cache folder (created when a download writes into it).
        download: if False, never touch the network: the file must already be there.
        hint: one more sentence for the error message (e.g. where extracted files may go).

    Raises:
        FileNotFoundError: ``download=False`` and the file is absent.
        ChecksumError: the file present (with ``download=False``) or every downloaded copy
            has another checksum; nothing is left behind.
        DownloadError: no URL worked (each failure is listed); nothing is left behind.
    """
    if isinstance(urls, str) or not isinstance(urls, Sequence):
        raise TypeError(f"urls must be a sequence of URL strings, got {urls!r}")
    if not urls or not all(isinstance(url, str) and url for url in urls):
        raise ValueError(f"urls must be a non-empty sequence of non-empty strings, got {urls!r}")
    folder = Path(folder).expanduser()
    target = folder / filename
    manual = _manual_instructions(filename, urls, known_hash, target)
    if hint:
        manual = f"{manual}. {hint}"

    if not download:
        if not target.is_file():
            raise FileNotFoundError(f"{filename} is not in {folder} and download=False. {manual}")
        algorithm, _, digest = known_hash.rpartition(":")
        actual = pooch.file_hash(str(target), alg=algorithm or "sha256")
        if actual.lower() != digest.lower():
            raise ChecksumError(
                f"{target} has {(algorithm or 'sha256').upper()} {actual}, expected {digest}; "
                f"delete it and download again. {manual}"
            )
        return target

    failures: list[str] = []
    checksum_failures = 0
    for url in urls:
        try:
            downloader = _downloader_for(url)
        except ValueError as err:  # a protocol pooch does not know
            failures.append(f"  {url}: {err}")
            continue
        try:
            # pooch: an existing file with the right hash is returned without any download;
            # otherwise it streams into a temporary file beside `target`, checks the hash and
            # only then moves it into place (the temporary file is deleted on any failure).
            path = pooch.retrieve(
                url, known_hash=known_hash, fname=filename, path=folder, downloader=downloader
            )
            return Path(path)
        except ValueError as err:  # pooch raises ValueError when the hash does not match
            checksum_failures += 1
            failures.append(f"  {url}: {err}")
        except Exception as err:  # network, HTTP status, missing local file, ...
            failures.append(f"  {url}: {type(err).__name__}: {err}")
    error = ChecksumError if checksum_failures == len(urls) else DownloadError
    reasons = "\n".join(failures)
    raise error(f"could not download {filename} from any of these URLs:\n{reasons}\n{manual}")


def extract_zip(
    archive: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    member_dir: str,
    required: Sequence[str] = (),
) -> Path:
    """Unpack ``member_dir/`` of a zip archive into ``destination/member_dir``, atomically.

    The archive is extracted into a temporary folder beside the destination, checked for the
    ``required`` files, then moved into place with one ``os.replace``; on any failure the
    temporary folder is removed, so either the complete folder appears or nothing does.

    Raises:
        ValueError: the archive is not a readable zip (truncated or corrupt); the archive is
            deleted too, so the next call downloads it again.
        FileNotFoundError: the archive lacks ``member_dir/`` or one of the ``required`` files.
    """
    archive = Path(archive)
    destination = Path(destination)
    final = destination / member_dir
    destination.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{member_dir}-", dir=destination))
    try:
        try:
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(staging)  # zipfile drops absolute paths and '..' in member names
        except (zipfile.BadZipFile, EOFError, zlib.error) as err:
            archive.unlink(missing_ok=True)
            raise ValueError(
                f"archive {archive} is truncated or corrupt ({err}); it was deleted, "
                "so the next call downloads it again"
            ) from err
        extracted = staging / member_dir
        missing = [name for name in required if not (extracted / name).is_file()]
        if not extracted.is_dir() or missing:
            lacking = (
                [f"{member_dir}/{name}" for name in missing]
                if extracted.is_dir()
                else [f"the folder {member_dir}/"]
            )
            raise FileNotFoundError(f"archive {archive} lacks {', '.join(lacking)}")
        if final.is_dir() and not any(final.iterdir()):
            final.rmdir()  # an empty leftover folder would block the rename on some systems
        try:
            os.replace(extracted, final)
        except OSError:
            # Another process extracted the same archive meanwhile: use its complete copy.
            if not all((final / name).is_file() for name in required):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final
