"""Portable result bundles: move runs between LR databases (``lrbench db export/import``).

A bundle is one JSON document (gzip-compressed when the file name ends in ``.gz``)::

    {
      "format": "lrbench-bundle",
      "version": 1,
      "lrbench": "0.1.0",
      "exported_at": "2024-05-01T12:00:00+00:00",
      "datasets": [{"name": "mnist", "n_classes": 10, "input_shape": [1, 28, 28],
                    "n_train": 60000, "n_test": 10000, "info": {...}}],
      "runs": [{"result": <RunResult.to_dict()>,
                "created_at": "...", "started_at": "...", "finished_at": "..."}]
    }

Only finished runs (done / diverged / failed) travel: pending and running runs are one
database's work queue, not results. Policies are written in canonical notation and tasks in
full, so the receiving database rebuilds its own ids. Importing is idempotent: a run is keyed by
(task, policy, seed), and one already finished in the receiving database is kept unless
``replace`` is asked for. Readers accept every version up to :data:`BUNDLE_VERSION`.
"""

from __future__ import annotations

import gzip
import json
import os
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from lrbench.results import RunResult

if TYPE_CHECKING:
    from lrbench.store.core import ImportReport, Store

BUNDLE_FORMAT = "lrbench-bundle"
BUNDLE_VERSION = 1
#: the most runs one page of a served bundle holds (``GET /api/tasks/{key}/bundle``, ``pull``)
BUNDLE_PAGE = 2000


def _open(path: str | os.PathLike[str], mode: str, *, gz: bool | None = None) -> Any:
    if gz if gz is not None else str(path).endswith(".gz"):
        return gzip.open(path, mode + "t", encoding="utf-8")
    return open(path, mode, encoding="utf-8")


def bundle_dict(store: Store, **filters: Any) -> dict[str, Any]:
    """The bundle of a store's finished runs (filters as in ``Store.find_runs``)."""
    from lrbench import __version__
    from lrbench.store.core import _iso

    items = store._results(**filters)
    datasets = store.datasets(res.task.dataset for res, _ in items)
    return {
        "format": BUNDLE_FORMAT,
        "version": BUNDLE_VERSION,
        "lrbench": __version__,
        "exported_at": datetime.now(timezone.utc).isoformat(),
        "datasets": datasets,
        "runs": [
            {"result": res.to_dict(), **{k: _iso(v) for k, v in ts.items()}}
            for res, ts in items
        ],
    }


def write_bundle(store: Store, path: str | os.PathLike[str], **filters: Any) -> int:
    """Write the bundle to ``path``; returns the number of runs in it."""
    bundle = bundle_dict(store, **filters)
    tmp = f"{os.fspath(path)}.tmp-{os.getpid()}"
    try:
        with _open(tmp, "w", gz=str(path).endswith(".gz")) as fh:
            json.dump(bundle, fh, separators=(",", ":"))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return len(bundle["runs"])


def load_bundle(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a bundle file; a ValueError says what is wrong with it."""
    try:
        with _open(path, "r") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise ValueError(f"no such bundle file: {os.fspath(path)!r}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{os.fspath(path)!r} is not an lrbench bundle (not JSON: {e})") from None
    return check_bundle(data, source=os.fspath(path))


def check_bundle(data: Any, *, source: str = "bundle") -> dict[str, Any]:
    if not isinstance(data, dict) or data.get("format") != BUNDLE_FORMAT:
        raise ValueError(
            f"{source!r} is not an lrbench bundle (no \"format\": \"{BUNDLE_FORMAT}\")")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"{source!r}: bad bundle version {version!r}")
    if version > BUNDLE_VERSION:
        raise ValueError(
            f"{source!r} is a version {version} bundle; this lrbench reads up to version "
            f"{BUNDLE_VERSION}: upgrade lrbench"
        )
    if not isinstance(data.get("runs"), list) or not isinstance(data.get("datasets", []), list):
        raise ValueError(f"{source!r}: a bundle needs a list of \"runs\"")
    return data


def read_bundle(store: Store, path: str | os.PathLike[str], *, replace: bool = False
                ) -> ImportReport:
    """Import a bundle file into ``store``."""
    return import_dict(store, load_bundle(path), replace=replace, source=os.fspath(path))


def import_dict(store: Store, data: dict[str, Any], *, replace: bool = False,
                source: str = "bundle") -> ImportReport:
    from lrbench.store.core import ImportReport, _parse_iso

    data = check_bundle(data, source=source)
    report = ImportReport()
    for ds in data.get("datasets", []):
        if not isinstance(ds, dict) or not ds.get("name"):
            raise ValueError(f"{source!r}: a dataset entry needs a name, got {ds!r}")
        meta = dict(ds.get("info") or {})
        meta.update({k: ds[k] for k in ("n_classes", "input_shape", "n_train", "n_test")
                     if ds.get(k) is not None})
        store.register_dataset(ds["name"], meta)
        report.datasets += 1
    items: list[tuple[RunResult, dict[str, Any]]] = []
    for i, entry in enumerate(data["runs"]):
        try:
            result = RunResult.from_dict(entry["result"])
            timestamps = {k: _parse_iso(entry.get(k))
                          for k in ("created_at", "started_at", "finished_at")}
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{source!r}: run #{i} is malformed: {e}") from None
        items.append((result, timestamps))
    report.written, report.skipped = store._write_items(items, replace=replace)
    return report
