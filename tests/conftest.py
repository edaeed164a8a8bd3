"""Shared fixtures: the local copy of real data sets, one torch thread for tiny models, and
device selection for GPU tests."""

from __future__ import annotations

import ipaddress
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

# ../shared/data beside the checkout holds real data for local checks (never committed).
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The folder of local real data sets; the test skips (with the reason) where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (local checks only)")
    return SHARED_DATA


@pytest.fixture()
def one_thread() -> Iterator[None]:
    """torch on one intra-op thread for the test, restored after it.

    Tiny tensors gain nothing from threads, which only contend on a busy shared CPU. Not
    autouse: a module opts in with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_configure(config: pytest.Config) -> None:
    """Caches (downloads, text embeddings) go to a throw-away folder, never the user's cache."""
    if "MTLKIT_DATA_DIR" not in os.environ:
        os.environ["MTLKIT_DATA_DIR"] = tempfile.mkdtemp(prefix="mtlkit-test-cache-")


def _is_loopback(address: object) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if not isinstance(host, str):  # AF_UNIX paths and the like stay on this machine
        return True
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never reach the network: a connection to anything but loopback fails at once."""
    connect = socket.socket.connect

    def guarded_connect(self: socket.socket, address: object) -> None:
        if not _is_loopback(address):
            raise OSError(f"network access is disabled in tests (tried {address!r})")
        return connect(self, address)

    def refuse_lookup(host: object, *args: object, **kwargs: object) -> object:
        if host is None or _is_loopback(host):
            return getaddrinfo(host, *args, **kwargs)
        raise OSError(f"network access is disabled in tests (looked up {host!r})")

    getaddrinfo = socket.getaddrinfo
    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", refuse_lookup)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `gpu` skip cleanly where CUDA is absent."""
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)

