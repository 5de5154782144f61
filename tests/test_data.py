"""Data: MNIST checksums and refusal of corrupt files; the synthetic f_k sets."""

import gzip
import shutil

import pytest
import torch

from lchannel.data import DataError, f_k, load_mnist, make_synthetic
from lchannel.data.mnist import FILES


def test_mnist_loads_verified_and_scaled(data_dir):
    train, test = load_mnist(data_dir, download_missing=False)
    assert train.X.shape == (60000, 784) and test.X.shape == (10000, 784)
    assert train.X.min() == 0 and train.X.max() == 1
    assert train.labels.bincount().tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert test.labels.bincount().tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert torch.equal(train.T.argmax(1), train.labels)


def _copy_mnist(src, dst):
    (dst / "mnist").mkdir(parents=True)
    for name in FILES:
        shutil.copy(src / "mnist" / (name + ".gz"), dst / "mnist" / (name + ".gz"))


def test_corrupt_mnist_file_is_refused_and_named(data_dir, tmp_path):
    _copy_mnist(data_dir, tmp_path)
    bad = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(bad.read_bytes()))
    raw[100] ^= 0xFF  # one flipped label byte: still a valid gzip, wrong content
    bad.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz.*checksum"):
        load_mnist(tmp_path, download_missing=False)
    bad.write_bytes(b"\x1f\x8b" + b"garbage")
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz.*corrupt"):
        load_mnist(tmp_path, download_missing=False)


def test_raw_idx_files_are_accepted(data_dir, tmp_path):
    (tmp_path / "mnist").mkdir()
    for name in FILES:
        (tmp_path / "mnist" / name).write_bytes(gzip.decompress((data_dir / "mnist" / (name + ".gz")).read_bytes()))
    train, _ = load_mnist(tmp_path, download_missing=False)
    assert len(train) == 60000


def test_missing_files_message_names_them_and_the_folder(tmp_path):
    with pytest.raises(DataError) as err:
        load_mnist(tmp_path, download_missing=False)
    msg = str(err.value)
    assert "train-images-idx3-ubyte.gz" in msg and str(tmp_path / "mnist") in msg and "LCHANNEL_DATA_DIR" in msg


def test_missing_files_without_network_fail_with_the_same_guidance(tmp_path, monkeypatch):
    import urllib.request

    def offline(*a, **k):
        raise OSError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError, match="Download failed.*network unreachable.*Put the IDX files"):
        load_mnist(tmp_path, download_missing=True)


def test_data_dir_precedence(tmp_path, monkeypatch):
    from lchannel.data import resolve_data_dir
    monkeypatch.setenv("LCHANNEL_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir(None) == tmp_path / "env"
    monkeypatch.delenv("LCHANNEL_DATA_DIR")
    assert resolve_data_dir(None).name == "lchannel"


def test_synthetic_fk_closed_form():
    # f_0 = g: inside the unit disk -> 1.  f_1 at (0, 0): t(0,0) = (1, 1), |.|² = 2 -> -1.
    x = torch.tensor([[0.0, 0.0], [0.9, 0.9], [0.5, 0.0]], dtype=torch.float64)
    assert f_k(x, 0).tolist() == [1.0, -1.0, 1.0]
    assert f_k(x[:1], 1).item() == -1.0
    # t(0.5, 0) = (0.5, 1): |.|² = 1.25 -> -1; t(0.9,0.9) = (-0.62,-0.62): 0.7688 -> 1.
    assert f_k(x[1:], 1).tolist() == [1.0, -1.0]
    a, _ = make_synthetic(2, 500, 10, seed=4)
    b, _ = make_synthetic(2, 500, 10, seed=4)
    assert torch.equal(a.X, b.X) and set(a.labels.unique().tolist()) == {0, 1}
