"""Training loop: populations, determinism, checkpoints, divergence, short real training."""

import dataclasses
import math

import pytest
import torch

from lchannel.channels import REGISTRY
from lchannel.run.config import TrainConfig
from lchannel.run.single import build_trainer, load_data, train_config

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


# Every algorithm the engine runs (with its example options), plus one per-member batch order.
ENGINE = [name for name, entry in REGISTRY.items() if entry.cls is not None]
POPULATION = [(name, "shared") for name in ENGINE] + [("srbp", "per_member")]


def train64(cfg: TrainConfig):
    """``cfg`` trained in float64 (weights and feedback drawn in float64, data cast)."""
    trainer = build_trainer(cfg, progress=False, dtype=torch.float64)
    train, test = (dataclasses.replace(d, X=d.X.double(), T=d.T.double()) for d in load_data(cfg))
    trainer.fit(train, test, epochs=cfg.epochs)
    return trainer


@pytest.mark.parametrize("algorithm,order", POPULATION)
def test_population_equals_single_runs_with_the_same_seeds(algorithm, order):
    """Member e of a population equals the run with seed e alone, to the rounding of the
    batched kernels' other summation order.  In float64: in float32 that rounding (1e-6
    after 3 epochs here) is amplified without bound by sign-based feedback (uSF: a weight
    that crosses zero in one order and not the other flips a feedback entry; 1.26 measured
    on this machine's kernels), so a float32 bound would hold on some CPUs and not others.
    Measured in float64: weights <= 1.2e-9 apart (uSF), <= 5e-15 for the others."""
    seeds = [3, 5, 11]
    channel = dict(REGISTRY[algorithm].example)
    pop = train64(quick(algorithm=algorithm, seeds=seeds, batch_order=order, channel=channel))
    for e, s in enumerate(seeds):
        one = train64(quick(algorithm=algorithm, seeds=[s], batch_order=order, channel=channel))
        for m in ("train_loss", "train_acc", "test_loss", "test_acc"):
            got = [row[e] for row in pop.history.metrics[m]]
            want = [row[0] for row in one.history.metrics[m]]
            assert got == pytest.approx(want, rel=1e-7, abs=1e-9), m
        for a, b in zip(pop.net.weights, one.net.weights):
            torch.testing.assert_close(a[e], b[0], rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("algorithm", ENGINE)
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
    from lchannel.run.single import build_trainer, load_data
    train, test = load_data(cfg)
    t = build_trainer(cfg, progress=False)
    with torch.no_grad():
        t.net.weights[0][1].fill_(float("nan"))  # member 1 breaks
    h = t.fit(train, test, epochs=3)
    assert h.diverged_at == [None, 1]
    # why: W^1 was NaN from the start, so the first quantity of the first step, S^1, is
    assert h.divergence[0] is None
    assert {k: h.divergence[1][k] for k in ("epoch", "step", "update", "quantity")} == \
        {"epoch": 1, "step": 1, "update": 1, "quantity": "S^1"}
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
    from lchannel.engine.plasticity import SGD
    opt = SGD(lr=0.1, decay=1e-2)
    opt.t = 100
    assert opt.lr_now() == pytest.approx(0.1 / 2)


# -- why a member diverged ----------------------------------------------------------------
# The linear network with Hebbian ASRBP at a high rate (paper 2's deep linear case): its
# members diverge in different epochs (here 5 and 9), at the loss or a pre-activation.
DIVERGES = dict(dataset="synthetic", n_train=500, n_test=200, batch_size=10, architecture=[2, 16, 16, 1],
                hidden="identity", output="identity", algorithm="asrbp", channel={"adapt_rate": 1.0},
                lr=0.275, decay=0.0, epochs=10, seeds=[0, 1])
# BP at a rate float32 can only just hold as η/B: the first update itself overflows.
OVERFLOWS = dict(dataset="synthetic", n_train=500, n_test=200, batch_size=10, architecture=[2, 16, 16, 1],
                 algorithm="bp", lr=3e39, decay=0.0, epochs=2, seeds=[0, 1])


def first_non_finite_by_hand(cfg: TrainConfig) -> dict:
    """Replay ``cfg`` step by step with the public pieces (the README's "one step, by
    hand"), look at every quantity of every step in the order the step computes it, and
    return, per member, (epoch, step in the epoch, update over the run, quantity) of the
    first NaN/inf one.  A member is stopped at the end of that epoch, as the trainer does."""
    from lchannel.engine.rng import generator
    from lchannel.run.single import build_trainer, load_data

    train, _ = load_data(cfg)
    t = build_trainer(cfg, progress=False)  # for its net, channel and optimizer only
    net, ch, opt, out = t.net, t.channel, t.opt, t.net.output_loss
    E, L, B, N = net.E, net.L, cfg.batch_size, len(train)
    names = {id(b): "C^{%s,%s}" % tuple(n.split("_")[1:]) for n, b in ch.named_buffers()}
    order = generator(cfg.data_seed, "data")
    found, update = {}, 0

    def bad(x):
        return (~torch.isfinite(x).reshape(E, -1).all(1)).tolist()

    for epoch in range(1, cfg.epochs + 1):
        perm = torch.randperm(N, generator=order)
        for step, start in enumerate(range(0, N, B), start=1):
            update += 1
            idx = perm[start:start + B]
            X, T = train.X.index_select(0, idx), train.T.index_select(0, idx)
            seen = []
            ch.on_batch_start()
            rec = net.forward(X, train=True)
            for h in range(1, L + 1):
                seen += [(f"S^{h}", rec.S[h]), (f"O^{h}", rec.O[h])]
            e = out.error(T, rec.output)
            seen += [("loss", out.loss(rec.output, T)), ("T − O", e)]
            I = ch.signals(rec, e)
            seen += [(f"I^{h}", I[h]) for h in range(L, 0, -1) if I[h] is not None]
            terms = ch.plasticity_terms(rec, I)
            eta = opt.lr_now()
            updates = {h: opt.direction(I[h], rec.presynaptic(h, E), eta, h)
                       for h in range(1, L + 1) if I[h] is not None}
            opt.step(rec, I, terms)
            for h in range(1, L + 1):
                if h in updates:  # η·ΔW/η in float64, then as the network holds it
                    seen += [(f"ΔW^{h}", (updates[h][0].double() * eta).float()),
                             (f"Δb^{h}", (updates[h][1].double() * eta).float())]
                seen += [(f"W^{h}", net.W(h)), (f"b^{h}", net.b(h))]
            seen += [(names[id(P)], P) for P, *_ in terms]
            for name, x in seen:
                for m, b in enumerate(bad(x)):
                    if b and m not in found:
                        found[m] = {"epoch": epoch, "step": step, "update": update, "quantity": name}
        for m in found:
            if found[m]["epoch"] == epoch:
                opt.stop_member(m)
        if len(found) == E:  # the trainer stops when every member has diverged
            break
    return found


@pytest.mark.parametrize("setting", [DIVERGES, OVERFLOWS], ids=["asrbp-linear", "bp-overflow"])
def test_a_diverged_member_records_the_first_non_finite_quantity_of_its_step(setting, tmp_path):
    cfg = TrainConfig.from_dict(setting)
    res = train_config(cfg, tmp_path, progress=False)
    h = res.history
    expected = first_non_finite_by_hand(cfg)
    assert sorted(expected) == [0, 1]
    assert h.diverged_at == [expected[0]["epoch"], expected[1]["epoch"]]
    got = [{k: c[k] for k in ("epoch", "step", "update", "quantity")} for c in h.divergence]
    assert got == [expected[0], expected[1]]
    steps = cfg.n_train // cfg.batch_size
    for c in h.divergence:
        assert c["update"] == (c["epoch"] - 1) * steps + c["step"]  # counted over the run
        assert c["quantity"] in c["what"]  # "S^3 (forward pre-activation ...", "W^1 after the update"
    if setting is DIVERGES:  # members diverge in different, later epochs
        assert len({c["epoch"] for c in h.divergence}) == 2 and min(c["epoch"] for c in h.divergence) > 1
    else:  # the first update's step: an update ΔW^h or Δb^h overflows
        assert all(c["update"] == 1 and c["quantity"][0] == "Δ" for c in h.divergence)
    # metrics.json (and the checkpoint) keep it
    import json
    assert json.loads((tmp_path / "metrics.json").read_text())["divergence"] == h.divergence
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["history"]["divergence"] == h.divergence


def test_the_divergence_survives_a_resume_and_shows_in_the_final_table(tmp_path):
    from lchannel.run.single import RESULT_HEADER, divergence_notes, format_table, result_row
    from lchannel.engine.divergence import divergence_text

    cfg = TrainConfig.from_dict(DIVERGES)
    full = train_config(cfg, tmp_path / "full", progress=False).history
    first, second = sorted(full.diverged_at)
    assert first + 1 < second
    # "Crash" after the epoch after the first divergence; the second happens after the resume.
    train_config(cfg.replace(epochs=first + 1), tmp_path / "part", progress=False)
    resumed = train_config(cfg, tmp_path / "part", progress=False).history
    assert resumed.diverged_at == full.diverged_at and resumed.divergence == full.divergence
    assert (tmp_path / "part" / "metrics.json").read_text() == (tmp_path / "full" / "metrics.json").read_text()
    row = result_row("ASRBP", resumed)
    table = format_table([row], RESULT_HEADER)
    for s, c in zip(cfg.seeds, resumed.divergence):
        assert f"seed {s} at epoch {c['epoch']} ({c['quantity']})" in row[-1]
        assert f"ASRBP, seed {s}: diverged at {divergence_text(c)}" in divergence_notes("ASRBP", resumed)
    assert "diverged" in table.splitlines()[0] and row[-1] in table


def test_lchannel_train_prints_why_a_seed_diverged(tmp_path, capsys):
    from lchannel.cli import main
    from lchannel.engine.divergence import divergence_text

    argv = ["train", "--dataset", "synthetic", "--n-train", "500", "--n-test", "200", "--batch-size", "10",
            "--arch", "2,16,16,1", "--hidden", "identity", "--output", "identity", "--algorithm", "asrbp",
            "--adapt-rate", "1", "--lr", "0.275", "--decay", "0", "--epochs", "10", "--seeds", "0,1",
            "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    captured = capsys.readouterr()
    import json
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())  # metrics.json keeps the causes
    assert saved["divergence"] == train_config(TrainConfig.from_dict(DIVERGES), progress=False).history.divergence
    for s, c in zip(saved["seeds"], saved["divergence"]):
        assert f"seed {s} at epoch {c['epoch']} ({c['quantity']})" in captured.out   # the table's column
        assert f"seed {s}: diverged at {divergence_text(c)}" in captured.out       # the note under it
        assert f"seed {s} diverged at {divergence_text(c)}" in captured.err        # the line above the bar
