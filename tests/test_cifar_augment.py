"""CIFAR-10 training augmentation (paper 1, section 4.3) and per-channel normalisation:
closed-form statistics of the draws, an independent reference of the image operation
(replicate-padding, crop, flip), seeded reproducibility, populations, checkpoint/resume."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lchannel import SGD, Network, Trainer
from lchannel.channels import build_channel
from lchannel.run.config import TrainConfig
from lchannel.data import REGISTRY, RandomTranslateFlip, load_dataset
from lchannel.data.base import Dataset, one_hot
from lchannel.engine.rng import generator

pytestmark = pytest.mark.usefixtures("one_thread")

SHAPE = (3, 32, 32)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_shift_and_flip_statistics_match_the_closed_form():
    # t ~ U(-3.2, 3.2) rounded to whole pixels: P(k) = 1/6.4 for |k| <= 2, (3.2 - 2.5)/6.4 for |k| = 3.
    aug = RandomTranslateFlip(SHAPE)
    n = 200_000
    dy, dx, flip = aug.draw(n, _gen(1))
    expected = torch.tensor([0.7, 1, 1, 1, 1, 1, 0.7], dtype=torch.float64) / 6.4
    sd = (expected * (1 - expected) / n).sqrt()
    for d in (dy, dx):
        assert d.min() == -3 and d.max() == 3 and aug.max_shift() == (3, 3)
        freq = torch.bincount(d + 3, minlength=7).double() / n
        assert ((freq - expected).abs() < 5 * sd).all(), freq
    assert abs(flip.double().mean() - 0.5) < 5 * (0.25 / n) ** 0.5
    # Horizontal and vertical shifts and the flip are drawn independently.
    joint = ((dx == 0) & (dy == 0)).double().mean()
    assert abs(joint - expected[3] ** 2) < 5 * (expected[3] ** 2 / n) ** 0.5
    assert abs(((dx > 0) & flip).double().mean() - 0.5 * (dx > 0).double().mean()) < 0.005


def _reference(x, dy, dx, flip):
    """out = flip(shift(x)), the shift done by replicate-padding by 3 and cropping."""
    p = 3
    padded = F.pad(x[None], (p, p, p, p), mode="replicate")[0]  # (C, H + 6, W + 6)
    out = padded[:, p - dy:p - dy + 32, p - dx:p - dx + 32]
    return out.flip(-1) if flip else out


def test_images_equal_an_independent_pad_crop_flip_reference():
    aug = RandomTranslateFlip(SHAPE)
    X = torch.rand(64, 3072, generator=_gen(2))
    dy, dx, flip = aug.draw(64, _gen(3))
    out = aug.apply(X, dy, dx, flip).view(64, *SHAPE)
    for i in range(64):
        ref = _reference(X[i].view(SHAPE), int(dy[i]), int(dx[i]), bool(flip[i]))
        assert torch.equal(out[i], ref), (i, int(dy[i]), int(dx[i]), bool(flip[i]))
    # No shift, no flip: the identity; a flip alone reverses the columns.
    zero = torch.zeros(64, dtype=torch.int64)
    assert torch.equal(aug.apply(X, zero, zero, zero.bool()), X)
    assert torch.equal(aug.apply(X, zero, zero, ~zero.bool()).view(64, *SHAPE), X.view(64, *SHAPE).flip(-1))


def test_same_seed_same_images_and_members_as_single_runs():
    aug = RandomTranslateFlip(SHAPE)
    X = torch.rand(32, 3072, generator=_gen(4))
    a = aug(X, generator(7, "augment"))
    b = aug(X, generator(7, "augment"))
    c = aug(X, generator(8, "augment"))
    assert torch.equal(a, b) and not torch.equal(a, c)
    # A population's per-member batches: member e is augmented as a single run of its seed.
    XE = torch.stack([X, X.flip(0)])
    out = aug(XE, [generator(7, "augment"), generator(8, "augment")])
    assert torch.equal(out[0], a) and torch.equal(out[1], aug(X.flip(0), generator(8, "augment")))
    with pytest.raises(ValueError, match="one generator each"):
        aug(XE, [generator(7, "augment")])
    with pytest.raises(ValueError, match="3072"):
        aug(torch.rand(4, 784), _gen())
    with pytest.raises(ValueError, match="shift"):
        RandomTranslateFlip(SHAPE, shift=1.5)


def _images(n=256, seed=0):
    """Random 3x32x32 'images' whose class sets the mean of one channel (learnable)."""
    g = _gen(seed)
    y = torch.randint(0, 10, (n,), generator=g)
    X = torch.rand(n, 3072, generator=g) * 0.5
    X[:, :1024] += (y[:, None].float() / 20.0)
    return Dataset(X, one_hot(y, 10), y, "images")


def _trainer(augment, E=1, order="shared"):
    net = Network([3072, 16, 10], seeds=list(range(E)))
    return Trainer(net, build_channel("rbp"), SGD(lr=0.05, momentum=0.9), batch_size=32, progress=False,
                   augment=augment, batch_order=order)


@pytest.mark.parametrize("E, order", [(1, "shared"), (2, "per_member")])
def test_checkpoint_resume_gives_identical_numbers(tmp_path, E, order):
    data = _images()
    aug = RandomTranslateFlip(SHAPE)
    full = _trainer(aug, E, order)
    full.fit(data, data, epochs=2)
    first = _trainer(aug, E, order)
    first.fit(data, data, epochs=1, checkpoint=tmp_path / "c.pt")
    assert len(first.state_dict()["augment_rng"]) == (1 if order == "shared" else E)
    resumed = _trainer(aug, E, order)
    resumed.load(tmp_path / "c.pt")
    resumed.fit(data, data, epochs=2)
    for p, q in zip(full.net.state_dict().values(), resumed.net.state_dict().values()):
        assert torch.equal(p, q)
    assert full.history.metrics == resumed.history.metrics
    # The augmentation is live: without it the same run ends elsewhere.
    plain = _trainer(None, E, order)
    plain.fit(data, epochs=2)
    assert any(not torch.equal(p, q) for p, q in zip(plain.net.state_dict().values(), full.net.state_dict().values()))
    # A checkpoint of an unaugmented run does not silently resume an augmented one.
    plain.save(tmp_path / "plain.pt")
    with pytest.raises(ValueError, match="augmentation"):
        _trainer(aug, E, order).load(tmp_path / "plain.pt")


def test_config_and_run_folder_resume_with_augmentation(tmp_path):
    from lchannel.run.single import train_config

    cfg = TrainConfig(dataset="cifar10", architecture=[3072, 8, 10], batch_size=64, epochs=2,
                      lr=0.01, decay=1e-5, momentum=0.9, augment=True)
    data = (_images(256), _images(128, seed=1))  # stand-in images: the folder logic is the point
    whole = train_config(cfg, tmp_path / "a", progress=False, data=data).history
    train_config(cfg.replace(epochs=1), tmp_path / "b", progress=False, data=data)
    resumed = train_config(cfg, tmp_path / "b", progress=False, data=data)
    assert resumed.trainer.augment is not None and resumed.history.metrics == whole.metrics
    assert (tmp_path / "b" / "metrics.csv").read_text() == (tmp_path / "a" / "metrics.csv").read_text()
    other = train_config(cfg.replace(augment=False), tmp_path / "c", progress=False, data=data).history
    assert other.metrics["train_loss"] != whole.metrics["train_loss"]


def test_normalisation_uses_the_training_sets_channel_statistics(data_dir):
    if not (data_dir / "cifar10" / "test_batch.bin").is_file():
        pytest.skip("CIFAR-10 files not found")
    train, test = load_dataset("cifar10", data_dir, normalize=True)
    x = train.X.numpy().reshape(-1, 3, 1024)
    assert np.allclose(x.mean(axis=(0, 2), dtype=np.float64), 0, atol=1e-5)
    assert np.allclose(x.std(axis=(0, 2), dtype=np.float64), 1, atol=1e-5)
    # Undone with the training set's statistics from the data's README (0..255 units),
    # both splits land back on whole pixel values: the test split took the training
    # statistics, not its own.
    mean = torch.tensor([125.307, 122.950, 113.865], dtype=torch.float64)[None, :, None]
    std = torch.tensor([62.993, 62.089, 66.705], dtype=torch.float64)[None, :, None]
    for split in (train, test.subset(2000)):
        pixels = split.X[:2000].view(-1, 3, 1024).double() * std + mean
        assert (pixels - pixels.round()).abs().max() < 0.05
        assert pixels.round().min() == 0 and pixels.round().max() == 255
    assert train.X.dtype == torch.float32 and train.labels.bincount().tolist() == [5000] * 10


def test_image_options_only_for_image_data_sets():
    assert REGISTRY["cifar10"].input_shape == (3, 32, 32) and REGISTRY["mnist"].input_shape == (1, 28, 28)
    assert REGISTRY["synthetic"].input_shape is None
    for field in ("augment", "normalize"):
        with pytest.raises(ValueError, match=f"{field}: True does not apply here: only data set mnist or cifar10"):
            TrainConfig(dataset="synthetic", **{field: True}).validate()
        with pytest.raises(ValueError, match=f"{field}: 1 is not accepted; expected true or false"):
            TrainConfig(dataset="cifar10", **{field: 1}).validate()
    with pytest.raises(ValueError, match="normalize: data set 'synthetic' is not an image data set"):
        load_dataset("synthetic", normalize=True)
    # Fields added with their defaults leave earlier runs' keys where they were.
    base = TrainConfig(dataset="mnist")
    assert base.key() == TrainConfig(dataset="mnist", augment=False, normalize=False).key()
    assert len({base.key(), base.replace(augment=True).key(), base.replace(normalize=True).key()}) == 3
