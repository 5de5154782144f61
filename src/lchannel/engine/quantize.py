"""Eq. 19 of paper 1: the power-of-two quantizer of signals (section 5.1) and of weight
updates (section 5.2), and the minibatch sum of quantized per-example updates computed
without forming them (:func:`outer_sum_factored`, exact; :func:`outer_sum_loop`, the
per-example reference).  Its own module because both the learning channel's transforms
and the optimizer's per-example updates use it, and neither should import the other."""

from __future__ import annotations

from dataclasses import dataclass

import torch

# The papers' scales α of eq. 19: 2⁻³ for error signals (section 5.1, Figures 6-7) and
# 2⁻⁶ for per-example weight updates (section 5.2).  Every default refers to these.
SIGNAL_ALPHA = 2.0 ** -3
UPDATE_ALPHA = 2.0 ** -6


def quantize(x: torch.Tensor, alpha: float, bits: int, zero: bool = False) -> torch.Tensor:
    """Quantize_{α,bits}(x) = α · sign(x) · 2^{round(clip(log2|x/α|, −bits+1, 0))}  (eq. 19).

    Values are powers of two times α in ``[α·2^{−bits+1}, α]`` with the sign of x: the
    exponent is clipped before rounding, so |x| > α becomes α and a tiny non-zero x becomes
    α·2^{−bits+1} (not 0); x = 0 maps to 0 (sign(0) = 0).  With 1 bit every non-zero value
    becomes ±α.  Rounding is to the nearest integer, ties to even (numpy/torch ``round``).

    ``zero=True`` adds a zero level below the lowest one, as the logarithmic quantizer eq.
    19 generalises does (Miyashita et al. 2016, used by Hubara et al. 2016: its clip sends
    exponents below the range to 0): x becomes 0 where round(min(log2|x/α|, 0)) < −bits+1,
    i.e. where |x| < α·2^{−bits+1/2}; the values at or above that are those of eq. 19.
    """
    if bits < 1:
        raise ValueError(f"bits must be an integer >= 1, got {bits}")
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    return quantize_(x.clone(), alpha, bits, zero)


def quantize_(x: torch.Tensor, alpha: float, bits: int, zero: bool = False) -> torch.Tensor:
    """:func:`quantize` computed in place in ``x`` (no validation): one temporary for the
    sign instead of one per step, which matters for per-example weight updates."""
    s = torch.sign(x)
    x.abs_().div_(alpha).log2_()
    if zero:
        x.clamp_(max=0).round_()
        s.mul_(x >= 1 - bits)  # below the lowest level: sign 0, so the value is 0
        x.clamp_(min=1 - bits)
    else:
        x.clamp_(1 - bits, 0).round_()
    return x.exp2_().mul_(s).mul_(alpha)


# The readings of section 5.2 (issue 30): "Equation 19 is again used for quantization ...
# applied after the error signals have been backpropagated to all the hidden layers, but
# before summing over the minibatch" leaves three things open.
LR_PLACES = ("inside", "outside")  # Quantize(η·I_b O_bᵀ), or η·Quantize(I_b O_bᵀ)
BELOW = ("floor", "zero")          # a value below the lowest level: that level (eq. 19), or 0
REDUCTIONS = ("mean", "sum")       # over the minibatch's quantized per-example updates


@dataclass(frozen=True)
class Reading:
    """One reading of section 5.2's quantized weight updates.

    ``lr``: ``"inside"``: ΔW = R_b Quantize(η·I_b O_bᵀ) (η scales the value eq. 19 sees, so
    "weight updates need to be small" is about the update itself), ``"outside"``:
    ΔW = η·R_b Quantize(I_b O_bᵀ) (eq. 19 on the Hebbian product, η applied after).
    ``below``: ``"floor"``: eq. 19 as printed (a tiny value becomes α·2^{1−bits}),
    ``"zero"``: a zero level below it (:func:`quantize` with ``zero=True``).
    ``reduce``: R_b is the minibatch ``"mean"`` (1/B)Σ_b or the plain ``"sum"`` Σ_b.
    """

    lr: str = "outside"
    below: str = "zero"
    reduce: str = "mean"

    def __post_init__(self):
        for name, allowed in (("lr", LR_PLACES), ("below", BELOW), ("reduce", REDUCTIONS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"update_{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")

    def scale(self, lr: float) -> float:
        """The factor applied to each example's update before eq. 19."""
        return lr if self.lr == "inside" else 1.0

    def count(self, B: int) -> int:
        """What the sum over B examples is divided by."""
        return B if self.reduce == "mean" else 1


# The default: the reading that reproduces section 5.2's claims at the paper's protocol
# (docs/channels.md, "Which reading": BP, RBP and SRBP all above 94% at 1 and 3 bits,
# within 2.7 points of each other).
DEFAULT_READING = Reading()
# The reading the engine used before the options existed (and the runs stored then):
# eq. 19 as printed on η·I·Oᵀ, averaged over the minibatch.
LEGACY_READING = Reading("inside", "floor", "mean")


class Quantizer:
    """Eq. 19 with fixed ``(α, bits)`` and a :class:`Reading` of section 5.2, as an
    in-place map on each example's update, with :meth:`outer_sum`, the minibatch sum of
    quantized outer products computed without forming every example's update, and the
    reading's direction ΔW/η (:meth:`outer_direction`, :meth:`examples_direction`).

    ``method``: ``"factored"`` (default) or ``"loop"`` (the per-example reference: every
    example's ``(N_h, N_{h-1})`` update formed and quantized, in chunks of examples).
    """

    METHODS = ("factored", "loop")

    def __init__(self, alpha: float, bits: int, method: str = "factored", reading: Reading = DEFAULT_READING):
        if bits < 1:
            raise ValueError(f"bits must be an integer >= 1, got {bits}")
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        if method not in self.METHODS:
            raise ValueError(f"method must be one of {', '.join(self.METHODS)}, got {method!r}")
        self.alpha, self.bits, self.method, self.reading = float(alpha), int(bits), method, reading
        self.zero = reading.below == "zero"

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        return quantize_(u, self.alpha, self.bits, self.zero)

    def outer_sum(self, I: torch.Tensor, O: torch.Tensor, lr: float) -> torch.Tensor:
        """``Σ_b Quantize(lr · I_b O_bᵀ)``, shape ``(E, N_h, N_{h-1})``, for ``I``
        ``(E, B, N_h)`` and ``O`` ``(E, B, N_{h-1})`` (section 5.2, eq. 19)."""
        if (self.method == "loop" or not _factored_is_exact(I.dtype, I.shape[1], self.bits)
                or not thresholds_available(self.alpha, self.bits, I.dtype, I.device, self.zero)):
            return outer_sum_loop(I, O, lr, self)
        return outer_sum_factored(I, O, lr, self.alpha, self.bits, self.zero)

    def outer_direction(self, I: torch.Tensor, O: torch.Tensor, lr: float) -> torch.Tensor:
        """ΔW/η of the reading for the per-example updates ``I_b O_bᵀ``: R_b Q(s·I_b O_bᵀ)/s
        (s = η inside, 1 outside; R the mean or the sum), by :meth:`outer_sum`."""
        return self.from_sum(self.outer_sum(I, O, self.reading.scale(lr)), I.shape[1], lr)

    def from_sum(self, total: torch.Tensor, B: int, lr: float) -> torch.Tensor:
        """ΔW/η from ``total`` = Σ_b Q(s·u_b) over B examples, in place."""
        return total.div_(self.reading.count(B) * self.reading.scale(lr))

    def examples_direction(self, u: torch.Tensor, lr: float) -> torch.Tensor:
        """ΔW/η of the reading for per-example updates ``u`` (examples on axis 1)."""
        s = self.reading.scale(lr)
        q = self(u * s)
        return (q.mean(1) if self.reading.reduce == "mean" else q.sum(1)) / s

    def __repr__(self) -> str:
        extra = "" if self.reading == DEFAULT_READING else f", reading={self.reading}"
        return f"Quantizer(alpha={self.alpha}, bits={self.bits}, method={self.method!r}{extra})"


# Elements per temporary of per-example updates (8 MB in float32): a whole MNIST batch
# would be ~150 MB per step, and allocating/freeing that much every step costs more in
# page faults than the arithmetic.
CHUNK = 1 << 21
LEVEL_CHUNK = 1 << 18


def outer_sum_loop(I: torch.Tensor, O: torch.Tensor, lr: float, per_example) -> torch.Tensor:
    """The reference: every example's update ``lr · I_b O_bᵀ`` formed, mapped in place by
    ``per_example`` and summed, in chunks of examples."""
    E, B, n_out = I.shape
    n_in = O.shape[2]
    chunk = max(1, CHUNK // (E * n_out * n_in))
    dW = torch.zeros(E, n_out, n_in, dtype=I.dtype, device=I.device)
    for b0 in range(0, B, chunk):
        u = I[:, b0:b0 + chunk].unsqueeze(3) * O[:, b0:b0 + chunk].unsqueeze(2)
        dW.add_(per_example(u.mul_(lr)).sum(1))
    return dW


def _factored_is_exact(dtype: torch.dtype, B: int, bits: int) -> bool:
    # Every quantized value is ±α·2^k with k in [1 − bits, 0]: an integer multiple of
    # α·2^{1−bits} of magnitude ≤ 2^{bits−1}, so a sum over B examples is an integer of at
    # most B·2^{bits−1} units, exact in the dtype's mantissa in any order of summation.
    mantissa = {torch.float32: 24, torch.float64: 53}.get(dtype)
    return mantissa is not None and B * 2 ** (bits - 1) <= 2 ** mantissa


def outer_sum_factored(I: torch.Tensor, O: torch.Tensor, lr: float, alpha: float, bits: int,
                       zero: bool = False) -> torch.Tensor:
    """``Σ_b Quantize_{α,bits}(lr · I_b O_bᵀ)`` (eq. 19, section 5.2) without forming the
    ``(E, B, N_h, N_{h-1})`` per-example updates.

    The clip of eq. 19 puts every non-zero update at or above the floor level
    ``unit = α·2^{1−bits}``, and most of them (small ``|I_bi O_bj|``) exactly on it, where
    the quantized value ``unit·sign(I_bi)·sign(O_bj)`` is a product.  Above the floor,
    level m (value ``unit·2^m``) is reached when ``|u| ≥ T_m``, so

        Σ_b Q_bij / unit = (sign(I)ᵀ sign(O))_ij
                           + Σ_b sign(I_bi) sign(O_bj) Σ_{m=1}^{bits−1} 2^{m−1} [|u_bij| ≥ T_m]

    (the levels telescope: 2^k − 1 = Σ_{m ≤ k} 2^{m−1}).  With 1 bit there is no level
    above the floor and the sum is the one product ``α·sign(I)ᵀ sign(O)``.  ``|u_bij|``
    is largest at ``max_j |O_bj|``, so the rows ``(b, i)`` (or columns ``(b, j)``,
    whichever side is smaller) that can reach ``T_1`` are found from per-row maxima and
    only those are evaluated, by comparing their products ``fl(|I_bi|·|O_bj|)`` with
    ``W_m``, the smallest product w with ``fl(w·lr) ≥ T_m`` (:func:`product_thresholds`).

    Exactness: ``u`` is the reference's ``fl(fl(I·O)·lr)``, and the thresholds ``T_m`` are
    found on the reference quantizer itself (:func:`level_thresholds`); rounding is
    monotone (in ``|I·O|`` and then in ``·lr``), so each comparison decides the same level
    as :func:`quantize_` would.
    Every term is an integer number of units (at most ``2^{bits−1}``), so all sums are
    exact integers in any order and the result equals the per-example loop bit for bit
    when α is a power of two (the papers' 2⁻⁶); for another α the one final product by
    the unit is rounded once (the loop rounds at every addition).  Needs
    ``B·2^{bits−1} ≤ 2^{mantissa}``; :class:`Quantizer` uses the loop beyond that.

    With a zero level (``zero=True``) the floor is a level like the others: a value is on
    it only when ``|u| ≥ T_0`` (the smallest value eq. 19 with its zero level keeps), so

        Σ_b Q_bij / unit = Σ_b sign(I_bi) sign(O_bj) Σ_{m=0}^{bits−1} c_m [|u_bij| ≥ T_m],
        c_0 = 1, c_m = 2^{m−1},

    and the sum starts from zero instead of the product of signs; rows are found from their
    maxima as above (most products of small signals fall below T_0, so few are compared).
    """
    E, B, n_out = I.shape
    n_in = O.shape[2]
    unit = alpha * 2.0 ** (1 - bits)
    sI, sO = torch.sign(I), torch.sign(O)
    Wt = product_thresholds(alpha, bits, lr, I.dtype, I.device, zero)
    aI, aO = I.abs(), O.abs()
    if zero:  # the floor is level 0, reached only at W_0; no underflow to single out
        total = torch.zeros(E, n_out, n_in, dtype=I.dtype, device=I.device)
        rows, cols = aI * aO.amax(2, keepdim=True), aO * aI.amax(2, keepdim=True)
        _add_smaller_side(total, aI, aO, sI, sO, rows, None, cols, None, Wt, lr, alpha, bits, 0)
        return total.mul_(unit)
    total = torch.bmm(sI.transpose(1, 2), sO)  # (E, N_h, N_{h-1}) in units: the floor level
    # Whether any product of non-zero values can underflow to 0 (eq. 19 keeps 0 at 0, off
    # the floor): the smallest positive |I| times the smallest positive |O| bounds them all
    # (rounding is monotone).  Only then are the underflowing rows looked for.
    inf = float("inf")
    tiny = bool(torch.where(aI > 0, aI, inf).amin() * torch.where(aO > 0, aO, inf).amin() < Wt[0])
    rows, under_r = _candidates(aI, aO, Wt, tiny)  # (E, B, N_h): the largest product of each row
    if bits == 1:  # no level above the floor: only products that underflow to 0 remain
        _add_levels(total.view(E * n_out, n_in), aI, aO, sI, sO, rows, under_r, Wt, lr, alpha, bits)
        return total.mul_(unit)
    cols, under_c = _candidates(aO, aI, Wt, tiny)  # (E, B, N_{h-1})
    _add_smaller_side(total, aI, aO, sI, sO, rows, under_r, cols, under_c, Wt, lr, alpha, bits, 1)
    return total.mul_(unit)


def _add_smaller_side(total, aI, aO, sI, sO, rows, under_r, cols, under_c, Wt, lr, alpha, bits, first) -> None:
    """:func:`_add_levels` from level ``first`` into ``total`` ``(E, N_h, N_{h-1})`` along
    whichever side, rows ``(b, i)`` or columns ``(b, j)``, compares fewer elements."""
    E, n_out, n_in = total.shape
    if n_level_elements(rows, under_r, Wt, n_in, first) <= n_level_elements(cols, under_c, Wt, n_out, first):
        _add_levels(total.view(E * n_out, n_in), aI, aO, sI, sO, rows, under_r, Wt, lr, alpha, bits, first)
    else:
        tT = torch.zeros(E * n_in, n_out, dtype=total.dtype, device=total.device)
        _add_levels(tT, aO, aI, sO, sI, cols, under_c, Wt, lr, alpha, bits, first)
        total += tT.view(E, n_in, n_out).transpose(1, 2)


def n_level_elements(hi: torch.Tensor, under: torch.Tensor | None, Wt: torch.Tensor, width: int,
                     first: int = 1) -> int:
    """How many elements :func:`_add_levels` compares: rows of ``width`` for each level
    from ``first`` a row's largest product reaches, and whole rows for the underflowing ones."""
    n = sum(int(torch.count_nonzero(hi >= w)) for w in Wt[first:])
    return (n + (0 if under is None else int(under.sum()))) * width


_PRODUCT_THRESHOLDS: dict = {}


def product_thresholds(alpha: float, bits: int, lr: float, dtype: torch.dtype, device,
                       zero: bool = False) -> torch.Tensor:
    """``[W_0, W_1, ...]``: thresholds on ``w = |fl(I·O)|``, the smallest w with
    ``fl(w·lr) ≥ T_m`` (:func:`level_thresholds`; rounding is monotone in w).  Every layer
    of a step shares one learning rate, so the last few are kept."""
    key = (float(alpha), int(bits), float(lr), dtype, torch.device(device), zero)
    W = _PRODUCT_THRESHOLDS.get(key)
    if W is None:
        T = level_thresholds(alpha, bits, dtype, device, zero)  # T_0 (the smallest positive), T_1 < ... on |u|
        W = _smallest_factor(torch.full_like(T, lr), T)
        if len(_PRODUCT_THRESHOLDS) >= 64:  # a decaying rate changes every step: keep a few
            _PRODUCT_THRESHOLDS.clear()
        _PRODUCT_THRESHOLDS[key] = W
    return W


_THRESHOLDS: dict = {}


def thresholds_available(alpha: float, bits: int, dtype: torch.dtype, device, zero: bool = False) -> bool:
    """Whether :func:`level_thresholds` exist here (else the factored sum cannot be exact)."""
    try:
        level_thresholds(alpha, bits, dtype, device, zero)
        return True
    except ValueError:
        return False


def level_thresholds(alpha: float, bits: int, dtype: torch.dtype, device=None, zero: bool = False) -> torch.Tensor:
    """``[T_0, T_1, ..., T_{bits−1}]``: T_m (m ≥ 1) the smallest ``|u|`` that eq. 19 (as
    :func:`quantize_` computes it) lifts to level ``α·2^{m+1−bits}`` or higher, T_0 the
    smallest positive value (0 maps to 0, every other value to the floor or above); with
    a zero level (``zero=True``) T_0 is the smallest value that reaches the floor.

    Found by bisection over the floats' bit patterns on :func:`quantize_` itself, then
    checked on every float within 512 ulps of each threshold, in one vectorised call and
    element by element (a scalar path): the quantizer must be monotone there and switch at
    exactly T_m.  If the platform's log2 broke that, a ValueError says so (the loop is
    then the only exact method).  Found on ``device``: its log2 is the one training uses."""
    device = torch.device(device or "cpu")
    key = (float(alpha), int(bits), dtype, device, zero)
    if key in _THRESHOLDS:
        if isinstance(_THRESHOLDS[key], str):
            raise ValueError(_THRESHOLDS[key])
        return _THRESHOLDS[key]
    itype = {torch.float32: torch.int32, torch.float64: torch.int64}[dtype]
    unit = alpha * 2.0 ** (1 - bits)

    def level(v: torch.Tensor) -> torch.Tensor:  # quantized value in units
        return quantize_(v.clone(), alpha, bits, zero).div_(unit)

    def as_float(i: int) -> torch.Tensor:
        return torch.tensor([i], dtype=itype, device=device).view(dtype)

    out = [] if zero else [as_float(1)]
    top = int(torch.tensor([alpha], dtype=dtype).view(itype))
    # Level m >= 1 is value 2^m in units (above 2^{m-1}); with a zero level, level 0 is the
    # floor, value 1 (above 0, which the clamps below treat as 1/2).
    for m in range(0 if zero else 1, bits):
        lo, hi = 0, top  # level(lo) < 2^m <= level(hi)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if level(as_float(mid)).item() >= 2 ** m:
                hi = mid
            else:
                lo = mid
        window = torch.arange(hi - 512, hi + 512, dtype=itype, device=device).view(dtype)
        want = (torch.arange(hi - 512, hi + 512, device=device) >= hi).to(dtype) * 2 ** (m - 1) + 2 ** (m - 1)
        vec = level(window)
        one = torch.cat([level(window[k:k + 1]) for k in range(504, 520)])
        lv = vec.clamp(max=2 ** m).clamp(min=2 ** (m - 1))
        if not (torch.equal(lv, want) and torch.equal(one.clamp(2 ** (m - 1), 2 ** m), want[504:520])):
            _THRESHOLDS[key] = (f"eq. 19 with alpha={alpha}, bits={bits} is not monotone near level {m} on "
                                f"{device} (its log2); use Quantizer(method='loop')")
            raise ValueError(_THRESHOLDS[key])
        out.append(as_float(hi))
    T = torch.cat(out)
    _THRESHOLDS[key] = T
    return T


def _smallest_factor(a: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Elementwise the smallest float x >= 0 with ``fl(a·x) >= target`` (a > 0, target >
    0): the quotient, corrected by a few ulps (rounding is monotone, the quotient is within
    an ulp or two of the answer)."""
    x = target / a
    inf = torch.full_like(x, float("inf"))
    for _ in range(3):
        x = torch.where(a * x >= target, x, torch.nextafter(x, inf))
    for _ in range(3):
        p = torch.nextafter(x, torch.zeros_like(x))
        x = torch.where(a * p >= target, p, x)
    return x


def _candidates(a: torch.Tensor, b: torch.Tensor, Wt: torch.Tensor, tiny: bool = True):
    """``(hi, under)`` for the rows ``a_{e,b,i}`` (``a``, ``b``: absolute values, the other
    side ``(E, B, M)``): ``hi`` the largest product ``fl(a·max_j b_j)`` of each row
    (rounding is monotone), compared with ``W_m`` to find the rows that reach level m, and
    the mask of rows whose smallest non-zero product underflows to 0 (eq. 19 maps 0 to 0,
    not to the floor); None without ``tiny`` (no product of non-zero values can underflow,
    the usual case)."""
    hi = a * b.amax(2, keepdim=True)  # (E, B, N)
    if not tiny:
        return hi, None
    smallest = torch.where(b > 0, b, torch.full_like(b, float("inf"))).amin(2, keepdim=True)
    under = ((a * smallest) < Wt[0]).logical_and_(a > 0)
    return hi, under


def _add_levels(acc, a, b, sa, sb, hi, under, Wt, lr, alpha, bits, first: int = 1) -> None:
    """Add ``sign(a_k)·sign(b)·Σ_{m ≥ first} c_m[|fl(a_k·b)| ≥ W_m]`` (c_0 = 1,
    c_m = 2^{m−1}) into ``acc`` ``(E·N, M)``
    (rows ``e·N + i``), level by level for the rows whose largest product reaches it
    (fewer at each level), in chunks of rows, by comparing the products ``fl(a_k·b)``
    themselves with ``W_m``; rows that underflow go through the quantizer itself
    (:func:`_exact_rows`)."""
    E, B, N = a.shape
    M = b.shape[2]
    af, saf = a.reshape(-1), sa.reshape(-1)
    bf, sbf = b.reshape(E * B, M), sb.reshape(E * B, M)
    step = max(1, LEVEL_CHUNK // M)  # ~1 MB: the few passes over a chunk stay in cache
    for m in range(first, bits):
        reach = hi >= Wt[m]
        if under is not None:
            reach.logical_and_(under.logical_not())
        e, bb, i = reach.nonzero(as_tuple=True)
        if len(e) == 0:
            break  # no row reaches level m, hence none reaches a higher one
        flat = (e * B + bb) * N + i
        ak, sak = af[flat].unsqueeze(1), (saf[flat] * (2.0 ** (m - 1) if m else 1.0)).unsqueeze(1)
        eb, index = e * B + bb, e * N + i
        for k0 in range(0, len(index), step):
            s = slice(k0, k0 + step)
            ebs = eb[s]
            # [fl(a_k·|b|) >= W_m] as 1.0/0.0: the very product the reference forms
            c = bf.index_select(0, ebs).mul_(ak[s]).ge_(Wt[m])
            c.mul_(sbf.index_select(0, ebs)).mul_(sak[s])
            acc.index_add_(0, index[s], c)
    if under is not None and bool(under.any()):
        e, bb, i = under.nonzero(as_tuple=True)
        eb = e * B + bb
        ak, sak = a[e, bb, i], sa[e, bb, i]
        acc.index_add_(0, e * N + i, _exact_rows(ak * sak, bf[eb] * sbf[eb], sak, sbf[eb], lr, alpha, bits))


def _exact_rows(Ik, Orows, sIk, sOrows, lr, alpha, bits):
    """``Q/unit − sign(I)·sign(O)`` for whole rows, with the reference quantizer itself."""
    unit = alpha * 2.0 ** (1 - bits)
    u = Ik.unsqueeze(1) * Orows  # fl(I·O), as the reference forms it
    q = quantize_(u.mul_(lr), alpha, bits).div_(unit)  # ±2^{k+bits−1}: exact
    return q.sub_(sIk.unsqueeze(1) * sOrows)


class MemberQuantizer(Quantizer):
    """Eq. 19 with one number of bits per population member (populations across variants,
    e.g. Table 1's quantized-update rows 5, 3 and 1 bit in one population): each
    contiguous group of members with one ``bits`` is quantized by the :class:`Quantizer`
    of that ``bits`` on its slice of the population (one :class:`Reading` for all)."""

    def __init__(self, alpha: float, bits: list[int], method: str = "factored", reading: Reading = DEFAULT_READING):
        if not bits:
            raise ValueError("update_bits: a per-member list needs at least one member")
        super().__init__(alpha, max(int(b) for b in bits), method, reading)
        self.bits = [int(b) for b in bits]
        self.groups: list[tuple[int, int, Quantizer]] = []
        for e, b in enumerate(self.bits):
            if self.groups and self.groups[-1][2].bits == b:
                self.groups[-1] = (self.groups[-1][0], e + 1, self.groups[-1][2])
            else:
                self.groups.append((e, e + 1, Quantizer(alpha, b, method, reading)))

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        for a, z, q in self.groups:
            q(u[a:z])  # in place on the slice
        return u

    def outer_sum(self, I: torch.Tensor, O: torch.Tensor, lr: float) -> torch.Tensor:
        """:meth:`Quantizer.outer_sum` of every group, stacked on the member axis."""
        return torch.cat([q.outer_sum(I[a:z], O[a:z], lr) for a, z, q in self.groups])

    def __repr__(self) -> str:
        extra = "" if self.reading == DEFAULT_READING else f", reading={self.reading}"
        return f"MemberQuantizer(alpha={self.alpha}, bits={self.bits}{extra})"
