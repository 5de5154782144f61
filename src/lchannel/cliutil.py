"""Command-line helpers shared by ``lchannel run``, ``report`` and ``theory`` (issue 9).

* :func:`writable_dir` and :func:`writable_file` check an output path *before* any work
  starts, so a typo costs a message instead of an epoch of training or an integration:
  the path must not be empty, a folder must not be a file (and a file not a folder), and
  the nearest existing folder must accept a new file (tried for real with a temporary
  file: permission bits say nothing for root, read-only mounts or quotas).  Nothing is
  created: missing folders are made later by whoever writes there.
* :class:`DefaultsHelpFormatter` shows every option's default in ``--help``.

Dependency-free (``lchannel theory`` does not import torch).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path


class PathError(ValueError):
    """An output path that cannot be written; the message names the option."""


def writable_dir(path: str | os.PathLike, option: str) -> Path:
    """``path`` as a folder this process can create (if missing) and write files in."""
    text = os.fspath(path)
    if not text.strip():
        raise PathError(f"{option}: an empty path is not accepted; expected a folder")
    p = Path(text)
    if p.exists() and not p.is_dir():
        raise PathError(f"{option}: {text!r} is a file; expected a folder")
    _check_ancestor(p, option, text)
    return p


def writable_file(path: str | os.PathLike, option: str, what: str = "a file") -> Path:
    """``path`` as a file this process can create or rewrite."""
    text = os.fspath(path)
    if not text.strip():
        raise PathError(f"{option}: an empty path is not accepted; expected {what}")
    p = Path(text)
    if p.is_dir():
        raise PathError(f"{option}: {text!r} is a folder; expected {what}")
    _check_ancestor(p.parent, option, text)
    if p.exists():
        try:
            with open(p, "r+b"):
                pass
        except OSError as err:
            raise PathError(f"{option}: {text!r} is not writable ({err.strerror or err})") from None
    return p


def _check_ancestor(folder: Path, option: str, target: str) -> None:
    """The nearest existing folder at or above ``folder`` accepts a new file."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise PathError(f"{option}: {target!r} cannot be created: {str(probe)!r} is a file, not a folder")
    try:
        fd, tmp = tempfile.mkstemp(dir=probe, prefix=".lchannel-write-test-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as err:
        raise PathError(f"{option}: {target!r} is not writable: cannot create a file in {str(probe)!r} "
                        f"({err.strerror or err})") from None


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``(default: X)`` after every option that has a default value; flags (default
    False), repeatable options (default: an empty list) and options without a default
    (None, explained in their help) are left as written."""

    def _get_help_string(self, action):
        if not has_default(action):
            return action.help
        return super()._get_help_string(action)


def has_default(action: argparse.Action) -> bool:
    """Whether ``--help`` should show the action's default."""
    d = action.default
    return not (d is None or d is False or d == [] or d == argparse.SUPPRESS)
