"""Checkpoints written before Network became an ``nn.Module`` still load.

``data/legacy_checkpoint.pt`` is a Trainer checkpoint written by the engine at commit
3f4a5a2 (``python tests/test_legacy_checkpoint.py --write``): ``state["net"]`` is
``{"weights": [W^h], "biases": [b^h]}``.  It also holds the outputs that engine computed
on a fixed batch after loading, and the number of finished epochs.
"""

import sys
from pathlib import Path

import pytest
import torch

from lchannel.channels import build_channel
from lchannel.data import make_synthetic
from lchannel.engine.nets import Network
from lchannel.engine.plasticity import SGD
from lchannel.engine.train import Trainer

pytestmark = pytest.mark.kernels  # also run under other kernels (.ci/run)

FILE = Path(__file__).parent / "data" / "legacy_checkpoint.pt"
SIZES = [2, 6, 5, 1]


def make_trainer() -> Trainer:
    net = Network(SIZES, hidden="tanh", output="logistic", seeds=[0, 1])
    return Trainer(net, build_channel("arbp"), SGD(lr=0.3, decay=1e-4, momentum=0.5), batch_size=10,
                   progress=False)


def probe() -> torch.Tensor:
    return torch.linspace(-1, 1, 2 * 7).reshape(7, 2)


def test_a_checkpoint_of_the_old_format_loads_and_resumes():
    saved = torch.load(FILE, weights_only=False)
    assert set(saved["trainer"]["net"]) >= {"weights", "biases"}  # the old format indeed
    tr = make_trainer()
    tr.load_state_dict(saved["trainer"])
    assert tr.epoch == 2
    # The outputs were computed on the machine that wrote the file: its kernels may round
    # differently from this one's (float32, a 2-6-5-1 net: a few ulps), so not ==.
    torch.testing.assert_close(tr.net.predict(probe()), saved["outputs"], rtol=1e-6, atol=1e-7)
    for h in range(1, tr.net.L + 1):  # loaded numbers: equal by construction
        assert torch.equal(tr.net.W(h), saved["trainer"]["net"]["weights"][h - 1])
        assert torch.equal(tr.net.b(h), saved["trainer"]["net"]["biases"][h - 1])
    train, _ = make_synthetic(k=0, n_train=100, n_test=10, seed=0)
    tr.fit(train, epochs=3)  # and training goes on from there
    assert tr.history.epochs == [1, 2, 3]


if __name__ == "__main__" and "--write" in sys.argv:
    train, _ = make_synthetic(k=0, n_train=100, n_test=10, seed=0)
    tr = make_trainer()
    tr.fit(train, epochs=2)
    torch.save({"trainer": tr.state_dict(), "outputs": tr.net.predict(probe())}, FILE)
