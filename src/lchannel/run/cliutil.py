"""Command-line helpers shared by ``lchannel run``, ``report`` and ``theory`` (issue 9).

* :func:`writable_dir` and :func:`writable_file` check an output path *before* any work
  starts, so a typo costs a message instead of an epoch of training or an integration:
  the path must not be empty, a folder must not be a file (and a file not a folder), and
  the nearest existing folder must accept a new file (tried for real with a temporary
  file: permission bits say nothing for root, read-only mounts or quotas).  Nothing is
  created: missing folders are made later by whoever writes there.
* :class:`DefaultsHelpFormatter` shows every option's default in ``--help``.
* value types (:func:`int_list`, :func:`finite_float`, :func:`key_value`) raise
  ``argparse.ArgumentTypeError`` with the expected form, so a bad value exits with status
  2 and a message naming the option.

Dependency-free (``lchannel theory`` does not import torch).
"""

from __future__ import annotations

import argparse
import json
import math
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


def int_list(text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``; empty items (``"784,,10"``) and an empty list are refused."""
    parts = [p.strip() for p in text.split(",")]
    try:
        vals = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 0,1,2, got {text!r}") from None
    return vals


def int_list_or_empty(text: str) -> list[int]:
    """Like :func:`int_list`, but ``""`` is the empty list (e.g. ``--frozen ""``: no layer)."""
    return [] if not text.strip() else int_list(text)


def finite_float(text: str) -> float:
    """A float that is neither inf nor nan."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def key_value(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` with VALUE read as JSON when it parses (else kept as text)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    if not k.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE with a non-empty KEY, got {text!r}")
    try:
        return k.strip(), json.loads(v)
    except json.JSONDecodeError:
        return k.strip(), v
