"""The readings of paper 1, section 5.2 (quantized weight updates), each against a weight
change computed by hand, element by element in float64 with Python's math module.

Section 5.2 leaves open where η enters eq. 19 (``update_lr``: inside or outside the
quantizer), what a value below the lowest level becomes (``update_below``: that level, as
eq. 19 is printed, or a zero level) and how the minibatch combines the quantized
per-example updates (``update_reduce``: mean or sum).  docs/channels.md discusses them."""

import itertools
import math

import pytest
import torch

from lchannel import SGD, Network
from lchannel.run.config import TrainConfig
from lchannel.engine.quantize import BELOW, DEFAULT_READING, LEGACY_READING, LR_PLACES, REDUCTIONS, Quantizer, Reading, quantize

pytestmark = pytest.mark.usefixtures("one_thread")

READINGS = [Reading(*r) for r in itertools.product(LR_PLACES, BELOW, REDUCTIONS)]
ALPHA = 2.0 ** -4


def q_hand(x: float, alpha: float, bits: int, zero: bool) -> float:
    """Eq. 19 on one number: α·sign(x)·2^round(clip(log2|x/α|, −bits+1, 0)); with a zero
    level, 0 where the rounded exponent falls below −bits+1."""
    if x == 0:
        return 0.0
    t = math.log2(abs(x) / alpha)
    if zero and round(min(t, 0.0)) < 1 - bits:
        return 0.0
    return math.copysign(alpha * 2.0 ** round(min(max(t, 1 - bits), 0.0)), x)


def hand_update(I, O, lr, bits, reading):
    """ΔW and Δb of one step, by hand: R_b Q(s·I_bi·O_bj) · (η/s), s = η inside, 1 outside."""
    E, B, n_out = I.shape
    n_in = O.shape[2]
    s = lr if reading.lr == "inside" else 1.0
    n = B if reading.reduce == "mean" else 1
    zero = reading.below == "zero"
    dW = torch.zeros(E, n_out, n_in, dtype=torch.float64)
    db = torch.zeros(E, n_out, dtype=torch.float64)
    for e, b, i in itertools.product(range(E), range(B), range(n_out)):
        db[e, i] += q_hand(s * float(I[e, b, i]), ALPHA, bits, zero)
        for j in range(n_in):
            dW[e, i, j] += q_hand(s * (float(I[e, b, i]) * float(O[e, b, j])), ALPHA, bits, zero)
    return dW * (lr / s) / n, db * (lr / s) / n


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    # signals spread over the levels: from far below the floor to above α
    I = torch.randn(2, 6, 5, generator=g, dtype=torch.float64) * 10 ** torch.empty(2, 6, 1, dtype=torch.float64).uniform_(-3, 0.5, generator=g)
    O = torch.tanh(2 * torch.randn(2, 6, 4, generator=g, dtype=torch.float64))
    I[0, 0, 0] = 0.0  # a zero signal stays 0 under every reading
    return I, O


@pytest.mark.parametrize("bits", [1, 3])
@pytest.mark.parametrize("reading", READINGS, ids=lambda r: f"{r.lr}-{r.below}-{r.reduce}")
@pytest.mark.parametrize("method", ["factored", "loop"])
def test_each_reading_is_its_hand_computed_update(reading, bits, method, monkeypatch):
    import lchannel.engine.plasticity as plasticity
    monkeypatch.setattr(plasticity, "QUANTIZED_UPDATE_METHOD", method)
    I, O = batch(bits)
    lr = 0.3
    net = Network([4, 5], seeds=[0, 1], dtype=torch.float64)
    W0, b0 = net.W(1).clone(), net.b(1).clone()
    opt = SGD(lr=lr, decay=0.0, update_bits=bits, update_alpha=ALPHA, update_reading=reading).bind(net)

    class Record:  # what SGD.step reads of a forward record
        def presynaptic(self, h, E):
            return O
    opt.step(Record(), [None, I])
    want_W, want_b = hand_update(I, O, lr, bits, reading)
    # float64 throughout; the only roundings are the products and the final scaling
    torch.testing.assert_close(net.W(1) - W0, want_W, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(net.b(1) - b0, want_b, rtol=1e-12, atol=1e-15)


def test_the_readings_differ_where_the_paper_is_open():
    I, O = batch(7)
    got = {r: hand_update(I, O, 0.1, 3, r)[0] for r in READINGS}
    assert len({tuple(v.flatten().tolist()) for v in got.values()}) == len(READINGS)


def test_the_zero_level_sits_half_a_level_below_the_floor():
    # |x| < α·2^(−bits+1/2) -> 0; at or above it the floor α·2^(−bits+1), as eq. 19
    bits = 3
    edge = ALPHA * 2.0 ** (-bits + 0.5)
    x = torch.tensor([edge * 0.999, edge * 1.001, -edge * 1.001, ALPHA * 2.0 ** -9, 0.0], dtype=torch.float64)
    floor = ALPHA * 2.0 ** (1 - bits)
    assert quantize(x, ALPHA, bits, zero=True).tolist() == [0.0, floor, -floor, 0.0, 0.0]
    assert quantize(x, ALPHA, bits).tolist() == [floor, floor, -floor, floor, 0.0]


def test_one_bit_with_a_zero_level_is_ternary():
    x = torch.tensor([-1.0, -0.5, -0.01, 0.0, 0.01, 0.5, 1.0], dtype=torch.float64) * ALPHA
    assert quantize(x, ALPHA, 1, zero=True).tolist() == [-ALPHA, 0.0, 0.0, 0.0, 0.0, 0.0, ALPHA]
    assert set(quantize(x, ALPHA, 1).tolist()) == {-ALPHA, 0.0, ALPHA}  # eq. 19: only 0 maps to 0


def test_with_a_zero_level_fewer_bits_only_drop_small_terms():
    # docs/results/paper1.md, Figure 8: 1 bit's update is never larger, term by term, than
    # 5 bits' (the same α for everything at or above α/√2, 0 where 5 bits keep α/2, α/4, ...)
    g = torch.Generator().manual_seed(0)
    scales = 2.0 ** torch.randint(-8, 4, (10_000,), generator=g)
    x = ALPHA * torch.randn(10_000, generator=g, dtype=torch.float64) * scales
    by_bits = {b: quantize(x, ALPHA, b, zero=True) for b in (1, 2, 3, 5, 10)}
    for fewer, more in itertools.pairwise((1, 2, 3, 5, 10)):
        assert bool((by_bits[fewer].abs() <= by_bits[more].abs()).all())
        kept = by_bits[fewer] != 0
        assert torch.equal(by_bits[fewer][kept], by_bits[more][kept])  # what fewer bits keep, more bits agree on
    high = x.abs() >= ALPHA * 2.0 ** -0.5
    assert bool((by_bits[1][high].abs() == ALPHA).all()) and bool((by_bits[1][~high] == 0).all())


def test_the_reading_is_part_of_the_run_and_its_key():
    base = dict(update_bits=3)
    assert TrainConfig(**base).update_reading == Reading("outside", "zero", "mean") == DEFAULT_READING
    # the runs stored before the options existed used the legacy reading: spelled out, it
    # leaves the fields out of the key, so their keys stay (the fixed hash is one of them)
    legacy = TrainConfig(**base, update_lr="inside", update_below="floor", update_reduce="mean")
    assert legacy.update_reading == LEGACY_READING
    assert legacy.key() == TrainConfig(**base).key(exclude=("update_lr", "update_below", "update_reduce"))
    assert TrainConfig(**base).key() != legacy.key()
    # Keys computed by the engine before the default changed (commit 1bb2612): a run
    # without quantized updates (the reading does not apply, so it stays out of the key
    # whatever the default) and the legacy reading spelled out keep them.
    assert TrainConfig().key() == "4b56641e7ed3b966"
    assert legacy.key() == "c373308126b9a5d3"
    keys = {TrainConfig(**base, update_lr=a, update_below=b, update_reduce=c).key()
            for a, b, c in itertools.product(LR_PLACES, BELOW, REDUCTIONS)}
    assert len(keys) == 8
    with pytest.raises(ValueError, match="update_lr"):
        TrainConfig(update_lr="inside").validate()  # needs update_bits
    with pytest.raises(ValueError, match="update_below"):
        TrainConfig(update_bits=3, update_below="nothing").validate()


def test_the_cli_takes_the_reading(tmp_path, capsys):
    from lchannel.cli import main
    main(["train", "--dataset", "synthetic", "--n-train", "60", "--n-test", "20", "--arch", "2,6,1", "--epochs", "1", "--batch-size", "10",
          "--update-bits", "1", "--update-lr", "outside", "--update-below", "zero", "--update-reduce", "sum",
          "--out", str(tmp_path / "r"), "--quiet"])
    import json
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert (cfg["update_lr"], cfg["update_below"], cfg["update_reduce"]) == ("outside", "zero", "sum")


def test_member_quantizer_keeps_the_reading():
    from lchannel.engine.quantize import MemberQuantizer
    I, O = batch(3)
    r = Reading("outside", "zero", "sum")
    mq = MemberQuantizer(ALPHA, [3, 1], reading=r)
    got = mq.outer_direction(I, O, 0.3)
    for e, bits in enumerate([3, 1]):
        one = Quantizer(ALPHA, bits, reading=r).outer_direction(I[e:e + 1], O[e:e + 1], 0.3)
        assert torch.equal(got[e:e + 1], one)  # the same calls on the same slice
