"""A few hundred steps of a small conv net on a CIFAR-10 subset lift BP, RBP and SRBP
above chance (paper 1, section 4.3: every channel learns on conv nets), through the
config path that ``lchannel train --dataset cifar10 --arch ...`` takes."""

import os
from pathlib import Path

import pytest

from lchannel.run.config import TrainConfig
from lchannel.data import load_cifar10
from lchannel.run.single import build_trainer

pytestmark = pytest.mark.usefixtures("one_thread")

# Two hidden weighted blocks, so that RBP (random kernels through the conv's adjoint) and
# SRBP (a random map from the output error to every conv unit) are different channels.
SMALL = "conv8k5-pool4-dense32-dense10"


@pytest.fixture(scope="module")
def cifar_subset():
    d = Path(os.environ.get("LCHANNEL_DATA_DIR", Path(__file__).resolve().parents[1].parent / "shared" / "datasets"))
    if not (d / "cifar10" / "test_batch.bin").is_file():
        pytest.skip(f"CIFAR-10 files not found under {d}")
    train, test = load_cifar10(d, download_missing=False, batches=(1,))
    return train.subset(1024), test.subset(1000)


@pytest.mark.parametrize("algorithm", ["bp", "rbp", "srbp"])
def test_a_few_hundred_steps_lift_every_channel_above_chance(cifar_subset, algorithm):
    train, test = cifar_subset
    # 10 epochs of 32 minibatches of 32: 320 updates, the paper's momentum and learning rate.
    cfg = TrainConfig(dataset="cifar10", architecture=SMALL, algorithm=algorithm, lr=0.01, decay=1e-5,
                      momentum=0.9, batch_size=32, epochs=10, subset=1024)
    trainer = build_trainer(cfg, progress=False)
    assert trainer.net.sizes == [3072, 8 * 32 * 32, 32, 10]
    _, before = trainer.evaluate(test)
    trainer.fit(train, None, epochs=cfg.epochs)
    _, after = trainer.evaluate(test)
    # Chance is 10%; with 1,000 test images its standard deviation is under 1%.
    assert float(before[0]) < 0.15 and float(after[0]) > 0.2, (algorithm, float(before[0]), float(after[0]))
    assert trainer.history.final("train_acc")[0] > 0.2
