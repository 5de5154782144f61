"""Per-layer norms of the forward weights W^h and of an adaptive learning channel's
matrices C^{h,k} over training, with the activity of the hidden layers and the accuracy
(paper 2, Figures 10-11 and section 4.1.3; issue 29).

A run is one cell of a shipped spec (``--spec p2-figure10 --cell ASRBP``; without
``--cell``, every cell), optionally changed by ``--lr``, ``--adapt-rate`` (several values:
one run per value), ``--feedback-scale`` (the initial scale of C), ``--decay`` and
``--seed``.  It trains one seed with the engine's own step, the README's "one step, by
hand" (``net.forward``, ``channel.signals``, ``channel.plasticity_terms``, ``SGD.step``)
on the minibatches of the Trainer's shared batch order, so its accuracies are those of
``lchannel train`` with the same settings.  Every ``--every`` updates it records:

- ``‖W^h‖_F`` for every layer and ``‖C^{h,k}‖_F`` for every feedback matrix, and how
  far each has moved from its initial value (``‖W^h − W^h_0‖_F``, ``‖C − C_0‖_F``);
- the minibatch loss;
- on a probe of the first 1,000 training images: for bounded hidden units (tanh,
  logistic) the fraction of saturated units (|O^h| > 0.99, or O^h within 0.01 of 0 or 1),
  otherwise the RMS activity ``‖O^h‖ / sqrt(N_h)``;

after every epoch the training and test accuracy (full passes); and, should a quantity
turn NaN/inf, the first one in the order a step computes them (S^h, O^h, T − O, I^h,
then W^h, b^h and C after the update).  It prints a table per run, a per-matrix summary
(initial, final, largest norm and distance moved), and with ``--png`` saves norms,
activity and accuracy against updates (one column per run); ``--json`` saves the records.

``--presynaptic undifferentiated`` (Hebbian ARBP only) is a measurement, not an engine
option: the chained matrix C^{h,h+1} adapts with the signal its channel neuron carries
*before* the forward neuron's derivative, ΔC^{h,h+1} = η·rate·(O^h)ᵀ J^{h+1} / B with
J^{h+1} = I^{h+2} (C^{h+1,h+2})ᵀ (J^L = T − O), where the engine uses
I^{h+1} = f'(S^{h+1}) ⊙ J^{h+1}, paper 2's R^{h+1} (eq. 9, section 3.4's
Δc^l_rs = η R^{l+1}_s O^l_r).  It tests another reading of section 3.4's "derivatives of
activations appear in the learning rules for the forward weights, but not for the weights
in the learning channel".  In a linear network the two coincide.

Commands (single-threaded; full MNIST from $LCHANNEL_DATA_DIR, one seed):

    # Figure 10 (linear net): where the shipped cells diverge (the last updates are printed)
    OMP_NUM_THREADS=1 python benchmarks/adaptive_norms.py --spec p2-figure10 --epochs 2 --every 50 \\
        --png fig10-shipped.png
    OMP_NUM_THREADS=1 python benchmarks/adaptive_norms.py --spec p2-figure10 --cell ARBP --epochs 7 --tail 25
    # ... and under other settings: a smaller eta, a small initial C, another adaptation rate
    OMP_NUM_THREADS=1 python benchmarks/adaptive_norms.py --spec p2-figure10 --lr 0.05 --epochs 10
    OMP_NUM_THREADS=1 python benchmarks/adaptive_norms.py --spec p2-figure10 --cell ARBP --cell ASRBP \\
        --feedback-scale 0.1 --adapt-rate 0.1 1 --epochs 10
    # Figure 11 (tanh net): channel against forward weights, Hebbian and STDP, a grid of rates
    OMP_NUM_THREADS=1 python benchmarks/adaptive_norms.py --spec p2-figure11 --epochs 5 --png fig11-norms.png
    OMP_NUM_THREADS=1 python benchmarks/adaptive_norms.py --spec p2-figure11 --cell "ARBP (Hebbian)" \\
        --adapt-rate 0.1 1 3 10 --epochs 5 --png fig11-rates.png
    OMP_NUM_THREADS=1 python benchmarks/adaptive_norms.py --spec p2-figure11 --cell "ARBP (Hebbian)" \\
        --presynaptic undifferentiated --adapt-rate 1 3 --epochs 5

``--subset N`` trains on the first N training images (100 updates per epoch for 10,000);
``--updates N`` stops after N updates.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import sys
import time

import torch

BOUNDED = {"tanh": ("|O| > 0.99", lambda O: O.abs() > 0.99),
           "logistic": ("O < 0.01 or O > 0.99", lambda O: (O < 0.01) | (O > 0.99))}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--spec", required=True, help="a shipped spec (p2-figure10, p2-figure11) or a .toml path")
    p.add_argument("--cell", action="append", help="a cell label of the spec (repeatable; default: every cell)")
    p.add_argument("--lr", type=float, help="initial learning rate eta (default: the spec's)")
    p.add_argument("--decay", type=float, help="learning-rate decay (default: the spec's)")
    p.add_argument("--adapt-rate", type=float, nargs="+", help="the channel's adaptation rate(s): one run per value")
    p.add_argument("--feedback-scale", type=float, help="multiplies the initial feedback matrices C")
    p.add_argument("--presynaptic", choices=("signal", "undifferentiated"), default="signal",
                   help="Hebbian ARBP's presynaptic term: the engine's I^{h+1} (signal) or J^{h+1}, before f' "
                        "(undifferentiated; a measurement, see above)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--updates", type=int, help="stop after this many updates")
    p.add_argument("--subset", type=int, help="train on the first N training images")
    p.add_argument("--every", type=int, default=100, help="updates between readings (default 100)")
    p.add_argument("--tail", type=int, default=15,
                   help="on a non-finite quantity, print the norms of this many last updates (default 15)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--png", help="save norms, activity and accuracy against updates here")
    p.add_argument("--json", help="save every run's records here")
    return p.parse_args(argv)


def configs(args):
    """[(label, TrainConfig)] for the chosen cells and adaptation rates."""
    from lchannel.experiments import load_spec
    spec = load_spec(args.spec)
    cells = spec.cells()
    if args.cell:
        known = {c.title: c for c in cells}
        missing = [c for c in args.cell if c not in known]
        if missing:
            sys.exit(f"--cell: {missing} not in {args.spec}; its cells: {sorted(known)}")
        cells = [known[c] for c in args.cell]
    out = []
    for cell in cells:
        cfg = cell.config.replace(seeds=[args.seed], epochs=args.epochs)
        changes = {k: v for k, v in (("lr", args.lr), ("decay", args.decay), ("subset", args.subset)) if v is not None}
        channel = dict(cfg.channel)
        if args.feedback_scale is not None:
            fb = channel.get("feedback") or {}
            fb = {"distribution": fb} if isinstance(fb, str) else dict(fb)
            channel["feedback"] = {**fb, "scale": args.feedback_scale}
        for rate in args.adapt_rate or [None]:
            ch = dict(channel)
            if rate is not None:
                ch["adapt_rate"] = rate
            c = cfg.replace(**changes, channel=ch)
            c.validate()
            extra = [f"{k}={v}" for k, v in changes.items() if k != "subset"]
            if rate is not None:
                extra.append(f"adapt_rate={rate:g}")
            if args.feedback_scale is not None:
                extra.append(f"C scale={args.feedback_scale:g}")
            if args.presynaptic != "signal":
                extra.append("presynaptic J (no f')")
            out.append((cell.title + (f" [{', '.join(extra)}]" if extra else ""), c))
    return out


def undifferentiated_terms(channel, signals, terms):
    """Hebbian ARBP's terms with J^{h+1} (the channel neuron's signal before f') in place of
    I^{h+1} as the presynaptic factor of C^{h,h+1}; J^L = T − O = I^L."""
    key = {id(C): hk for hk, C in channel.C.items()}
    L = len(signals) - 1
    out = []
    for C, rule, post, pre, rate in terms:
        h, k = key[id(C)]
        if k != h + 1:
            raise SystemExit("--presynaptic undifferentiated: only for chained (ARBP) channels")
        if k < L:  # J^k = G^{k+1} (C^{k,k+1})^T with G^{k+1} = I^{k+1} (derivative "all")
            pre = torch.bmm(signals[k + 1], channel.C[(k, k + 1)].transpose(1, 2))
        out.append((C, rule, post, pre, rate))
    return out


def first_nonfinite(rec, e, I, net, channel):
    """The first NaN/inf quantity of a step, in the order the step computes them."""
    items = []
    for h in range(1, net.L + 1):
        items += [(f"S^{h}", rec.S[h]), (f"O^{h}", rec.O[h])]
    items.append(("T - O", e))
    items += [(f"I^{h}", I[h]) for h in range(net.L, 0, -1) if I[h] is not None]
    for h in range(1, net.L + 1):
        items += [(f"W^{h} after the update", net.W(h)), (f"b^{h} after the update", net.b(h))]
    items += [(f"C^{h},{k} after the update", C) for (h, k), C in sorted(getattr(channel, "C", {}).items())]
    for name, x in items:
        if isinstance(x, torch.Tensor) and not bool(torch.isfinite(x).all()):
            return name
    return None


def run(label, cfg, args, data):
    from lchannel.engine.rng import generator
    from lchannel.run.single import build_trainer
    train, test = data
    tr = build_trainer(cfg, progress=False)
    net, channel, opt = tr.net, tr.channel, tr.opt
    C0 = {hk: C.detach().clone() for hk, C in sorted(getattr(channel, "C", {}).items())}
    W0 = [w.detach().clone() for w in net.weights]
    if args.presynaptic != "signal" and not (getattr(channel, "adaptive", False) and channel.rule.name == "hebbian"
                                             and channel.transform is None):
        raise SystemExit("--presynaptic undifferentiated: Hebbian ARBP without signal transforms only")
    hidden = cfg.hidden if isinstance(cfg.hidden, str) else None
    bounded = BOUNDED.get(hidden)
    probe = train.X[:1000]
    order = generator(cfg.data_seed, "data")
    N, B, L = len(train), cfg.batch_size, net.L
    rec_rows, epochs = [], []
    stop = args.updates or math.inf
    t, bad, t0 = 0, None, time.time()

    def reading(loss):
        with torch.no_grad():
            Op = net.forward(probe).O
            act = []
            for h in range(1, L):
                O = Op[h][0]
                if bounded:
                    act.append(float(bounded[1](O).double().mean()))
                else:
                    act.append(float(O.norm(dim=-1).mean() / O.shape[-1] ** 0.5))
            rec_rows.append({
                "update": t, "epoch": t / math.ceil(N / B), "loss": loss,
                "W": [float(w[0].norm()) for w in net.weights],
                "dW": [float((w[0] - w0[0]).norm()) for w, w0 in zip(net.weights, W0)],
                "C": {f"{h},{k}": float(C[0].norm()) for (h, k), C in sorted(channel.C.items())} if C0 else {},
                "dC": {f"{h},{k}": float((C[0] - C0[(h, k)][0]).norm()) for (h, k), C in sorted(channel.C.items())}
                if C0 else {},
                "act": act})

    watched = list(net.weights) + (list(channel.C.values()) if C0 else [])  # checked after every update
    last = collections.deque(maxlen=args.tail)  # (update, loss, norms) of the last updates
    reading(float("nan"))
    with torch.no_grad():
        for epoch in range(1, cfg.epochs + 1):
            perm = torch.randperm(N, generator=order)
            for start in range(0, N, B):
                idx = perm[start:start + B]
                X, T = train.X.index_select(0, idx), train.T.index_select(0, idx)
                channel.on_batch_start()
                rec = net.forward(X, train=True)
                e = net.output_loss.error(T, rec.output)
                I = channel.signals(rec, e)
                terms = channel.plasticity_terms(rec, I)
                if args.presynaptic != "signal":
                    terms = undifferentiated_terms(channel, I, terms)
                loss = float(net.output_loss.loss(rec.output, T).mean())
                opt.step(rec, I, terms)
                t += 1
                if args.tail:
                    last.append((t, loss, [float(w[0].norm()) for w in net.weights],
                                 [float(C[0].norm()) for _, C in sorted(getattr(channel, "C", {}).items())]))
                if not math.isfinite(loss) or not all(bool(torch.isfinite(w).all()) for w in watched):
                    bad = {"update": t, "epoch": epoch, "quantity": first_nonfinite(rec, e, I, net, channel)}
                if t % args.every == 0 or bad:
                    reading(loss)
                if bad or t >= stop:
                    break
            if bad:
                break
            _, tr_acc = tr.evaluate(train)
            _, te_acc = tr.evaluate(test)
            epochs.append({"epoch": epoch, "update": t, "train_acc": float(tr_acc[0]), "test_acc": float(te_acc[0])})
            if t >= stop:
                break
    return {"label": label, "config": cfg.to_dict(), "activity": bounded[0] if bounded else "rms",
            "readings": rec_rows, "epochs": epochs, "nonfinite": bad, "seconds": time.time() - t0,
            "last_updates": [{"update": u, "loss": lo, "W": w, "C": c} for u, lo, w, c in last] if bad else []}


def fmt(x):
    return f"{x:7.3g}" if math.isfinite(x) else f"{x!s:>7}"


def print_run(r):
    rows = r["readings"]
    Ckeys = list(rows[0]["C"])
    act = "sat" if r["activity"] != "rms" else "rms"
    print(f"\n== {r['label']}  ({r['seconds']:.0f} s)")
    head = (f"{'update':>7} {'loss':>7} | " + " ".join(f"{'W' + str(h):>7}" for h in range(1, len(rows[0]['W']) + 1))
            + (" | " + " ".join(f"{'C' + k:>7}" for k in Ckeys) if Ckeys else "")
            + " | " + " ".join(f"{act + str(h):>7}" for h in range(1, len(rows[0]['act']) + 1)))
    print(head)
    for x in rows:
        print(f"{x['update']:7d} {fmt(x['loss'])} | " + " ".join(fmt(v) for v in x["W"])
              + (" | " + " ".join(fmt(x["C"][k]) for k in Ckeys) if Ckeys else "")
              + " | " + " ".join(fmt(v) for v in x["act"]))
    if r["epochs"]:
        print("epoch  update  train %  test %")
        for ep in r["epochs"]:
            print(f"{ep['epoch']:5d} {ep['update']:7d} {100 * ep['train_acc']:8.2f} {100 * ep['test_acc']:7.2f}")
    ok = [x for x in rows if all(math.isfinite(v) for v in x["W"] + list(x["C"].values()))]
    first, last = ok[0], ok[-1]
    big = {k: max(x["W"][i] for x in ok) for i, k in enumerate(range(1, len(first["W"]) + 1))}
    print(f"matrix    initial  last finite (update {last['update']})  largest   moved (||M - M_0||, last finite)")
    for i, h in enumerate(range(1, len(first["W"]) + 1)):
        print(f"W^{h:<6} {fmt(first['W'][i])}  {fmt(last['W'][i]):>28}  {fmt(big[h])}  {fmt(last['dW'][i])}")
    for k in Ckeys:
        print(f"C^{k:<6} {fmt(first['C'][k])}  {fmt(last['C'][k]):>28}  {fmt(max(x['C'][k] for x in ok))}  "
              f"{fmt(last['dC'][k])}")
    if r["nonfinite"]:
        n = r["nonfinite"]
        print(f"non-finite at update {n['update']} (epoch {n['epoch']}): first quantity {n['quantity']}")
        if r["last_updates"]:
            print("the last updates:  update    loss | ||W^h|| | ||C||")
            for x in r["last_updates"]:
                print(f"{x['update']:24d} {fmt(x['loss'])} | " + " ".join(fmt(v) for v in x["W"])
                      + (" | " + " ".join(fmt(v) for v in x["C"]) if x["C"] else ""))


def save_png(runs, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(4, len(runs), figsize=(4.2 * len(runs), 11), squeeze=False, sharex="col")
    for j, r in enumerate(runs):
        rows = r["readings"]
        u = [x["update"] for x in rows]
        # Norms: the regular readings and, before a non-finite quantity, every one of the
        # last updates (the blow-up), finite values only.
        Ckeys = list(rows[0]["C"])
        norms = {x["update"]: (x["W"], [x["C"][k] for k in Ckeys]) for x in rows}
        norms.update({x["update"]: (x["W"], x["C"]) for x in r["last_updates"]})
        nu = sorted(norms)

        def series(which, i):
            pts = [(t, norms[t][which][i]) for t in nu if math.isfinite(norms[t][which][i])]
            return [t for t, _ in pts], [v for _, v in pts]

        ax = axes[0][j]
        for i in range(len(rows[0]["W"])):
            ax.plot(*series(0, i), label=f"W^{i + 1}")
        ax.set_yscale("log")
        ax.set_title(r["label"], fontsize=8)
        ax.set_ylabel("‖W^h‖_F")
        ax.legend(fontsize=6)
        ax = axes[1][j]
        if Ckeys:
            for i, k in enumerate(Ckeys):
                ax.plot(*series(1, i), label=f"C^{k}")
            ax.set_yscale("log")
            ax.set_ylabel("‖C^{h,k}‖_F")
            ax.legend(fontsize=6)
        else:
            ax.text(0.5, 0.5, "no adaptive feedback matrices", ha="center", va="center", transform=ax.transAxes)
            ax.set_yticks([])
        ax = axes[2][j]
        for i in range(len(rows[0]["act"])):
            ax.plot(u, [x["act"][i] for x in rows], label=f"O^{i + 1}")
        ax.set_ylabel("saturated fraction (" + r["activity"] + ")" if r["activity"] != "rms" else "RMS activity")
        ax.legend(fontsize=6)
        ax = axes[3][j]
        eu = [e["update"] for e in r["epochs"]]
        ax.plot(eu, [100 * e["train_acc"] for e in r["epochs"]], "o-", ms=3, label="train")
        ax.plot(eu, [100 * e["test_acc"] for e in r["epochs"]], "s-", ms=3, label="test")
        if r["nonfinite"]:
            ax.axvline(r["nonfinite"]["update"], color="k", ls=":", label="non-finite")
        ax.set_ylabel("accuracy %")
        ax.set_xlabel("update")
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"saved {path}")


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    from lchannel.run.single import load_data
    runs, data = [], {}
    for label, cfg in configs(args):
        key = (cfg.dataset, cfg.subset, cfg.data_dir)
        if key not in data:
            data[key] = load_data(cfg)
        r = run(label, cfg, args, data[key])
        print_run(r)
        runs.append(r)
    if args.png:
        save_png(runs, args.png)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(runs, f, indent=1)


if __name__ == "__main__":
    main()
