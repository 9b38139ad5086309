import pytest
import torch
import torch.nn.functional as F

from pyg_hyper.vision import ConditionedSR


def _random_kernels(n, s=5):
    k = torch.rand(n, s, s)
    return k / k.sum(dim=(1, 2), keepdim=True)


def _first_layer_by_hand(model, k):
    # The documented code z = s (k - 1/s^2) (then tanh(E z + e) with
    # hyper_channels) and W1 = W1^0 + sum_j z_j A_j, b1 likewise, read off
    # HyperLinear's theta [n1, r + 1, C f1^2 + 1]: the code index j (the
    # shared W1^0, b1^0 last), the flattened [C, f1, f1] filter and then
    # the bias.
    s = model.blur_kernel_size
    n1, c, f1 = model.hidden_channels[0], model.in_channels, \
        model.filter_sizes[0]
    z = s * (k.flatten(1) - 1.0 / s**2)
    if model.encoder is not None:
        z = torch.tanh(z @ model.encoder.weight.t() + model.encoder.bias)
    theta = model.lin1.weight.view(n1, z.size(1) + 1, c * f1 * f1 + 1)
    z1 = torch.cat([z, torch.ones(z.size(0), 1)], dim=1)
    w = torch.einsum('bj,oji->boi', z1, theta)
    return w[..., :-1].reshape(-1, n1, c, f1, f1), w[..., -1]


def test_generator_starts_at_zero():
    torch.manual_seed(0)
    model = ConditionedSR(5, hidden_channels=(8, 4), filter_sizes=(5, 1, 3))
    w, b = model.first_layer(_random_kernels(3))
    assert w.shape == (3, 8, 1, 5, 5) and b.shape == (3, 8)
    # W1(k) = W1^0 + FC(k) with FC = 0 at initialization: every kernel gets
    # the same first layer, and the residual model returns its input.
    assert torch.allclose(w, w[:1].expand_as(w))
    x = torch.rand(3, 1, 10, 10)
    assert torch.allclose(model(x, _random_kernels(3)), x)


@pytest.mark.parametrize('hyper_channels', [None, 6])
def test_equals_per_sample_conv_reference(hyper_channels):
    torch.manual_seed(0)
    model = ConditionedSR(5, in_channels=2, hidden_channels=(8, 4),
                          filter_sizes=(3, 1, 3),
                          hyper_channels=hyper_channels, residual=False)
    for p in model.parameters():  # move away from the zero-initialization
        p.data.normal_(0, 0.3)
    x, k = torch.rand(3, 2, 7, 7), _random_kernels(3)
    out = model(x, k)
    assert out.shape == (3, 2, 7, 7)
    # The generated first layer is the documented affine map of the code.
    w, bias = _first_layer_by_hand(model, k)
    got_w, got_bias = model.first_layer(k)
    assert got_w.shape == (3, 8, 2, 3, 3) and got_bias.shape == (3, 8)
    assert torch.allclose(got_w, w, atol=1e-5)
    assert torch.allclose(got_bias, bias, atol=1e-5)
    # Kernels differ, so the generated first layers must differ.
    assert not torch.allclose(w[0], w[1])
    for b in range(3):
        h = F.relu(F.conv2d(x[b:b + 1], w[b], bias[b], padding=1))
        ref = model.conv3(F.relu(model.conv2(h)))
        assert torch.allclose(out[b:b + 1], ref, atol=1e-5)


def test_first_layer_is_affine_in_the_kernel():
    torch.manual_seed(0)
    model = ConditionedSR(3, hidden_channels=(4, 2), filter_sizes=(3, 1, 1))
    model.lin1.weight.data.normal_()
    k1, k2 = _random_kernels(1, 3), _random_kernels(1, 3)
    w1, w2 = model.first_layer(k1)[0], model.first_layer(k2)[0]
    wm = model.first_layer(0.5 * (k1 + k2))[0]
    assert torch.allclose(wm, 0.5 * (w1 + w2), atol=1e-5)


def test_gradcheck():
    torch.manual_seed(0)
    model = ConditionedSR(3, hidden_channels=(2, 2), filter_sizes=(3, 1, 1),
                          hyper_channels=2).double()
    for p in model.parameters():
        p.data.normal_(0, 0.5)
    x = torch.rand(2, 1, 4, 4, dtype=torch.double, requires_grad=True)
    k = _random_kernels(2, 3).double().requires_grad_()
    assert torch.autograd.gradcheck(model, (x, k), fast_mode=True)


def test_bad_inputs():
    model = ConditionedSR(5, hidden_channels=(4, 2))
    x = torch.rand(2, 1, 16, 16)
    with pytest.raises(ValueError, match='with 1 channels'):
        model(torch.rand(2, 3, 16, 16), _random_kernels(2))
    with pytest.raises(ValueError, match='square blur kernels'):
        model(x, torch.rand(2, 5, 3))
    with pytest.raises(ValueError, match=r'kernel.*shape \[2, 5, 5\]'):
        model(x, _random_kernels(2, 7))
    with pytest.raises(ValueError, match='larger than the 6x6'):
        model(torch.rand(2, 1, 6, 6), _random_kernels(2))
    with pytest.raises(ValueError, match='square'):
        ConditionedSR((5, 3))
    with pytest.raises(ValueError, match='odd'):
        ConditionedSR(5, filter_sizes=(8, 1, 5))
