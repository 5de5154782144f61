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


class DataError(RuntimeError):
    """A data file is missing, corrupt or unreadable, or the data directory is."""


def data_root(data_dir: str | os.PathLike | None, holds: str) -> Path:
    """:func:`resolve_data_dir`, refused when the user named a folder (``data_dir`` or
    ``$LCHANNEL_DATA_DIR``) that does not exist: a typo must neither create an empty
    folder nor send a download there.  ``holds`` says what the folder should contain."""
    root = resolve_data_dir(data_dir)
    if not root.is_dir() and (data_dir or os.environ.get(ENV_VAR)):
        raise DataError(f"data directory {root} does not exist (from {'--data-dir' if data_dir else '$' + ENV_VAR}); "
                        f"point it at the folder that holds {holds}, or leave both unset to use "
                        f"{default_cache_dir()}")
    return root
