"""CIFAR-10 (Krizhevsky 2009) from the official binary files, verified by sha256.

The files of ``cifar-10-batches-bin/`` (``data_batch_1.bin`` … ``data_batch_5.bin``,
``test_batch.bin``: 10,000 records each, one label byte then 3,072 bytes of the R, G, B
planes of a 32x32 image) are looked up in ``<data_dir>/cifar10/``.  Missing files are
downloaded as the official tarball and extracted there once every file verifies; with no
network the error names the files and where to put them.  A file that fails its checksum
is refused by name and never used.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import torch

from .base import Dataset, one_hot
from .datadir import ENV_VAR, DataError, data_root
from .registry import IMAGE_OPTIONS, DatasetEntry, register_dataset

FILES = {
    "data_batch_1.bin": "cee916563c9f80d84e3cc88e17fdc0941787f1244f00a67874d45b261883ada5",
    "data_batch_2.bin": "a591ca11fa1708a91ee40f54b3da4784ccd871ecf2137de63f51ada8b3fa57ed",
    "data_batch_3.bin": "bbe8596564c0f86427f876058170b84dac6670ddf06d79402899d93ceea26f67",
    "data_batch_4.bin": "014e562d6e23c72197cc727519169a60359f5eccd8945ad5a09d710285ff4e48",
    "data_batch_5.bin": "755304fc0b379caeae8c14f0dac912fbc7d6cd469eb67a1029a08a39453a9add",
    "test_batch.bin": "8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b",
}
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
RECORD = 1 + 3 * 32 * 32


def read_verified(path: Path) -> bytes:
    """The bytes of ``path``, refused unless their sha256 matches the official file's."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DataError(f"CIFAR-10 file {path} is unreadable ({err}); delete it and re-download") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != FILES[path.name]:
        raise DataError(f"CIFAR-10 file {path} fails its checksum (sha256 {digest}, expected {FILES[path.name]}); "
                        f"delete it and re-download")
    return data


def download(root: Path, timeout: float = 60.0) -> None:
    """Fetch the official tarball and extract the binary files into ``root/cifar10`` once
    all of them verify (nothing is created if the download or a check fails)."""
    with urllib.request.urlopen(URL, timeout=timeout) as r:
        payload = r.read()
    found = {}
    with tarfile.open(fileobj=io.BytesIO(payload), mode="r:gz") as tar:
        for member in tar.getmembers():
            name = Path(member.name).name
            if name in FILES and member.isfile():
                data = tar.extractfile(member).read()
                if hashlib.sha256(data).hexdigest() != FILES[name]:
                    raise DataError(f"CIFAR-10 file {name} in {URL} fails its checksum; nothing was written")
                found[name] = data
    missing = sorted(set(FILES) - set(found))
    if missing:
        raise DataError(f"the CIFAR-10 tarball {URL} lacks {missing}; nothing was written")
    target = root / "cifar10"
    target.mkdir(parents=True, exist_ok=True)  # only now: a failed download creates no folder
    for name, data in found.items():
        if not (target / name).is_file():
            (target / name).write_bytes(data)


def _parse(data: bytes, path: Path) -> tuple[np.ndarray, np.ndarray]:
    if len(data) % RECORD:
        raise DataError(f"CIFAR-10 file {path} is not a whole number of {RECORD}-byte records")
    rec = np.frombuffer(data, dtype=np.uint8).reshape(-1, RECORD)
    return rec[:, 1:], rec[:, 0].astype(np.int64)


def load_cifar10(data_dir: str | os.PathLike | None = None, download_missing: bool = True,
                 batches=(1, 2, 3, 4, 5), dtype=torch.float32) -> tuple[Dataset, Dataset]:
    """(train, test): 50,000 and 10,000 images as rows of 3,072 values in [0, 1] in C, H, W
    order (see :func:`as_images`), one-hot targets over 10 classes, and labels.
    ``batches`` selects training files (e.g. ``(1,)``: the first 10,000 images)."""
    if isinstance(batches, int) or not batches or any(b not in (1, 2, 3, 4, 5) for b in batches):
        raise ValueError(f"batches must be a non-empty list among 1..5, got {batches!r}")
    root = data_root(data_dir, "cifar10/")
    folder = root / "cifar10"
    names = [f"data_batch_{b}.bin" for b in batches] + ["test_batch.bin"]
    missing = [n for n in names if not (folder / n).is_file()]
    where = (f"Put the files of cifar-10-batches-bin/ ({URL}) in {folder}, or point --data-dir or ${ENV_VAR} "
             f"at a folder whose cifar10/ has them.")
    if missing and download_missing:
        try:
            download(root)
        except (urllib.error.URLError, OSError, tarfile.TarError) as err:
            raise DataError(f"CIFAR-10 files missing: {', '.join(missing)}. Download failed ({err}). {where}") from None
        missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise DataError(f"CIFAR-10 files missing: {', '.join(missing)}. {where}")
    parts = {n: _parse(read_verified(folder / n), folder / n) for n in names}

    def make(files: list[str], split: str) -> Dataset:
        X = np.concatenate([parts[n][0] for n in files])
        labels = torch.from_numpy(np.concatenate([parts[n][1] for n in files]))
        X = torch.from_numpy(X).to(dtype).div_(255.0)
        return Dataset(X, one_hot(labels, 10, dtype), labels, f"cifar10-{split}")

    return make(names[:-1], "train"), make(names[-1:], "test")


def verify_cifar10(data_dir: str | os.PathLike | None = None) -> None:
    """Check the CIFAR-10 files (sha256, record size) without keeping the arrays,
    downloading missing ones first; a :class:`DataError` names the first bad file."""
    folder = data_root(data_dir, "cifar10/") / "cifar10"
    if any(not (folder / n).is_file() for n in FILES):
        load_cifar10(data_dir)  # downloads the missing files, or raises DataError
    for name in FILES:
        _parse(read_verified(folder / name), folder / name)


def as_images(X: torch.Tensor) -> torch.Tensor:
    """Rows of 3,072 values viewed as images ``(N, 3, 32, 32)`` (channels R, G, B)."""
    if X.dim() != 2 or X.shape[1] != 3 * 32 * 32:
        raise ValueError(f"X must have shape (N, 3072), got {tuple(X.shape)}")
    return X.view(-1, 3, 32, 32)


# Paper 1, section 4.3: 3 x (conv 64 channels 5x5 stride 1 tanh, max-pool 3x3 stride 2),
# dense 1024 tanh, softmax 10.
ARCHITECTURE = "conv64k5-pool3s2-conv64k5-pool3s2-conv64k5-pool3s2-dense1024-dense10"


def _load(data_dir, options: dict, seed: int):
    return load_cifar10(data_dir)


ENTRY = register_dataset(DatasetEntry(
    name="cifar10", description="CIFAR-10 images, 50,000 train / 10,000 test, 3x32x32 in [0, 1] as rows of "
                                "3,072 (C, H, W order); default architecture paper 1's conv net (section 4.3)",
    n_inputs=3072, n_outputs=10, architecture=ARCHITECTURE, output="softmax",
    load=_load, train_size=lambda o: 50000, files=dict(FILES), source=URL,
    verify=verify_cifar10, input_shape=(3, 32, 32), options=IMAGE_OPTIONS))
