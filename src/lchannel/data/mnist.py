"""MNIST from the original IDX files (LeCun, Cortes & Burges), verified by sha256.

Files are looked up in ``<data_dir>/mnist/`` and then ``<data_dir>/``, gzip-compressed
(``*.gz``) or raw.  The sha256 is checked on the *decompressed* bytes, so any faithful
copy passes whatever its compression.  Missing files are downloaded from the official
mirrors and verified; with no network the error says which files are missing and where
to put them.  A corrupt file (bad gzip, wrong checksum, bad IDX header) is an error that
names the file; it is never used.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import torch

from .base import Dataset, one_hot
from .datadir import ENV_VAR, DataError, data_root  # noqa: F401  (DataError re-exported)
from .registry import IMAGE_OPTIONS, DatasetEntry, register_dataset

FILES = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)


def _candidates(root: Path, name: str) -> list[Path]:
    return [d / f for d in (root / "mnist", root) for f in (name + ".gz", name)]


def find_file(root: Path, name: str) -> Path | None:
    for p in _candidates(root, name):
        if p.is_file():
            return p
    return None


def read_verified(path: Path, expected_sha256: str) -> bytes:
    """The decompressed bytes of ``path``, refused unless their sha256 matches."""
    try:
        raw = path.read_bytes()
        data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise DataError(f"MNIST file {path} is corrupt or unreadable ({err}); delete it and re-download") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected_sha256:
        raise DataError(
            f"MNIST file {path} fails its checksum (sha256 of decompressed bytes {digest}, "
            f"expected {expected_sha256}); delete it and re-download")
    return data


def parse_idx(data: bytes, path: Path) -> np.ndarray:
    """An IDX array (big-endian header: magic with dtype code and rank, then dims)."""
    if len(data) < 8 or data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise DataError(f"MNIST file {path} is not an unsigned-byte IDX file")
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise DataError(f"MNIST file {path} has {arr.size} values, header says {dims}")
    return arr.reshape(dims)


def download(root: Path, names: list[str], timeout: float = 30.0) -> None:
    """Fetch ``names`` (gzip) from the official mirrors into ``root/mnist`` and verify them."""
    target = root / "mnist"
    for name in names:
        last_err: Exception | None = None
        for mirror in MIRRORS:
            url = mirror + name + ".gz"
            # Fetched into root and moved into root/mnist once verified, so that a failed
            # download (no network) leaves no empty folder behind.
            tmp = root / (name + ".gz.part")
            try:
                with urllib.request.urlopen(url, timeout=timeout) as r:
                    payload = r.read()
                tmp.write_bytes(payload)
                read_verified(tmp, FILES[name])
                target.mkdir(exist_ok=True)
                os.replace(tmp, target / (name + ".gz"))
                last_err = None
                break
            except (urllib.error.URLError, OSError, DataError) as err:
                last_err = err
                tmp.unlink(missing_ok=True)
        if last_err is not None:
            raise last_err


def load_mnist(data_dir: str | os.PathLike | None = None, download_missing: bool = True,
               dtype=torch.float32) -> tuple[Dataset, Dataset]:
    """(train, test): 60,000 and 10,000 images flattened to 784 values in [0, 1],
    one-hot targets over 10 classes, and labels."""
    root = data_root(data_dir, "mnist/ (or the IDX files)")
    root.mkdir(parents=True, exist_ok=True)  # the per-user cache, when that is where it points
    missing = [n for n in FILES if find_file(root, n) is None]
    if missing and download_missing:
        try:
            download(root, missing)
        except (urllib.error.URLError, OSError) as err:
            raise DataError(
                f"MNIST files missing: {', '.join(n + '.gz' for n in missing)}. Download failed ({err}). "
                f"Put the IDX files (gzip or raw) in {root / 'mnist'}, or point --data-dir or "
                f"${ENV_VAR} at a folder that has them.") from None
        missing = [n for n in FILES if find_file(root, n) is None]
    if missing:
        raise DataError(
            f"MNIST files missing: {', '.join(n + '.gz' for n in missing)}. Put the IDX files "
            f"(gzip or raw) in {root / 'mnist'}, or point --data-dir or ${ENV_VAR} at a folder that has them.")
    arrays = {}
    for name, sha in FILES.items():
        path = find_file(root, name)
        arrays[name] = parse_idx(read_verified(path, sha), path)

    def make(prefix: str, split: str) -> Dataset:
        images = arrays[f"{prefix}-images-idx3-ubyte"]
        labels = torch.from_numpy(arrays[f"{prefix}-labels-idx1-ubyte"].astype(np.int64))
        X = torch.from_numpy(images.reshape(images.shape[0], -1).astype(np.float32) / 255.0).to(dtype)
        return Dataset(X, one_hot(labels, 10, dtype), labels, f"mnist-{split}")

    return make("train", "train"), make("t10k", "test")


def verify_mnist(data_dir: str | os.PathLike | None = None) -> None:
    """Check the MNIST files (sha256, IDX headers) without keeping the arrays, downloading
    missing ones first; a :class:`DataError` names the first bad file."""
    root = data_root(data_dir, "mnist/ (or the IDX files)")
    if any(find_file(root, n) is None for n in FILES):
        load_mnist(data_dir)  # downloads the missing files, or raises DataError
    for name, sha in FILES.items():
        path = find_file(root, name)
        parse_idx(read_verified(path, sha), path)


def _load(data_dir, options: dict, seed: int):
    return load_mnist(data_dir)


ENTRY = register_dataset(DatasetEntry(
    name="mnist", description="MNIST digits, 60,000 train / 10,000 test, 28x28 in [0, 1]",
    n_inputs=784, n_outputs=10, architecture=(784, 100, 100, 100, 100, 10), output="softmax",  # paper 1 sec. 4.1
    load=_load, train_size=lambda o: 60000, files=dict(FILES),
    source=" or ".join(MIRRORS), verify=verify_mnist, input_shape=(1, 28, 28),
    options=IMAGE_OPTIONS))
