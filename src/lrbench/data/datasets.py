"""The datasets LRBench knows, where their files are found, and how they are loaded.

Names (case-insensitive; ``_`` and ``-`` are interchangeable): ``mnist``, ``fashion-mnist``,
``cifar10``, ``cifar100``, ``digits`` (scikit-learn's bundled 8x8 digits, always available
offline), ``synthetic`` (Gaussian blobs for tests).

Where files are looked for, in this order; the first place holding every file of the dataset is
used (a damaged file there is an error, not a reason to look further):

1. the ``root`` argument: ``root/<name>/``, then torchvision's ``root/MNIST/raw/`` or
   ``root/FashionMNIST/raw/``, then ``root/`` itself;
2. each directory in ``$LRBENCH_DATA`` (``os.pathsep``-separated): ``<dir>/<name>/`` and
   torchvision's layout (and ``<dir>/`` itself for CIFAR, whose file names are unambiguous;
   MNIST and Fashion-MNIST share file names, so they must sit in their own folders);
3. the user cache, ``platformdirs.user_cache_dir('lrbench')/datasets/<name>/``;
4. Fashion-MNIST only: the Debian package ``dataset-fashion-mnist``, which installs
   ``/usr/share/datasets/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``;
5. otherwise (``download=True``) the files are downloaded into the user cache from the canonical
   source, checked against the published size and SHA-256 (``CHECKSUMS``).

MNIST-style files are ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each gzipped (``.gz``, preferred) or
raw. CIFAR is the python version: the extracted ``cifar-10-batches-py/`` (``data_batch_1`` ..
``data_batch_5``, ``test_batch``) or ``cifar-100-python/`` (``train``, ``test``), or the
``cifar-10-python.tar.gz`` / ``cifar-100-python.tar.gz`` archive, read without extracting it.

Files found locally are validated by format (magic numbers, sizes against headers, label counts
and ranges), not hashed: the Debian package's Fashion-MNIST files, for instance, hold the same
data as the official ones but were re-compressed (the gzip header lacks the file name), so their
SHA-256 differs from the published one. Downloads are always hashed.

The download base URL can be replaced with the ``base_url`` argument or ``$LRBENCH_DATA_URL``
(a ``{name}`` in it is replaced by the dataset name), e.g. for a local mirror.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lrbench.data.core import (
    Dataset,
    DatasetError,
    DatasetInfo,
    DatasetNotFoundError,
    make_dataset,
)
from lrbench.data.download import DEFAULT_TIMEOUT, DownloadUnavailable, download_file
from lrbench.data.formats import check_labels, read_cifar_batch, read_cifar_tar, read_idx

__all__ = [
    "CHECKSUMS",
    "DATASET_NAMES",
    "DEBIAN_FASHION_MNIST_DIR",
    "cache_dir",
    "clear_cache",
    "dataset_info",
    "load_dataset",
]

ENV_DATA = "LRBENCH_DATA"
ENV_URL = "LRBENCH_DATA_URL"

#: Where the Debian/Ubuntu package ``dataset-fashion-mnist`` installs the four .gz files.
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
DEBIAN_FASHION_MNIST_PACKAGE = "dataset-fashion-mnist"

#: Published (size in bytes, SHA-256) of the official files. MNIST and Fashion-MNIST: TensorFlow
#: Datasets' url_checksums (the same MNIST values are used by torchvision's mirror users and
#: others); CIFAR python archives: the file_hash in Keras' cifar10/cifar100 loaders (also in
#: torchvision's prototype datasets). Not computed here: these are the values the publishers'
#: files are known by.
CHECKSUMS: dict[str, dict[str, tuple[int, str]]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": (
            9_912_422, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        "train-labels-idx1-ubyte.gz": (
            28_881, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
        "t10k-images-idx3-ubyte.gz": (
            1_648_877, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        "t10k-labels-idx1-ubyte.gz": (
            4_542, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": (
            26_421_880, "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
        "train-labels-idx1-ubyte.gz": (
            29_515, "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
        "t10k-images-idx3-ubyte.gz": (
            4_422_102, "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
        "t10k-labels-idx1-ubyte.gz": (
            5_148, "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
    },
    "cifar10": {
        "cifar-10-python.tar.gz": (
            170_498_071, "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"),
    },
    "cifar100": {
        "cifar-100-python.tar.gz": (
            169_001_437, "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7"),
    },
}

#: Canonical download locations (mirrors tried in order). yann.lecun.com refuses downloads now;
#: the MNIST mirrors below serve byte-identical files (same SHA-256).
URLS: dict[str, tuple[str, ...]] = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    "cifar10": ("https://www.cs.toronto.edu/~kriz/",),
    "cifar100": ("https://www.cs.toronto.edu/~kriz/",),
}

IDX_PARTS = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


@dataclass(frozen=True)
class _Cifar:
    folder: str
    archive: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    label_key: str


_CIFAR = {
    "cifar10": _Cifar(
        "cifar-10-batches-py", "cifar-10-python.tar.gz",
        tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",), "labels",
    ),
    "cifar100": _Cifar("cifar-100-python", "cifar-100-python.tar.gz", ("train",), ("test",),
                       "fine_labels"),
}

_TORCHVISION_DIRS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}

_INFO = {
    "mnist": DatasetInfo("mnist", 10, (1, 28, 28), 60_000, 10_000),
    "fashion-mnist": DatasetInfo("fashion-mnist", 10, (1, 28, 28), 60_000, 10_000),
    "cifar10": DatasetInfo("cifar10", 10, (3, 32, 32), 50_000, 10_000),
    "cifar100": DatasetInfo("cifar100", 100, (3, 32, 32), 50_000, 10_000),
}

DATASET_NAMES = ("mnist", "fashion-mnist", "cifar10", "cifar100", "digits", "synthetic")

_ALIASES = {
    "fashionmnist": "fashion-mnist",
    "fmnist": "fashion-mnist",
    "cifar-10": "cifar10",
    "cifar-100": "cifar100",
}


def canonical_name(name: str) -> str:
    """The canonical dataset name; ValueError listing the valid names for an unknown one."""
    if not isinstance(name, str):
        raise ValueError(f"dataset name must be a string, got {name!r}")
    key = name.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in DATASET_NAMES:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(DATASET_NAMES)}")
    return key


def cache_dir() -> Path:
    """``platformdirs.user_cache_dir('lrbench')/datasets``, where downloads go."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("lrbench")) / "datasets"


# ----------------------------------------------------------------------------------------------
# discovery


def _candidates(name: str, root: str | os.PathLike[str] | None) -> list[tuple[str, Path]]:
    """(where, directory) pairs to search, in order."""
    tv = _TORCHVISION_DIRS.get(name)
    out: list[tuple[str, Path]] = []
    if root is not None:
        r = Path(root).expanduser()
        out.append(("root", r / name))
        if tv:
            out.append(("root", r / tv / "raw"))
        out.append(("root", r))
    for entry in os.environ.get(ENV_DATA, "").split(os.pathsep):
        if entry.strip():
            e = Path(entry.strip()).expanduser()
            out.append((ENV_DATA, e / name))
            if tv:
                out.append((ENV_DATA, e / tv / "raw"))
            if name in _CIFAR:
                out.append((ENV_DATA, e))
    out.append(("cache", cache_dir() / name))
    if name == "fashion-mnist":
        out.append((f"Debian package {DEBIAN_FASHION_MNIST_PACKAGE}", DEBIAN_FASHION_MNIST_DIR))
    return out


def _idx_files(d: Path) -> tuple[dict[str, Path], list[str]]:
    """The IDX files in d (gz preferred over raw) and the base names missing."""
    found: dict[str, Path] = {}
    missing: list[str] = []
    for part, base in IDX_PARTS.items():
        for candidate in (d / f"{base}.gz", d / base):
            if candidate.is_file():
                found[part] = candidate
                break
        else:
            missing.append(base)
    return found, missing


def _cifar_location(name: str, d: Path) -> tuple[str, Path] | None:
    """('dir', folder) or ('tar', archive) for CIFAR files in d, or None."""
    spec = _CIFAR[name]
    members = spec.train + spec.test
    for folder in (d / spec.folder, d):
        if all((folder / m).is_file() for m in members):
            return "dir", folder
    if (d / spec.archive).is_file():
        return "tar", d / spec.archive
    return None


def _find(name: str, root: Any) -> tuple[tuple[str, Any] | None, list[str]]:
    """The first location holding the whole dataset, and notes on the places searched."""
    notes: list[str] = []
    for where, d in _candidates(name, root):
        if name in _CIFAR:
            loc = _cifar_location(name, d)
            if loc is not None:
                return loc, notes
            notes.append(f"{where}: {d}")
        else:
            found, missing = _idx_files(d)
            if not missing:
                return ("idx", found), notes
            partial = ""
            if found:
                partial = f" (has {len(found)} of 4 files; missing {', '.join(missing)})"
            notes.append(f"{where}: {d}{partial}")
    return None, notes


def _base_urls(name: str, base_url: str | None) -> tuple[str, ...]:
    override = base_url if base_url is not None else os.environ.get(ENV_URL) or None
    if override:
        return (override.replace("{name}", name),)
    return URLS[name]


def _join(base: str, file: str) -> str:
    return base.rstrip("/") + "/" + file


def _download_all(
    name: str, files: list[str], base_url: str | None, timeout: float, progress: bool,
    notes: list[str],
) -> Path:
    """Download the named files into the cache; DatasetNotFoundError if unreachable."""
    target = cache_dir() / name
    for file in files:
        if (target / file).is_file():
            continue
        size, sha = CHECKSUMS[name][file]
        failures: list[str] = []
        bad: list[DatasetError] = []
        for base in _base_urls(name, base_url):
            url = _join(base, file)
            try:
                download_file(url, target / file, sha256=sha, size=size, timeout=timeout,
                              progress=progress)
                break
            except DownloadUnavailable as e:
                failures.append(str(e))
            except DatasetError as e:  # wrong size or checksum: try the next mirror
                bad.append(e)
                failures.append(str(e))
        else:
            if bad:
                raise DatasetError("; ".join(str(b) for b in bad))
            raise _not_found(name, file, notes, "download failed: " + "; ".join(failures), base_url)
    return target


def _not_found(
    name: str, file: str, notes: list[str], why: str, base_url: str | None
) -> DatasetNotFoundError:
    urls = " or ".join(_join(b, file) for b in _base_urls(name, base_url))
    lines = [f"{name}: cannot find {file}."]
    if notes:
        lines.append("Searched: " + "; ".join(notes) + ".")
    lines.append(why[:1].upper() + why[1:] + ".")
    how = [
        f"download {urls} (and the dataset's other files) into {cache_dir() / name}",
        f"or put them in a directory <dir>/{name}/ and set {ENV_DATA}=<dir>",
        "or pass root=<dir> to load_dataset",
    ]
    if name == "fashion-mnist":
        how.append(
            f"or install the Debian/Ubuntu package: apt-get install {DEBIAN_FASHION_MNIST_PACKAGE}"
            f" (files in {DEBIAN_FASHION_MNIST_DIR})"
        )
    lines.append("To get it: " + ", ".join(how) + ".")
    return DatasetNotFoundError("\n".join(lines))


# ----------------------------------------------------------------------------------------------
# loaders


def _load_idx(name: str, files: dict[str, Path]) -> Dataset:
    n_classes = _INFO[name].n_classes
    h, w = _INFO[name].input_shape[1:]
    split: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for s in ("train", "test"):
        ip, lp = files[f"{s}_images"], files[f"{s}_labels"]
        images = read_idx(ip, ndim=3)
        labels = read_idx(lp, ndim=1)
        if images.shape[1:] != (h, w):
            raise DatasetError(f"{ip}: images are {images.shape[1:]}, expected {(h, w)}")
        if images.dtype != np.uint8:
            raise DatasetError(f"{ip}: images must be unsigned bytes, got {images.dtype}")
        if images.shape[0] == 0:
            raise DatasetError(f"{ip}: the file has no images")
        if not np.issubdtype(labels.dtype, np.integer):
            raise DatasetError(f"{lp}: labels must be integers, got {labels.dtype}")
        if labels.shape[0] != images.shape[0]:
            raise DatasetError(
                f"{lp}: {labels.shape[0]} labels for {images.shape[0]} images in {ip.name}"
            )
        check_labels(labels, n_classes, str(lp))
        split[s] = images[:, None, :, :], labels.astype(np.int64)
    source = str(files["train_images"].parent)
    return make_dataset(name, n_classes, *split["train"], *split["test"], source=source)


def _load_cifar(name: str, kind: str, path: Path) -> Dataset:
    spec = _CIFAR[name]
    n_classes = _INFO[name].n_classes
    if kind == "tar":
        members = [f"{spec.folder}/{m}" for m in spec.train + spec.test]
        batches = read_cifar_tar(path, members, label_key=spec.label_key, n_classes=n_classes)
        get: Callable[[str], tuple[np.ndarray, np.ndarray]] = (
            lambda m: batches[f"{spec.folder}/{m}"]
        )
    else:
        def get(m: str) -> tuple[np.ndarray, np.ndarray]:
            return read_cifar_batch(path / m, label_key=spec.label_key, n_classes=n_classes)

    parts = {}
    for s, members in (("train", spec.train), ("test", spec.test)):
        loaded = [get(m) for m in members]
        parts[s] = (
            np.concatenate([x for x, _ in loaded]),
            np.concatenate([y for _, y in loaded]),
        )
    return make_dataset(name, n_classes, *parts["train"], *parts["test"], source=str(path))


def _whole(value: Any, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{what} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def _stratified_split(y: np.ndarray, n_test: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, test indices), sorted; each class gets its share of the test set
    (largest remainder), drawn with numpy's default_rng(seed)."""
    classes, counts = np.unique(y, return_counts=True)
    quota = counts * n_test / y.shape[0]
    k = np.floor(quota).astype(int)
    short = n_test - int(k.sum())
    order = sorted(range(len(classes)), key=lambda i: (-(quota[i] - k[i]), i))
    for i in order[:short]:
        k[i] += 1
    rng = np.random.default_rng(seed)
    test = np.concatenate(
        [rng.permutation(np.flatnonzero(y == c))[:kc] for c, kc in zip(classes, k)]
    )
    test.sort()
    train = np.setdiff1d(np.arange(y.shape[0]), test)
    return train, test


def _load_digits(n_test: int = 450, seed: int = 0) -> Dataset:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError(
            "the 'digits' dataset needs scikit-learn: pip install 'lrbench[torch]'"
        ) from None
    n_test = _whole(n_test, "n_test", 1)
    seed = _whole(seed, "seed", 0)
    bunch = load_digits()
    x = np.asarray(bunch.data, dtype=np.float64).reshape(-1, 1, 8, 8)  # pixels 0..16
    y = np.asarray(bunch.target, dtype=np.int64)
    if n_test >= y.shape[0]:
        raise ValueError(f"n_test must be below {y.shape[0]}, got {n_test}")
    tr, te = _stratified_split(y, n_test, seed)
    return make_dataset("digits", 10, x[tr], y[tr], x[te], y[te], source="scikit-learn")


def _synthetic_params(
    n_classes: int = 10,
    input_shape: tuple[int, int, int] | list[int] = (1, 8, 8),
    n_train: int = 1000,
    n_test: int = 500,
    seed: int = 0,
    noise: float = 2.0,
) -> dict[str, Any]:
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if shape is None or len(shape) != 3:
        raise ValueError(f"input_shape must be (C, H, W), got {input_shape!r}")
    shape = tuple(_whole(s, "input_shape entries", 1) for s in shape)
    noise_f = float(noise)
    if not math.isfinite(noise_f) or noise_f < 0:
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    return dict(
        n_classes=_whole(n_classes, "n_classes", 2), input_shape=shape,
        n_train=_whole(n_train, "n_train", 1), n_test=_whole(n_test, "n_test", 1),
        seed=_whole(seed, "seed", 0), noise=noise_f,
    )


def _load_synthetic(**kwargs: Any) -> Dataset:
    """Gaussian blobs: class c has centre m_c ~ N(0, I) in C*H*W dimensions, and a sample of
    class c is m_c + noise * N(0, I). Classes are balanced (label i % n_classes, shuffled).
    Deterministic from ``seed``: the train set is drawn first, then the test set."""
    p = _synthetic_params(**kwargs)
    rng = np.random.default_rng(p["seed"])
    d = int(np.prod(p["input_shape"]))
    centres = rng.standard_normal((p["n_classes"], d))

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.permutation(np.arange(n) % p["n_classes"]).astype(np.int64)
        x = centres[y] + p["noise"] * rng.standard_normal((n, d))
        return x.reshape(n, *p["input_shape"]), y

    train, test = draw(p["n_train"]), draw(p["n_test"])
    return make_dataset("synthetic", p["n_classes"], *train, *test, source="synthetic")


# ----------------------------------------------------------------------------------------------
# public API

_CACHE: dict[tuple[Any, ...], Dataset] = {}
_LOCK = threading.Lock()

_KWARGS = {
    "digits": ("n_test", "seed"),
    "synthetic": ("n_classes", "input_shape", "n_train", "n_test", "seed", "noise"),
}


def _check_kwargs(name: str, kwargs: dict[str, Any]) -> None:
    allowed = _KWARGS.get(name, ())
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        accepted = ", ".join(allowed) if allowed else "none"
        raise ValueError(
            f"dataset {name!r} takes no argument {', '.join(map(repr, unknown))};"
            f" accepted: {accepted}"
        )


def _freeze_key(kwargs: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in kwargs.items()))


def dataset_info(name: str, **kwargs: Any) -> DatasetInfo:
    """What ``load_dataset(name, **kwargs)`` gives, without reading any file.

    For the file-based datasets these are the official sizes (a local copy with other sizes
    loads with its own, in ``Dataset.info``).

    >>> dataset_info("digits")
    DatasetInfo(name='digits', n_classes=10, input_shape=(1, 8, 8), n_train=1347, n_test=450)
    """
    key = canonical_name(name)
    _check_kwargs(key, kwargs)
    if key in _INFO:
        return _INFO[key]
    if key == "digits":
        n_test = _whole(kwargs.get("n_test", 450), "n_test", 1)
        if n_test >= 1797:
            raise ValueError(f"n_test must be below 1797, got {n_test}")
        return DatasetInfo("digits", 10, (1, 8, 8), 1797 - n_test, n_test)
    p = _synthetic_params(**kwargs)
    return DatasetInfo("synthetic", p["n_classes"], p["input_shape"], p["n_train"], p["n_test"])


def load_dataset(
    name: str,
    root: str | os.PathLike[str] | None = None,
    download: bool = True,
    *,
    base_url: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool = True,
    cache: bool = True,
    **kwargs: Any,
) -> Dataset:
    """Load a dataset by name: find its files (see the module docstring), validate, normalize.

    ``root``: a directory searched first. ``download``: fetch missing files into the user cache
    (from ``base_url`` / ``$LRBENCH_DATA_URL`` if given, else the canonical source) and check
    their SHA-256; with ``download=False`` a missing dataset raises DatasetNotFoundError.
    ``timeout``: seconds per network operation. ``progress``: show a progress bar while
    downloading. ``cache``: reuse the Dataset already loaded in this process from the same
    place with the same arguments (its arrays are read-only).
    ``kwargs``: ``digits``: ``n_test=450, seed=0`` (the stratified split); ``synthetic``:
    ``n_classes=10, input_shape=(1, 8, 8), n_train=1000, n_test=500, seed=0, noise=2.0``.

    Raises ValueError for an unknown name or argument, DatasetError for a damaged or
    inconsistent file, DatasetNotFoundError (also a FileNotFoundError) when the files are
    missing and cannot be downloaded.

    >>> ds = load_dataset("synthetic", n_train=100, n_test=20, seed=1)
    >>> ds.train_x.shape, ds.train_x.dtype, ds.train_y.dtype, ds.info.n_classes
    ((100, 1, 8, 8), dtype('float32'), dtype('int64'), 10)
    """
    key = canonical_name(name)
    _check_kwargs(key, kwargs)
    if key in ("digits", "synthetic"):
        location: tuple[Any, ...] = (key,)
        loader: Callable[[], Dataset] = (
            (lambda: _load_digits(**kwargs)) if key == "digits"
            else (lambda: _load_synthetic(**kwargs))
        )
    else:
        found, notes = _find(key, root)
        if found is None:
            files = list(CHECKSUMS[key])
            if not download:
                first = _first_missing(key)
                raise _not_found(key, first, notes, "download=False, so nothing was downloaded",
                                 base_url)
            target = _download_all(key, files, base_url, timeout, progress, notes)
            found = ("idx", _idx_files(target)[0]) if key not in _CIFAR else (
                "tar", target / _CIFAR[key].archive
            )
        kind, where = found
        if kind == "idx":
            location = (kind, tuple(str(Path(p).resolve()) for p in where.values()))
            loader = lambda: _load_idx(key, where)  # noqa: E731
        else:
            location = (kind, str(Path(where).resolve()))
            loader = lambda: _load_cifar(key, kind, where)  # noqa: E731
    cache_key = (key, location, _freeze_key(kwargs))
    if cache:
        with _LOCK:
            hit = _CACHE.get(cache_key)
        if hit is not None:
            return hit
    ds = loader().freeze()
    if cache:
        with _LOCK:
            ds = _CACHE.setdefault(cache_key, ds)
    return ds


def _first_missing(name: str) -> str:
    """The first file of the dataset missing from the preferred download place (for messages)."""
    if name in _CIFAR:
        return _CIFAR[name].archive
    _, missing = _idx_files(cache_dir() / name)
    return f"{missing[0]}.gz" if missing else f"{IDX_PARTS['train_images']}.gz"


def clear_cache() -> None:
    """Forget every Dataset loaded in this process."""
    with _LOCK:
        _CACHE.clear()
