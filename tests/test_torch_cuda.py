"""lchannel.torch on a CUDA device: converted models give the CPU's gradients (float64,
so that no TF32 convolution differs), through the compiled nodes where they apply, with
the feedback buffers, state_dict and the channel-dropout generator on the device.

Skipped where torch sees no GPU (every machine this was written on); run it on one with
``pytest tests/test_torch_cuda.py``."""

import copy

import pytest
import torch
from torch import nn

import lchannel.torch as lct

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 30), nn.Tanh(), nn.Linear(30, 30), nn.Tanh(), nn.Linear(30, 5)).double()


def convnet():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2), nn.ReLU(),
                         nn.Flatten(), nn.Linear(6 * 4 * 4, 5)).double()


@pytest.mark.parametrize("make", [mlp, convnet])
@pytest.mark.parametrize("name,kw", [("rbp", {}), ("rbp-nof", {}), ("srbp", {}), ("srbp-nof", {}),
                                     ("arbp", {"adapt_lr": 0.05}), ("asrbp", {"adapt_lr": 0.05}),
                                     ("rbp", {"quantize_bits": 3})])
def test_cuda_gives_the_cpu_updates(make, name, kw):
    g = torch.Generator().manual_seed(1)
    X = torch.randn(8, 20, generator=g) if make is mlp else torch.randn(8, 3, 8, 8, generator=g)
    X, Y = X.double(), torch.arange(8) % 5
    if "srbp" in name:
        kw = {**kw, "example_input": X[:2]}
    cpu = lct.convert(make(), name, seed=3, **kw)
    gpu = copy.deepcopy(cpu).cuda()
    assert all(b.is_cuda for b in gpu.buffers())
    opts = [torch.optim.SGD(m.parameters(), lr=0.1) for m in (cpu, gpu)]
    for _ in range(3):
        for model, opt, dev in ((cpu, opts[0], "cpu"), (gpu, opts[1], "cuda")):
            opt.zero_grad()
            out = model(X.to(dev))
            nn.functional.cross_entropy(out, Y.to(dev)).backward()
            opt.step()
        for p, q in zip(cpu.parameters(), gpu.parameters()):
            if p.grad is None:  # e.g. batch norm above an srbp-nof point: no signal reaches it
                assert q.grad is None
            else:
                torch.testing.assert_close(q.grad.cpu(), p.grad, rtol=1e-9, atol=1e-12)
    for a, b in zip(cpu.buffers(), gpu.buffers()):
        torch.testing.assert_close(b.cpu(), a, rtol=1e-9, atol=1e-12)
    if lct.channel_of(gpu).native is not None:
        assert "Backward" in gpu(X.cuda()).grad_fn.name()


def test_state_dict_moves_between_devices_and_dropout_draws_on_the_device():
    X = torch.randn(8, 20, dtype=torch.float64)
    a = lct.convert(mlp(), "srbp", example_input=X[:2], lc_dropout=0.3).cuda()
    b = lct.convert(mlp(), "srbp", example_input=X[:2], lc_dropout=0.3, seed=9)
    b.load_state_dict({k: v.cpu() for k, v in a.state_dict().items()})
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(v.cpu(), w), k
    twins = [lct.convert(mlp(), "rbp", lc_dropout=0.5, seed=4).cuda() for _ in range(2)]
    grads = []
    for m in twins:
        nn.functional.cross_entropy(m(X.cuda()), (torch.arange(8) % 5).cuda()).backward()
        grads.append([p.grad for p in m.parameters()])
    for p, q in zip(*grads):
        assert torch.equal(p, q)  # the "channel" stream of the seed, on the device
