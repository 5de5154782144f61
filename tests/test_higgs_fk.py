"""Paper 2 beyond MNIST (issue 13): the f_k sets, iteration-based training with early
stopping, the HIGGS loader and ROC AUC."""

import gzip
import itertools
import math

import numpy as np
import pytest
import torch

from lchannel.run.config import TrainConfig
from lchannel.data import DataError, f_k, higgs
from lchannel.data.synthetic import FkStream, grid
from lchannel.engine.iterations import EarlyStopping
from lchannel.engine.metrics import roc_auc
from lchannel.run.single import build_trainer, fit_options, load_data, train_config

pytestmark = pytest.mark.usefixtures("one_thread")

SUBSET = higgs.SUBSET_FILE


# ---------------------------------------------------------------------------- f_k
def test_f0_is_the_unit_disk():
    g = torch.Generator().manual_seed(1)
    n = 200_000
    x = torch.rand((n, 2), generator=g, dtype=torch.float64) * 2 - 1
    frac = float((f_k(x, 0) > 0).double().mean())
    se = math.sqrt(math.pi / 4 * (1 - math.pi / 4) / n)
    assert abs(frac - math.pi / 4) < 4 * se  # the disk's area over the square's


def test_t_maps_the_square_onto_itself():
    g = torch.Generator().manual_seed(2)
    x = torch.rand((10_000, 2), generator=g, dtype=torch.float64) * 2 - 1
    tx = 1 - 2 * x * x
    assert tx.min() >= -1 and tx.max() <= 1  # into
    y = torch.rand((10_000, 2), generator=g, dtype=torch.float64) * 2 - 1
    pre = torch.sqrt((1 - y) / 2)  # a preimage in [0, 1]² of every y: onto
    assert pre.min() >= 0 and pre.max() <= 1
    assert torch.allclose(1 - 2 * pre * pre, y)
    # f_k = g ∘ t^k: f_{k+1}(x) = f_k(t(x)).
    for k in range(3):
        assert torch.equal(f_k(x, k + 1), f_k(tx, k))


def test_stream_and_grid():
    s = FkStream(2)
    X, T, y = s.batch(100, torch.Generator().manual_seed(0))
    assert X.shape == (100, 2) and T.shape == (100, 1) and torch.equal(T[:, 0].long(), y)
    assert torch.equal(y, (f_k(X.double(), 2) > 0).long())
    G = grid(4)
    assert G.shape == (16, 2) and float(G[1, 0] - G[0, 0]) == pytest.approx(0.5) and float(G[0, 1]) == -0.75


# ---------------------------------------------------------------------------- early stopping
def test_early_stopping_stops_where_the_curve_says():
    # member 0: 0.50, 0.30, 0.20, 0.205 (+0.5 points: goes on), 0.22 (+1.5 points: stops at 4)
    # member 1: falls steadily: never stops
    curves = [[0.50, 0.30, 0.20, 0.205, 0.22, 0.10], [0.5, 0.4, 0.3, 0.25, 0.2, 0.15]]
    p = torch.zeros(2, 3)
    es = EarlyStopping(0.01, 2)
    es.start([c[0] for c in curves], [p])
    stops = {}
    for epoch in range(1, 6):
        p.fill_(float(epoch))  # the "weights" remember their epoch
        for e in es.update(epoch, [c[epoch] for c in curves], [p]):
            stops[e] = epoch
    assert stops == {0: 4} and es.stopped_at == [4, None]
    assert es.best_epoch == [2, 5]
    es.restore([p], [0, 1])
    assert p[0].eq(2).all() and p[1].eq(5).all()


def fk_config(**kw):
    base = dict(dataset="synthetic", synthetic_k=0, n_train=500, n_test=500, architecture=[2, 32, 32, 1],
                hidden="relu", init="glorot_uniform", lr=0.1, decay=1e-5, epoch_iterations=60, early_stop=0.01,
                epochs=4, seeds=[0, 1])
    base.update(kw)
    return TrainConfig(**base)


def test_iteration_run_resumed_equals_uninterrupted(tmp_path):
    cfg = fk_config(algorithm="arbp")
    train, test = load_data(cfg)
    full = build_trainer(cfg, progress=False)
    full.fit(train, test, cfg.epochs, **fit_options(cfg, train))

    def crash(t):
        if t.epoch == 2:
            raise KeyboardInterrupt  # killed mid-run, after epoch 2's checkpoint

    first = build_trainer(cfg, progress=False)
    with pytest.raises(KeyboardInterrupt):
        first.fit(train, test, cfg.epochs, checkpoint=tmp_path / "c.pt", on_epoch=crash, **fit_options(cfg, train))
    resumed = build_trainer(cfg, progress=False)
    resumed.load(tmp_path / "c.pt")
    assert resumed.epoch == 2
    resumed.fit(train, test, cfg.epochs, **fit_options(cfg, train))
    assert resumed.history.epochs == [1, 2, 3, 4]
    for name in ("metrics", "extra", "stopped_at", "initial", "lr"):
        assert getattr(resumed.history, name) == getattr(full.history, name)
    for a, b in zip(full.net.parameters(), resumed.net.parameters()):
        assert torch.equal(a, b)
    feedback = list(zip(full.channel.buffers(), resumed.channel.buffers()))  # ARBP's adapted matrices
    assert feedback
    for a, b in feedback:
        assert torch.equal(a, b)


@pytest.mark.parametrize("order", ["shared", "per_member"])
def test_streamed_population_member_equals_its_single_run(order):
    # Early stopping acts per member: a population of two equals two single runs (any rise
    # stops a member here, so that the members stop at different epochs).
    kw = dict(algorithm="srbp", batch_order=order, epochs=8, epoch_iterations=50, early_stop=0.0, lr=0.3)
    pop = train_config(fk_config(seeds=[0, 1], **kw), progress=False)
    assert len(set(pop.history.stopped_at)) == 2  # the members stop at different epochs (or one never)
    for e, seed in enumerate([0, 1]):
        one = train_config(fk_config(seeds=[seed], **kw), progress=False)
        assert one.history.stopped_at == [pop.history.stopped_at[e]]
        # Within the population check's tolerance (tests/test_training.py): batched kernels.
        n = len(one.history.epochs)  # a single run ends when its member stops; the population goes on
        assert [v[0] for v in one.history.extra["valid_acc"]] == pytest.approx(
            [v[e] for v in pop.history.extra["valid_acc"][:n]], abs=1e-9)
        for a, b in zip(one.trainer.net.parameters(), pop.trainer.net.parameters()):
            torch.testing.assert_close(a[0], b[e], rtol=1e-5, atol=1e-6)  # a stopped member stays put


def test_early_stop_config_needs_a_stream():
    with pytest.raises(ValueError, match="early_stop: 0.01 does not apply"):
        TrainConfig(dataset="higgs16k", early_stop=0.01).validate()
    with pytest.raises(ValueError, match="epoch_iterations: 0 is not accepted"):
        TrainConfig(dataset="synthetic", epoch_iterations=0).validate()
    with pytest.raises(ValueError, match="standardize: True does not apply"):
        TrainConfig(dataset="mnist", standardize=True).validate()


@pytest.mark.parametrize("algorithm", ["bp", "rbp", "srbp"])
def test_short_f0_runs_learn(algorithm):
    h = train_config(fk_config(algorithm=algorithm, epoch_iterations=200, epochs=4, architecture=[2, 50, 50, 1]),
                     progress=False).history
    # Chance is the larger class, 1 − π/4 ≈ 0.215 outside the disk, 0.785 inside.
    assert min(h.final("test_acc")) > 0.85
    assert min(h.extra["test_auc"][-1]) > 0.95


# ---------------------------------------------------------------------------- HIGGS
def test_subset_shapes_and_signal_fraction(data_dir):
    rows = higgs.read_subset(data_dir)
    assert rows.shape == (15_977, 29) and rows.dtype == np.float32
    assert set(np.unique(rows[:, 0])) == {0.0, 1.0}
    assert abs(rows[:, 0].mean() - 0.532) < 0.0005  # the data README's signal fraction
    for features, n in (("low", 21), ("high", 7), ("all", 28)):
        tr, te = higgs.load_higgs16k(data_dir, features)
        assert tr.X.shape == (12_977, n) and te.X.shape == (3_000, n)
        assert torch.equal(tr.X, torch.from_numpy(rows[:12_977, higgs.FEATURES[features]]))
        assert torch.equal(te.labels, torch.from_numpy(rows[12_977:, 0]).long())
    tr, te = higgs.load_higgs16k(data_dir, "low", standardize=True)
    assert tr.X.mean(0).abs().max() < 1e-4 and (tr.X.std(0) - 1).abs().max() < 1e-3
    raw = torch.from_numpy(rows[:12_977, 1:22]).double()
    expected = (torch.from_numpy(rows[12_977:, 1:22]).double() - raw.mean(0)) / raw.std(0, unbiased=False)
    assert torch.allclose(te.X.double(), expected, atol=1e-4)  # training statistics


def small_uci(tmp_path, data_dir, n=2_000):
    """A small HIGGS.csv.gz in the UCI layout: the subset's first n lines as they are."""
    lines = (data_dir / "higgs" / SUBSET).read_bytes().splitlines(keepends=True)[:n]
    folder = tmp_path / "higgs"
    folder.mkdir()
    (folder / higgs.FILE).write_bytes(gzip.compress(b"".join(lines)))
    return folder / higgs.FILE


def test_small_gzip_converts_verifies_and_reloads(tmp_path, data_dir, monkeypatch):
    src = small_uci(tmp_path, data_dir)
    monkeypatch.setattr(higgs, "ROWS", 2_000)
    monkeypatch.setattr(higgs, "TRAIN_ROWS", (0, 1_500))
    monkeypatch.setattr(higgs, "TEST_ROWS", (1_800, 2_000))
    tr, te = higgs.load_higgs(tmp_path, "all")  # converts once
    cache = src.with_name(higgs.CACHE)
    assert cache.stat().st_size == 2_000 * 29 * 4
    rows = higgs.read_subset(data_dir)[:2_000]
    assert np.array_equal(np.asarray(higgs.open_cache(cache, 2_000)), rows)
    assert tr.X.shape == (1_500, 28) and te.X.shape == (200, 28)
    assert torch.equal(te.X, torch.from_numpy(rows[1_800:, 1:]))
    src.unlink()  # reloading reads only the cache
    tr2, _ = higgs.load_higgs(tmp_path, "all")
    assert torch.equal(tr.X, tr2.X)
    data = bytearray(cache.read_bytes())  # one flipped byte: refused by its checksum
    data[1000] ^= 1
    cache.write_bytes(bytes(data))
    with pytest.raises(DataError, match=f"{cache}.*fails its checksum"):
        higgs.load_higgs(tmp_path)


def test_truncated_or_corrupt_file_is_refused_by_name(tmp_path, data_dir):
    src = small_uci(tmp_path, data_dir)
    whole = src.read_bytes()
    src.write_bytes(whole[: len(whole) // 2])  # the gzip stream ends early
    with pytest.raises(DataError, match=f"{src} is corrupt or truncated"):
        higgs.convert(src, expected_rows=2_000, progress=False)
    assert not src.with_name(higgs.CACHE).exists() and not list(src.parent.glob("*.tmp"))
    src.write_bytes(gzip.compress(gzip.decompress(whole)[:-500]))  # a valid gzip, rows missing
    with pytest.raises(DataError, match=f"{src}(: row 1999 is not 29 numbers| has 1,99. rows)"):
        higgs.convert(src, expected_rows=2_000, progress=False)
    src.write_bytes(gzip.compress(b"1,2,3\n"))
    with pytest.raises(DataError, match=f"{src}: row 1 is not 29 numbers"):
        higgs.convert(src, expected_rows=1, progress=False)


def test_missing_file_offline_names_it(tmp_path):
    with pytest.raises(DataError, match=f"{tmp_path / 'higgs' / higgs.FILE} is missing.*archive.ics.uci.edu"):
        higgs.higgs_cache(tmp_path, download=False)


def test_auc_by_hand():
    assert float(roc_auc(torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0, 0, 1, 1]))) == 0.75
    # ties count one half: positives {0.5, 0.9}, negatives {0.5, 0.2}: (0.5 + 1 + 1 + 1) / 4
    assert float(roc_auc(torch.tensor([0.5, 0.5, 0.2, 0.9]), torch.tensor([1, 0, 0, 1]))) == 0.875
    g = torch.Generator().manual_seed(0)
    s = torch.randint(0, 5, (2, 40), generator=g).double()
    y = torch.randint(0, 2, (40,), generator=g)
    for e in range(2):  # every (positive, negative) pair
        pairs = [(1.0 if a > b else 0.5 if a == b else 0.0) for a, b in
                 itertools.product(s[e][y == 1].tolist(), s[e][y == 0].tolist())]
        assert float(roc_auc(s, y)[e]) == pytest.approx(sum(pairs) / len(pairs), abs=1e-12)
    assert math.isnan(float(roc_auc(torch.tensor([0.1, 0.2]), torch.tensor([1, 1]))))


@pytest.mark.parametrize("algorithm", ["bp", "rbp", "srbp"])
def test_short_higgs16k_runs_learn(algorithm, data_dir):
    # All 28 features: the high-level ones carry most of what 13k rows can teach.
    cfg = TrainConfig(dataset="higgs16k", data_dir=str(data_dir), architecture=[28, 64, 64, 1], standardize=True,
                      higgs_features="all",
                      lr=0.05, momentum=0.9, decay=0.0, epochs=3, seeds=[0], algorithm=algorithm)
    h = train_config(cfg, progress=False).history
    assert h.extra["test_auc"][-1][0] > 0.66  # chance is 0.5
    assert h.final("test_acc")[0] > 0.62  # the larger class is 0.540 of the test rows


# ---------------------------------------------------------------------------- specs, store, report
def test_shipped_specs_follow_the_protocol():
    from lchannel.experiments.spec import load_spec
    fig12 = load_spec("p2-figure12")
    cfg = fig12.cells()[0].config
    assert cfg.sizes == [2, 500, 500, 500, 500, 500, 1] and cfg.hidden == "relu" and cfg.init == "glorot_uniform"
    assert (cfg.lr, cfg.decay, cfg.momentum, cfg.batch_size) == (0.01, 1e-5, 0.0, 100)
    assert cfg.epoch_iterations * cfg.epochs == 1_500_000 and cfg.early_stop == 0.01
    assert sorted({c.config.synthetic_k for c in fig12.cells()}) == [0, 1, 2, 3]
    fig13 = load_spec("p2-figure13")
    sizes = {c.title: c.config.sizes for c in fig13.cells()}
    assert sizes["BP"] == [21, *[300] * 8, 1] and sizes["shallow BP (1 x 300)"] == [21, 300, 1]
    cfg = fig13.cells()[0].config
    assert (cfg.dataset, cfg.hidden, cfg.momentum, cfg.lr, cfg.epochs) == ("higgs", "tanh", 0.9, 0.1, 100)


def test_sweep_keeps_maps_and_auc_and_reports_figure12(tmp_path):
    from lchannel.experiments.report import write_report
    from lchannel.experiments.runner import run_sweep
    from lchannel.experiments.spec import parse_spec
    from lchannel.experiments.store import ResultsStore

    spec = parse_spec({
        "name": "fk-mini", "description": "a small Figure 12",
        "base": dict(dataset="synthetic", n_train=500, n_test=300, architecture=[2, 32, 32, 1], hidden="relu",
                     init="glorot_uniform", lr=0.3, decay=1e-5, epoch_iterations=50, early_stop=0.0, epochs=6,
                     seeds=[0, 1]),
        "axes": [{"name": "algorithm", "levels": [{"label": "BP", "set": {"algorithm": "bp"}},
                                                   {"label": "SRBP", "set": {"algorithm": "srbp"}}]},
                 {"name": "k", "levels": [{"label": "k = 0", "set": {"synthetic_k": 0}},
                                          {"label": "k = 1", "set": {"synthetic_k": 1}}]}],
        "report": {"layout": "maps", "rows": "algorithm", "columns": "k"},
    })
    db = tmp_path / "r.db"
    run_sweep(spec, db, workers=1, progress=False, alignment=False, log=lambda *a: None)
    with ResultsStore(db) as store:
        cell = spec.cells()[0]
        rid = store.runs(cell.key)[0].run_id
        grid_p = store.array(rid, "grid_probability")
        assert grid_p.shape == (256, 256) and 0 <= grid_p.min() and grid_p.max() <= 1
        runs = [r for c in spec.cells() for r in store.runs(c.key)]
        extra = store.extra_metrics(runs[0].run_id)
        n = runs[0].epochs_done
        assert [e for e, _ in extra["test_auc"]] == list(range(n + 1)) == [e for e, _ in extra["valid_acc"]]
        # Every member that stopped early says so at its epoch; a population trains while one goes on.
        stops = [store.extra_metrics(r.run_id).get("stopped_early") for r in runs]
        assert any(stops)
        for r, st in zip(runs, stops):
            assert st is None or (len(st) == 1 and 1 <= st[0][0] <= r.epochs_done)
    rep = write_report(spec, db, tmp_path / "rep")
    names = {p.name for p in rep.pngs}
    assert "fk-mini-maps.png" in names and not any(n.endswith("-auc.png") for n in names)  # AUC: HIGGS only


def test_higgs_report_plots_auc(tmp_path, data_dir):
    from lchannel.experiments.report import write_report
    from lchannel.experiments.runner import run_sweep
    from lchannel.experiments.spec import parse_spec

    spec = parse_spec({
        "name": "higgs-mini", "description": "two HIGGS lines",
        "base": dict(dataset="higgs16k", architecture=[21, 8, 1], epochs=1, seeds=[0], subset=500),
        "axes": [{"name": "algorithm", "levels": [{"label": "BP", "set": {"algorithm": "bp"}},
                                                   {"label": "RBP", "set": {"algorithm": "rbp"}}]}],
        "report": {"layout": "curves", "lines": "algorithm"},
    })
    run_sweep(spec, tmp_path / "h.db", workers=1, progress=False, alignment=False, data_dir=str(data_dir),
              log=lambda *a: None)
    rep = write_report(spec, tmp_path / "h.db", tmp_path / "rep", plots=True)
    assert sorted(p.name for p in rep.pngs) == ["higgs-mini-auc.png", "higgs-mini.png"]
