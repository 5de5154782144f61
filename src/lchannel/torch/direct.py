"""SRBP's direct maps in a module graph: where the output error is received (a probe pass),
one random map C_p per receiving point, and their calibration against BP's gradients
(``scaling="match"``).  The maps are buffers ``skip_feedback`` of the receiving layers.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch
from torch import nn

from ..engine.rng import generator


def per_example(t: torch.Tensor) -> int:
    """Values per example of a batch-first tensor (t[0].numel() without making a view)."""
    return t.numel() // t.shape[0] if t.shape[0] else math.prod(t.shape[1:])


@torch.no_grad()
def probe(model, ch, example_input, source):
    """One forward pass in eval mode with gradients on: where the receiving points are."""
    modes = {m: m.training for m in model.modules()}
    src = dict(model.named_modules())[source or ""]
    seen = {}
    handle = src.register_forward_hook(lambda m, i, o: seen.setdefault("out", o))
    ch.probing = []
    model.eval()
    try:
        with torch.enable_grad():
            args = example_input if isinstance(example_input, tuple) else (example_input,)
            model(*args)
    except Exception as err:
        raise ValueError(f"example_input: the model failed on it ({type(err).__name__}: {err})") from err
    finally:
        handle.remove()
        for m, t in modes.items():
            m.train(t)
        points, ch.probing = ch.probing, None
    out = seen.get("out")
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"source: the error's source must return a tensor, got {type(out).__name__}; "
                         f"name a submodule that does with convert(..., source='name')")
    return points, out


@contextmanager
def state_kept(model):
    """Run a pass that must not change training: every buffer (batch-norm statistics,
    feedback) is swapped for a copy during the pass and the original put back untouched
    (the pass may run inside another whose backward still needs them), and the random
    state and the modules' train/eval modes are restored."""
    swapped = [(m, k, b) for m in model.modules() for k, b in m._buffers.items() if b is not None]
    for m, k, b in swapped:
        m._buffers[k] = b.clone()
    modes = {m: m.training for m in model.modules()}
    cpu = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        for m, k, b in swapped:
            m._buffers[k] = b
        for m, t in modes.items():
            m.train(t)
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def calibrate(model, ch, args, source) -> None:
    """``scaling="match"`` for the direct forms: scale each C_p so that, on the batch
    ``args`` (the first learning pass's), the signal it delivers for a random output
    gradient r (r C_pᵀ) has the norm BP's gradient at the same point has (r through the
    model's own Jacobian), in the model's mode.  Then the direct signals are as large as
    BP's at every depth, whatever the layers in between do (batch norm, residual
    additions).  Nothing of the pass remains (:func:`_state_kept`)."""
    src = dict(model.named_modules())[source or ""]
    seen = {}
    handle = src.register_forward_hook(lambda m, i, o: seen.setdefault("out", o))
    with state_kept(model):
        ch.measuring_bp, ch.probing = True, []  # the full BP graph; every point recorded
        try:
            with torch.enable_grad():
                model(*args)
        finally:
            handle.remove()
            points, ch.probing, ch.measuring_bp = ch.probing, None, False
        out = seen["out"]
        pairs = [(layer, t) for layer, t in points if "skip_feedback" in layer._buffers and t.requires_grad]
        if not pairs:
            return
        r = torch.randn(out.shape, generator=generator(ch.seed, "calibrate"), dtype=out.dtype).to(out.device)
        grads = torch.autograd.grad(out, [t for _, t in pairs], r, allow_unused=True)
    r2 = r.reshape(r.shape[0], -1)
    with torch.no_grad():
        for (layer, _), gp in zip(pairs, grads):
            C = layer.skip_feedback  # the original buffer again
            if gp is None:
                continue
            sent, wanted = (r2 @ C.t()).norm(), gp.norm()
            # tensor ops only (no host sync; meta tensors have no values)
            C.mul_(torch.where((sent > 0) & (wanted > 0), wanted / sent.clamp_min(1e-30), torch.ones_like(sent)))


DIRECT_MAPS = ("auto", "dense", "channel", "kernel")


def kernel_map(layer, K: torch.Tensor, shape) -> torch.Tensor:
    """The dense C_p (values at ``layer``'s input × outputs) of a kernel-shaped direct map:
    column o is what the input receives when output o's error is 1 at every output
    position of the layer, sent back through the layer's transposed convolution (its
    stride, padding, padding mode and dilation; groups 1) with the random kernel K of
    shape (outputs, input channels, *kernel).  This is biotorch's DFA for convolutions
    (its ``dfa_backward_hook``: ``conv2d_input`` of the error repeated over the output
    positions): constant over each channel's positions away from the borders, fewer
    kernel taps summed near them.  ``shape`` is the input's (batch, channels, *positions)."""
    n_out = K.shape[0]
    conv = {3: nn.functional.conv1d, 4: nn.functional.conv2d, 5: nn.functional.conv3d}[K.dim()]
    with torch.enable_grad():
        x = torch.zeros((n_out, *shape[1:]), dtype=K.dtype, device=K.device, requires_grad=True)
        z, padding = x, layer.padding
        if layer.padding_mode != "zeros":  # as the layer pads: explicitly, then a valid convolution
            z = nn.functional.pad(x, layer._reversed_padding_repeated_twice, mode=layer.padding_mode)
            padding = 0
        y = conv(z, K, None, layer.stride, padding, layer.dilation)
        # grad_output for example o: 1 on channel o at every position, so x.grad[o] is column o
        e = torch.eye(n_out, dtype=K.dtype, device=K.device).reshape(n_out, n_out, *[1] * (K.dim() - 2))
        (gx,) = torch.autograd.grad(y, x, e.expand_as(y))
    return gx.reshape(n_out, -1).t()


def shared_positions(layer, t: torch.Tensor) -> bool:
    """Whether the point ``t`` of ``layer`` is a conv feature map (batch, channels,
    positions...) whose positions can share a direct map's rows."""
    return isinstance(layer, nn.modules.conv._ConvNd) and t.dim() >= 3


def draw_points(ch, points, out, fb, g, receivers) -> None:
    """SRBP: one random map C_p (values per example at the point × outputs) per chosen layer
    that can receive the error (a point that needs a gradient, is not the output itself or
    the output layer's own output, and is not already some other layer's point), drawn in
    recording order; ``points`` are the ``(layer, tensor)`` of one pass, ``out`` its output.
    With ``ch.direct_maps == "channel"`` a conv layer's point gets one random row per
    channel, repeated over the positions: the signal e·C_pᵀ is then constant over each
    channel's positions, as in biotorch's DFA for convolutions (whose kernel-shaped map
    sums to such a signal away from the borders); with ``"kernel"`` the map is
    biotorch's own (:func:`kernel_map`), its random kernel kept as the buffer
    ``skip_kernel``."""
    calls: dict = {}
    taken: set[int] = set()
    for layer, t in points:
        calls[layer] = calls.get(layer, 0) + 1
    shared = [n for n, m in ch.layers if calls.get(m, 0) > 1]
    if shared:
        raise ValueError(f"srbp: layers {shared} run more than once per forward pass; SRBP needs one receiving "
                         f"point per layer: exclude them")
    wanted = None if receivers is None else {m for n, m in ch.layers if n in receivers}
    n_out = per_example(out)
    if ch.point_at == "output" and points:
        # The last layer to run is the output layer: the true error reaches it, through
        # whatever follows it (e.g. a LogSoftmax module), so it is never a receiver.
        points = points[:-1]
    for layer, t in points:
        if not t.requires_grad or t is out or id(t) in taken or (wanted is not None and layer not in wanted):
            continue
        taken.add(id(t))
        n_in = per_example(t)
        # "dense": one random row per value (the papers'); "channel": one per channel of a
        # conv feature map, shared by its positions; "kernel": biotorch's convolutional DFA.
        conv_point = shared_positions(layer, t)
        if ch.direct_maps == "kernel" and conv_point:
            # K drawn as a conv weight with n_out output channels (Glorot's fans: biotorch's Xavier)
            K_shape = (n_out, t.shape[1], *layer.kernel_size)
            taps = math.prod(layer.kernel_size)
            fb.check(t.shape[1] * taps)
            K = fb.draw(K_shape, t.shape[1] * taps, n_out * taps, g, chained=False, dtype=layer.weight.dtype)
            layer.register_buffer("skip_kernel", K.to(layer.weight.device))
            C = kernel_map(layer, K, t.shape)
        else:
            rows = t.shape[1] if ch.direct_maps == "channel" and conv_point else n_in
            fb.check(rows)
            C = fb.draw((rows, n_out), n_in, n_out, g, chained=False, dtype=layer.weight.dtype)
            if rows != n_in:  # (B, C, *positions) is laid out channel-major: repeat each row per position
                C = C.repeat_interleave(n_in // rows, dim=0)
        if ch.mode.scaling == "fan_in":  # C_p as a layer fed by the n_out outputs: RMS 1/sqrt(3·n_out)
            C.mul_(1.0 / math.sqrt(3.0 * n_out) / C.pow(2).mean().sqrt().clamp_min(1e-30))
        # Stored column-major: the backward product g Cᵀ then reads Cᵀ as a contiguous
        # matrix, which MKL multiplies ~20% faster at these sizes (same values, same shape).
        layer.register_buffer("skip_feedback", C.to(layer.weight.device).t().contiguous().t())
    if not taken:
        raise ValueError("srbp: no chosen layer can receive the output error (no point needing a gradient "
                         "below the output); check layers, exclude and receivers")
