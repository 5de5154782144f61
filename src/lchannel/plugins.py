"""Plugins: algorithms (and anything else a module registers) from outside the package.

A plugin is one importable module that registers what it adds when imported, e.g.
``lchannel.channels.register(Algorithm("half-rbp", HalfRBP, "RBP at half strength"))``
(``docs/extending.md``).  lchannel imports plugins named in three places:

- the environment variable ``LCHANNEL_PLUGINS`` (comma-separated module names);
- a spec's top-level ``plugins = ["my_module"]`` (imported before the spec is checked, and
  added to ``LCHANNEL_PLUGINS`` so that the sweep's worker processes import them too);
- the entry-point group ``lchannel.plugins`` of installed packages
  (``[project.entry-points."lchannel.plugins"] mine = "my_package.lchannel_plugin"``).

They are imported the first time a name is not found in a registry (so ``import
lchannel`` stays fast), or explicitly with :func:`load`.
"""

from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points

ENV = "LCHANNEL_PLUGINS"
GROUP = "lchannel.plugins"
_loaded: set[str] = set()


def load(modules) -> list[str]:
    """Import plugin modules by dotted name (once each); returns those imported now.  A
    module that cannot be imported is a ValueError naming it, with the import error."""
    new = []
    for name in modules:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"plugins: a plugin is a module name (a non-empty string), got {name!r}")
        name = name.strip()
        if name in _loaded:
            continue
        try:
            importlib.import_module(name)
        except Exception as err:  # an import error of any kind: name the plugin
            raise ValueError(f"plugins: cannot import plugin module {name!r} ({type(err).__name__}: {err})") from err
        _loaded.add(name)
        new.append(name)
    return new


def use(modules) -> list[str]:
    """:func:`load`, and add the modules to ``LCHANNEL_PLUGINS`` so that processes started
    from this one (a sweep's workers) load them too."""
    new = load(modules)
    listed = [m for m in os.environ.get(ENV, "").split(",") if m.strip()]
    os.environ[ENV] = ",".join(listed + [m for m in modules if m not in listed])
    return new


def load_plugins() -> bool:
    """Import the plugins of ``LCHANNEL_PLUGINS`` and of the entry-point group not imported
    yet; True when any was."""
    names = [m for m in os.environ.get(ENV, "").split(",") if m.strip()]
    names += [ep.module for ep in entry_points(group=GROUP)]
    return bool(load([n for n in names if n.strip() not in _loaded]))
