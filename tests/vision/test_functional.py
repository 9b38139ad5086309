import pytest
import torch
import torch.nn.functional as F

from pyg_hyper.vision.functional import (
    batched_conv2d,
    depthwise_batched_conv2d,
)


@pytest.mark.parametrize('groups', [1, 2])
def test_batched_conv2d_matches_per_sample_conv(groups):
    torch.manual_seed(0)
    x = torch.randn(3, 4, 7, 6)
    weight = torch.randn(3, 6, 4 // groups, 3, 3)
    bias = torch.randn(3, 6)
    out = batched_conv2d(x, weight, bias, padding=1, groups=groups)
    assert out.shape == (3, 6, 7, 6)
    for b in range(3):
        ref = F.conv2d(x[b:b + 1], weight[b], bias[b], padding=1,
                       groups=groups)
        assert torch.allclose(out[b:b + 1], ref, atol=1e-5)


def test_depthwise_batched_conv2d_same_kernel_per_channel():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8)
    kernel = torch.randn(2, 3, 5)
    out = depthwise_batched_conv2d(x, kernel, padding=(1, 2))
    for b in range(2):
        for c in range(3):
            ref = F.conv2d(x[b, c][None, None], kernel[b][None, None],
                           padding=(1, 2))
            assert torch.allclose(out[b, c], ref[0, 0], atol=1e-5)


def test_batched_conv2d_shape_errors_name_the_argument():
    # Folded into one grouped conv, these used to fail with a torch groups
    # error about the folded shapes ("Given groups=2, weight of size ...").
    x = torch.randn(2, 4, 6, 6)
    with pytest.raises(ValueError, match=r"'batched_conv2d' expected 'weight' "
                       r"of shape \[B, C_out, C_in // groups, k_h, k_w\] = "
                       r"\[2, C_out, 4, k_h, k_w\].*"
                       r"\(got \[3, 5, 4, 3, 3\]\)"):
        batched_conv2d(x, torch.randn(3, 5, 4, 3, 3))
    with pytest.raises(ValueError, match=r"'weight' of shape .* = "
                       r"\[2, C_out, 2, k_h, k_w\]"):
        batched_conv2d(x, torch.randn(2, 6, 4, 3, 3), groups=2)
    with pytest.raises(ValueError, match=r"'weight' .*C_out divisible by "
                       r"groups \(2\) \(got \[2, 5, 2, 3, 3\]\)"):
        batched_conv2d(x, torch.randn(2, 5, 2, 3, 3), groups=2)
    with pytest.raises(ValueError, match=r"'batched_conv2d' expected 'bias' "
                       r"of shape \[B, C_out\] = \[2, 5\] \(got \[5\]\)"):
        batched_conv2d(x, torch.randn(2, 5, 4, 3, 3), torch.randn(5))
    with pytest.raises(ValueError, match=r"the 4 channels of 'x' to be "
                       r"divisible by groups \(3\)"):
        batched_conv2d(x, torch.randn(2, 3, 1, 3, 3), groups=3)
    with pytest.raises(ValueError, match=r"'depthwise_batched_conv2d' "
                       r"expected 'kernel' of shape \[B, k_h, k_w\] = "
                       r"\[2, k_h, k_w\] \(got \[3, 3, 3\]\)"):
        depthwise_batched_conv2d(x, torch.randn(3, 3, 3))


def test_batched_conv2d_gradcheck():
    torch.manual_seed(0)
    x = torch.randn(2, 2, 4, 4, dtype=torch.double, requires_grad=True)
    w = torch.randn(2, 3, 2, 3, 3, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, w: batched_conv2d(x, w, padding=1), (x, w), fast_mode=True)


def test_dynamic_layers_trace_without_graph_breaks():
    # Input checks are shape-only, so torch.compile sees one graph. One test
    # for several layers keeps the dynamo start-up cost paid once.
    from pyg_hyper.vision import (
        DynamicConv2d,
        DynamicLocalFilter2d,
        HyperConv2d,
        HyperPatchInvertedResidual,
    )
    block = HyperPatchInvertedResidual(4, 4, 3)
    cases = [
        (block, (torch.randn(1, 4, 8, 8),
                 torch.randn(1, block.num_weights, 2, 2))),
        (DynamicLocalFilter2d(3), (torch.randn(1, 1, 8, 8),
                                   torch.randn(1, 9, 8, 8))),
        (DynamicConv2d(2, 3, hidden_channels=2), (torch.randn(1, 2, 8, 8), )),
        (HyperConv2d(2, 2, 3), (torch.randn(1, 2, 8, 8), )),
    ]
    for module, args in cases:
        explain = torch._dynamo.explain(module)(*args)
        assert explain.graph_break_count == 0, module


def _hyperseg():
    from pyg_hyper.vision import HyperSeg
    from tests.vision.test_hyperseg import _Backbone
    return HyperSeg(_Backbone(), [8, 16], in_channels=3, num_classes=4,
                    level_channels=[8, 8], weight_groups=2)


def _generated_layer_cases():
    from pyg_hyper.vision import (
        ConditionedSR,
        DynamicFilterNetwork,
        HyperLSTM,
        StaticHyperConv2d,
    )
    kernels = torch.rand(2, 5, 5)
    return {
        'StaticHyperConv2d': (lambda: StaticHyperConv2d(4, 4, 3, z_dim=2),
                              (torch.randn(1, 4, 6, 6), )),
        'HyperLSTM': (lambda: HyperLSTM(3, 4, hyper_hidden_size=5,
                                        hyper_embedding_size=2),
                      (torch.randn(4, 2, 3), )),
        'ConditionedSR': (lambda: ConditionedSR(5, hidden_channels=(4, 2)),
                          (torch.rand(2, 1, 10, 10),
                           kernels / kernels.sum((1, 2), keepdim=True))),
        'DynamicFilterNetwork-local': (
            lambda: DynamicFilterNetwork(2, kernel_size=3, hidden_channels=4,
                                         local=True),
            (torch.rand(1, 2, 8, 8), )),
        'DynamicFilterNetwork-global': (
            lambda: DynamicFilterNetwork(2, kernel_size=3, hidden_channels=4,
                                         local=False),
            (torch.rand(1, 2, 8, 8), )),
        'HyperSeg': (_hyperseg, (torch.randn(1, 3, 16, 16), )),
    }


@pytest.mark.parametrize('name', list(_generated_layer_cases()))
def test_generated_weight_layers_trace_without_graph_breaks(name):
    # The layers whose weights are generated (a static hypernetwork, a
    # recurrent one, a kernel-conditioned first layer, per-sample and
    # per-pixel filters, patch-wise decoder weights): one graph each.
    torch._dynamo.reset()
    make, args = _generated_layer_cases()[name]
    explain = torch._dynamo.explain(make())(*args)
    assert explain.graph_break_count == 0, explain.break_reasons
