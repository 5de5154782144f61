"""lchannel.torch.native: the compiled autograd nodes give the Python functions' gradients
bit for bit (SRBP's source, RBP's linear and conv layers), are used where they apply (and
only there), and LCHANNEL_NATIVE chooses them, refuses them or requires them."""

import copy
import io
import shutil

import pytest
import torch
from torch import nn

import lchannel.torch as lct
from lchannel.channels import Quantize
from lchannel.torch import native
from lchannel.torch.functions import FeedbackLinearFn, SkipSource

pytestmark = pytest.mark.usefixtures("one_thread")

HAVE_TOOLS = shutil.which("c++") is not None and shutil.which("ninja") is not None


@pytest.fixture
def fresh_native(monkeypatch):
    """A fresh decision for the test, and the process's own restored afterwards."""
    saved = dict(native._loaded)
    native._reset()
    yield monkeypatch
    native._reset()
    native._loaded.update(saved)


def mlp(dtype=torch.float32):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 30), nn.Tanh(), nn.Linear(30, 30), nn.Tanh(),
                         nn.Linear(30, 30), nn.Tanh(), nn.Linear(30, 5)).to(dtype)


def convnet(dtype=torch.float32):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 6, 3, stride=2, padding=1),
                         nn.Tanh(), nn.Flatten(), nn.Linear(6 * 4 * 4, 10), nn.Tanh(), nn.Linear(10, 6),
                         nn.Unflatten(1, (2, 3)))  # a 3-D output: the error is flattened per example


def needs_compiled():
    if not HAVE_TOOLS:
        pytest.skip("no C++ compiler or ninja on PATH: the compiled node cannot be built here")
    assert native.status().startswith("compiled"), native.status()


def test_builds_where_a_compiler_is():
    """With c++ and ninja on PATH (as on CI) the default mode builds the nodes."""
    needs_compiled()
    assert lct.channel_of(lct.convert(mlp(), "srbp", example_input=torch.randn(2, 20))).native is not None
    assert lct.channel_of(lct.convert(mlp(), "rbp")).native is not None


@pytest.mark.parametrize("case", ["mlp", "mlp-nof", "mlp-receivers", "conv", "conv-nof", "mlp-float64"])
def test_compiled_node_equals_python_bit_for_bit(case):
    """Three SGD steps with the compiled node and with the Python function: every weight
    gradient is bit-identical, and each model really used its own node."""
    needs_compiled()
    dtype = torch.float64 if "float64" in case else torch.float32
    make, shape = (convnet, (6, 3, 8, 8)) if case.startswith("conv") else (mlp, (6, 20))
    g = torch.Generator().manual_seed(3)
    X = torch.randn(*shape, generator=g, dtype=dtype)
    name = "srbp-nof" if "nof" in case else "srbp"
    kw = {"receivers": ["2", "4"]} if "receivers" in case else {}
    models = [lct.convert(make(dtype), name, example_input=X[:2], seed=4, **kw) for _ in range(2)]
    lct.channel_of(models[1]).native = None
    opts = [torch.optim.SGD(m.parameters(), lr=0.1) for m in models]
    for step in range(3):
        Y = torch.randint(0, 3, (shape[0],) + ((2,) if case.startswith("conv") else ()), generator=g)
        Y = Y if case.startswith("conv") else Y % 5
        got = []
        for model, opt in zip(models, opts):
            opt.zero_grad()
            out = model(X)
            got.append(out.grad_fn)
            loss = nn.functional.cross_entropy(out.transpose(1, 2) if out.dim() == 3 else out, Y)
            loss.backward()
            opt.step()
        assert got[0].name() == "SkipSourceBackward" and not isinstance(got[0], torch.autograd.function.BackwardCFunction)
        assert isinstance(got[1], SkipSource._backward_cls)
        for p, q in zip(models[0].parameters(), models[1].parameters()):
            assert (p.grad is None and q.grad is None) or torch.equal(p.grad, q.grad), (case, step)
            assert torch.equal(p, q)


def test_compiled_node_alone_and_a_second_backward():
    """The op by itself: y passes g on, each point gets g C_pᵀ in its own shape; without
    retain_graph a second backward is refused with the reason."""
    needs_compiled()
    op = native.nodes().skip_source
    y = torch.randn(4, 2, 3, requires_grad=True)  # 6 outputs per example
    points = [torch.randn(4, 5, requires_grad=True), torch.randn(4, 2, 2, 2, requires_grad=True)]
    feedbacks = [torch.randn(5, 6), torch.randn(8, 6)]
    out = op(y, points, feedbacks)
    assert torch.equal(out, y) and out.data_ptr() != y.data_ptr()
    g = torch.randn(4, 2, 3)
    out.backward(g)
    assert torch.equal(y.grad, g)
    for p, C in zip(points, feedbacks):
        assert torch.equal(p.grad, (g.reshape(4, 6) @ C.t()).view(p.shape))
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        out.backward(g)


def test_compiled_node_survives_retain_graph_and_copies():
    """A retained graph backpropagates twice (the maps stay until released); deepcopy and
    torch.save/load find the compiled node again."""
    needs_compiled()
    X, Y = torch.randn(8, 20), torch.arange(8) % 5
    model = lct.convert(mlp(), "srbp", example_input=X)
    loss = nn.functional.cross_entropy(model(X), Y)
    loss.backward(retain_graph=True)
    once = [p.grad.clone() for p in model.parameters()]
    loss.backward()
    for p, g in zip(model.parameters(), once):
        assert torch.equal(p.grad, 2 * g)
    buf = io.BytesIO()
    torch.save(model, buf)
    buf.seek(0)
    for other in (copy.deepcopy(model), torch.load(buf, weights_only=False)):
        assert lct.channel_of(other).native is lct.channel_of(model).native


@pytest.mark.parametrize("name,kw", [("asrbp", {"adapt_lr": 0.1}), ("srbp", {"transforms": [Quantize(bits=3)]}),
                                     ("arbp", {"adapt_lr": 0.1}), ("rbp", {"quantize_bits": 3}), ("bp", {})])
def test_python_function_where_the_node_does_not_apply(name, kw):
    """Adaptation (the feedback learns) and signal transforms need the Python functions;
    BP is autograd's own."""
    X = torch.randn(8, 20)
    model = lct.convert(mlp(), name, **({"example_input": X} if "srbp" in name else {}), **kw)
    assert lct.channel_of(model).native is None
    expected = {"srbp": SkipSource, "rbp": FeedbackLinearFn}.get(name.removeprefix("a"))
    if expected is not None:
        assert isinstance(model(X).grad_fn, expected._backward_cls)


def rbp_conv_net(dtype):
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2),
        nn.Tanh(), nn.Conv2d(6, 6, 3, padding="same", padding_mode="reflect", bias=False), nn.ReLU(),
        nn.Flatten(), nn.Linear(6 * 4 * 4, 10), nn.Tanh(), nn.Linear(10, 5))


@pytest.mark.parametrize("case", ["mlp", "mlp-nof", "conv", "conv-float64", "conv1d-3d", "unbatched"])
def test_compiled_rbp_layers_equal_python_bit_for_bit(case):
    """RBP's linear and conv nodes (stride, dilation, groups, 'same' reflect padding, no
    bias, Conv1d and Conv3d, an unbatched input, float64): three SGD steps give the
    Python functions' gradients bit for bit, and the feedback never moves."""
    needs_compiled()
    dtype = torch.float64 if "float64" in case else torch.float32
    g = torch.Generator().manual_seed(3)
    if case.startswith("mlp"):
        make, X = mlp, torch.randn(6, 20, generator=g)
    elif case == "conv1d-3d":
        def make(dtype):
            torch.manual_seed(0)
            return nn.Sequential(nn.Conv3d(2, 3, 2, stride=(1, 2, 1)), nn.Tanh(), nn.Flatten(1, 3),
                                 nn.Conv1d(3 * 3 * 2, 4, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 3, 5))
        X = torch.randn(6, 2, 4, 5, 4, generator=g)
    elif case == "unbatched":
        def make(dtype):
            torch.manual_seed(0)
            return nn.Sequential(nn.Conv1d(2, 3, 3), nn.Tanh(), nn.Conv1d(3, 5, 4))  # (C, L) in, (5, 1) out
        X = torch.randn(2, 6, generator=g)
    else:
        make, X = rbp_conv_net, torch.randn(6, 3, 8, 8, generator=g)
    X = X.to(dtype)
    name = "rbp-nof" if "nof" in case else "rbp"
    layers = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
    models = [lct.convert(make(dtype).to(dtype), name, seed=4, layers=layers) for _ in range(2)]
    lct.channel_of(models[1]).native = None
    feedback = [b.clone() for b in models[0].buffers()]
    opts = [torch.optim.SGD(m.parameters(), lr=0.1) for m in models]
    for step in range(3):
        Y = torch.randint(0, 5, (1,) if case == "unbatched" else (X.shape[0],), generator=g)
        for model, opt in zip(models, opts):
            opt.zero_grad()
            out = model(X)
            out = out.t() if case == "unbatched" else out
            nn.functional.cross_entropy(out, Y).backward()
            opt.step()
        for p, q in zip(models[0].parameters(), models[1].parameters()):
            assert torch.equal(p.grad, q.grad), (case, step)
    for a, b in zip(models[0].buffers(), feedback):
        assert torch.equal(a, b)
    # Each model used its own kind of node: the compiled one for every layer that sends a
    # signal, the Python ones for the other model.
    graph = lambda m: nodes_of(m(X))  # noqa: E731
    compiled, python = graph(models[0]), graph(models[1])
    assert {"FeedbackLinearBackward", "FeedbackConvBackward"} & compiled
    assert not {"FeedbackLinearFnBackward", "FeedbackConvFnBackward"} & compiled
    assert not {"FeedbackLinearBackward", "FeedbackConvBackward"} & python


def nodes_of(t):
    seen, todo, names = set(), [t.grad_fn], set()
    while todo:
        n = todo.pop()
        if n is None or n in seen:
            continue
        seen.add(n)
        names.add(n.name())
        todo.extend(f for f, _ in n.next_functions)
    return names


def test_compiled_rbp_layer_checks_its_saved_input():
    """Like autograd's own nodes, RBP's refuses a backward after its input was changed in
    place, and a second backward without retain_graph."""
    needs_compiled()
    ops = native.nodes()
    x = torch.randn(4, 3, requires_grad=True)
    h = x * 1
    W, B = torch.randn(2, 3, requires_grad=True), torch.randn(2, 3)
    out = ops.feedback_linear(h, W, None, B)
    h.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()
    out = ops.feedback_linear(x, W, None, B)
    out.sum().backward()
    assert torch.equal(x.grad, torch.ones(4, 2) @ B) and torch.equal(W.grad, torch.ones(4, 2).t() @ x)
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        out.sum().backward()


def test_off_and_bad_values(fresh_native):
    fresh_native.setenv("LCHANNEL_NATIVE", "off")
    model = lct.convert(mlp(), "srbp", example_input=torch.randn(2, 20))
    assert lct.channel_of(model).native is None and native.status() == "python (LCHANNEL_NATIVE=off)"
    native._reset()
    fresh_native.setenv("LCHANNEL_NATIVE", "fast")
    with pytest.raises(ValueError, match=r"LCHANNEL_NATIVE must be one of \['auto', 'off', 'require'\], got 'fast'"):
        lct.convert(mlp(), "srbp", example_input=torch.randn(2, 20))


def test_without_a_compiler(fresh_native):
    """auto falls back to the Python functions and says why; require refuses."""
    fresh_native.setenv("PATH", "")
    fresh_native.setenv("LCHANNEL_NATIVE", "auto")
    model = lct.convert(mlp(), "srbp", example_input=torch.randn(2, 20))
    assert lct.channel_of(model).native is None
    assert native.status() == "python (c++ and ninja not found on PATH)"
    native._reset()
    fresh_native.setenv("LCHANNEL_NATIVE", "require")
    with pytest.raises(RuntimeError, match="LCHANNEL_NATIVE=require: cannot build the compiled nodes: c[+][+] and"):
        lct.convert(mlp(), "srbp", example_input=torch.randn(2, 20))


def test_compiled_node_follows_the_device():
    """The node calls ATen's mm, which dispatches by device: a model moved to the meta
    device (the stand-in for a GPU here) runs forward and backward through it there."""
    needs_compiled()
    model = copy.deepcopy(lct.convert(mlp(), "srbp", example_input=torch.randn(2, 20))).to("meta")
    assert model[2].skip_feedback.device.type == "meta"
    out = model(torch.randn(8, 20, device="meta"))
    assert out.grad_fn.name() == "SkipSourceBackward" and not isinstance(out.grad_fn, SkipSource._backward_cls)
    nn.functional.cross_entropy(out, torch.zeros(8, dtype=torch.long, device="meta")).backward()
    assert model[0].weight.grad.device.type == "meta" and model[2].weight.grad.shape == (30, 30)



def test_says_so_before_building_and_only_then(fresh_native, tmp_path, capsys):
    """The first convert on a machine builds the nodes (~25 s): one line on stderr says so
    before the build starts; loading a cached build says nothing; a build older than
    nodes.cpp (the source changed: ninja rebuilds) says so again.  The build itself is
    replaced by one that writes an empty library and fails (the Python functions are used)."""
    import os
    from pathlib import Path

    from torch.utils import cpp_extension

    fresh_native.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "ext"))
    fresh_native.setenv("LCHANNEL_NATIVE", "auto")
    (tmp_path / "bin").mkdir()
    for tool in ("c++", "ninja"):  # found on PATH, never run
        (tmp_path / "bin" / tool).write_text("#!/bin/sh\n")
        (tmp_path / "bin" / tool).chmod(0o755)
    fresh_native.setenv("PATH", str(tmp_path / "bin"))
    said = []

    def fake_load(name, sources, **kw):
        said.append(native.BUILD_MESSAGE in capsys.readouterr().err)  # before the build started
        library = Path(cpp_extension._get_build_directory(name, False)) / f"{name}.so"
        library.write_bytes(b"")
        raise OSError("not a real build")

    fresh_native.setattr(cpp_extension, "load", fake_load)
    for _ in range(2):  # a fresh machine, then a new process with the library cached
        native._reset()
        with pytest.warns(RuntimeWarning, match="could not be built"):
            native.nodes()
    assert said == [True, False]
    library = next((tmp_path / "ext").rglob("lchannel_nodes_*.so"))
    old = native.SOURCE.stat().st_mtime - 60
    os.utime(library, (old, old))  # nodes.cpp changed since the build
    native._reset()
    with pytest.warns(RuntimeWarning):
        native.nodes()
    assert said == [True, False, True]
