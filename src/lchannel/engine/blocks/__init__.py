"""The block kinds of the forward channel, one file each (paper 1, sections 2 and 4.3).

A weighted block (:class:`Dense`, :class:`Conv2d`) knows four things about itself: its
``forward`` (S, O, aux), its ``adjoint`` (BP's route through Wᵀ), how to draw a random
stand-in of that adjoint (:mod:`.standins`, RBP's route) and its ``weight_update`` from
(I_h, O_{h-1}) (eq. 13).  A weightless block (:class:`MaxPool2d`, :class:`Flatten`) only
routes signals.  :data:`KINDS` names each kind as the architecture grammar spells it
(:mod:`lchannel.engine.architecture`: ``conv64k5-pool3s2-flatten-dense10``), in the
registry the grammar reads (in the order of each kind's ``grammar.rank``).  Each kind's file registers
its class (:func:`~..blockspec.block_kind`) with a ``grammar`` (a
:class:`~..blockspec.Piece`: how its piece is written, what it builds, its weight shape
and fan-in/fan-out) and a ``from_spec`` constructor; every file of this folder is imported
here, so a new kind is one file (docs/extending.md, "A block").
"""

import importlib
import pkgutil

from ..blockspec import KINDS as _REGISTERED
from .conv import Conv2d, times_derivative, transfer
from .dense import Dense
from .flatten import Flatten
from .layout import grouped, members
from .pool import MaxPool2d

for _module in pkgutil.iter_modules(__path__):  # kinds added as files of this folder register themselves
    importlib.import_module(f"{__name__}.{_module.name}")

# kind -> block class: the live registry (a kind registered later, e.g. from a plugin
# module, is in it); lchannel.engine.architecture.pieces() lists them in the grammar's order.
KINDS = _REGISTERED

__all__ = ["Conv2d", "Dense", "Flatten", "KINDS", "MaxPool2d", "grouped", "members", "times_derivative", "transfer"]
