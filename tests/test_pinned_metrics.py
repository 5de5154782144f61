"""Pinned numbers: short MNIST runs must give bit-identical metrics and final weights.

The fixture ``data/pinned_metrics.json`` was written by the engine as it was before the
blocks/routes/rules refactor (issue 10, commit 3f4a5a2) with ``python
tests/test_pinned_metrics.py --write``.  A refactor that changes the shape of the code
but not its behaviour keeps every number here equal (==, not approx): the per-epoch
metrics of epochs 1..N and a SHA-256 of the final forward weights and biases.

One entry was re-recorded on purpose: ``srbp-lc_dropout-momentum-dropout``, when forward
dropout's derivative was corrected (f' is taken from the activity before dropout and
multiplied by the mask; before, tanh's 1 − O² was read from the rescaled, dropped-out O:
tests/test_forward_dropout.py checks the corrected form against autograd).
"""

import hashlib
import json
import sys
from pathlib import Path

import pytest
import torch

from lchannel.config import TrainConfig
from lchannel.run import train_config

pytestmark = pytest.mark.usefixtures("one_thread")

FIXTURE = Path(__file__).parent / "data" / "pinned_metrics.json"

BASE = dict(dataset="mnist", subset=1000, architecture=[784, 32, 16, 10], epochs=2, seeds=[0, 1],
            batch_size=20, lr=0.1, decay=1e-4)

# name -> config overrides; covers every engine path the refactor moves.
RUNS = {
    "bp": dict(algorithm="bp"),
    "rbp": dict(algorithm="rbp"),
    "srbp": dict(algorithm="srbp"),
    "arbp": dict(algorithm="arbp"),
    "asrbp": dict(algorithm="asrbp"),
    "sbp": dict(algorithm="sbp"),
    "top": dict(algorithm="top"),
    "rbp-nof": dict(algorithm="rbp-nof"),
    "rbp-quantize_bits3": dict(algorithm="rbp", channel={"quantize_bits": 3}),
    "rbp-update_bits3": dict(algorithm="rbp", update_bits=3),
    "srbp-lc_dropout-momentum-dropout": dict(algorithm="srbp", channel={"lc_dropout": 0.1}, momentum=0.5,
                                             dropout=0.1),
    "rbp-sign_concordant": dict(algorithm="rbp", channel={"resample": "sign_concordant"}),
    "srbp-feedback_samples2": dict(algorithm="srbp", channel={"feedback_samples": 2}),
    "srbp-per_synapse": dict(algorithm="srbp", channel={"per_synapse": True}),
    "cascade-sparse": dict(algorithm="cascade", channel={"feedback": {"distribution": "sparse", "n": 4}}),
    "mixed-frozen": dict(algorithm="mixed", channel={"skip_layers": [1]}, frozen=[2]),
    "bp-relu-logistic": dict(algorithm="bp", hidden="relu", output="logistic"),
}


def weights_digest(net) -> str:
    h = hashlib.sha256()
    for t in list(net.weights) + list(net.biases):
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def run(name: str, data_dir) -> dict:
    cfg = TrainConfig.from_dict({**BASE, **RUNS[name], "data_dir": str(data_dir)})
    res = train_config(cfg, progress=False)
    return {"epochs": res.history.epochs, "metrics": res.history.metrics,
            "weights_sha256": weights_digest(res.trainer.net)}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_numbers_are_bit_identical_to_the_pinned_engine(name, data_dir):
    want = json.loads(FIXTURE.read_text())[name]
    got = run(name, data_dir)
    assert got["epochs"] == want["epochs"] == [1, 2]
    for m, rows in want["metrics"].items():
        assert got["metrics"][m] == rows, m  # exact floats
    assert got["weights_sha256"] == want["weights_sha256"]


if __name__ == "__main__" and "--write" in sys.argv:
    import os

    torch.set_num_threads(1)
    d = os.environ.get("LCHANNEL_DATA_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "datasets"))
    FIXTURE.write_text(json.dumps({n: run(n, d) for n in sorted(RUNS)}, indent=1) + "\n")
