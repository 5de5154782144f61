"""The converter's autograd nodes compiled: :class:`~lchannel.torch.functions.SkipSource`,
:class:`~lchannel.torch.functions.FeedbackLinearFn` and
:class:`~lchannel.torch.functions.FeedbackConvFn` as C++ nodes (``nodes.cpp``), built on
first use with ``torch.utils.cpp_extension``.

Why: on a small network such as paper 1's MNIST MLP a Python autograd function costs as
much as the products SRBP saves or RBP's feedback adds: with the Python functions an
SRBP step is ≈1.00x the autograd step and an RBP step ≈1.12x, with the compiled nodes
≈0.98x and ≈1.01x (``benchmarks/bench_convert.py``, docs/your-own-model.md).

Used for plain RBP and SRBP (``rbp``, ``rbp-nof``, ``srbp``, ``srbp-nof``) without
signal transforms, outside ``torch.compile`` tracing and functorch transforms; ARBP,
ASRBP, the transforms and those cases keep the Python functions.  Both compute the same
products in the same order: the gradients agree bit for bit (tests/test_torch_native.py).

Building needs a C++ compiler (``$CXX``, default ``c++``) and ``ninja`` on PATH, takes
≈25 s once per machine and torch version (again when ``nodes.cpp`` changes), says so in
one line on stderr before it starts, and is cached by torch in
``$TORCH_EXTENSIONS_DIR`` (default ``~/.cache/torch_extensions``).  Without them the
Python functions are used.  The environment variable ``LCHANNEL_NATIVE`` chooses:
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
SOURCE = Path(__file__).with_name("nodes.cpp")
_loaded: dict = {}  # "nodes": the compiled module or None; "status": why


def mode() -> str:
    """``LCHANNEL_NATIVE``, checked."""
    value = os.environ.get("LCHANNEL_NATIVE", "auto").strip().lower() or "auto"
    if value not in MODES:
        raise ValueError(f"LCHANNEL_NATIVE must be one of {list(MODES)}, got {value!r}")
    return value


def status() -> str:
    """Which nodes are in use and why (builds them if not tried yet)."""
    nodes()
    return _loaded["status"]


def usable() -> bool:
    """Outside torch.compile tracing (which traces the Python functions instead) and
    functorch transforms (whose wrapped tensors only Python functions handle)."""
    return not torch.compiler.is_compiling() and not torch._C._are_functorch_transforms_active()


BUILD_MESSAGE = ("lchannel.torch: building the C++ autograd nodes of RBP and SRBP (once per machine and version of "
                 "nodes.cpp, about 25 s; LCHANNEL_NATIVE=off skips it)...")


def needs_build(name: str) -> bool:
    """Whether ``cpp_extension.load(name, ...)`` will compile rather than load a cached
    build: no built library in torch's build folder for ``name``
    (``$TORCH_EXTENSIONS_DIR``, default ``~/.cache/torch_extensions``), or one older than
    ``nodes.cpp`` (ninja rebuilds it then: the source changed since).  When torch's
    private helper for that folder moves, assume a build: one line too many is better
    than 25 s of silence."""
    try:
        from torch.utils import cpp_extension  # lazy: loads the C++ build tooling, needed only for the native kernels

        folder = Path(cpp_extension._get_build_directory(name, False))
        libraries = [p for p in folder.glob(name + ".*") if p.suffix in (".so", ".pyd", ".dylib")]
        return not libraries or max(p.stat().st_mtime for p in libraries) < SOURCE.stat().st_mtime
    except Exception:
        return True


def _done(module, why: str):
    _loaded["nodes"], _loaded["status"] = module, why
    return module


def nodes():
    """The compiled module (``skip_source``, ``feedback_linear``, ``feedback_conv``), or
    None (use the Python functions); decided once per process."""
    if "nodes" in _loaded:
        return _loaded["nodes"]
    chosen = mode()
    if chosen == "off":
        return _done(None, "python (LCHANNEL_NATIVE=off)")
    missing = [tool for tool in (os.environ.get("CXX", "c++"), "ninja") if shutil.which(tool) is None]
    if missing:
        why = f"{' and '.join(missing)} not found on PATH"
        if chosen == "require":
            raise RuntimeError(f"LCHANNEL_NATIVE=require: cannot build the compiled nodes: {why}")
        return _done(None, f"python ({why})")
    name = "lchannel_nodes_" + re.sub(r"\W", "_", torch.__version__)  # one build per torch version
    try:
        from torch.utils import cpp_extension  # lazy: loads the C++ build tooling, needed only for the native kernels
        if needs_build(name):  # say so before the one slow build
            print(BUILD_MESSAGE, file=sys.stderr, flush=True)
        module = cpp_extension.load(name, [str(SOURCE)], extra_cflags=["-O2"], verbose=False)
    except Exception as err:
        why = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
        if chosen == "require":
            raise RuntimeError(f"LCHANNEL_NATIVE=require: building the compiled nodes failed ({why})") from err
        warnings.warn(f"lchannel.torch: the compiled autograd nodes could not be built ({why}); using the Python "
                      f"autograd functions (same gradients, slower). LCHANNEL_NATIVE=off silences this.",
                      RuntimeWarning, stacklevel=3)
        return _done(None, f"python (build failed: {why})")
    return _done(module, f"compiled ({module.__file__})")


def _reset() -> None:
    """Forget the decision (tests)."""
    _loaded.clear()
