"""Where data files live: ``--data-dir``, else ``$LCHANNEL_DATA_DIR``, else a per-user cache."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "LCHANNEL_DATA_DIR"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lchannel"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data directory in order of precedence: argument, environment, user cache."""
    if data_dir:
        return Path(data_dir).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return default_cache_dir()
