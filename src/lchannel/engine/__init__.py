"""The engine: the forward channel (networks of blocks), the training loop and plasticity.

- :mod:`.nets` (fully connected populations), :mod:`.convnet` (block networks) and
  :mod:`.blocks` (one file per block kind, each declaring its piece of the grammar),
  :mod:`.architecture` (the grammar), :mod:`.blockspec` (what both know of a piece),
  :mod:`.activations` (one :class:`~.activations.Activation` per transfer function),
  :mod:`.outputs` (output non-linearity + loss pairs), :mod:`.init`, :mod:`.rng`;
- :mod:`.rules` (eq. 13 and paper 2 eq. 13-19), :mod:`.plasticity` (the optimizer),
  :mod:`.quantize` (eq. 19), :mod:`.quantize_levels`, :mod:`.quantize_sum`;
- :mod:`.train` (the loop), :mod:`.history`, :mod:`.epochs`, :mod:`.evaluation`,
  :mod:`.iterations` (training by iterations), :mod:`.divergence_check` and
  :mod:`.divergence` (which members diverged, and why), :mod:`.metrics` (AUC).

Nothing here imports the run plumbing (:mod:`lchannel.run`), the reports
(:mod:`lchannel.report`) or the experiments.
"""

from .convnet import ConvNetwork  # registers the block networks with Network (see nets.Network._kinds)
from .nets import Network, Record

__all__ = ["ConvNetwork", "Network", "Record"]
