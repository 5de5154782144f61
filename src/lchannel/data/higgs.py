"""HIGGS (Baldi, Sadowski & Whiteson 2014; paper 2, section 4.3) from the UCI CSV.

Every row of ``HIGGS.csv.gz`` is ``label, 21 low-level, 7 high-level features`` (no
header; label 1 = signal).  The full file has 11,000,000 rows; its last 500,000 are the
official test set.

**Cache.**  The CSV is converted once, streaming (a chunk of lines at a time, never the
whole file in memory) and with a progress bar, into ``HIGGS.f32`` beside it: the rows as
little-endian float32, 29 per row, memory-mappable, with ``HIGGS.f32.json`` holding the
row count and the cache's sha256.  Every load checks the cache's size, row count and
sha256 before using it.  A truncated or corrupt CSV (bad gzip stream, a row without 29
numbers, fewer rows than expected) is refused by name and leaves no cache behind.

**Split (paper 2: "trained on 10,000,000 examples and tested on 100,000").**  Train:
rows 0 .. 9,999,999.  Test: rows 10,500,000 .. 10,599,999, the first 100,000 rows of the
official test set.  Rows 10,000,000 .. 10,499,999 are not used.

**The shipped subset** ``higgs/higgs-16k.csv`` (15,977 real rows, a random subset, sha256
in the data README) goes through the same parser and feature selection, held in memory
(no cache): train its first 12,977 rows, test its last 3,000.

**Features.**  ``low``: the 21 low-level (paper 2), ``high``: the 7 high-level,
``all``: the 28.  ``standardize``: subtract the training rows' mean and divide by their
standard deviation, per feature (the test rows use the training statistics).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

import torch

from .base import Dataset
from .datadir import ENV_VAR, DataError, data_root
from .registry import DatasetEntry, register_dataset


URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/00280/HIGGS.csv.gz"
FILE = "HIGGS.csv.gz"
CACHE = "HIGGS.f32"
COLUMNS = 29  # label + 21 low-level + 7 high-level
ROWS = 11_000_000
TRAIN_ROWS = (0, 10_000_000)
TEST_ROWS = (10_500_000, 10_600_000)  # the first 100,000 of the official test set (last 500,000)

SUBSET_FILE = "higgs-16k.csv"
SUBSET_SHA256 = "8e2d16936a9c4e1159811c72da139efa429c2d140212def15c98dc6d7976dbea"
SUBSET_ROWS = 15_977
SUBSET_TRAIN = 12_977  # first rows train, the last 3,000 test

FEATURES = {"low": slice(1, 22), "high": slice(22, 29), "all": slice(1, 29)}
N_FEATURES = {k: s.stop - s.start for k, s in FEATURES.items()}
CHUNK_ROWS = 200_000


def parse_chunk(text: str, where: str, first_row: int) -> np.ndarray:
    """Rows of CSV text -> (n, 29) float32; a row without 29 numbers is a DataError naming
    ``where`` and the row (numbered from 1 in the file)."""
    lines = text.splitlines()
    try:
        flat = np.fromstring(text.replace("\n", ","), dtype=np.float64, sep=",")
    except ValueError:
        flat = None  # a field that is not a number: found below
    if flat is None or flat.size != len(lines) * COLUMNS:
        for i, line in enumerate(lines):
            fields = line.split(",")
            try:
                ok = len(fields) == COLUMNS and all(np.isfinite(float(f)) for f in fields)
            except ValueError:
                ok = False
            if not ok:
                raise DataError(f"HIGGS file {where}: row {first_row + i + 1} is not {COLUMNS} numbers (label, 21 "
                                f"low-level, 7 high-level features): {line[:80]!r}; the file is corrupt or "
                                f"truncated: delete it and download it again")
        raise DataError(f"HIGGS file {where}: rows {first_row + 1}..{first_row + len(lines)} do not parse")
    return flat.astype(np.float32).reshape(len(lines), COLUMNS)


def _file_sha256(path: Path, block: int = 1 << 24) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def convert(src: str | os.PathLike, dst: str | os.PathLike | None = None, expected_rows: int = ROWS,
            progress: bool = True) -> Path:
    """Stream the gzip CSV ``src`` into the float32 cache ``dst`` (default: ``HIGGS.f32``
    beside it) and its ``.json`` (rows, sha256).  Refuses, by name, a gzip stream that is
    corrupt or ends early, a malformed row, and a row count other than ``expected_rows``;
    nothing is left at ``dst`` then."""
    src = Path(src)
    dst = Path(dst) if dst is not None else src.with_name(CACHE)
    tmp = dst.with_name(dst.name + ".tmp")
    h = hashlib.sha256()
    rows = 0
    bar = None
    if progress:
        bar = tqdm(total=src.stat().st_size, unit="B", unit_scale=True, desc=f"converting {src.name}")
    try:
        with open(src, "rb") as raw, gzip.GzipFile(fileobj=raw) as gz, open(tmp, "wb") as out:
            text = io.TextIOWrapper(gz, encoding="ascii", newline="\n")
            pending = ""
            while True:
                block = text.read(1 << 24)
                if not block:
                    break
                block = pending + block
                cut = block.rfind("\n") + 1
                pending = block[cut:]
                if cut:
                    arr = parse_chunk(block[:cut], str(src), rows)
                    b = arr.astype("<f4").tobytes()
                    h.update(b)
                    out.write(b)
                    rows += arr.shape[0]
                if bar is not None:
                    bar.update(raw.tell() - bar.n)
            if pending.strip():
                arr = parse_chunk(pending + "\n", str(src), rows)
                b = arr.astype("<f4").tobytes()
                h.update(b)
                out.write(b)
                rows += arr.shape[0]
    except (EOFError, gzip.BadGzipFile, zlib.error, UnicodeDecodeError, OSError) as err:
        tmp.unlink(missing_ok=True)
        raise DataError(f"HIGGS file {src} is corrupt or truncated ({type(err).__name__}: {err}); delete it and "
                        f"download it again from {URL}") from None
    except DataError:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        if bar is not None:
            bar.close()
    if rows != expected_rows:
        tmp.unlink(missing_ok=True)
        raise DataError(f"HIGGS file {src} has {rows:,} rows, expected {expected_rows:,}; it is truncated or not "
                        f"the UCI file: delete it and download it again from {URL}")
    os.replace(tmp, dst)
    meta = {"rows": rows, "columns": COLUMNS, "dtype": "float32-le", "sha256": h.hexdigest(), "source": src.name}
    dst.with_name(dst.name + ".json").write_text(json.dumps(meta, indent=1))
    return dst


def open_cache(path: str | os.PathLike, expected_rows: int | None = ROWS) -> np.memmap:
    """The verified cache as a read-only (rows, 29) float32 memory map: its size, row
    count and sha256 must match its ``.json`` (and ``expected_rows``), else DataError."""
    path = Path(path)
    meta_path = path.with_name(path.name + ".json")
    try:
        meta = json.loads(meta_path.read_text())
        rows, digest = int(meta["rows"]), str(meta["sha256"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DataError(f"HIGGS cache {path}: its {meta_path.name} is missing or unreadable ({err}); delete "
                        f"{path.name} and its .json to convert {FILE} again") from None
    if expected_rows is not None and rows != expected_rows:
        raise DataError(f"HIGGS cache {path} holds {rows:,} rows, expected {expected_rows:,}; delete it and its "
                        f".json to convert {FILE} again")
    size = path.stat().st_size if path.exists() else -1
    if size != rows * COLUMNS * 4:
        raise DataError(f"HIGGS cache {path} has {size} bytes, expected {rows * COLUMNS * 4} for {rows:,} rows; "
                        f"delete it and its .json to convert {FILE} again")
    if _file_sha256(path) != digest:
        raise DataError(f"HIGGS cache {path} fails its checksum (sha256 in {meta_path.name}); delete it and its "
                        f".json to convert {FILE} again")
    return np.memmap(path, dtype="<f4", mode="r", shape=(rows, COLUMNS))


def _download(target: Path, timeout: float = 30.0) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(URL, timeout=timeout) as r, open(tmp, "wb") as f:
            total = int(r.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {FILE}") as bar:
                while chunk := r.read(1 << 20):
                    f.write(chunk)
                    bar.update(len(chunk))
        os.replace(tmp, target)
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        tmp.unlink(missing_ok=True)
        raise DataError(f"HIGGS: {target} is missing and the download from {URL} failed ({err}). Download "
                        f"{FILE} (2.6 GB) on a machine with internet and put it at {target} (the data directory "
                        f"is --data-dir or ${ENV_VAR}); it is converted once on first use") from None


def higgs_cache(data_dir=None, download: bool = True, progress: bool = True) -> np.memmap:
    """The verified (11,000,000, 29) cache of ``<data_dir>/higgs/HIGGS.csv.gz``: converted on
    first use; the CSV is downloaded first when missing (``download``)."""
    folder = data_root(data_dir, f"higgs/{FILE}") / "higgs"
    cache, src = folder / CACHE, folder / FILE
    if not cache.exists():
        if not src.exists():
            if not download:
                raise DataError(f"HIGGS: {src} is missing; download {URL} and put it there")
            _download(src)
        convert(src, cache, ROWS, progress)
    return open_cache(cache, ROWS)


def verify_higgs(data_dir=None) -> None:
    """Check (and, the first time, build) the full set's cache without keeping it."""
    higgs_cache(data_dir)


def read_subset(data_dir=None) -> np.ndarray:
    """The shipped 15,977-row subset as (15977, 29) float32, checked by sha256."""
    root = data_root(data_dir, f"higgs/{SUBSET_FILE}")
    path = next((p for p in (root / "higgs" / SUBSET_FILE, root / SUBSET_FILE) if p.is_file()), None)
    if path is None:
        raise DataError(f"HIGGS subset: {root / 'higgs' / SUBSET_FILE} is missing; it ships in the project's "
                        f"shared/datasets/higgs/ (point --data-dir or ${ENV_VAR} at shared/datasets)")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SUBSET_SHA256:
        raise DataError(f"HIGGS subset {path} fails its checksum (sha256 {digest}, expected {SUBSET_SHA256})")
    rows = parse_chunk(data.decode("ascii"), str(path), 0)
    if rows.shape[0] != SUBSET_ROWS:
        raise DataError(f"HIGGS subset {path} has {rows.shape[0]} rows, expected {SUBSET_ROWS}")
    return rows


def verify_subset(data_dir=None) -> None:
    read_subset(data_dir)


def _stats(rows, cols: slice, chunk: int = 1_000_000) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std of ``rows[:, cols]``, accumulated in float64 by chunks (a
    memory map is never read whole)."""
    n = rows.shape[0]
    s = np.zeros(cols.stop - cols.start)
    s2 = np.zeros_like(s)
    for i in range(0, n, chunk):
        x = np.asarray(rows[i:i + chunk, cols], dtype=np.float64)
        s += x.sum(0)
        s2 += (x * x).sum(0)
    mean = s / n
    std = np.sqrt(np.maximum(s2 / n - mean * mean, 0.0))
    return mean, np.where(std > 0, std, 1.0)


def split_features(rows, train: tuple[int, int], test: tuple[int, int], features: str = "low",
                   standardize: bool = False, name: str = "higgs") -> tuple[Dataset, Dataset]:
    """(train, test) Datasets of the row ranges ``train``/``test`` of ``rows`` ((n, 29),
    array or memory map): inputs the feature set's columns, target the label column as one
    logistic unit; optionally standardised with the training rows' statistics."""
    if features not in FEATURES:
        raise ValueError(f"higgs_features: {features!r} is not accepted; expected one of {list(FEATURES)}")
    cols = FEATURES[features]
    stats = _stats(rows[train[0]:train[1]], cols) if standardize else None

    def part(lo: int, hi: int, split: str) -> Dataset:
        X = np.array(rows[lo:hi, cols], dtype=np.float32)  # a copy: the map stays read-only
        if stats is not None:
            X -= stats[0].astype(np.float32)
            X /= stats[1].astype(np.float32)
        y = torch.from_numpy(np.array(rows[lo:hi, 0])).round().long()
        return Dataset(torch.from_numpy(X), y.float().unsqueeze(1), y, f"{name}-{features}-{split}")

    return part(*train, "train"), part(*test, "test")


def load_higgs(data_dir=None, features: str = "low", standardize: bool = False) -> tuple[Dataset, Dataset]:
    """Paper 2's split of the full set: 10,000,000 training rows, 100,000 test rows."""
    return split_features(higgs_cache(data_dir), TRAIN_ROWS, TEST_ROWS, features, standardize, "higgs")


def load_higgs16k(data_dir=None, features: str = "low", standardize: bool = False) -> tuple[Dataset, Dataset]:
    """The shipped subset: train its first 12,977 rows, test its last 3,000."""
    return split_features(read_subset(data_dir), (0, SUBSET_TRAIN), (SUBSET_TRAIN, SUBSET_ROWS), features,
                          standardize, "higgs16k")


def _inputs(options: dict) -> int:
    return N_FEATURES[options.get("higgs_features", "low")]


def _load(data_dir, options: dict, seed: int):
    return load_higgs(data_dir, options["higgs_features"], options["standardize"])


def _load16k(data_dir, options: dict, seed: int):
    return load_higgs16k(data_dir, options["higgs_features"], options["standardize"])


# Paper 2, section 4.3: 21 low-level inputs, eight hidden layers of 300 tanh, one logistic unit.
ARCHITECTURE = (21, *[300] * 8, 1)

ENTRY = register_dataset(DatasetEntry(
    name="higgs", description="UCI HIGGS, paper 2's split: train rows 0..9,999,999, test rows "
                              "10,500,000..10,599,999 (the first 100,000 official test rows); features "
                              "low (21), high (7) or all (28)",
    n_inputs=21, n_outputs=1, architecture=ARCHITECTURE, output="logistic", load=_load,
    train_size=lambda o: 10_000_000, options=("higgs_features", "standardize"),
    source=URL, verify=verify_higgs, inputs_for=_inputs, report_metrics=("test_auc",)))
SUBSET_ENTRY = register_dataset(DatasetEntry(
    name="higgs16k", description="the shipped 15,977-row HIGGS subset (higgs/higgs-16k.csv): train its first "
                                 "12,977 rows, test its last 3,000; features as higgs",
    n_inputs=21, n_outputs=1, architecture=ARCHITECTURE, output="logistic", load=_load16k,
    train_size=lambda o: 12_977, options=("higgs_features", "standardize"),
    files={"higgs-16k.csv": "8e2d16936a9c4e1159811c72da139efa429c2d140212def15c98dc6d7976dbea"},
    source="shipped with the project (shared/datasets/higgs/)", verify=verify_subset, inputs_for=_inputs,
    report_metrics=("test_auc",)))
