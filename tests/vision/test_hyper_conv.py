import pytest
import torch
import torch.nn.functional as F

from pyg_hyper.vision import HyperConv2d, kernel_coordinates


def _num_params(module):
    return sum(p.numel() for p in module.parameters())


def test_kernel_coordinates():
    c = kernel_coordinates((3, 5))
    assert c.shape == (15, 2)
    assert c[0].tolist() == [-1.0, -2.0]
    assert c[7].tolist() == [0.0, 0.0]  # the centre tap
    assert c[-1].tolist() == [1.0, 2.0]


@pytest.mark.parametrize('kernel_size', [1, 3, 7, 15])
def test_parameter_count_is_independent_of_kernel_size(kernel_size):
    layer = HyperConv2d(8, 16, kernel_size, bias=False)
    assert _num_params(layer) == 388 + 5 * 8 * 16
    assert HyperConv2d.num_hyper_parameters(8, 16) == 388 + 5 * 8 * 16
    assert _num_params(HyperConv2d(8, 16, kernel_size)) == 388 + 5 * 128 + 16


def test_kernel_is_the_hypernetwork_at_each_tap():
    torch.manual_seed(0)
    layer = HyperConv2d(2, 3, (3, 5), hidden_channels=4, latent_channels=2)
    w = layer.weight
    assert w.shape == (3, 2, 3, 5)
    for u in range(3):
        for v in range(5):
            tap = layer.hypernet(torch.tensor([[u - 1.0, v - 2.0]]))
            assert torch.allclose(w[:, :, u, v].reshape(-1), tap[0],
                                  atol=1e-6)


@pytest.mark.parametrize('mode', ['zeros', 'reflect'])
def test_equals_conv2d_with_generated_kernel(mode):
    torch.manual_seed(0)
    layer = HyperConv2d(3, 4, 5, padding_mode=mode)
    x = torch.randn(2, 3, 9, 9)
    out = layer(x)
    xp = F.pad(x, (2, ) * 4, mode='constant' if mode == 'zeros' else mode)
    ref = F.conv2d(xp, layer.weight, layer.bias)
    assert out.shape == (2, 4, 9, 9)
    assert torch.allclose(out, ref, atol=1e-5)


@pytest.mark.parametrize('mode', ['reflect', 'replicate', 'circular'])
def test_rectangular_kernel_pads_height_and_width_by_their_own_halves(mode):
    # F.pad takes (left, right, top, bottom): a 3 x 5 kernel needs 2 columns
    # and 1 row on each side, which a square kernel cannot tell apart.
    torch.manual_seed(0)
    layer = HyperConv2d(2, 3, (3, 5), padding_mode=mode)
    x = torch.randn(2, 2, 6, 8)
    out = layer(x)
    ref = F.conv2d(F.pad(x, (2, 2, 1, 1), mode=mode), layer.weight,
                   layer.bias)
    assert out.shape == (2, 3, 6, 8)
    assert torch.allclose(out, ref, atol=1e-5)


@pytest.mark.parametrize('kernel_size', [1, (1, 3), 3, 9])
def test_initial_kernel_scale_is_he(kernel_size):
    torch.manual_seed(0)
    layer = HyperConv2d(32, 32, kernel_size)
    kh, kw = layer.kernel_size
    w = layer.weight.detach()
    expected = (2.0 / (32 * kh * kw))**0.5
    # Several taps: the output layer is rescaled to the exact He standard
    # deviation. One tap, (0, 0), zeroes every hidden layer, so the kernel
    # is the output bias, drawn at that scale: 1,024 samples of it.
    rel = 0.1 if kh * kw == 1 else 1e-3
    assert float(w.std()) == pytest.approx(expected, rel=rel)
    assert abs(float(w.mean())) < 0.2 * expected


def test_gradcheck():
    torch.manual_seed(0)
    layer = HyperConv2d(2, 2, 3, hidden_channels=3, latent_channels=2)
    layer = layer.double()
    x = torch.randn(1, 2, 4, 4, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x, ), fast_mode=True)


def test_bad_inputs():
    with pytest.raises(ValueError, match='odd'):
        HyperConv2d(2, 2, 4)
    with pytest.raises(ValueError, match='padding_mode'):
        HyperConv2d(2, 2, 3, padding_mode='mirror')
    layer = HyperConv2d(2, 2, 7)
    with pytest.raises(ValueError, match='with 2 channels'):
        layer(torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match='larger than the 5x5'):
        layer(torch.randn(1, 2, 5, 5))
