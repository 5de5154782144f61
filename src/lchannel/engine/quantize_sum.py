"""The minibatch sum of quantized per-example weight updates (paper 1, section 5.2,
eq. 19), ``Σ_b Quantize(lr · I_b O_bᵀ)``: :func:`outer_sum_factored` computes it without
forming the ``(E, B, N_h, N_{h-1})`` per-example updates, exactly; :func:`outer_sum_loop`
forms them (the reference).

Exactness of the factored sum: ``u`` is the reference's ``fl(fl(I·O)·lr)``, and the
thresholds ``T_m`` are found on the reference quantizer itself
(:func:`~.quantize_levels.level_thresholds`); rounding is monotone (in ``|I·O|`` and
then in ``·lr``), so each comparison decides the same level as
:func:`~.quantize_levels.quantize_` would.  Every term is an integer number of units
(at most ``2^{bits−1}``), so all sums are exact integers in any order and the result
equals the per-example loop bit for bit when α is a power of two (the papers' 2⁻⁶); for
another α the one final product by the unit is rounded once (the loop rounds at every
addition).  Needs ``B·2^{bits−1} ≤ 2^{mantissa}`` (:func:`factored_is_exact`);
:class:`~.quantize.Quantizer` uses the loop beyond that.
"""

from __future__ import annotations

import torch

from .quantize_levels import product_thresholds, quantize_


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


def factored_is_exact(dtype: torch.dtype, B: int, bits: int) -> bool:
    """Whether :func:`outer_sum_factored` is exact for B examples of ``dtype`` at ``bits``."""
    # Every quantized value is ±α·2^k with k in [1 − bits, 0]: an integer multiple of
    # α·2^{1−bits} of magnitude ≤ 2^{bits−1}, so a sum over B examples is an integer of at
    # most B·2^{bits−1} units, exact in the dtype's mantissa in any order of summation.
    mantissa = {torch.float32: 24, torch.float64: 53}.get(dtype)
    return mantissa is not None and B * 2 ** (bits - 1) <= 2 ** mantissa


def outer_sum_factored(I: torch.Tensor, O: torch.Tensor, lr: float, alpha: float, bits: int,
                       zero: bool = False) -> torch.Tensor:
    """``Σ_b Quantize_{α,bits}(lr · I_b O_bᵀ)`` (eq. 19, section 5.2) without forming the
    ``(E, B, N_h, N_{h-1})`` per-example updates (exact: see the module doc).

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
    ``W_m``, the smallest product w with ``fl(w·lr) ≥ T_m``
    (:func:`~.quantize_levels.product_thresholds`).  With a zero level (``zero=True``)
    see :func:`_sum_with_zero_level`.
    """
    unit = alpha * 2.0 ** (1 - bits)
    sI, sO = torch.sign(I), torch.sign(O)
    Wt = product_thresholds(alpha, bits, lr, I.dtype, I.device, zero)
    aI, aO = I.abs(), O.abs()
    if zero:
        total = _sum_with_zero_level(aI, aO, sI, sO, Wt, lr, alpha, bits)
    else:
        total = _sum_from_floor(aI, aO, sI, sO, Wt, lr, alpha, bits)
    return total.mul_(unit)


def _sum_with_zero_level(aI, aO, sI, sO, Wt, lr, alpha, bits) -> torch.Tensor:
    """The factored sum in units when eq. 19 has a zero level: the floor is a level like
    the others, a value is on it only when ``|u| ≥ T_0`` (the smallest value eq. 19 with
    its zero level keeps), so

        Σ_b Q_bij / unit = Σ_b sign(I_bi) sign(O_bj) Σ_{m=0}^{bits−1} c_m [|u_bij| ≥ T_m],
        c_0 = 1, c_m = 2^{m−1},

    and the sum starts from zero instead of the product of signs; rows are found from their
    maxima (most products of small signals fall below T_0, so few are compared).  Level 0
    is reached only at W_0: no underflow to single out."""
    E, _, n_out = aI.shape
    total = torch.zeros(E, n_out, aO.shape[2], dtype=aI.dtype, device=aI.device)
    rows, cols = aI * aO.amax(2, keepdim=True), aO * aI.amax(2, keepdim=True)
    _add_smaller_side(total, aI, aO, sI, sO, rows, None, cols, None, Wt, lr, alpha, bits, 0)
    return total


def _sum_from_floor(aI, aO, sI, sO, Wt, lr, alpha, bits) -> torch.Tensor:
    """The factored sum in units of eq. 19 as printed: the product of signs (every
    non-zero value at least on the floor), plus the levels above it, minus what
    underflows to 0."""
    E, _, n_out = aI.shape
    n_in = aO.shape[2]
    total = torch.bmm(sI.transpose(1, 2), sO)  # (E, N_h, N_{h-1}) in units: the floor level
    # Whether any product of non-zero values can underflow to 0 (eq. 19 keeps 0 at 0, off
    # the floor): the smallest positive |I| times the smallest positive |O| bounds them all
    # (rounding is monotone).  Only then are the underflowing rows looked for.
    inf = float("inf")
    tiny = bool(torch.where(aI > 0, aI, inf).amin() * torch.where(aO > 0, aO, inf).amin() < Wt[0])
    rows, under_r = _candidates(aI, aO, Wt, tiny)  # (E, B, N_h): the largest product of each row
    if bits == 1:  # no level above the floor: only products that underflow to 0 remain
        _add_levels(total.view(E * n_out, n_in), aI, aO, sI, sO, rows, under_r, Wt, lr, alpha, bits)
        return total
    cols, under_c = _candidates(aO, aI, Wt, tiny)  # (E, B, N_{h-1})
    _add_smaller_side(total, aI, aO, sI, sO, rows, under_r, cols, under_c, Wt, lr, alpha, bits, 1)
    return total


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
