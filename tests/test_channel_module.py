"""Learning channels are ``torch.nn.Module`` s: feedback matrices are buffers that move
with ``.to(...)`` (the channel's, or the bound network's), never parameters; the network
stays a plain reference, not a submodule."""

import torch

from lchannel.channels import build_channel
from lchannel.channels.base import LearningChannel
from lchannel.data.base import Dataset
from lchannel.engine.nets import Network
from lchannel.engine.plasticity import SGD
from lchannel.engine.train import Trainer

from helpers import batch, small_net

SIZES = [5, 7, 6, 4]


def test_a_bound_channel_is_a_module_with_feedback_buffers_and_no_parameters():
    net = small_net(SIZES)
    ch = build_channel("rbp").bind(net)
    assert isinstance(ch, torch.nn.Module) and isinstance(build_channel("bp"), LearningChannel)
    assert list(ch.parameters()) == [] and list(ch.children()) == []  # the network is not a submodule
    assert {n: tuple(b.shape) for n, b in ch.named_buffers()} == {"C_1_2": (2, 7, 6), "C_2_3": (2, 6, 4)}
    assert ch.C[(1, 2)] is ch.C_1_2 and ch.route(1, 2).C is ch.C_1_2
    state = ch.state_dict()
    assert set(state) == {"C_1_2", "C_2_3", "_extra_state"}  # channel state only
    assert not any(k.startswith("blocks") for k in state) and not any("C" in k for k in net.state_dict())


def test_samples_and_per_synapse_feedback_are_named_buffers():
    net = small_net(SIZES)
    K = build_channel("srbp", feedback_samples=3).bind(net)
    assert sorted(n for n, _ in K.named_buffers()) == sorted(
        f"{p}_{h}_3" for p in ("C", "C1", "C2") for h in (1, 2))
    assert K.samples[2][(1, 3)] is K.C2_1_3 and K.C is K.samples[0]
    ps = build_channel("srbp", per_synapse=True).bind(net)
    names = {n: tuple(b.shape) for n, b in ps.named_buffers()}
    assert names["Cw_1_3"] == (2, 7, 4, 5) and names["Cb_2_3"] == (2, 6, 4)
    assert ps.synapse_C[(1, 3)][0] is ps.Cw_1_3
    ps.bind(net)  # binding again redraws, same buffers by name
    assert set(dict(ps.named_buffers())) == set(names)


def test_channel_to_moves_the_buffers_and_the_routes_follow():
    net = small_net(SIZES)
    ch = build_channel("rbp").bind(net)
    C = ch.C[(1, 2)].clone()
    ch.to(torch.float64)
    assert all(b.dtype == torch.float64 for b in ch.buffers())
    assert ch.C[(1, 2)].dtype == torch.float64 and ch.route(1, 2).C is ch.C_1_2
    torch.testing.assert_close(ch.C[(1, 2)], C.double(), rtol=0, atol=0)
    assert net.dtype == torch.float32  # the channel alone does not move the network


def test_moving_the_network_moves_its_channel_and_training_matches_a_float64_run():
    X, T = batch(SIZES, B=10)
    data64 = Dataset(X.double(), T.double(), T.argmax(1), "probe")

    def trainer(dtype, channel="rbp", **options):
        net = Network(SIZES, seeds=[0, 1], dtype=dtype)
        return Trainer(net, build_channel(channel, **options), SGD(lr=0.5), batch_size=10, progress=False)

    for channel, options in (("rbp", {}), ("arbp", {}), ("srbp", {"resample": "sign_concordant"}),
                             ("rbp", {"feedback_samples": 2})):
        moved, native = trainer(torch.float32, channel, **options), trainer(torch.float64, channel, **options)
        moved.net.to(torch.float64)
        shapes = {n: (tuple(b.shape), torch.float64) for n, b in native.channel.named_buffers()}
        assert {n: (tuple(b.shape), b.dtype) for n, b in moved.channel.named_buffers()} == shapes
        # torch draws different numbers for float32 and float64 from one seed, so the
        # float64 run starts from the float32 run's draws (weights, feedback, streams).
        native.net.load_state_dict(moved.net.state_dict())
        native.channel.load_state_dict(moved.channel.state_dict())
        W1 = moved.net.W(1).clone()
        moved.train_epoch(data64)  # one step (one minibatch)
        assert not torch.equal(moved.net.W(1), W1)
        native.train_epoch(data64)
        # Tolerance: none — after the move both runs compute in float64 from the same values.
        for a, b in zip(moved.net.weights + moved.net.biases, native.net.weights + native.net.biases):
            assert a.dtype == torch.float64
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        for (n, a), (m, b) in zip(moved.channel.named_buffers(), native.channel.named_buffers()):
            assert n == m and a.dtype == torch.float64
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_module_state_dict_round_trip_and_the_checkpoint_format():
    net = small_net(SIZES)
    ch = build_channel("srbp", resample="zero_mean", lc_dropout=0.2).bind(net)
    state = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in ch.state_dict().items()}
    ckpt = ch.checkpoint_state()
    assert {"rng", "C", "feedback_rng"} <= set(ckpt)  # the dictionary Trainer checkpoints hold
    ch.on_batch_start()  # redraws the matrices and advances the stream
    assert not torch.equal(ch.C[(1, 3)], state["C_1_3"])
    ch.load_state_dict(state)
    assert torch.equal(ch.C[(1, 3)], state["C_1_3"])
    ch.on_batch_start()
    again = ch.C[(1, 3)].clone()
    ch.load_state_dict(ckpt)  # a checkpoint_state() dict is accepted too
    ch.on_batch_start()
    assert torch.equal(ch.C[(1, 3)], again)
