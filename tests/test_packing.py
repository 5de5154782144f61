"""Populations across variants (issue 16): members differ in the learning rate, the
feedback distribution, dropout probabilities and quantization bits, and each is bit-identical to the member at its place in a
population of the same size whose members all share its variant (the same arithmetic:
same tensor sizes, same positions), and close to its single run (docs/experiments.md,
"What is exact": element-wise kernels round a tensor's tail differently, so a member of
a population of another size is equal only up to float rounding)."""

import pytest
import torch

from lchannel.channels import build_channel
from lchannel.channels.feedback import FeedbackInit, MemberFeedback
from lchannel.run.config import TrainConfig
from lchannel.engine.nets import Network
from lchannel.population.packing import build_packed_trainer, pack_key
from lchannel.engine.plasticity import SGD
from lchannel.run.single import build_trainer, load_data

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.kernels]

BASE = dict(dataset="mnist", subset=400, architecture=[784, 24, 16, 10], epochs=2, seeds=[0, 1, 2, 3],
            batch_size=50, decay=1e-4)
SPARSE8, UNIFORM = {"distribution": "sparse", "n": 8}, "uniform"


@pytest.fixture(scope="module")
def data():
    return load_data(TrainConfig(**BASE))


def state(t, e):
    """Member e's forward weights, biases and feedback matrices."""
    return [p[e] for p in [*t.net.weights, *t.net.biases, *t.channel.buffers()]]


def fit(t, data):
    t.progress = False
    t.fit(*data, epochs=2)
    return t


def assert_members_equal(mixed, uniform, members):
    """Members ``members`` of ``mixed`` equal those of ``uniform`` bit for bit: weights,
    biases, feedback matrices and every metric of every epoch."""
    for e in members:
        assert all(torch.equal(a, b) for a, b in zip(state(mixed, e), state(uniform, e)))
        for m, rows in uniform.history.metrics.items():
            assert [r[e] for r in rows] == [r[e] for r in mixed.history.metrics[m]], m


def check_per_member(build, values, uniform_build, data):
    """Train a population whose member e has ``values[e]`` and, for each value, the
    population whose members all have it; compare the members that share it."""
    mixed = fit(build(values), data)
    for v in sorted(set(values)):
        assert_members_equal(mixed, fit(uniform_build(v), data), [i for i, q in enumerate(values) if q == v])
    return mixed


@pytest.mark.parametrize("algorithm,momentum", [("rbp", 0.0), ("arbp", 0.0), ("srbp", 0.5)])
def test_members_with_their_own_lr_and_feedback_equal_uniform_populations(data, algorithm, momentum):
    cfg = TrainConfig(**BASE, algorithm=algorithm, momentum=momentum)
    lrs, fbs = [0.1, 0.1, 0.05, 0.05], [SPARSE8, SPARSE8, UNIFORM, UNIFORM]
    mixed = fit(build_trainer(cfg, progress=False, lr=lrs, feedback=fbs), data)
    for lr, fb, members in [(0.1, SPARSE8, [0, 1]), (0.05, UNIFORM, [2, 3])]:
        uniform = fit(build_trainer(cfg.replace(lr=lr, channel={"feedback": fb}), progress=False), data)
        assert_members_equal(mixed, uniform, members)
        for e in members:
            assert [r[e] for r in mixed.history.lr] == uniform.history.lr  # η_t per member


@pytest.mark.parametrize("algorithm", ["bp", "srbp"])
def test_members_with_their_own_lc_dropout_equal_uniform_populations(data, algorithm):
    cfg = TrainConfig(**BASE, algorithm=algorithm, channel={"lc_dropout": 0.1})
    ps = [0.1, 0.5, 0.5, 0.2]
    check_per_member(lambda v: build_trainer(cfg, progress=False, lc_dropout=v), ps,
                     lambda p: build_trainer(cfg.replace(channel={"lc_dropout": p}), progress=False), data)
    with pytest.raises(ValueError, match="learning-channel dropout"):
        build_trainer(cfg.replace(channel={}), progress=False, lc_dropout=ps)


@pytest.mark.parametrize("algorithm", ["bp", "rbp"])
def test_members_with_their_own_forward_dropout_equal_uniform_populations(data, algorithm):
    cfg = TrainConfig(**BASE, algorithm=algorithm, dropout=0.1)
    ps = [0.1, 0.5, 0.5, 0.2]
    mixed = check_per_member(lambda v: build_trainer(cfg, progress=False, dropout=v), ps,
                             lambda p: build_trainer(cfg.replace(dropout=p), progress=False), data)
    assert mixed.net.member(1).dropout == 0.5 and mixed.net.member(3).dropout == 0.2
    drop = [cfg.replace(dropout=p) for p in (0.1, 0.2, 0.5)]
    assert len({pack_key(c) for c in drop}) == 1 and pack_key(drop[0]) != pack_key(cfg.replace(dropout=0.0))
    for bad in ([0.1, 0.2], [0.1, 1.0, 0.1, 0.1], 1.5):
        with pytest.raises(ValueError, match="dropout"):
            Network([6, 5, 3], seeds=[0, 1, 2, 3], dropout=bad)


@pytest.mark.parametrize("algorithm", ["arbp", "asrbp"])
def test_members_with_their_own_adaptation_rate_equal_uniform_populations(data, algorithm):
    cfg = TrainConfig(**BASE, algorithm=algorithm, momentum=0.5)
    rates = [0.1, 1.0, 1.0, 0.3]
    check_per_member(lambda v: build_trainer(cfg, progress=False, adapt_rate=v), rates,
                     lambda r: build_trainer(cfg.replace(channel={"adapt_rate": r}), progress=False), data)
    same = [cfg.replace(channel={"adapt_rate": r}) for r in (0.1, 0.3)] + [cfg.replace(lr=0.05)]
    assert len({pack_key(c) for c in same}) == 1
    with pytest.raises(ValueError, match="adaptive channel"):
        build_trainer(cfg.replace(algorithm="rbp"), progress=False, adapt_rate=rates)


@pytest.mark.parametrize("algorithm", ["bp", "srbp"])
def test_members_with_their_own_error_quantization_bits_equal_uniform_populations(data, algorithm):
    def cfg_bits(b):
        return TrainConfig(**BASE, algorithm=algorithm, channel={"quantize_bits": b, "quantize_alpha": 0.125})
    bits = [5, 3, 3, 1]
    check_per_member(lambda v: build_trainer(cfg_bits(5), progress=False, quantize_bits=v), bits,
                     lambda b: build_trainer(cfg_bits(b), progress=False), data)
    assert len({pack_key(cfg_bits(b)) for b in (5, 3, 1)}) == 1
    with pytest.raises(ValueError, match="quantized error signal"):
        build_trainer(TrainConfig(**BASE, algorithm=algorithm), progress=False, quantize_bits=bits)


@pytest.mark.parametrize("algorithm", ["bp", "rbp"])
def test_members_with_their_own_update_bits_equal_uniform_populations(data, algorithm):
    cfg = TrainConfig(**{**BASE, "decay": 0.0}, algorithm=algorithm, update_bits=5, update_alpha=2 ** -6)
    bits = [5, 3, 3, 1]
    check_per_member(lambda v: build_trainer(cfg, progress=False, update_bits=v), bits,
                     lambda b: build_trainer(cfg.replace(update_bits=b), progress=False), data)
    q = [cfg.replace(update_bits=b) for b in (5, 3, 1)]
    assert len({pack_key(c) for c in q}) == 1 and pack_key(q[0].replace(lr=0.05)) != pack_key(q[0])
    with pytest.raises(ValueError, match="update_bits"):
        SGD(update_bits=[3, 0])
    with pytest.raises(ValueError, match="3 per-member values"):
        SGD(update_bits=[3, 1, 5]).bind(Network([6, 5, 3], seeds=[0, 1]))


def test_a_packed_population_is_its_cells_single_runs_up_to_rounding(data):
    cfg = TrainConfig(**BASE, algorithm="rbp")
    parts = [cfg.replace(seeds=[0, 1], channel={"feedback": SPARSE8}),
             cfg.replace(seeds=[0], lr=0.05, channel={"feedback": {"distribution": "sparse", "n": 2}}),
             cfg.replace(seeds=[3], channel={"feedback": "sign"})]
    assert len({pack_key(p) for p in parts}) == 1
    packed = fit(build_packed_trainer(parts), data)
    assert packed.net.seeds == [0, 1, 0, 3]  # part by part, seed by seed; seeds may repeat
    e = 0
    for p in parts:
        for s in p.seeds:
            one = fit(build_trainer(p.replace(seeds=[s]), progress=False), data)
            for a, b in zip(state(packed, e), state(one, 0)):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
            for m, rows in one.history.metrics.items():
                assert [r[e] for r in packed.history.metrics[m]] == pytest.approx([r[0] for r in rows], rel=1e-6, abs=1e-7)
            e += 1


def test_what_cannot_share_a_population_gets_its_own_pack_key():
    cfg = TrainConfig(**BASE, algorithm="rbp")
    same = [cfg, cfg.replace(lr=0.05), cfg.replace(channel={"feedback": SPARSE8})]
    assert len({pack_key(c) for c in same}) == 1
    drop = [cfg.replace(channel={"lc_dropout": p}) for p in (0.1, 0.2, 0.5)]
    assert len({pack_key(c) for c in drop}) == 1 and pack_key(drop[0]) != pack_key(cfg)
    apart = [cfg.replace(channel={"derivative": "none"}), cfg.replace(dropout=0.1), cfg.replace(momentum=0.5),
             cfg.replace(update_bits=3), cfg.replace(algorithm="srbp"),
             cfg.replace(channel={"feedback": {"distribution": "normal", "congruent": True}})]
    keys = [pack_key(c) for c in apart]
    assert len(set(keys)) == len(keys) and pack_key(cfg) not in keys
    # Quantized updates pack their bits only: learning rates and feedback split populations.
    q = cfg.replace(update_bits=3)
    assert pack_key(q) == pack_key(q.replace(update_bits=1))
    assert pack_key(q) != pack_key(q.replace(lr=0.05)) != pack_key(q.replace(channel={"feedback": SPARSE8}))
    # Backprop has no feedback to vary, but its learning rate may.
    bp = cfg.replace(algorithm="bp")
    assert pack_key(bp) == pack_key(bp.replace(lr=0.05))
    with pytest.raises(ValueError, match="differ in more than"):
        build_packed_trainer([cfg, cfg.replace(dropout=0.1)])


def test_bad_per_member_options_are_refused_before_training():
    net = Network([6, 5, 3], seeds=[0, 1])
    with pytest.raises(ValueError, match="lr"):
        SGD(lr=[0.1, -0.1])
    with pytest.raises(ValueError, match="2 members"):
        SGD(lr=[0.1, 0.2, 0.3]).bind(net)
    with pytest.raises(ValueError, match="quantized"):
        SGD(lr=[0.1, 0.2], update_bits=3).bind(net)
    assert SGD(lr=[0.1, 0.1]).member_lr is None  # equal rates: the scalar path
    with pytest.raises(ValueError, match="congruent"):
        MemberFeedback([FeedbackInit(), FeedbackInit(congruent=True)])
    ch = build_channel("rbp").set_member_feedback(["normal", "uniform", "sign"])
    with pytest.raises(ValueError, match="3 per-member distributions for 2 members"):
        ch.bind(net)
    bound = build_channel("rbp").bind(net)
    with pytest.raises(ValueError, match="before the channel is bound"):
        bound.set_member_feedback(["normal", "uniform"])


# -- the runner ------------------------------------------------------------------------
SPEC = """
name = "packtiny"
description = "Table 1-like RBP rows on an MNIST subset"
[base]
dataset = "mnist"
subset = 500
architecture = [784, 20, 10]
batch_size = 50
epochs = 2
seeds = [0, 1]
algorithm = "rbp"
[alignment]
probe = 100
[[axes]]
name = "variant"
levels = [
  { label = "Baseline" },
  { label = "Sparse-8", set = { channel = { feedback = { distribution = "sparse", n = 8 } } } },
  { label = "Sparse-2", set = { channel = { feedback = { distribution = "sparse", n = 2 } } } },
  { label = "lr 0.05", set = { lr = 0.05 } },
  { label = "No-f'", set = { channel = { derivative = "none" } } },
  { label = "LC Dropout 10%", set = { channel = { lc_dropout = 0.1 } } },
  { label = "LC Dropout 50%", set = { channel = { lc_dropout = 0.5 } } },
]
"""


def stored(db):
    import sqlite3
    c = sqlite3.connect(db)
    out = {"runs": {r[0]: r[1:] for r in c.execute(
               "SELECT run_id, status, epochs_done, final_train_loss, final_train_acc, final_test_loss, final_test_acc "
               "FROM runs")},
           "epochs": {(r[0], r[1]): r[2:] for r in c.execute(
               "SELECT run_id, epoch, train_loss, train_acc, test_loss, test_acc, lr FROM epochs")},
           "alignment": {r[:4]: r[4] for r in c.execute("SELECT * FROM alignment")}}
    c.close()
    return out


def test_the_runner_packs_cells_across_variants_and_stores_each_member_as_its_own_run(tmp_path):
    from lchannel.experiments import load_spec, run_sweep
    from lchannel.experiments.planning import pack
    from lchannel.experiments.store import run_id
    p = tmp_path / "packtiny.toml"
    p.write_text(SPEC)
    spec = load_spec(p)
    cells = spec.cells()
    ids = {run_id(c.key, s) for c in cells for s in c.config.seeds}
    pops = pack(cells, ids)
    # No-f' apart; the two LC dropout cells together; the other four cells together.
    assert sorted(len(q.members) for q in pops) == [2, 4, 8]
    assert len(pack(cells, ids, variants=False)) == 7 and len(pack(cells, ids, packed=False)) == 14
    runs = {}
    for name, kw in [("variants", {}), ("cells", {"pack_variants": False}), ("alone", {"packed": False})]:
        res = run_sweep(spec, tmp_path / f"{name}.db", workers=1, progress=False, **kw)
        assert res.ran == 14 and res.failed == 0
        runs[name] = stored(tmp_path / f"{name}.db")
    a, b, c = runs["variants"], runs["cells"], runs["alone"]
    for other in (b, c):
        for part in a:  # every run under its own cell's run id, with the same numbers
            assert a[part].keys() == other[part].keys(), part
            for k, x in a[part].items():
                xs, ys = (x, other[part][k]) if isinstance(x, tuple) else ((x,), (other[part][k],))
                assert [v for v in xs if isinstance(v, str)] == [v for v in ys if isinstance(v, str)]
                assert [v for v in xs if not isinstance(v, str)] == pytest.approx(
                    [v for v in ys if not isinstance(v, str)], rel=2e-5, abs=1e-6), (part, k)
    lrs = {r[-1] for k, r in a["epochs"].items() if k[1] == 1}
    assert lrs == {0.1, 0.05}  # each member's own η_t stored
    # Members whose population is the same in both packings (No-f') are bit-identical.
    nof = [cell.key for cell in cells if "No-f'" in cell.title][0]
    assert all(a["epochs"][k] == b["epochs"][k] for k in a["epochs"] if k[0].startswith(nof))


def test_a_population_across_variants_resumes_from_its_checkpoint_bit_for_bit(tmp_path):
    from lchannel.experiments import load_spec, train_population
    from lchannel.experiments.planning import pack
    from lchannel.experiments.store import run_id
    p = tmp_path / "packtiny.toml"
    p.write_text(SPEC)
    cells = load_spec(p).cells()
    pop = max(pack(cells, {run_id(c.key, s) for c in cells for s in c.config.seeds}), key=lambda q: len(q.members))
    assert len(pop.parts) == 4
    task = {"id": 0, "key": pop.key, "config": pop.config.to_dict(), "checkpoint": str(tmp_path / "ck.pt"),
            "parts": [{"key": k, "config": c.to_dict()} for k, c in pop.parts]}
    whole = train_population({**task, "checkpoint": None})

    def stop(*event):
        raise KeyboardInterrupt  # killed after the first epoch's checkpoint

    with pytest.raises(KeyboardInterrupt):
        train_population(task, stop)
    resumed = train_population(task)
    assert resumed["history"]["metrics"] == whole["history"]["metrics"]
    assert resumed["keys"] == whole["keys"] == [k for k, c in pop.parts for _ in c.seeds]
    assert resumed["member_epochs"] == 8  # the second epoch only
