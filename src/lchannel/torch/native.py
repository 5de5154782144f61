"""The compiled SRBP error source: :class:`~lchannel.torch.functions.SkipSource` as a C++
autograd node (``skip_source.cpp``), built on first use with ``torch.utils.cpp_extension``.

Why: SRBP saves the products through Wᵀ, but on a small network such as paper 1's MNIST
MLP those cost about as much as one Python autograd function: the Python SkipSource
leaves an SRBP step at ≈1.00x the autograd step, the compiled node at ≈0.98x
(``benchmarks/bench_convert.py``, docs/your-own-model.md).

Used for plain SRBP (``srbp``, ``srbp-nof``) without signal transforms, outside
``torch.compile`` tracing and functorch transforms; ASRBP, the transforms and those
cases keep the Python function.  Both compute the same products in the same order: the
gradients agree bit for bit (tests/test_torch_native.py).

Building needs a C++ compiler (``$CXX``, default ``c++``) and ``ninja`` on PATH, takes
≈20 s once per machine and torch version, and is cached by torch in
``$TORCH_EXTENSIONS_DIR`` (default ``~/.cache/torch_extensions``).  Without them the
Python function is used.  The environment variable ``LCHANNEL_NATIVE`` chooses:
``auto`` (default: build when possible, else Python), ``off`` (never), ``require``
(raise if it cannot be built).  ``status()`` says which is in use and why.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import warnings
from pathlib import Path

import torch

MODES = ("auto", "off", "require")
SOURCE = Path(__file__).with_name("skip_source.cpp")
_loaded: dict = {}  # "op": the compiled function or None; "status": why


def mode() -> str:
    """``LCHANNEL_NATIVE``, checked."""
    value = os.environ.get("LCHANNEL_NATIVE", "auto").strip().lower() or "auto"
    if value not in MODES:
        raise ValueError(f"LCHANNEL_NATIVE must be one of {list(MODES)}, got {value!r}")
    return value


def status() -> str:
    """Which SRBP source node is in use and why (builds it if not tried yet)."""
    skip_source_op()
    return _loaded["status"]


def _done(op, why: str):
    _loaded["op"], _loaded["status"] = op, why
    return op


def skip_source_op():
    """The compiled ``skip_source(y, points, feedbacks)``, or None (use the Python
    SkipSource); decided once per process."""
    if "op" in _loaded:
        return _loaded["op"]
    chosen = mode()
    if chosen == "off":
        return _done(None, "python (LCHANNEL_NATIVE=off)")
    missing = [tool for tool in (os.environ.get("CXX", "c++"), "ninja") if shutil.which(tool) is None]
    if missing:
        why = f"{' and '.join(missing)} not found on PATH"
        if chosen == "require":
            raise RuntimeError(f"LCHANNEL_NATIVE=require: cannot build the compiled SRBP node: {why}")
        return _done(None, f"python ({why})")
    name = "lchannel_skip_source_" + re.sub(r"\W", "_", torch.__version__)  # one build per torch version
    try:
        from torch.utils import cpp_extension
        try:  # say so before the one slow build (private helper: no message if it moves)
            built = any(Path(cpp_extension._get_build_directory(name, False)).glob(name + ".*"))
        except Exception:
            built = True
        if not built:
            print("lchannel.torch: compiling the SRBP source node (once per machine, about 20 s; "
                  "LCHANNEL_NATIVE=off skips it)", file=sys.stderr, flush=True)
        module = cpp_extension.load(name, [str(SOURCE)], extra_cflags=["-O2"], verbose=False)
    except Exception as err:
        why = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
        if chosen == "require":
            raise RuntimeError(f"LCHANNEL_NATIVE=require: building the compiled SRBP node failed ({why})") from err
        warnings.warn(f"lchannel.torch: the compiled SRBP node could not be built ({why}); using the Python "
                      f"autograd function (same gradients, slower). LCHANNEL_NATIVE=off silences this.",
                      RuntimeWarning, stacklevel=3)
        return _done(None, f"python (build failed: {why})")
    return _done(module.skip_source, f"compiled ({module.__file__})")


def _reset() -> None:
    """Forget the decision (tests)."""
    _loaded.clear()
