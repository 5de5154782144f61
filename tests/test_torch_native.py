"""lchannel.torch.native: the compiled SRBP source node gives the Python SkipSource's
gradients bit for bit, is used where it applies (and only there), and LCHANNEL_NATIVE
chooses it, refuses it or requires it."""

import copy
import io
import shutil

import pytest
import torch
from torch import nn

import lchannel.torch as lct
from lchannel.channels import Quantize
from lchannel.torch import native
from lchannel.torch.functions import SkipSource

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
    """With c++ and ninja on PATH (as on CI) the default mode builds the node."""
    needs_compiled()
    assert lct.channel_of(lct.convert(mlp(), "srbp", example_input=torch.randn(2, 20))).native is not None


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
    op = native.skip_source_op()
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
                                     ("rbp", {})])
def test_python_function_where_the_node_does_not_apply(name, kw):
    """ASRBP (the maps learn) and signal transforms need the Python function; RBP has no
    source at all."""
    X = torch.randn(8, 20)
    model = lct.convert(mlp(), name, **({"example_input": X} if "srbp" in name else {}), **kw)
    assert lct.channel_of(model).native is None
    if "srbp" in name:
        assert isinstance(model(X).grad_fn, SkipSource._backward_cls)


def test_off_and_bad_values(fresh_native):
    fresh_native.setenv("LCHANNEL_NATIVE", "off")
    model = lct.convert(mlp(), "srbp", example_input=torch.randn(2, 20))
    assert lct.channel_of(model).native is None and native.status() == "python (LCHANNEL_NATIVE=off)"
    native._reset()
    fresh_native.setenv("LCHANNEL_NATIVE", "fast")
    with pytest.raises(ValueError, match=r"LCHANNEL_NATIVE must be one of \['auto', 'off', 'require'\], got 'fast'"):
        lct.convert(mlp(), "srbp", example_input=torch.randn(2, 20))


def test_without_a_compiler(fresh_native):
    """auto falls back to the Python function and says why; require refuses."""
    fresh_native.setenv("PATH", "")
    fresh_native.setenv("LCHANNEL_NATIVE", "auto")
    model = lct.convert(mlp(), "srbp", example_input=torch.randn(2, 20))
    assert lct.channel_of(model).native is None
    assert native.status() == "python (c++ and ninja not found on PATH)"
    native._reset()
    fresh_native.setenv("LCHANNEL_NATIVE", "require")
    with pytest.raises(RuntimeError, match="LCHANNEL_NATIVE=require: cannot build the compiled SRBP node: c[+][+] and"):
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
