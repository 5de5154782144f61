"""Train your own ``torch.nn.Module`` with random backpropagation and its family.

    import lchannel.torch as lct
    model = lct.convert(resnet, "rbp", feedback="uniform", seed=0)          # FA
    model = lct.convert(resnet, "srbp", example_input=x[:2], seed=0)        # DFA
    ...ordinary training: loss.backward(); optimizer.step()...
    lct.alignment(model, (x, y), torch.nn.functional.cross_entropy)

:func:`convert` swaps the class of every chosen ``nn.Linear``/``nn.Conv{1,2,3}d`` for a
subclass whose backward goes through the learning channel: RBP (paper 1, eq. 6-8; feedback
alignment), SRBP (paper 2, eq. 11; direct feedback alignment), their adaptive and no-f'
forms, the literature's relatives (sign symmetry uSF/frSF/brSF, Kolen-Pollack, weight
mirror, DRTP: :mod:`lchannel.torch.modes`), lchannel's feedback distributions and signal
transforms.  See
``docs/your-own-model.md`` and :mod:`lchannel.torch.convert`.  For the papers' own
experiments (dense stacks, populations of seeds, the engine's full list of variants),
the explicit engine (:class:`lchannel.Network`) is faster and says more.
"""

from .alignment import alignment
from .convert import ACTIVATIONS, ALGORITHMS, REFUSED, REFUSED_OPTIONS, ModuleChannel, channel_of, convert, set_targets
from .layers import FeedbackConv1d, FeedbackConv2d, FeedbackConv3d, FeedbackLinear

__all__ = ["ACTIVATIONS", "ALGORITHMS", "FeedbackConv1d", "FeedbackConv2d", "FeedbackConv3d", "FeedbackLinear",
           "ModuleChannel", "REFUSED", "REFUSED_OPTIONS", "alignment", "channel_of", "convert", "set_targets"]
