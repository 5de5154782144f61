"""CIFAR-10: verified binary files, class counts, refusal of corrupt or missing files."""

import os

import pytest
import torch

from lchannel.data import REGISTRY, DataError, as_images, load_cifar10
from lchannel.data.cifar10 import FILES


@pytest.fixture
def cifar_dir(data_dir):
    if not (data_dir / "cifar10" / "test_batch.bin").is_file():
        pytest.skip(f"CIFAR-10 files not found under {data_dir}")
    return data_dir


def _linked_copy(src, dst, corrupt=None):
    """dst/cifar10 with symbolic links to the real files, and a corrupted copy of one."""
    (dst / "cifar10").mkdir(parents=True)
    for name in FILES:
        if name == corrupt:
            raw = bytearray((src / "cifar10" / name).read_bytes())
            raw[0] = (raw[0] + 1) % 10  # one label changed: still a well-formed file
            (dst / "cifar10" / name).write_bytes(bytes(raw))
        else:
            os.symlink((src / "cifar10" / name).resolve(), dst / "cifar10" / name)  # absolute: src may be relative


def test_cifar10_loads_verified_counts_and_layout(cifar_dir):
    # (no wall-clock bound here: it failed under load on a busy 2-core machine; the loader's
    # speed is a benchmark's business, not a test's)
    train, test = load_cifar10(cifar_dir, download_missing=False)
    assert train.X.shape == (50000, 3072) and test.X.shape == (10000, 3072) and train.X.dtype == torch.float32
    assert train.X.min() == 0 and train.X.max() == 1
    assert train.labels.bincount().tolist() == [5000] * 10
    assert test.labels.bincount().tolist() == [1000] * 10
    assert torch.equal(train.T.argmax(1), train.labels)
    # C, H, W order: the per-channel means of the README (125.307, 122.950, 113.865 / 255).
    means = as_images(train.X).mean(dim=(0, 2, 3)) * 255
    assert torch.allclose(means, torch.tensor([125.307, 122.950, 113.865]), atol=2e-3)
    entry = REGISTRY["cifar10"]
    assert (entry.n_inputs, entry.n_outputs, entry.input_shape) == (3072, 10, (3, 32, 32))
    # Paper 1, section 4.3: 3 x (conv 64 5x5, max-pool 3x3 stride 2), dense 1024, softmax 10.
    assert entry.architecture == "conv64k5-pool3s2-conv64k5-pool3s2-conv64k5-pool3s2-dense1024-dense10"
    assert set(entry.files) == set(FILES) and "conv net" in entry.description


def test_one_training_batch(cifar_dir):
    train, test = load_cifar10(cifar_dir, download_missing=False, batches=(1,))
    assert len(train) == 10000 and len(test) == 10000
    with pytest.raises(ValueError, match="batches"):
        load_cifar10(cifar_dir, download_missing=False, batches=(6,))
    with pytest.raises(ValueError, match="X must have shape"):
        as_images(train.X[:, :100])


def test_corrupt_file_is_refused_by_name(cifar_dir, tmp_path):
    _linked_copy(cifar_dir, tmp_path, corrupt="test_batch.bin")
    with pytest.raises(DataError, match="test_batch.bin fails its checksum"):
        load_cifar10(tmp_path, download_missing=False, batches=(1,))


def test_missing_files_offline_name_them_and_create_nothing(tmp_path, monkeypatch):
    import urllib.request

    def offline(*a, **k):
        raise OSError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError) as err:
        load_cifar10(tmp_path, download_missing=True)
    msg = str(err.value)
    assert "data_batch_1.bin" in msg and "test_batch.bin" in msg and str(tmp_path / "cifar10") in msg
    assert "network unreachable" in msg and "LCHANNEL_DATA_DIR" in msg
    assert not (tmp_path / "cifar10").exists()
