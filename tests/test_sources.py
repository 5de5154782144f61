"""Feedback sources as composable pieces: each refuses what it cannot be combined with."""

import inspect

import pytest

from lchannel.channels import FeedbackInit, RandomBackprop, RandomFeedback, SkippedRandomBackprop, build_channel
from lchannel.channels.compose import compose
from lchannel.channels.adaptive import Adaptive
from lchannel.channels.sources import Averaged, Fixed, PerSynapseFeedback, Resampled


def test_options_compose_into_a_chain_of_pieces():
    src = compose(feedback="sign", resample="zero_mean", feedback_samples=3)
    assert [type(p) for p in src.pieces()] == [Averaged, Resampled, Fixed]
    assert src.feedback == FeedbackInit(distribution="sign") and src.K == 3
    ch = build_channel("asrbp")
    assert [type(p) for p in ch.source.pieces()] == [Adaptive, Fixed]
    assert ch.adaptive and ch.adapt_rate == 1.0 and ch.resample is None and ch.feedback_samples == 1
    assert [type(p) for p in build_channel("rbp", per_synapse=True).source.pieces()] == [PerSynapseFeedback, Fixed]


def test_each_piece_refuses_by_itself():
    with pytest.raises(ValueError, match="adaptive feedback cannot be combined"):
        Adaptive(Resampled(Fixed(FeedbackInit()), "zero_mean"))
    with pytest.raises(ValueError, match="per_synapse feedback cannot be combined with resample"):
        PerSynapseFeedback(Averaged(Fixed(FeedbackInit()), 2))
    with pytest.raises(ValueError, match="zero-mean"):
        Resampled(Fixed(FeedbackInit(distribution="sparse", n=2)), "zero_mean")
    with pytest.raises(ValueError, match="feedback_samples must be an integer >= 1"):
        Averaged(Fixed(FeedbackInit()), 0)
    with pytest.raises(ValueError, match="adapt_rate must be a number >= 0"):
        Adaptive(Fixed(FeedbackInit()), -1.0)


def test_sign_concordant_resampling_makes_the_root_draw_congruent():
    src = Resampled(Fixed(FeedbackInit()), "sign_concordant")
    assert src.feedback.congruent and src.find(Fixed).feedback.congruent


def test_fixed_topology_channels_forward_options_and_list_what_they_accept():
    accepted = [n for n in inspect.signature(RandomBackprop.__init__).parameters if n != "self"]
    assert "topology" not in accepted and "skip_layers" not in accepted
    assert set(accepted) == set(inspect.signature(RandomFeedback.__init__).parameters) - {"self", "topology",
                                                                                          "skip_layers"}
    assert SkippedRandomBackprop(adaptive=True, adapt_rate=0.5).adapt_rate == 0.5
    with pytest.raises(ValueError, match=r"does not accept the option\(s\) \['topology'\]; accepted: \["):
        RandomBackprop(topology="skip")
    with pytest.raises(ValueError, match=r"does not accept the option\(s\) \['colour'\]; accepted: .*'feedback'"):
        build_channel("srbp", colour="red")
