import pytest
import torch
import torch.nn.functional as F

from pyg_hyper.vision import (
    DynamicFilterConv2d,
    DynamicFilterNetwork,
    DynamicLocalFilter2d,
    FilterGenerator,
    dynamic_local_filter2d,
)


def _local_reference(x, filters, k):
    # Pixel by pixel: the K x K neighbourhood dotted with that pixel's filter.
    b, c, h, w = x.shape
    xp = F.pad(x, (k // 2, ) * 4)
    out = torch.zeros_like(x)
    for n in range(b):
        for i in range(h):
            for j in range(w):
                window = xp[n, :, i:i + k, j:j + k].reshape(c, k * k)
                out[n, :, i, j] = window @ filters[n, :, i, j]
    return out


def test_local_filter_equals_pixelwise_reference():
    torch.manual_seed(0)
    x, filters = torch.randn(2, 2, 5, 6), torch.randn(2, 9, 5, 6)
    out = dynamic_local_filter2d(x, filters)
    assert torch.allclose(out, _local_reference(x, filters, 3), atol=1e-5)


def test_local_filter_with_constant_filters_is_a_conv():
    torch.manual_seed(0)
    x, kernel = torch.randn(2, 3, 8, 8), torch.randn(2, 25)
    filters = kernel[:, :, None, None].expand(2, 25, 8, 8)
    local = DynamicLocalFilter2d(5, softmax=False)(x, filters)
    conv = DynamicFilterConv2d(5, softmax=False)(x, kernel)
    assert torch.allclose(local, conv, atol=1e-5)
    for b in range(2):
        ref = F.conv2d(x[b].unsqueeze(1), kernel[b].view(1, 1, 5, 5),
                       padding=2)
        assert torch.allclose(conv[b], ref[:, 0], atol=1e-5)


@pytest.mark.parametrize('mode', ['reflect', 'replicate', 'circular'])
def test_padding_modes_match_padded_conv(mode):
    torch.manual_seed(0)
    x, kernel = torch.randn(1, 1, 6, 6), torch.randn(1, 9)
    out = DynamicFilterConv2d(3, softmax=False, padding_mode=mode)(x, kernel)
    ref = F.conv2d(F.pad(x, (1, ) * 4, mode=mode), kernel.view(1, 1, 3, 3))
    assert torch.allclose(out, ref, atol=1e-5)
    filters = kernel[:, :, None, None].expand(1, 9, 6, 6)
    local = DynamicLocalFilter2d(3, softmax=False, padding_mode=mode)
    assert torch.allclose(local(x, filters), ref, atol=1e-5)


def test_softmax_normalization():
    torch.manual_seed(0)
    x = torch.ones(2, 1, 7, 7)
    # A constant image stays constant under normalized filters (away from
    # the zero border), whatever the logits.
    local = DynamicLocalFilter2d(3)(x, 5 * torch.randn(2, 9, 7, 7))
    conv = DynamicFilterConv2d(3)(x, 5 * torch.randn(2, 9))
    for out in (local, conv):
        assert torch.allclose(out[..., 1:-1, 1:-1], torch.ones(2, 1, 5, 5),
                              atol=1e-5)


def test_softmax_layers_equal_the_filter_of_softmaxed_logits():
    # The taps are softmax(logits) over the K*K taps, not logits divided by
    # their sum (which a constant image cannot tell apart); the logits are
    # partly negative, where the two differ most.
    torch.manual_seed(0)
    x = torch.randn(2, 3, 6, 7)
    logits = torch.randn(2, 9, 6, 7)
    assert (logits < 0).any()
    local = DynamicLocalFilter2d(3)(x, logits)
    ref = dynamic_local_filter2d(x, F.softmax(logits, dim=1))
    assert torch.allclose(local, ref, atol=1e-6)
    kernel = torch.randn(2, 9)
    conv = DynamicFilterConv2d(3)(x, kernel)
    taps = F.softmax(kernel, dim=1).view(2, 1, 1, 3, 3)
    for b in range(2):
        ref = F.conv2d(x[b].unsqueeze(1), taps[b], padding=1)[:, 0]
        assert torch.allclose(conv[b], ref, atol=1e-6)


@pytest.mark.parametrize('local', [True, False])
def test_network_filters_the_last_frame(local):
    # Three frames of two channels: the filters come from all frames and are
    # applied to the last one, its frame_channels channels.
    torch.manual_seed(0)
    net = DynamicFilterNetwork(6, kernel_size=5, hidden_channels=8,
                               local=local, frame_channels=2)
    x = torch.rand(2, 6, 8, 8)
    with torch.no_grad():
        out, filters = net(x, return_filters=True)
        assert out.shape == (2, 2, 8, 8)
        assert filters.shape == ((2, 25, 8, 8) if local else (2, 25))
        assert torch.allclose(out, net.filter(x[:, 4:], filters))
        for first in (0, 2):  # not an earlier frame
            other = net.filter(x[:, first:first + 2], filters)
            assert not torch.allclose(out, other, atol=1e-3)
        x2 = x.clone()
        x2[:, :2] = 0  # the first frame still shapes the filters
        assert not torch.allclose(net(x2, return_filters=True)[1], filters)


def test_gradcheck():
    torch.manual_seed(0)
    x = torch.randn(1, 2, 4, 4, dtype=torch.double, requires_grad=True)
    f = torch.randn(1, 9, 4, 4, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(DynamicLocalFilter2d(3), (x, f),
                                    fast_mode=True)
    g = torch.randn(1, 9, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(DynamicFilterConv2d(3), (x, g),
                                    fast_mode=True)
    # The whole network: filter generation, softmax and filtering.
    for local in (True, False):
        net = DynamicFilterNetwork(2, kernel_size=3, hidden_channels=4,
                                   local=local).double()
        assert torch.autograd.gradcheck(net, (x, ), fast_mode=True)


def test_bad_inputs():
    layer = DynamicLocalFilter2d(5)
    with pytest.raises(ValueError, match='larger than the 3x3'):
        layer(torch.rand(1, 1, 3, 3), torch.rand(1, 25, 3, 3))
    with pytest.raises(ValueError, match=r"'filters' of shape \[1, 25, 6, 6\]"):
        layer(torch.rand(1, 1, 6, 6), torch.rand(1, 9, 6, 6))
    with pytest.raises(ValueError, match='larger than the 3x3'):
        DynamicFilterConv2d(5)(torch.rand(1, 1, 3, 3), torch.rand(1, 25))
    with pytest.raises(ValueError, match=r"'filters' of shape \[2, 9\]"):
        DynamicFilterConv2d(3)(torch.rand(2, 1, 6, 6), torch.rand(2, 8))
    with pytest.raises(ValueError, match='odd'):
        DynamicLocalFilter2d(4)
    with pytest.raises(ValueError, match='square'):
        DynamicFilterConv2d((3, 5))
    with pytest.raises(ValueError, match='padding_mode'):
        DynamicFilterConv2d(3, padding_mode='mirror')
    with pytest.raises(ValueError, match='K\\*K taps'):
        dynamic_local_filter2d(torch.rand(1, 1, 6, 6), torch.rand(1, 8, 6, 6))
    with pytest.raises(ValueError, match='with 3 channels'):
        FilterGenerator(3, 5)(torch.rand(1, 2, 8, 8))
    with pytest.raises(ValueError, match='even height'):
        FilterGenerator(1, 3)(torch.rand(1, 1, 7, 8))
    # Per-sample filters pool globally: any size works.
    assert FilterGenerator(1, 3, 4, local=False)(
        torch.rand(1, 1, 7, 7)).shape == (1, 9)


def test_network_needs_whole_frames():
    # in_channels = T * C: 3 channels are not frames of 2.
    with pytest.raises(ValueError, match=r"'DynamicFilterNetwork' needs "
                       r"'in_channels' to be a multiple of 'frame_channels'.*"
                       r"in_channels=3, frame_channels=2"):
        DynamicFilterNetwork(3, frame_channels=2)


def test_functional_filter_checks_its_inputs():
    from pyg_hyper.vision.dynamic_filter import dynamic_local_filter2d
    x, filters = torch.randn(1, 2, 8, 8), torch.randn(1, 9, 8, 8)
    with pytest.raises(ValueError, match=r"'x' of shape \[batch_size, "
                       r"channels, height, width\] \(got \[2, 8, 8\]\)"):
        dynamic_local_filter2d(x[0], filters)
    # float64 filters silently made a float64 result.
    with pytest.raises(ValueError, match="'filters' of the dtype of 'x'"):
        dynamic_local_filter2d(x, filters.double())
    with pytest.raises(ValueError, match="unknown padding_mode 'mirror'"):
        dynamic_local_filter2d(x, filters, 'mirror')
