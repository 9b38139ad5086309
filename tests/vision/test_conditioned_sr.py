import pytest
import torch
import torch.nn.functional as F

from pyg_hyper.vision import ConditionedSR


def _random_kernels(n, s=5):
    k = torch.rand(n, s, s)
    return k / k.sum(dim=(1, 2), keepdim=True)


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
    # Kernels differ, so the generated first layers must differ.
    w, _ = model.first_layer(k)
    assert not torch.allclose(w[0], w[1])
    for b in range(3):
        wb, bb = model.first_layer(k[b:b + 1])
        h = F.relu(F.conv2d(x[b:b + 1], wb[0], bb[0], padding=1))
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
