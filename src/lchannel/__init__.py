"""lchannel: the deep learning channel toolkit.

Forward channel (:class:`Network`), learning channels (:mod:`lchannel.channels`),
plasticity (:class:`SGD`), training (:class:`Trainer`) and data, after Baldi, Sadowski &
Lu (2017, 2018).
"""

from .channels import Backprop, RandomBackprop, RandomFeedback, SkippedBackprop, SkippedRandomBackprop, TopLayerOnly
from .channels import build_channel
from .data import load_dataset, load_mnist, make_synthetic
from .engine.nets import Network, Record
from .engine.plasticity import SGD
from .engine.train import History, Trainer

from .compat import install as _install_old_paths

_install_old_paths()  # lchannel.nets, lchannel.train, ... (the paths before the re-layout) keep working

__version__ = "0.1.0"

__all__ = [
    "Backprop", "History", "Network", "RandomBackprop", "RandomFeedback", "Record", "SGD",
    "SkippedBackprop", "SkippedRandomBackprop", "TopLayerOnly", "Trainer", "build_channel",
    "load_dataset", "load_mnist", "make_synthetic",
]
