"""Datasets: the real file formats written small by the tests, damaged files, discovery order,
downloads from a local HTTP server, digits and synthetic sets, and batching."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import pickle
import socket
import subprocess
import sys
import tarfile
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

import lrbench.data.datasets as dsmod
from lrbench.data import (
    CHECKSUMS,
    Dataset,
    DatasetError,
    DatasetInfo,
    DatasetNotFoundError,
    cache_dir,
    clear_cache,
    dataset_info,
    load_dataset,
)
from lrbench.data.formats import read_idx

PARTS = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No real data: empty cache, no LRBENCH_DATA, no URL override, no Debian files."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("LRBENCH_DATA", raising=False)
    monkeypatch.delenv("LRBENCH_DATA_URL", raising=False)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(dsmod, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "no-debian")
    clear_cache()
    yield
    clear_cache()


# ----------------------------------------------------------------------------------------------
# writing the real formats


def idx_bytes(a: np.ndarray, type_code: int = 0x08) -> bytes:
    dt = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[type_code]
    header = bytes([0, 0, type_code, a.ndim]) + b"".join(
        int(s).to_bytes(4, "big") for s in a.shape
    )
    return header + np.ascontiguousarray(a, dtype=dt).tobytes()


def write_mnist(d: Path, n_train=30, n_test=10, gz=True, seed=0, side=28, n_classes=10):
    """Four IDX files in d; returns the raw arrays."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, side, side), dtype=np.uint8),
        "train_labels": rng.integers(0, n_classes, n_train).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, side, side), dtype=np.uint8),
        "test_labels": rng.integers(0, n_classes, n_test).astype(np.uint8),
    }
    d.mkdir(parents=True, exist_ok=True)
    for part, base in PARTS.items():
        data = idx_bytes(arrays[part])
        if gz:
            (d / f"{base}.gz").write_bytes(gzip.compress(data, mtime=0))
        else:
            (d / base).write_bytes(data)
    return arrays


def normalized(train: np.ndarray, other: np.ndarray) -> np.ndarray:
    """other standardized with train's mean and std (one channel), computed independently."""
    t = train.astype(np.float64)
    return ((other.astype(np.float64) - t.mean()) / t.std()).astype(np.float32)


def cifar_batch(n: int, seed: int, label_key: bytes = b"labels", n_classes: int = 10,
                protocol: int = 2) -> tuple[bytes, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, n_classes, n)]
    d = {b"batch_label": b"testing batch", label_key: labels, b"data": data,
         b"filenames": [b"img_%d.png" % i for i in range(n)]}
    if label_key == b"fine_labels":
        d[b"coarse_labels"] = [v // 5 for v in labels]
    return pickle.dumps(d, protocol=protocol), data, np.array(labels)


def write_cifar10(d: Path, sizes=(4, 3, 5, 2, 4), n_test=6):
    """cifar-10-batches-py/ in d; returns (train data, train labels, test data, test labels)."""
    folder = d / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    xs, ys = [], []
    for i, n in enumerate(sizes, start=1):
        raw, x, y = cifar_batch(n, seed=i)
        (folder / f"data_batch_{i}").write_bytes(raw)
        xs.append(x)
        ys.append(y)
    raw, tx, ty = cifar_batch(n_test, seed=99)
    (folder / "test_batch").write_bytes(raw)
    return np.concatenate(xs), np.concatenate(ys), tx, ty


def make_tar(src_dir: Path, folder: str, archive: Path) -> None:
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src_dir / folder, arcname=folder)


# ----------------------------------------------------------------------------------------------
# IDX (MNIST, Fashion-MNIST)


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
def test_idx_dataset_loads_and_normalizes(tmp_path, gz):
    arrays = write_mnist(tmp_path / "mnist", gz=gz)
    ds = load_dataset("mnist", root=tmp_path, download=False)
    assert isinstance(ds, Dataset)
    assert ds.info == DatasetInfo("mnist", 10, (1, 28, 28), 30, 10)
    assert ds.train_x.dtype == np.float32 and ds.train_x.shape == (30, 1, 28, 28)
    assert ds.test_x.shape == (10, 1, 28, 28)
    assert ds.train_y.dtype == np.int64
    np.testing.assert_array_equal(ds.train_y, arrays["train_labels"])
    np.testing.assert_array_equal(ds.test_y, arrays["test_labels"])
    tr = arrays["train_images"]
    np.testing.assert_allclose(ds.train_x[:, 0], normalized(tr, tr), atol=1e-5)
    np.testing.assert_allclose(ds.test_x[:, 0], normalized(tr, arrays["test_images"]), atol=1e-5)
    assert ds.mean == pytest.approx([tr.mean()])
    assert ds.std == pytest.approx([tr.std()])
    assert abs(float(ds.train_x.mean())) < 1e-5
    assert float(ds.train_x.std()) == pytest.approx(1, rel=1e-4)


def test_fashion_mnist_uses_the_same_reader(tmp_path):
    write_mnist(tmp_path / "fashion-mnist", n_train=12, n_test=4)
    ds = load_dataset("Fashion_MNIST", root=tmp_path, download=False)
    assert ds.info.name == "fashion-mnist" and ds.info.n_train == 12


@pytest.mark.parametrize("code", [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E])
def test_read_idx_every_type(tmp_path, code):
    a = (np.arange(24).reshape(2, 3, 4) - 5).astype(np.float64)
    if code == 0x08:
        a = np.abs(a)
    p = tmp_path / "x-idx3"
    p.write_bytes(idx_bytes(a, code))
    got = read_idx(p, ndim=3)
    np.testing.assert_array_equal(got, a)
    assert got.dtype.isnative


def _corrupt(kind: str, d: Path) -> tuple[str, str]:
    """Damage the dataset in d; returns (file named in the error, problem in the error)."""
    img, lab = d / "train-images-idx3-ubyte", d / "train-labels-idx1-ubyte"
    gz = img.with_name(img.name + ".gz")
    if kind == "bad magic":
        data = bytearray(img.read_bytes())
        data[0:4] = b"\x12\x34\x08\x03"
        img.write_bytes(bytes(data))
        return img.name, "bad magic number 0x12340803"
    if kind == "unknown type":
        data = bytearray(img.read_bytes())
        data[2] = 0x07
        img.write_bytes(bytes(data))
        return img.name, "bad magic number 0x00000703"
    if kind == "truncated":
        img.write_bytes(img.read_bytes()[:-100])
        return img.name, "truncated IDX file: header says shape \\(30, 28, 28\\)"
    if kind == "too long":
        img.write_bytes(img.read_bytes() + b"\0" * 7)
        return img.name, "wrong size for an IDX file"
    if kind == "labels are images":
        lab.write_bytes(img.read_bytes())
        return lab.name, "3 dimensions, expected 1"
    if kind == "label count":
        lab.write_bytes(idx_bytes(np.zeros(29, dtype=np.uint8)))
        return lab.name, "29 labels for 30 images"
    if kind == "label range":
        labels = np.zeros(30, dtype=np.uint8)
        labels[17] = 10
        lab.write_bytes(idx_bytes(labels))
        return lab.name, "label 10 out of range \\[0, 10\\)"
    if kind == "image size":
        img.write_bytes(idx_bytes(np.zeros((30, 27, 27), dtype=np.uint8)))
        return img.name, "expected \\(28, 28\\)"
    if kind == "empty file":
        img.write_bytes(b"")
        return img.name, "only 0 bytes"
    if kind == "truncated gzip":
        img.unlink()
        data = gzip.compress(idx_bytes(np.zeros((30, 28, 28), np.uint8)), mtime=0)
        gz.write_bytes(data[: len(data) // 2])
        return gz.name, "truncated gzip"
    if kind == "gzip crc":
        img.unlink()
        data = bytearray(gzip.compress(idx_bytes(np.zeros((30, 28, 28), np.uint8)), mtime=0))
        data[-8] ^= 0xFF  # the CRC-32 in the trailer
        gz.write_bytes(bytes(data))
        return gz.name, "corrupted gzip file: CRC check failed"
    raise AssertionError(kind)


CORRUPTIONS = ["bad magic", "unknown type", "truncated", "too long", "labels are images",
               "label count", "label range", "image size", "empty file", "truncated gzip",
               "gzip crc"]


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_damaged_idx_files_raise_naming_file_and_problem(tmp_path, kind):
    d = tmp_path / "mnist"
    write_mnist(d, gz=False)
    name, problem = _corrupt(kind, d)
    with pytest.raises(DatasetError, match=problem) as e:
        load_dataset("mnist", root=tmp_path, download=False)
    assert name in str(e.value)


# ----------------------------------------------------------------------------------------------
# CIFAR


def _expected_cifar(x: np.ndarray, train: np.ndarray) -> np.ndarray:
    img, tr = x.reshape(-1, 3, 32, 32).astype(np.float64), train.reshape(-1, 3, 32, 32)
    mean = tr.mean(axis=(0, 2, 3), keepdims=True)
    std = tr.std(axis=(0, 2, 3), keepdims=True)
    return ((img - mean) / std).astype(np.float32)


def test_cifar10_extracted_batches(tmp_path):
    x, y, tx, ty = write_cifar10(tmp_path)
    ds = load_dataset("CIFAR-10", root=tmp_path, download=False)
    assert ds.info == DatasetInfo("cifar10", 10, (3, 32, 32), 18, 6)
    np.testing.assert_array_equal(ds.train_y, y)
    np.testing.assert_array_equal(ds.test_y, ty)
    np.testing.assert_allclose(ds.train_x, _expected_cifar(x, x), atol=1e-5)
    np.testing.assert_allclose(ds.test_x, _expected_cifar(tx, x), atol=1e-5)
    # the first 1024 values of a row are the red plane of a 32x32 image, row-major
    red = x[0, :1024].reshape(32, 32).astype(np.float64)
    assert ds.mean[0] == pytest.approx(x[:, :1024].mean())
    np.testing.assert_allclose(ds.train_x[0, 0], (red - ds.mean[0]) / ds.std[0], atol=1e-5)


def test_cifar10_archive_equals_extracted(tmp_path):
    src = tmp_path / "src"
    write_cifar10(src)
    (tmp_path / "arch").mkdir()
    make_tar(src, "cifar-10-batches-py", tmp_path / "arch" / "cifar-10-python.tar.gz")
    a = load_dataset("cifar10", root=src, download=False)
    b = load_dataset("cifar10", root=tmp_path / "arch", download=False)
    assert b.source.endswith("cifar-10-python.tar.gz")
    np.testing.assert_array_equal(a.train_x, b.train_x)
    np.testing.assert_array_equal(a.test_y, b.test_y)


def test_cifar100_fine_labels(tmp_path):
    folder = tmp_path / "cifar100" / "cifar-100-python"
    folder.mkdir(parents=True)
    raw, x, y = cifar_batch(7, 1, b"fine_labels", 100)
    (folder / "train").write_bytes(raw)
    raw, tx, ty = cifar_batch(3, 2, b"fine_labels", 100)
    (folder / "test").write_bytes(raw)
    ds = load_dataset("cifar100", root=tmp_path, download=False)
    assert ds.info == DatasetInfo("cifar100", 100, (3, 32, 32), 7, 3)
    np.testing.assert_array_equal(ds.train_y, y)


@pytest.mark.parametrize("protocol, old_numpy", [(0, True), (2, True), (2, False), (4, False),
                                                 (5, False)])
def test_cifar_pickles_from_any_protocol_and_old_numpy(tmp_path, protocol, old_numpy):
    write_cifar10(tmp_path)
    raw, x, y = cifar_batch(4, 1, protocol=protocol)
    if old_numpy:
        # pickles written by numpy 1.x (like the real files) name numpy.core, not numpy._core
        # (a text opcode in protocols 0-2, so the bytes can be swapped in place)
        assert b"numpy._core" in raw
        raw = raw.replace(b"numpy._core", b"numpy.core")
    (tmp_path / "cifar-10-batches-py" / "data_batch_1").write_bytes(raw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ds = load_dataset("cifar10", root=tmp_path, download=False)
    np.testing.assert_array_equal(ds.train_y[:4], y)


def _cifar_damage(kind: str, batch: Path) -> str:
    if kind == "garbage":
        batch.write_bytes(b"this is not a pickle")
        return "bad pickle"
    if kind == "truncated":
        batch.write_bytes(batch.read_bytes()[:500])
        return "bad pickle"
    if kind == "evil global":
        batch.write_bytes(b"cos\nsystem\n(S'echo hacked'\ntR.")
        return "refusing to load os.system"
    if kind == "not a dict":
        batch.write_bytes(pickle.dumps([1, 2, 3]))
        return "holds a list"
    if kind == "no labels":
        batch.write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}))
        return "no b'labels' entry"
    if kind == "label count":
        batch.write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1]}))
        return "1 labels for 2 images"
    if kind == "label range":
        batch.write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8),
                                        b"labels": [1, 10]}))
        return "label 10 out of range"
    if kind == "data shape":
        batch.write_bytes(pickle.dumps({b"data": np.zeros((2, 3000), np.uint8),
                                        b"labels": [1, 2]}))
        return "shape \\(N, 3072\\)"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["garbage", "truncated", "evil global", "not a dict",
                                  "no labels", "label count", "label range", "data shape"])
def test_damaged_cifar_batches_raise(tmp_path, kind):
    write_cifar10(tmp_path)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    problem = _cifar_damage(kind, batch)
    with pytest.raises(DatasetError, match=problem) as e:
        load_dataset("cifar10", root=tmp_path, download=False)
    assert "data_batch_3" in str(e.value)


def test_damaged_cifar_archive_raises(tmp_path):
    src = tmp_path / "src"
    write_cifar10(src)
    arch = tmp_path / "arch" / "cifar-10-python.tar.gz"
    arch.parent.mkdir()
    make_tar(src, "cifar-10-batches-py", arch)
    whole = arch.read_bytes()
    arch.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DatasetError, match="cifar-10-python.tar.gz: (truncated|corrupted)"):
        load_dataset("cifar10", root=arch.parent, download=False)
    # an archive without the test batch
    (src / "cifar-10-batches-py" / "test_batch").unlink()
    make_tar(src, "cifar-10-batches-py", arch)
    with pytest.raises(DatasetError, match="lacks cifar-10-batches-py/test_batch"):
        load_dataset("cifar10", root=arch.parent, download=False)
    # a batch damaged inside the archive is named with the archive
    write_cifar10(src)
    _cifar_damage("label range", src / "cifar-10-batches-py" / "data_batch_2")
    make_tar(src, "cifar-10-batches-py", arch)
    with pytest.raises(DatasetError, match="tar.gz:cifar-10-batches-py/data_batch_2: label 10"):
        load_dataset("cifar10", root=arch.parent, download=False)


# ----------------------------------------------------------------------------------------------
# discovery


def test_discovery_order(tmp_path, monkeypatch):
    root, env, debian = tmp_path / "root", tmp_path / "env", tmp_path / "debian"
    write_mnist(root / "fashion-mnist", n_train=11)
    write_mnist(env / "fashion-mnist", n_train=12)
    write_mnist(cache_dir() / "fashion-mnist", n_train=13)
    write_mnist(debian, n_train=14)
    monkeypatch.setenv("LRBENCH_DATA", str(env))
    monkeypatch.setattr(dsmod, "DEBIAN_FASHION_MNIST_DIR", debian)

    def n_train(**kw):
        return load_dataset("fashion-mnist", download=False, cache=False, **kw).info.n_train

    assert n_train(root=root) == 11
    assert n_train() == 12  # no root: LRBENCH_DATA first
    assert n_train(root=tmp_path / "empty") == 12  # a root without the files is skipped
    monkeypatch.delenv("LRBENCH_DATA")
    assert n_train() == 13
    for f in (cache_dir() / "fashion-mnist").iterdir():
        f.unlink()
    assert n_train() == 14
    # the Debian location is only for Fashion-MNIST
    with pytest.raises(DatasetNotFoundError):
        load_dataset("mnist", download=False)


def test_cache_dir_follows_platformdirs(tmp_path):
    assert cache_dir() == tmp_path / "xdg-cache" / "lrbench" / "datasets"


def test_root_layouts(tmp_path):
    write_mnist(tmp_path / "a", n_train=5)  # files directly in root
    write_mnist(tmp_path / "b" / "MNIST" / "raw", n_train=6)  # torchvision's layout
    assert load_dataset("mnist", root=tmp_path / "a", download=False).info.n_train == 5
    assert load_dataset("mnist", root=tmp_path / "b", download=False).info.n_train == 6


def test_env_dir_must_separate_mnist_from_fashion(tmp_path, monkeypatch):
    # MNIST and Fashion-MNIST share file names: loose files in $LRBENCH_DATA are not guessed at
    write_mnist(tmp_path / "env", n_train=5)
    monkeypatch.setenv("LRBENCH_DATA", str(tmp_path / "env"))
    with pytest.raises(DatasetNotFoundError):
        load_dataset("fashion-mnist", download=False)
    write_mnist(tmp_path / "env" / "mnist", n_train=7)
    assert load_dataset("mnist", download=False).info.n_train == 7


def test_damaged_first_location_is_an_error_not_a_fallback(tmp_path, monkeypatch):
    write_mnist(tmp_path / "root" / "mnist", gz=False)
    _corrupt("truncated", tmp_path / "root" / "mnist")
    write_mnist(tmp_path / "env" / "mnist")
    monkeypatch.setenv("LRBENCH_DATA", str(tmp_path / "env"))
    with pytest.raises(DatasetError, match="truncated"):
        load_dataset("mnist", root=tmp_path / "root", download=False)


def test_not_found_message_names_file_places_and_remedies(tmp_path):
    d = tmp_path / "root" / "fashion-mnist"
    write_mnist(d)
    (d / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError) as e:
        load_dataset("fashion-mnist", root=tmp_path / "root", download=False)
    msg = str(e.value)
    assert isinstance(e.value, FileNotFoundError) and isinstance(e.value, ValueError)
    assert "train-images-idx3-ubyte.gz" in msg
    assert "has 3 of 4 files; missing t10k-labels-idx1-ubyte" in msg
    assert "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/" in msg
    assert "LRBENCH_DATA" in msg and "apt-get install dataset-fashion-mnist" in msg
    assert str(cache_dir() / "fashion-mnist") in msg


def test_in_memory_cache(tmp_path):
    write_mnist(tmp_path / "mnist")
    a = load_dataset("mnist", root=tmp_path, download=False)
    b = load_dataset("MNIST", root=tmp_path, download=False)
    assert a is b
    assert not a.train_x.flags.writeable and not a.train_y.flags.writeable
    with pytest.raises(ValueError):
        a.train_x[0, 0, 0, 0] = 1.0
    assert load_dataset("mnist", root=tmp_path, download=False, cache=False) is not a
    clear_cache()
    assert load_dataset("mnist", root=tmp_path, download=False) is not a


# ----------------------------------------------------------------------------------------------
# downloads from a local server


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # noqa: D102
        pass


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/www; yields (base URL, directory)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(_Quiet, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", www
    httpd.shutdown()
    httpd.server_close()


def _publish(monkeypatch, name: str, d: Path) -> None:
    """Make the checksum table describe the small files in d."""
    table = {
        f.name: (f.stat().st_size, hashlib.sha256(f.read_bytes()).hexdigest())
        for f in sorted(d.iterdir())
    }
    monkeypatch.setitem(CHECKSUMS, name, table)


def test_download_with_good_checksums(server, monkeypatch):
    url, www = server
    arrays = write_mnist(www / "mnist", n_train=20)
    _publish(monkeypatch, "mnist", www / "mnist")
    ds = load_dataset("mnist", base_url=url + "/{name}/", progress=False)
    np.testing.assert_array_equal(ds.train_y, arrays["train_labels"])
    for base in PARTS.values():
        assert (cache_dir() / "mnist" / f"{base}.gz").read_bytes() == (
            www / "mnist" / f"{base}.gz"
        ).read_bytes()
    assert not list((cache_dir() / "mnist").glob("*.part"))
    # found in the cache from now on, without the network
    clear_cache()
    assert load_dataset("mnist", download=False).info.n_train == 20


def test_download_url_from_environment(server, monkeypatch):
    url, www = server
    write_mnist(www / "fashion", n_train=9)
    _publish(monkeypatch, "fashion-mnist", www / "fashion")
    monkeypatch.setenv("LRBENCH_DATA_URL", url + "/fashion")
    assert load_dataset("fashion-mnist", progress=False).info.n_train == 9


def test_download_with_bad_checksum_keeps_nothing(server, monkeypatch):
    url, www = server
    write_mnist(www / "mnist")
    _publish(monkeypatch, "mnist", www / "mnist")
    size, _ = CHECKSUMS["mnist"]["t10k-images-idx3-ubyte.gz"]
    monkeypatch.setitem(CHECKSUMS["mnist"], "t10k-images-idx3-ubyte.gz", (size, "0" * 64))
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte.gz .*failed its SHA-256 check"):
        load_dataset("mnist", base_url=url + "/mnist", progress=False)
    assert not (cache_dir() / "mnist" / "t10k-images-idx3-ubyte.gz").exists()
    assert not list((cache_dir() / "mnist").glob("*.part"))


def test_download_with_the_official_checksums_rejects_other_files(server):
    url, www = server
    write_mnist(www / "mnist")  # not the real MNIST: the published SHA-256 cannot match
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz downloaded from .* has"
                                           " \\d+ bytes, expected 9912422"):
        load_dataset("mnist", base_url=url + "/mnist", progress=False)


def test_download_with_the_right_hash_but_wrong_size_is_rejected(server, monkeypatch):
    url, www = server
    write_mnist(www / "mnist")
    _publish(monkeypatch, "mnist", www / "mnist")
    size, sha = CHECKSUMS["mnist"]["train-labels-idx1-ubyte.gz"]
    monkeypatch.setitem(CHECKSUMS["mnist"], "train-labels-idx1-ubyte.gz", (size + 1, sha))
    with pytest.raises(DatasetError, match=f"has {size} bytes, expected {size + 1}"):
        load_dataset("mnist", base_url=url + "/mnist", progress=False)


def test_download_of_a_missing_file_is_not_found(server):
    url, _ = server
    with pytest.raises(DatasetNotFoundError, match="HTTP 404"):
        load_dataset("cifar10", base_url=url, progress=False)


def test_offline_message(monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DatasetNotFoundError) as e:
        load_dataset("fashion-mnist", base_url=f"http://127.0.0.1:{port}/", timeout=5,
                     progress=False)
    msg = str(e.value)
    assert "cannot find train-images-idx3-ubyte.gz" in msg
    assert f"http://127.0.0.1:{port}/train-images-idx3-ubyte.gz" in msg
    assert "Download failed" in msg and "refused" in msg.lower()
    assert "LRBENCH_DATA" in msg and "apt-get install dataset-fashion-mnist" in msg


def test_cifar_download_then_read_from_archive(server, monkeypatch):
    url, www = server
    src = www / "src"
    _, y, _, ty = write_cifar10(src)
    (www / "kriz").mkdir()
    make_tar(src, "cifar-10-batches-py", www / "kriz" / "cifar-10-python.tar.gz")
    _publish(monkeypatch, "cifar10", www / "kriz")
    ds = load_dataset("cifar10", base_url=url + "/kriz/", progress=False)
    np.testing.assert_array_equal(ds.train_y, y)
    assert (cache_dir() / "cifar10" / "cifar-10-python.tar.gz").is_file()


# ----------------------------------------------------------------------------------------------
# digits, synthetic, names


def test_digits_metadata_and_split():
    pytest.importorskip("sklearn")
    ds = load_dataset("digits")
    assert ds.info.n_classes == 10 and ds.info.input_shape == (1, 8, 8)
    assert (ds.info.n_train, ds.info.n_test) == (1347, 450)
    assert ds.info == dataset_info("digits")
    assert ds.source == "scikit-learn"
    counts = np.bincount(ds.test_y, minlength=10)
    full = np.bincount(np.concatenate([ds.train_y, ds.test_y]), minlength=10)
    assert counts.sum() == 450
    assert np.all(np.abs(counts - full * 450 / 1797) < 1)  # stratified
    assert ds.mean[0] == pytest.approx(4.89, abs=0.05)  # pixels 0..16
    again = load_dataset("digits", cache=False)
    np.testing.assert_array_equal(again.test_x, ds.test_x)
    other = load_dataset("digits", seed=1)
    assert not np.array_equal(other.test_y, ds.test_y)
    assert load_dataset("digits", n_test=297).info.n_train == 1500


def test_synthetic_is_deterministic_configurable_and_learnable():
    a = load_dataset("synthetic", seed=3, cache=False)
    b = load_dataset("synthetic", seed=3, cache=False)
    np.testing.assert_array_equal(a.train_x, b.train_x)
    np.testing.assert_array_equal(a.test_y, b.test_y)
    assert not np.array_equal(a.train_x, load_dataset("synthetic", seed=4).train_x)
    assert a.info == dataset_info("synthetic") == DatasetInfo("synthetic", 10, (1, 8, 8), 1000, 500)
    c = load_dataset("synthetic", n_classes=3, input_shape=(2, 4, 4), n_train=60, n_test=30)
    assert c.info == DatasetInfo("synthetic", 3, (2, 4, 4), 60, 30)
    assert np.bincount(c.train_y).tolist() == [20, 20, 20]
    # learnable: nearest class mean on the training set classifies the test set well
    xs, xt = a.train_x.reshape(1000, -1), a.test_x.reshape(500, -1)
    means = np.stack([xs[a.train_y == k].mean(axis=0) for k in range(10)])
    pred = np.argmin(((xt[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
    assert (pred == a.test_y).mean() > 0.9


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n_classes=1), "n_classes"),
        (dict(input_shape=(8, 8)), "input_shape"),
        (dict(n_train=0), "n_train"),
        (dict(noise=-1.0), "noise"),
        (dict(colour="red"), "takes no argument 'colour'; accepted: n_classes"),
    ],
)
def test_synthetic_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_dataset("synthetic", **kwargs)


def test_names():
    assert dataset_info("MNIST").name == "mnist"
    assert dataset_info("cifar-100") == DatasetInfo("cifar100", 100, (3, 32, 32), 50_000, 10_000)
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'; valid names: mnist, "
                                         "fashion-mnist, cifar10, cifar100, digits, synthetic"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="takes no argument"):
        load_dataset("mnist", seed=1)


def test_dataset_info_to_dict_round_trip():
    info = dataset_info("cifar10")
    d = info.to_dict()
    assert d == {"name": "cifar10", "n_classes": 10, "input_shape": [3, 32, 32],
                 "n_train": 50_000, "n_test": 10_000}
    assert DatasetInfo(**d) == info


def test_import_does_not_pull_in_torch():
    code = "import sys, lrbench.data; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ----------------------------------------------------------------------------------------------
# batching


try:
    import torch

    from lrbench.data import TensorBatches, iter_eval
except ImportError:  # pragma: no cover - torch is an optional extra
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="needs torch")


def _collect(tb, n):
    it = iter(tb)
    return [next(it) for _ in range(n)]


@needs_torch
def test_batches_are_deterministic_per_seed():
    x = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    y = np.arange(50) % 5
    a = _collect(TensorBatches(x, y, batch_size=8, seed=1), 14)
    b = _collect(TensorBatches(x, y, batch_size=8, seed=1), 14)
    c = _collect(TensorBatches(x, y, batch_size=8, seed=2), 14)
    assert all(torch.equal(p[0], q[0]) and torch.equal(p[1], q[1]) for p, q in zip(a, b))
    assert not all(torch.equal(p[1], q[1]) for p, q in zip(a, c))


@needs_torch
def test_each_epoch_is_a_fresh_permutation_and_the_remainder_is_dropped():
    x = np.arange(50, dtype=np.float32).reshape(50, 1)
    y = np.arange(50)
    tb = TensorBatches(x, y, batch_size=8, seed=0)
    assert tb.iterations_per_epoch == 6  # 50 // 8: two samples left out each epoch
    epochs = []
    batches = _collect(tb, 18)
    for e in range(3):
        ids = torch.cat([yb for _, yb in batches[6 * e : 6 * e + 6]])
        assert len(ids) == 48 and len(set(ids.tolist())) == 48  # no repeats within an epoch
        epochs.append(ids)
        for xb, yb in batches[6 * e : 6 * e + 6]:
            assert xb.dtype == torch.float32 and yb.dtype == torch.int64
            assert xb.shape == (8, 1)
            assert torch.equal(xb[:, 0].long(), yb)  # x and y stay paired
    assert not torch.equal(epochs[0], epochs[1]) and not torch.equal(epochs[1], epochs[2])
    assert epochs[0].tolist() != list(range(48))  # shuffled


@needs_torch
def test_batch_of_any_iteration_allows_resuming():
    x = np.arange(30, dtype=np.float32).reshape(30, 1)
    tb = TensorBatches(x, np.arange(30), batch_size=7, seed=5)
    seq = _collect(tb, 12)
    fresh = TensorBatches(x, np.arange(30), batch_size=7, seed=5)
    for t in (11, 3, 8, 0):
        assert torch.equal(fresh.batch(t)[1], seq[t][1])
    resumed = fresh.iterate(start=9)
    assert torch.equal(next(resumed)[1], seq[9][1])


@needs_torch
def test_unshuffled_batches_are_in_order():
    x = np.arange(10, dtype=np.float32).reshape(10, 1)
    tb = TensorBatches(x, np.arange(10), batch_size=4, seed=0, shuffle=False)
    assert [b[1].tolist() for b in _collect(tb, 4)] == [[0, 1, 2, 3], [4, 5, 6, 7]] * 2


@needs_torch
def test_batches_from_a_loaded_dataset_without_warnings():
    ds = load_dataset("synthetic", n_train=40, n_test=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tb = TensorBatches(ds.train_x, ds.train_y, batch_size=10, seed=0)
        xb, yb = next(iter(tb))
    assert xb.shape == (10, 1, 8, 8)


@needs_torch
def test_iter_eval_covers_every_sample_in_order():
    x = torch.arange(10, dtype=torch.float64).reshape(10, 1)
    y = np.arange(10)
    batches = list(iter_eval(x, y, batch_size=4))
    assert [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert batches[0][0].dtype == torch.float32


@needs_torch
@pytest.mark.parametrize(
    "call, message",
    [
        (lambda x, y: TensorBatches(x, y, batch_size=11, seed=0), "larger than the 10 samples"),
        (lambda x, y: TensorBatches(x, y, batch_size=0, seed=0), "batch_size"),
        (lambda x, y: TensorBatches(x, y[:9], batch_size=2, seed=0), "10 samples but 9 labels"),
        (lambda x, y: TensorBatches(x, y, batch_size=2, seed=-1), "seed"),
        (lambda x, y: iter_eval(x, y[:3], batch_size=2), "10 samples but 3 labels"),
    ],
)
def test_batching_errors(call, message):
    x, y = np.zeros((10, 2), np.float32), np.arange(10)
    with pytest.raises(ValueError, match=message):
        call(x, y)


def test_iters_per_epoch_is_whole_batches_of_the_training_split():
    # digits: 1,347 training images, batch 32 -> 42 full batches (tune's and the range test's
    # epoch); a batch larger than the split still makes one iteration
    assert load_dataset("digits").info.iters_per_epoch(32) == 42
    info = DatasetInfo("toy", 10, (1, 8, 8), 100, 10)
    assert [info.iters_per_epoch(b) for b in (1, 32, 100, 101, 10_000)] == [100, 3, 1, 1, 1]
