"""What every weighted block draws or builds beside its own weights: the random stand-in
for its forward map (RBP's C^h, SRBP's direct maps, drawn member by member so that a
population member equals a single run with its seed), and the torch module of each
transfer function (a block's export to plain ``torch.nn``).  Shared by ``dense.py``,
``conv.py`` and the learning channel's routes, so none of them imports another.
"""

from __future__ import annotations

import torch
from torch import nn

from ..activations import ACTIVATIONS


# The torch module of every transfer function, from its Activation object, and of the
# softmax output (an output activation, not a hidden one).
TORCH_ACTIVATIONS = {**{name: cls.torch_module for name, cls in ACTIVATIONS.items()},
                     "softmax": lambda: nn.Softmax(dim=-1)}


def draw_feedback(feedback, shape: tuple[int, ...], fan_in: int, fan_out: int, generators, chained: bool,
                  dtype, device, sign_like: torch.Tensor | None = None,
                  synapses: int | None = None) -> torch.Tensor:
    """One feedback draw of ``shape`` per member, stacked ``(E, *shape)`` on ``device``.

    Drawing member by member from each member's own generator keeps member e of a
    population equal to a single run with its seed."""
    member = getattr(feedback, "member", None)  # a per-member list (channels.feedback.MemberFeedback)
    if member is not None and len(feedback.members) != len(generators):
        raise ValueError(f"feedback: {len(feedback.members)} per-member distributions for {len(generators)} members")
    mats = [(feedback if member is None else member(e)).draw(
                shape, fan_in, fan_out, g, chained, dtype, None if sign_like is None else sign_like[e], synapses)
            for e, g in enumerate(generators)]
    return torch.stack(mats).to(device)
