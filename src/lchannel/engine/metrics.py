"""Classification metrics beyond accuracy: the area under the ROC curve (AUC).

AUC is what the HIGGS literature reports (Baldi, Sadowski & Whiteson 2014).  It is the
probability that a random positive example scores above a random negative one, ties
counting one half, i.e. the Mann-Whitney statistic::

    AUC = (R_+ − n_+ (n_+ + 1) / 2) / (n_+ · n_−)

with R_+ the sum of the positives' ranks among all scores (tied scores share the mean of
their ranks).
"""

from __future__ import annotations

import math

import torch


def roc_auc(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """AUC of ``scores`` (..., N) against binary ``labels`` (N,) for every leading index
    (e.g. one per population member); NaN when one class is absent."""
    scores = scores.detach().to(torch.float64)
    pos = labels.reshape(-1).to(torch.bool).to(scores.device)
    n_pos = int(pos.sum())
    n_neg = pos.numel() - n_pos
    lead = scores.shape[:-1]
    if n_pos == 0 or n_neg == 0:
        return torch.full(lead, math.nan, dtype=torch.float64)
    flat = scores.reshape(-1, scores.shape[-1])
    out = torch.empty(flat.shape[0], dtype=torch.float64)
    for i, s in enumerate(flat):
        order = torch.argsort(s)
        sorted_s = s[order]
        # Average ranks of tied runs: rank = (first + last) / 2 + 1 for each run of equals.
        _, inverse, counts = torch.unique_consecutive(sorted_s, return_inverse=True, return_counts=True)
        ends = torch.cumsum(counts, 0).to(torch.float64)
        mean_rank = ends - (counts.to(torch.float64) - 1) / 2  # 1-based
        ranks = torch.empty_like(s)
        ranks[order] = mean_rank[inverse]
        r_pos = ranks[pos].sum()
        out[i] = (r_pos - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return out.reshape(lead)
