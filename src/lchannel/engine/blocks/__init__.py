"""The block kinds of the forward channel, one file each (paper 1, sections 2 and 4.3).

A weighted block (:class:`Dense`, :class:`Conv2d`) knows four things about itself: its
``forward`` (S, O, aux), its ``adjoint`` (BP's route through Wᵀ), how to draw a random
stand-in of that adjoint (:mod:`.standins`, RBP's route) and its ``weight_update`` from
(I_h, O_{h-1}) (eq. 13).  A weightless block (:class:`MaxPool2d`, :class:`Flatten`) only
routes signals.  :data:`KINDS` names each kind as the architecture grammar spells it
(:mod:`lchannel.engine.architecture`: ``conv64k5-pool3s2-flatten-dense10``), in the
order the grammar lists them; each kind's ``grammar`` (a :class:`~..blockspec.Piece`)
says how its piece is written and what it builds, so a new kind is its file and one
entry here.
"""

from .conv import Conv2d, times_derivative, transfer
from .dense import Dense
from .flatten import Flatten
from .layout import grouped, members
from .pool import MaxPool2d

KINDS = {"conv": Conv2d, "pool": MaxPool2d, "flatten": Flatten, "dense": Dense}

__all__ = ["Conv2d", "Dense", "Flatten", "KINDS", "MaxPool2d", "grouped", "members", "times_derivative", "transfer"]
