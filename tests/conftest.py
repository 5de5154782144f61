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
