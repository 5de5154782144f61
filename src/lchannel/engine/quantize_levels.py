"""Eq. 19 of paper 1, the power-of-two quantizer (sections 5.1-5.2), and the exact
thresholds at which it switches level (:func:`level_thresholds`, :func:`product_thresholds`),
which let :mod:`.quantize_sum` decide a quantized value by one comparison.  The
quantizer's readings and objects are :mod:`.quantize`."""

from __future__ import annotations

import torch


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
