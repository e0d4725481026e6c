"""Downloading datasets for users who have a network, failing fast when there is none.

``reachable`` answers in a few seconds whether a download host can be contacted at all, so an
offline machine never waits on urllib. Benchmark downloads reuse pytorch-metric-learning's
download code (official URLs); iNaturalist-2018 (~130 GB) is never fetched automatically.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse

CONNECT_TIMEOUT_S = 3.0
DOWNLOAD_SOCKET_TIMEOUT_S = 60.0


def reachable(url: str, timeout_s: float = CONNECT_TIMEOUT_S) -> bool:
    """True if a TCP connection to ``url``'s host opens within ``timeout_s`` (DNS included)."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    result: list[bool] = []

    def probe() -> None:  # in a thread because DNS lookups ignore socket timeouts
        try:
            socket.create_connection((parsed.hostname, port), timeout=timeout_s).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout_s + 0.5)
    return bool(result and result[0])


@contextlib.contextmanager
def socket_timeout(seconds: float = DOWNLOAD_SOCKET_TIMEOUT_S) -> Iterator[None]:
    """Make stalled downloads raise instead of hanging forever."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _downloader(name: str, root: Path):
    """pytorch-metric-learning's loader class for ``name`` and the root it extracts into."""
    from pytorch_metric_learning.datasets import CUB, Cars196, StanfordOnlineProducts

    return {
        "cub": (CUB, root),  # extracts CUB_200_2011/ into root
        "sop": (StanfordOnlineProducts, root),  # extracts Stanford_Online_Products/ into root
        "cars196": (Cars196, root / "cars196"),  # Kaggle zip: names.csv, anno_*.csv, car_data/
    }[name]


def try_download(name: str, root: Path) -> str:
    """Download benchmark ``name`` under ``root``; return "" on success, else why it failed."""
    if name == "inat2018":
        return " iNaturalist-2018 (~130 GB) is not downloaded automatically."
    cls, target = _downloader(name, root)
    url = getattr(cls, "DOWNLOAD_URL")
    if not reachable(url):
        return f" Downloading it failed: {urlparse(url).hostname} cannot be reached (offline?)."
    loader = cls.__new__(cls)  # only download_and_remove is used; it needs just .root
    loader.root = str(target)
    try:
        target.mkdir(parents=True, exist_ok=True)
        with socket_timeout():
            loader.download_and_remove()
    except Exception as err:  # network and archive errors of every kind end the same way
        return f" Downloading it from {url} failed: {err}."
    return ""
