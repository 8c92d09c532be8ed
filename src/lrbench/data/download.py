"""Downloading dataset files: urllib with a timeout, a rich progress bar, size and SHA-256 checks.

A file is written to a temporary ``.part`` file next to its destination, hashed while it streams,
and moved into place only when its size and SHA-256 match; a bad file is deleted, never kept.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from lrbench.data.core import DatasetError

__all__ = ["DownloadUnavailable", "download_file", "sha256_of"]

CHUNK = 1 << 16
DEFAULT_TIMEOUT = 30.0


class DownloadUnavailable(Exception):
    """The URL could not be fetched (offline, refused, HTTP error, timeout, cut short)."""


def sha256_of(path: Path) -> str:
    """The hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _progress_bar(enabled: bool):  # noqa: ANN202
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not enabled,
    )


def download_file(
    url: str,
    dest: Path,
    *,
    sha256: str | None,
    size: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool = True,
) -> Path:
    """Fetch ``url`` into ``dest`` and check it. Returns ``dest``.

    Raises DownloadUnavailable when the URL cannot be fetched, and DatasetError when what came
    back has the wrong size or SHA-256 (the partial file is removed in both cases).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        n = 0
        try:
            req = urllib.request.Request(url, headers={"User-Agent": "lrbench"})
            with urllib.request.urlopen(req, timeout=timeout) as resp, os.fdopen(fd, "wb") as out:
                fd = -1
                length = resp.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else size
                with _progress_bar(progress) as bar:
                    task = bar.add_task(dest.name, total=total)
                    while True:
                        chunk = resp.read(CHUNK)
                        if not chunk:
                            break
                        out.write(chunk)
                        h.update(chunk)
                        n += len(chunk)
                        bar.update(task, advance=len(chunk))
                if length and length.isdigit() and n != int(length):
                    raise DownloadUnavailable(
                        f"{url}: connection closed after {n} of {length} bytes"
                    )
        except urllib.error.HTTPError as e:
            raise DownloadUnavailable(f"{url}: HTTP {e.code} {e.reason}") from None
        except urllib.error.URLError as e:
            raise DownloadUnavailable(f"{url}: {e.reason}") from None
        except (OSError, http.client.HTTPException) as e:  # timeouts, resets, short reads
            raise DownloadUnavailable(f"{url}: {type(e).__name__}: {e}") from None
        if size is not None and n != size:
            raise DatasetError(
                f"{dest.name} downloaded from {url} has {n} bytes, expected {size}: removed it"
            )
        digest = h.hexdigest()
        if sha256 is not None and digest != sha256.lower():
            raise DatasetError(
                f"{dest.name} downloaded from {url} failed its SHA-256 check: expected {sha256},"
                f" got {digest}: removed it"
            )
        os.replace(tmp, dest)
        return dest
    finally:
        if fd != -1:
            os.close(fd)
        tmp.unlink(missing_ok=True)
