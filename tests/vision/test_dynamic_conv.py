import pytest
import torch
import torch.nn.functional as F

from pyg_hyper.vision import (
    Crop2d,
    DynamicConv2d,
    FilterNetworkB,
    separable_dynamic_conv2d,
)


def test_separable_equals_per_sample_outer_product_conv():
    torch.manual_seed(0)
    x = torch.randn(3, 2, 9, 8)
    v, h = torch.randn(3, 5), torch.randn(3, 3)
    out = separable_dynamic_conv2d(x, v, h)
    assert out.shape == x.shape
    for b in range(3):
        kernel = torch.outer(v[b], h[b])[None, None].expand(2, 1, 5, 3)
        ref = F.conv2d(x[b:b + 1], kernel, padding=(2, 1), groups=2)
        assert torch.allclose(out[b:b + 1], ref, atol=1e-5)
    # An even kernel has no centre tap and used to grow the image.
    with pytest.raises(ValueError, match=r"odd kernel lengths \(got "
                       r"vertical 4, horizontal 3\)"):
        separable_dynamic_conv2d(x, torch.randn(3, 4), h)


def test_dynamic_conv2d_softmax_kernels_and_reference():
    torch.manual_seed(0)
    layer = DynamicConv2d(in_channels=4, kernel_size=5, hidden_channels=8)
    x = torch.rand(2, 4, 12, 12)
    out, v, h = layer(x, return_kernels=True)
    assert out.shape == (2, 1, 12, 12)
    for k in (v, h):
        assert k.shape == (2, 5)
        assert bool((k >= 0).all())
        assert torch.allclose(k.sum(-1), torch.ones(2))
    for b in range(2):
        kernel = torch.outer(v[b], h[b])[None, None]
        ref = F.conv2d(x[b:b + 1, -1:], kernel, padding=2)
        assert torch.allclose(out[b:b + 1], ref, atol=1e-6)


def test_dynamic_conv2d_is_convex_combination_of_last_frame():
    torch.manual_seed(1)
    layer = DynamicConv2d(3, kernel_size=3, hidden_channels=4, crop=6)
    x = torch.rand(4, 3, 10, 10)
    with torch.no_grad():
        out = layer(x)
    assert out.shape == (4, 1, 6, 6)
    # Away from the zero border, a convex combination of values in [0, 1]
    # stays in [min, max] of the last frame.
    assert float(out.min()) >= float(x[:, -1].min()) - 1e-6
    assert float(out.max()) <= float(x[:, -1].max()) + 1e-6


def test_dynamic_conv2d_delta_kernel_translates():
    # With one-hot logits the layer is an exact integer translation, the
    # mechanism the weather model relies on.
    layer = DynamicConv2d(1, kernel_size=5, hidden_channels=4)
    for module in layer.filter_net.modules():
        if isinstance(module, torch.nn.Linear):
            torch.nn.init.zeros_(module.weight)
            bias = torch.full((10, ), -1e4)
            bias[0] = 0.0  # vertical tap 0: shift down by 2 rows
            bias[5 + 2] = 0.0  # horizontal centre tap: no shift
            module.bias.data.copy_(bias)
    x = torch.zeros(1, 1, 9, 9)
    x[0, 0, 3, 4] = 1.0
    with torch.no_grad():
        out = layer(x)
    assert float(out[0, 0, 5, 4]) == pytest.approx(1.0)
    assert float(out.sum()) == pytest.approx(1.0)


def test_crop2d():
    x = torch.arange(2 * 36.).view(1, 2, 6, 6)
    out = Crop2d((2, 4))(x)
    assert torch.equal(out, x[..., 2:4, 1:5])
    with pytest.raises(ValueError, match='cannot crop a 8x8'):
        Crop2d(8)(x)


def test_filter_network_b_shapes():
    net = FilterNetworkB(2, kernel_size=7, hidden_channels=4)
    v, h = net(torch.randn(3, 2, 16, 16))
    assert v.shape == h.shape == (3, 7)


def test_dynamic_conv2d_gradcheck():
    torch.manual_seed(0)
    layer = DynamicConv2d(2, kernel_size=3, hidden_channels=2,
                          num_layers=1).double()
    x = torch.rand(2, 2, 4, 4, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x, ), fast_mode=True)


def test_dynamic_conv2d_bad_inputs():
    layer = DynamicConv2d(3, kernel_size=5)
    with pytest.raises(ValueError, match='with 3 channels'):
        layer(torch.rand(1, 2, 8, 8))
    with pytest.raises(ValueError, match='larger than the 4x4 input'):
        layer(torch.rand(1, 3, 4, 4))
    with pytest.raises(ValueError, match=r'shape \[batch_size, 3'):
        layer(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match='odd'):
        DynamicConv2d(3, kernel_size=4)
    with pytest.raises(ValueError, match='square'):
        DynamicConv2d(3, kernel_size=(3, 5))
    with pytest.raises(ValueError, match='frame_channels'):
        DynamicConv2d(3, kernel_size=3, frame_channels=4)


def test_dynamic_conv2d_needs_whole_frames():
    # in_channels = T * C: 3 channels are not frames of 2.
    with pytest.raises(ValueError, match=r"'DynamicConv2d' needs "
                       r"'in_channels' to be a multiple of 'frame_channels'.*"
                       r"in_channels=3, frame_channels=2"):
        DynamicConv2d(3, kernel_size=3, frame_channels=2)
    assert DynamicConv2d(4, kernel_size=3, frame_channels=2).frame_channels \
        == 2


def test_filter_network_checks_its_input():
    from pyg_hyper.vision.dynamic_conv import FilterNetworkB
    with pytest.raises(ValueError, match=r"'FilterNetworkB' expected 'x' "
                       r"with 3 channels"):
        FilterNetworkB(3, 5)(torch.randn(1, 2, 8, 8))


@pytest.mark.parametrize('vertical', [torch.randn(3), torch.randn(1, 3)])
def test_separable_kernels_need_one_per_image(vertical):
    from pyg_hyper.vision.dynamic_conv import separable_dynamic_conv2d
    with pytest.raises(ValueError, match=r"expected 'vertical' kernels of "
                       r"shape \[2, K\] \(one per image"):
        separable_dynamic_conv2d(torch.randn(2, 3, 8, 8), vertical,
                                 torch.randn(2, 3))


def test_crop2d_rounds_an_odd_border_down():
    # Y[i, j] = X[i + floor((H - h) / 2), j + floor((W - w) / 2)]: with odd
    # border widths (5 rows, 3 columns) the extra row/column is at the end.
    x = torch.arange(2 * 7 * 6.).view(1, 2, 7, 6)
    out = Crop2d((2, 3))(x)
    assert out.shape == (1, 2, 2, 3)
    assert torch.equal(out, x[..., 2:4, 1:4])
    assert out[0, 0, 0, 0] == 2 * 6 + 1  # X[2, 1]
