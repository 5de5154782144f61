"""Who holds a lease in the results store: a runner named ``host:pid:random`` (the host
with its pid namespace), and whether such an owner is a dead process of this host (its
leases are free at once instead of after they expire)."""

from __future__ import annotations

import os
import socket
import uuid


def _host() -> str:
    """This host as lease owners name it: the host name, plus the pid namespace where
    Linux has one, so that containers sharing a host name (``--network host``) but not
    their process tables never judge each other's pids."""
    try:
        ns = os.readlink("/proc/self/ns/pid").strip("pid:[]")
    except OSError:
        ns = ""
    return f"{socket.gethostname()}/{ns}" if ns else socket.gethostname()


def owner_id() -> str:
    """A lease owner: ``host:pid:random``, unique per runner even where pids repeat."""
    return f"{_host()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def owner_is_dead(owner: str) -> bool:
    """Whether ``owner`` is a runner process of *this* host (and pid namespace) that no
    longer exists: its leases can be taken at once instead of after they expire.  For
    other hosts nothing is known, so their leases wait for their expiry."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != _host() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by someone else
        return False
    return False
