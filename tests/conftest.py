import os
from pathlib import Path

import pytest
import torch

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(1234)
    yield


@pytest.fixture
def data_dir() -> Path:
    """The real data directory (CI sets LCHANNEL_DATA_DIR to ../shared/datasets)."""
    d = Path(os.environ.get("LCHANNEL_DATA_DIR", SHARED))
    if not (d / "mnist").is_dir():
        pytest.skip(f"MNIST files not found under {d}")
    return d


@pytest.fixture(scope="module")
def one_thread():
    """Tiny nets run as fast on one intra-op thread, and on a busy 2-core machine several
    threads spin against each other (about 8x slower measured).  Use with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
