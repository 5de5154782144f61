"""Route operators: each edge h ← k of a channel sends G^k to layer h by one operator."""

import torch

from lchannel.channels import build_channel
from lchannel.channels.routes import Adjoint, RandomMap
from lchannel.engine.rng import MemberStreams

from helpers import small_net

SIZES = (5, 7, 6, 4)


def test_bp_routes_are_the_blocks_adjoints():
    net = small_net(SIZES)
    ch = build_channel("bp").bind(net)
    G = torch.randn(net.E, 3, SIZES[2])
    r = ch.route(1, 2)
    assert isinstance(r, Adjoint) and r.block is net.block(2)
    torch.testing.assert_close(r.send(G), G @ net.W(2), rtol=0, atol=0)


def test_rbp_draws_each_chained_route_as_the_blocks_random_stand_in():
    net = small_net(SIZES)
    ch = build_channel("rbp").bind(net)
    gens = MemberStreams(net.seeds, "feedback").generators  # the channel's draw order: h ascending
    for h in (1, 2):
        C = net.block(h + 1).random_adjoint(ch.feedback, gens, chained=h + 1 < net.L)
        r = ch.route(h, h + 1)
        assert isinstance(r, RandomMap) and r.C is ch.C[(h, h + 1)]
        assert torch.equal(r.C, C) and C.shape == (net.E, SIZES[h], SIZES[h + 1])


def test_srbp_routes_are_dense_random_maps_from_the_output_and_follow_in_place_changes():
    net = small_net(SIZES)
    ch = build_channel("srbp").bind(net)
    G = torch.randn(net.E, 3, SIZES[-1])
    for h in (1, 2):
        r = ch.route(h, 3)
        assert r.C.shape == (net.E, SIZES[h], SIZES[-1])
        ch.C[(h, 3)].mul_(2)  # adapting or resampling in place changes what the route sends
        torch.testing.assert_close(r.send(G), G @ ch.C[(h, 3)].transpose(1, 2), rtol=0, atol=0)
