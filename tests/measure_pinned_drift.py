"""Measure how far a kernel choice moves the pinned numbers, and how far a one-ulp change
to the update rule moves them (not collected by pytest; it justifies the tolerance of
tests/test_pinned_metrics.py).

    LCHANNEL_DATA_DIR=../shared/datasets python tests/measure_pinned_drift.py

Every run of ``test_pinned_metrics.RUNS`` is trained in a fresh process under each
kernel choice of :data:`KERNELS` (environment variables that make MKL and ATen pick other
kernels on the same CPU: different rounding, the same maths), and once more on the
default kernels with the learning rate raised by one float32 ulp (every weight change
η·I·Oᵀ scaled by 1 + 2⁻²³·k, the smallest change a rule can make).  For each it prints
the largest relative difference of any continuous metric (losses) and of the weight
summary against the fixture, the quantities the test compares.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Kernel choices that change the rounding here (checked on AMD EPYC and Intel Xeon, both
# AVX-512): MKL's conditional-numerical-reproducibility branch, ATen's scalar kernels.
KERNELS = {
    "default": {},
    "mkl-compatible": {"MKL_CBWR": "COMPATIBLE"},
    "aten-default": {"ATEN_CPU_CAPABILITY": "default"},
    "both": {"MKL_CBWR": "COMPATIBLE", "ATEN_CPU_CAPABILITY": "default"},
}


def child(nudge: bool) -> None:
    """Train every pinned run in this process and print their numbers as JSON."""
    sys.path.insert(0, str(HERE))
    import numpy as np
    import torch

    from lchannel.engine.plasticity import SGD
    import test_pinned_metrics as pm

    if nudge:
        lr_now = SGD.lr_now

        def one_ulp_more(self):
            up = lambda r: float(np.nextafter(np.float32(r), np.float32(np.inf)))  # noqa: E731
            r = lr_now(self)
            return [up(x) for x in r] if isinstance(r, list) else up(r)
        SGD.lr_now = one_ulp_more
    torch.set_num_threads(1)
    d = os.environ.get("LCHANNEL_DATA_DIR", str(HERE.parents[1] / "shared" / "datasets"))
    print(json.dumps({n: pm.run(n, d) for n in sorted(pm.RUNS)}))


def worst(got: dict, want: dict) -> tuple[float, float]:
    """Largest relative difference of the losses and of the weight summary."""
    import test_pinned_metrics as pm
    loss = max(pm.relative(g, w) for m in pm.CONTINUOUS for a, b in zip(got["metrics"][m], want["metrics"][m])
               for g, w in zip(a, b))
    weights = max(pm.relative(g, w) for g, w in zip(got["weights"], want["weights"]))
    return loss, weights


def main() -> None:
    sys.path.insert(0, str(HERE))
    import test_pinned_metrics as pm

    want = json.loads(pm.FIXTURE.read_text())
    cases = [(k, env, False) for k, env in KERNELS.items()] + [("one-ulp lr", {}, True)]
    rows = {}
    for name, env, nudge in cases:
        out = subprocess.run([sys.executable, __file__, "--child"] + (["--nudge"] if nudge else []),
                             env={**os.environ, **env}, capture_output=True, text=True, check=True).stdout
        got = json.loads(out)
        rows[name] = {run: worst(got[run], want[run]) for run in sorted(pm.RUNS)}
    print(f"{'run':34s}" + "".join(f"{c:>26s}" for c in rows))
    print(f"{'':34s}" + "".join(f"{'loss':>13s}{'weights':>13s}" for _ in rows))
    for run in sorted(pm.RUNS):
        print(f"{run:34s}" + "".join(f"{rows[c][run][0]:13.1e}{rows[c][run][1]:13.1e}" for c in rows))
    kern = [v for c in KERNELS for v in rows[c].values()]
    ulp = list(rows["one-ulp lr"].values())
    print(f"\nlargest kernel drift: loss {max(v[0] for v in kern):.1e}, weights {max(v[1] for v in kern):.1e}")
    print(f"smallest one-ulp change: loss {min(v[0] for v in ulp):.1e}, weights {min(v[1] for v in ulp):.1e}")
    print(f"test tolerance: loss {pm.LOSS_RTOL:.0e}, weights {pm.WEIGHTS_RTOL:.0e}")


if __name__ == "__main__":
    if "--child" in sys.argv:
        child("--nudge" in sys.argv)
    else:
        main()
