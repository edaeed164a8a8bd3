"""Fixtures shared by the data tests."""

from __future__ import annotations

import pytest

from mtlkit.data import download


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
