"""Training loop: populations, determinism, checkpoints, divergence, short real training."""

import math

import pytest
import torch

from lchannel.channels import REGISTRY
from lchannel.config import TrainConfig
from lchannel.run import train_config

QUICK = dict(dataset="synthetic", synthetic_k=0, n_train=1000, n_test=500, architecture=[2, 32, 32, 1],
             lr=0.5, decay=1e-4, batch_size=10)


def quick(**kw) -> TrainConfig:
    return TrainConfig.from_dict({**QUICK, "epochs": 3, **kw})


@pytest.mark.parametrize("algorithm", ["bp", "rbp", "srbp"])
def test_short_training_reaches_high_training_accuracy(algorithm):
    res = train_config(quick(algorithm=algorithm, epochs=15, seeds=[0, 1]), progress=False)
    assert min(res.history.final("train_acc")) > 0.9
    top = train_config(quick(algorithm="top", epochs=15, seeds=[0, 1]), progress=False)
    assert min(res.history.final("train_acc")) > max(top.history.final("train_acc")) + 0.05


# Every registered algorithm (with its example options), plus one per-member batch order.
POPULATION = [(name, "shared") for name in REGISTRY] + [("srbp", "per_member")]


@pytest.mark.parametrize("algorithm,order", POPULATION)
def test_population_equals_single_runs_with_the_same_seeds(algorithm, order):
    seeds = [3, 5, 11]
    channel = dict(REGISTRY[algorithm].example)
    pop = train_config(quick(algorithm=algorithm, seeds=seeds, batch_order=order, channel=channel), progress=False)
    for e, s in enumerate(seeds):
        one = train_config(quick(algorithm=algorithm, seeds=[s], batch_order=order, channel=channel),
                           progress=False)
        for m in ("train_loss", "train_acc", "test_loss", "test_acc"):
            got = [row[e] for row in pop.history.metrics[m]]
            want = [row[0] for row in one.history.metrics[m]]
            assert got == pytest.approx(want, rel=1e-6, abs=1e-7), m
        for a, b in zip(pop.trainer.net.weights, one.trainer.net.weights):
            torch.testing.assert_close(a[e], b[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("algorithm", list(REGISTRY))
def test_rerunning_a_config_gives_identical_metrics(algorithm):
    # Channel noise included where there is a channel (top-layer-only refuses transforms).
    channel = {**REGISTRY[algorithm].example, **({} if algorithm == "top" else {"lc_dropout": 0.2})}
    cfg = quick(algorithm=algorithm, seeds=[0, 1], channel=channel, epochs=2)
    a = train_config(cfg, progress=False).history
    b = train_config(cfg, progress=False).history
    assert a.metrics == b.metrics


def test_checkpoint_resume_is_identical_to_an_uninterrupted_run(tmp_path):
    cfg = quick(algorithm="arbp", seeds=[0, 1], epochs=4, momentum=0.5, channel={"lc_dropout": 0.1})
    full = train_config(cfg, tmp_path / "full", progress=False).history
    train_config(cfg.replace(epochs=2), tmp_path / "part", progress=False)
    # "Crash" after epoch 2: a new process reads the checkpoint and finishes the schedule.
    resumed = train_config(cfg, tmp_path / "part", progress=False).history
    assert resumed.epochs == [1, 2, 3, 4]
    assert resumed.metrics == full.metrics
    assert (tmp_path / "part" / "metrics.csv").read_text() == (tmp_path / "full" / "metrics.csv").read_text()


def test_out_dir_of_another_run_is_refused(tmp_path):
    train_config(quick(epochs=1), tmp_path, progress=False)
    with pytest.raises(ValueError, match="different run"):
        train_config(quick(epochs=1, lr=0.3), tmp_path, progress=False)


def test_a_diverging_member_stops_and_the_others_go_on():
    cfg = quick(algorithm="rbp", seeds=[0, 1], epochs=3)
    from lchannel.run import build_trainer, load_data
    train, test = load_data(cfg)
    t = build_trainer(cfg, progress=False)
    with torch.no_grad():
        t.net.weights[0][1].fill_(float("nan"))  # member 1 breaks
    h = t.fit(train, test, epochs=3)
    assert h.diverged_at == [None, 1]
    assert all(math.isnan(v) for v in (row[1] for row in h.metrics["train_acc"][1:]))
    single = train_config(quick(algorithm="rbp", seeds=[0], epochs=3), progress=False).history
    assert [row[0] for row in h.metrics["test_acc"]] == pytest.approx([row[0] for row in single.metrics["test_acc"]])


def test_config_rejects_unknown_keys_and_bad_values():
    with pytest.raises(ValueError, match=r"unknown config key\(s\) \['learning_rate'\]"):
        TrainConfig.from_dict({"learning_rate": 0.1})
    with pytest.raises(ValueError, match="lr"):
        TrainConfig.from_dict({"lr": -1})
    with pytest.raises(ValueError, match="seeds"):
        TrainConfig.from_dict({"seeds": []})
    with pytest.raises(ValueError, match="architecture"):
        TrainConfig.from_dict({"architecture": [785, 10]})
    with pytest.raises(ValueError, match="does not accept"):
        TrainConfig.from_dict({"algorithm": "bp", "channel": {"feedback": {"distribution": "normal"}}})


def test_momentum_and_schedule():
    from lchannel.plasticity import SGD
    opt = SGD(lr=0.1, decay=1e-2)
    opt.t = 100
    assert opt.lr_now() == pytest.approx(0.1 / 2)
