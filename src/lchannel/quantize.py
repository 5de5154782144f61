"""Eq. 19 of paper 1: the power-of-two quantizer of signals (section 5.1) and of weight
updates (section 5.2).  Its own module because both the learning channel's transforms and
the optimizer's per-example updates use it, and neither should import the other."""

from __future__ import annotations

import torch

# The papers' scales α of eq. 19: 2⁻³ for error signals (section 5.1, Figures 6-7) and
# 2⁻⁶ for per-example weight updates (section 5.2).  Every default refers to these.
SIGNAL_ALPHA = 2.0 ** -3
UPDATE_ALPHA = 2.0 ** -6


def quantize(x: torch.Tensor, alpha: float, bits: int) -> torch.Tensor:
    """Quantize_{α,bits}(x) = α · sign(x) · 2^{round(clip(log2|x/α|, −bits+1, 0))}  (eq. 19).

    Values are powers of two times α in ``[α·2^{−bits+1}, α]`` with the sign of x: the
    exponent is clipped before rounding, so |x| > α becomes α and a tiny non-zero x becomes
    α·2^{−bits+1} (not 0); x = 0 maps to 0 (sign(0) = 0).  With 1 bit every non-zero value
    becomes ±α.  Rounding is to the nearest integer, ties to even (numpy/torch ``round``).
    """
    if bits < 1:
        raise ValueError(f"bits must be an integer >= 1, got {bits}")
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    return quantize_(x.clone(), alpha, bits)


def quantize_(x: torch.Tensor, alpha: float, bits: int) -> torch.Tensor:
    """:func:`quantize` computed in place in ``x`` (no validation): one temporary for the
    sign instead of one per step, which matters for per-example weight updates."""
    s = torch.sign(x)
    return x.abs_().div_(alpha).log2_().clamp_(-bits + 1, 0).round_().exp2_().mul_(s).mul_(alpha)
