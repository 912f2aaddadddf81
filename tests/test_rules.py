"""§4: the three ReLU backward rules, by hand-computed oracles and against captum."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from engine.attribution import rules
from engine.attribution.registry import score_gradient
from engine.attribution.saliency import reduce_channels
from engine.models import load_model


def _linear(rows: list[list[float]]) -> nn.Linear:
    weight = torch.tensor(rows, dtype=torch.float32)
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    layer.weight.data.copy_(weight)
    return layer


def two_relu_net(inplace: bool = False) -> nn.Module:
    """x = [1, 2] -> h1 = [3, 1, -1] -> relu -> h2 = [2, -3] -> relu -> S_0 = a2·[1, 2]."""
    return nn.Sequential(
        _linear([[1, 1], [-1, 1], [-1, 0]]), nn.ReLU(inplace=inplace),
        _linear([[1, -1, 0], [-1, 0, 1]]), nn.ReLU(inplace=inplace),
        _linear([[1, 2], [0, 1]]),
    ).eval().requires_grad_(False)


# Worked by hand (R: the signal coming back, X: the rectifier's input):
#   gradient : R(h2) = [1, 2]·1(X>0) = [1, 0];   R(a1) = W2ᵀ[1, 0] = [1, -1, 0];  ·1(h1>0) = [1, -1, 0];  W1ᵀ -> [2, 0]
#   deconvnet: R(h2) = relu([1, 2]) = [1, 2];   R(a1) = W2ᵀ[1, 2] = [-1, -1, 2]; relu = [0, 0, 2];      W1ᵀ -> [-2, 0]
#   guided   : R(h2) = [1, 0];                  R(a1) = [1, -1, 0];  ·1(h1>0)·1(R>0) = [1, 0, 0];       W1ᵀ -> [1, 1]
TWO_RELU_ORACLE = {"gradient": [2.0, 0.0], "deconvnet": [-2.0, 0.0], "guided": [1.0, 1.0]}


@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("rule", rules.RULES)
def test_relu_rules_match_hand_computed_oracle(rule, inplace):
    net = two_relu_net(inplace)
    x = torch.tensor([[1.0, 2.0]])
    grad, score = score_gradient(rules.rule_copy(net, rule), x, 0)
    assert grad[0].tolist() == TWO_RELU_ORACLE[rule]
    assert score.tolist() == [2.0]  # the forward pass is the same for every rule


def relu6_net() -> nn.Module:
    """x = 4 -> h = [4, 8, -4] -> relu6 = [4, 6, 0] -> S_0 = a·[-1, 1, 1]."""
    return nn.Sequential(_linear([[1], [2], [-1]]), nn.ReLU6(), _linear([[-1, 1, 1]])).eval().requires_grad_(False)


# gradient: R·1(0<X<6) = [-1, 0, 0] -> -1;  deconvnet: relu(R) = [0, 1, 1] -> 2 - 1 = 1 (the clamp at 6 is
# ignored with X);  guided: [-1, 0, 0]·1(R>0) = 0.
RELU6_ORACLE = {"gradient": -1.0, "deconvnet": 1.0, "guided": 0.0}


@pytest.mark.parametrize("rule", rules.RULES)
def test_relu6_rules_match_hand_computed_oracle(rule):
    grad, score = score_gradient(rules.rule_copy(relu6_net(), rule), torch.tensor([[4.0]]), 0)
    assert grad.item() == RELU6_ORACLE[rule]
    assert score.item() == 2.0


@pytest.mark.parametrize("net", [two_relu_net(), two_relu_net(inplace=True), relu6_net()])
def test_gradient_rule_equals_plain_autograd_at_the_clamp_edges(net):
    """At exactly 0 and 6 the copy must agree with autograd's relu/relu6 backward too."""
    width = net[0].in_features
    x = torch.tensor([[0.0] * width, [6.0] * width, [-1.0] * width, [3.0] * width, [1.0, 2.0][:width]])
    plain, _ = score_gradient(net, x, 0)
    ruled, _ = score_gradient(rules.rule_copy(net, "gradient"), x, 0)
    assert torch.equal(plain, ruled)


def test_rule_copies_leave_the_shared_model_untouched_and_share_its_weights():
    net = two_relu_net(inplace=True)
    before = [type(m) for m in net.modules()]
    twin = rules.rule_copy(net, "guided")
    assert rules.rule_copy(net, "guided") is twin  # made once, cached
    assert [type(m) for m in net.modules()] == before
    assert not any(m._forward_hooks or m._backward_hooks or m._forward_pre_hooks for m in net.modules())
    assert all(a is b for a, b in zip(net.parameters(), twin.parameters()))
    assert sum(isinstance(m, rules.RuleReLU) for m in twin.modules()) == 2


def test_unknown_rule_and_model_without_rectifiers_are_rejected():
    with pytest.raises(ValueError, match="Unknown backward rule"):
        rules.rule_copy(two_relu_net(), "lrp")
    with pytest.raises(ValueError, match="no nn.ReLU"):
        rules.rule_copy(nn.Sequential(nn.Linear(2, 2), nn.Tanh()), "deconvnet")


@pytest.fixture(scope="module")
def embedded():
    return load_model()


@pytest.mark.slow
def test_gradient_rule_equals_autograd_on_the_embedded_relu6_model(embedded):
    batch = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    plain, plain_scores = score_gradient(embedded.module, batch, 285)
    ruled, scores = rules.rule_gradient(embedded, batch, 285, rule="gradient")
    assert torch.equal(plain, ruled) and torch.equal(plain_scores, scores)
    deconv, _ = rules.rule_gradient(embedded, batch, 285, rule="deconvnet")
    assert not torch.allclose(deconv, plain)


@pytest.mark.slow
def test_channel_reconstruction_peaks_where_the_unit_looks(embedded):
    layer = [item for item in rules.feature_layers(embedded) if item.kind == "ReLU6"][2]
    batch = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    results = {rule: rules.reconstruct_channel(embedded, batch, layer=layer.name, channel=1, rule=rule) for rule in rules.RULES}
    assert len({r.position_hw for r in results.values()}) == 1  # the forward pass picks the same unit
    for result in results.values():
        assert result.attribution_chw.shape == (3, 224, 224) and np.abs(result.attribution_chw).max() > 0
        assert rules.attribution_to_rgb(result.attribution_chw).dtype == np.uint8
    with pytest.raises(ValueError, match="out of range"):
        rules.reconstruct_channel(embedded, batch, layer=layer.name, channel=layer.channels, rule="guided")
    assert rules.last_conv_layer(embedded) == "bn2.act"


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_rules_equal_captum_on_random_vgg16():
    """captum's Saliency (abs), Deconvolution and GuidedBackprop, reduced by max over channels."""
    from captum.attr import Deconvolution, GuidedBackprop, Saliency

    vgg = load_model("torchvision:vgg16", "random", device="cpu")
    peer = copy.deepcopy(vgg.module)  # captum hooks its own copy; ours stays hook-free
    for module in peer.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = False  # captum's full backward hooks reject in-place outputs
    batch = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    target = int(vgg.module(batch).argmax())
    peers = {"gradient": Saliency(peer), "deconvnet": Deconvolution(peer), "guided": GuidedBackprop(peer)}
    for rule, method in peers.items():
        ours = reduce_channels(rules.rule_gradient(vgg, batch, target, rule=rule)[0], "max-abs")
        theirs = method.attribute(batch.clone(), target=target).abs().amax(1)
        assert torch.allclose(ours, theirs, rtol=1e-4, atol=1e-6 * float(theirs.abs().max())), rule
