"""The import paths of before issue 28's re-layout, kept working.

Until the re-layout the engine, the run plumbing and the reports were 27 modules side by
side (``lchannel.nets``, ``lchannel.plasticity``, ``lchannel.train``, ``lchannel.plots``,
...).  Code written against them keeps working: ``import lchannel.nets`` or ``from
lchannel.nets import Network`` gives the module's new home itself (the same module
object, so classes and ``isinstance`` agree), found by :class:`MovedModules`, which
``lchannel/__init__.py`` installs.  New code should import from the new paths (README,
"Layout").
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

# old path -> new path (docs/design.md, "Floors")
MOVED = {
    **{f"lchannel.{m}": f"lchannel.engine.{m}" for m in (
        "activations", "architecture", "convnet", "divergence", "init", "iterations", "metrics", "nets",
        "outputs", "plasticity", "quantize", "rng", "train")},
    "lchannel.blocks": "lchannel.engine.blocks",
    "lchannel.convblocks": "lchannel.engine.blocks.conv",
    "lchannel.standins": "lchannel.engine.blocks.standins",
    "lchannel.packing": "lchannel.population.packing",
    **{f"lchannel.{m}": f"lchannel.report.{m}" for m in ("accounting", "alignment", "plots", "plots_p2", "style")},
    **{f"lchannel.{m}": f"lchannel.run.{m}" for m in ("algorithms_cli", "cliutil", "config", "params", "tables")},
    # lchannel.run was the one-run module; it is now the run package, which re-exports it.
}


class MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old path of :data:`MOVED` and answers with the module at its new path."""

    def find_spec(self, name, path=None, target=None):
        return importlib.util.spec_from_loader(name, self) if name in MOVED else None

    def create_module(self, spec):
        return importlib.import_module(MOVED[spec.name])  # the new module itself, not a copy

    def exec_module(self, module):
        pass  # already executed under its new name


def install() -> None:
    """Put :class:`MovedModules` on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, MovedModules) for f in sys.meta_path):
        sys.meta_path.append(MovedModules())
