"""Readers for the datasets' real file formats, with strict validation.

- IDX (MNIST, Fashion-MNIST): ``0x00 0x00 <type> <ndim>``, then ndim big-endian uint32 sizes,
  then the data, big-endian, row-major. Gzip-compressed or raw (detected by the gzip magic
  bytes, not by the file name).
- CIFAR python pickles: a dict with ``b'data'`` (uint8, N x 3072: 1024 red, 1024 green, 1024
  blue values of a 32x32 image, row-major) and ``b'labels'`` (CIFAR-10) or ``b'fine_labels'``
  (CIFAR-100), lists of N ints; either extracted files or read straight from the .tar.gz.

Anything truncated, corrupted or inconsistent raises DatasetError naming the file and the problem.
Pickles are read with an unpickler that only builds numpy arrays, lists, dicts and strings, so a
tampered file cannot run code.
"""

from __future__ import annotations

import gzip
import io
import pickle
import tarfile
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from lrbench.data.core import DatasetError

__all__ = ["read_cifar_batch", "read_cifar_tar", "read_idx", "read_maybe_gzip"]

GZIP_MAGIC = b"\x1f\x8b"

# IDX type codes -> big-endian numpy dtypes.
IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_maybe_gzip(path: Path) -> bytes:
    """The bytes of a file, decompressed if it is gzip; DatasetError if the gzip is damaged."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DatasetError(f"{path}: cannot read: {e.strerror or e}") from None
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except EOFError:
        raise DatasetError(f"{path}: truncated gzip file (ends before the end-of-stream)") from None
    except (OSError, zlib.error) as e:  # gzip.BadGzipFile (CRC, length, header) is an OSError
        raise DatasetError(f"{path}: corrupted gzip file: {e}") from None


def read_idx(path: Path, *, ndim: int | None = None) -> np.ndarray:
    """An IDX file (gzip or raw) as a numpy array in native byte order.

    ``ndim``: the number of dimensions the file must have (3 for images, 1 for labels).
    Raises DatasetError for a bad magic number, an unknown type code, a wrong number of
    dimensions, or data that is shorter or longer than the header says.
    """
    path = Path(path)
    data = read_maybe_gzip(path)
    if len(data) < 4:
        raise DatasetError(f"{path}: not an IDX file: only {len(data)} bytes")
    magic = int.from_bytes(data[:4], "big")
    if data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES or data[3] == 0:
        raise DatasetError(
            f"{path}: not an IDX file: bad magic number 0x{magic:08x}"
            " (expected 0x0000TTDD: type TT, DD dimensions)"
        )
    dtype, nd = IDX_TYPES[data[2]], data[3]
    if ndim is not None and nd != ndim:
        raise DatasetError(
            f"{path}: IDX file has {nd} dimensions, expected {ndim}"
            f" (magic number 0x{magic:08x}; images are 0x00000803, labels 0x00000801)"
        )
    header = 4 + 4 * nd
    if len(data) < header:
        raise DatasetError(f"{path}: truncated IDX header ({len(data)} bytes)")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(nd))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    got = len(data) - header
    if got < expected:
        raise DatasetError(
            f"{path}: truncated IDX file: header says shape {shape} ({expected} data bytes)"
            f" but only {got} data bytes follow"
        )
    if got > expected:
        raise DatasetError(
            f"{path}: wrong size for an IDX file: header says shape {shape} ({expected} data"
            f" bytes) but {got} data bytes follow"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header, count=expected // dtype.itemsize)
    return arr.reshape(shape).astype(dtype.newbyteorder("="), copy=False)


# ----------------------------------------------------------------------------------------------
# CIFAR

# What a CIFAR pickle may contain: numpy arrays (old and new numpy module names) and the bytes
# helper protocol-2 pickles written by Python 3 use. Everything else is refused.
_SAFE_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: ANN201
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a dataset pickle")


def _unpickle(data: bytes, where: str) -> object:
    try:
        return _SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as e:  # pickle raises many kinds: UnpicklingError, EOFError, ValueError...
        raise DatasetError(f"{where}: bad pickle: {type(e).__name__}: {e}") from None


def _get(d: dict, key: str) -> object:
    if key.encode() in d:
        return d[key.encode()]
    return d.get(key)


def read_cifar_batch(
    data: bytes | Path, *, label_key: str, n_classes: int, where: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR python batch (the file's bytes or its path) as (images uint8 (N, 3, 32, 32),
    labels int64 (N,)). ``label_key``: 'labels' (CIFAR-10) or 'fine_labels' (CIFAR-100)."""
    if isinstance(data, Path):
        where = where or str(data)
        try:
            data = data.read_bytes()
        except OSError as e:
            raise DatasetError(f"{where}: cannot read: {e.strerror or e}") from None
    where = where or "CIFAR batch"
    obj = _unpickle(data, where)
    if not isinstance(obj, dict):
        raise DatasetError(f"{where}: not a CIFAR batch: the pickle holds a {type(obj).__name__}")
    x = _get(obj, "data")
    y = _get(obj, label_key)
    if x is None:
        raise DatasetError(f"{where}: not a CIFAR batch: no b'data' entry")
    if y is None:
        raise DatasetError(f"{where}: not a CIFAR batch: no b'{label_key}' entry")
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != 3072:
        raise DatasetError(
            f"{where}: b'data' must have shape (N, 3072) (32x32 RGB), got {x.shape}"
        )
    if x.dtype != np.uint8:
        if not np.issubdtype(x.dtype, np.integer) or x.size and (x.min() < 0 or x.max() > 255):
            raise DatasetError(f"{where}: b'data' must be uint8 pixels, got {x.dtype}")
        x = x.astype(np.uint8)
    try:
        labels = np.asarray(y)
    except Exception:
        raise DatasetError(f"{where}: b'{label_key}' is not a list of ints") from None
    if labels.ndim != 1 or (labels.size and not np.issubdtype(labels.dtype, np.integer)):
        raise DatasetError(f"{where}: b'{label_key}' is not a list of ints")
    if labels.shape[0] != x.shape[0]:
        raise DatasetError(
            f"{where}: {labels.shape[0]} labels for {x.shape[0]} images"
        )
    if x.shape[0] == 0:
        raise DatasetError(f"{where}: the batch has no images")
    labels = labels.astype(np.int64)
    check_labels(labels, n_classes, where)
    return x.reshape(-1, 3, 32, 32), labels


def read_cifar_tar(
    archive: Path, members: Iterable[str], *, label_key: str, n_classes: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The named batches (``'cifar-10-batches-py/data_batch_1'``, ...) of a CIFAR .tar.gz,
    read in one sequential pass without extracting anything to disk."""
    wanted = set(members)
    raw: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, mode="r|*") as tar:
            for m in tar:
                if m.name in wanted and m.isfile():
                    f = tar.extractfile(m)
                    if f is not None:
                        raw[m.name] = f.read()
    except EOFError:
        raise DatasetError(f"{archive}: truncated archive") from None
    except (tarfile.TarError, OSError, zlib.error) as e:
        raise DatasetError(f"{archive}: corrupted archive: {e}") from None
    missing = sorted(wanted - set(raw))
    if missing:
        raise DatasetError(f"{archive}: the archive lacks {', '.join(missing)}")
    return {
        name: read_cifar_batch(
            raw[name], label_key=label_key, n_classes=n_classes, where=f"{archive}:{name}"
        )
        for name in sorted(wanted)
    }


def check_labels(labels: np.ndarray, n_classes: int, where: str) -> None:
    """DatasetError unless every label is in [0, n_classes)."""
    if labels.size == 0:
        return
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= n_classes:
        bad = lo if lo < 0 else hi
        raise DatasetError(f"{where}: label {bad} out of range [0, {n_classes})")
