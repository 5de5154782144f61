"""Python API edge cases (issue 9): refused with a clear error before any work."""

import pytest
import torch

from lchannel.channels import build_channel
from lchannel.data import make_synthetic
from lchannel.data.base import Dataset
from lchannel.engine.nets import Network
from lchannel.engine.plasticity import SGD
from lchannel.engine.train import Trainer


def test_a_channel_bound_to_one_network_refuses_a_second():
    a, b = Network([2, 4, 1], output="logistic"), Network([2, 4, 1], output="logistic", seeds=[1])
    ch = build_channel("rbp")
    Trainer(a, ch, progress=False)
    C = ch.C[(1, 2)].clone()
    assert ch.bind(a) is ch  # binding the same network again is fine
    with pytest.raises(ValueError, match="already bound to another network"):
        Trainer(b, ch, progress=False)
    with pytest.raises(ValueError, match="already bound to another network"):
        ch.bind(b)
    assert ch.net is a and torch.equal(ch.C[(1, 2)], C)  # the first trainer's channel is untouched


def test_data_of_another_dtype_is_refused_naming_both_dtypes():
    net = Network([2, 4, 1], output="logistic").to(torch.float64)
    train, test = make_synthetic(k=0, n_train=20, n_test=10)  # float32
    tr = Trainer(net, build_channel("bp"), SGD(lr=0.1), batch_size=5, progress=False)
    with pytest.raises(ValueError, match=r"train data is torch.float32 but the network is torch.float64"):
        tr.fit(train, test, epochs=1)
    assert tr.epoch == 0 and tr.history.initial is None  # before any work
    as64 = Dataset(train.X.double(), train.T.double(), train.labels, train.name)
    with pytest.raises(ValueError, match=r"test data is torch.float32 but the network is torch.float64"):
        tr.fit(as64, test, epochs=1)
    tr.fit(as64, Dataset(test.X.double(), test.T.double(), test.labels, test.name), epochs=1)
    assert tr.history.epochs == [1]
