import math
import re

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from pyg_hyper.vision import (
    HyperLSTM,
    HyperLSTMCell,
    StaticHyperConv2d,
    StaticHyperNetwork,
    static_hypernetwork_num_parameters,
)


def _num_params(module):
    return sum(p.numel() for p in module.parameters())


def test_mnist_conv2_has_the_papers_4244_parameters():
    # Ha et al., Table 7: conv2 (7x7, 16 -> 16) generated from N_z = 4.
    layer = StaticHyperConv2d(16, 16, 7, z_dim=4, bias=False)
    plain = torch.nn.Conv2d(16, 16, 7, bias=False)
    assert _num_params(layer) == 4244
    assert _num_params(plain) == 12544
    assert static_hypernetwork_num_parameters(4, 1, 4, 16, 16, 7) == 4244
    assert layer.hypernet.num_parameters(1) == 4244


@settings(max_examples=20, deadline=None)
@given(z_dim=st.integers(1, 6), d=st.integers(1, 5), n_in=st.integers(1, 4),
       n_out=st.integers(1, 4), f=st.integers(1, 4), tiles=st.integers(1, 3))
def test_parameter_count_matches_formula(z_dim, d, n_in, n_out, f, tiles):
    hypernet = StaticHyperNetwork(z_dim, n_in, n_out, f, hidden_dim=d)
    layer = StaticHyperConv2d(n_in * tiles, n_out, f, hypernet=hypernet,
                              bias=False)
    assert _num_params(layer) == static_hypernetwork_num_parameters(
        z_dim, tiles, d, n_in, n_out, f)


def test_static_hypernetwork_is_eq2():
    torch.manual_seed(0)
    net = StaticHyperNetwork(3, in_channels=2, out_channels=4, kernel_size=3,
                             hidden_dim=5)
    z = torch.randn(2, 3)
    k = net(z)
    assert k.shape == (2, 4, 2, 3, 3)
    w_i = net.lin_in.weight.view(2, 5, 3)
    b_i = net.lin_in.bias.view(2, 5)
    for j in range(2):
        for i in range(2):
            a = w_i[i] @ z[j] + b_i[i]
            k_i = (net.lin_out.weight @ a + net.lin_out.bias).view(4, 3, 3)
            assert torch.allclose(k[j, :, i], k_i, atol=1e-6)


def test_tiling_eq3_and_conv_reference():
    torch.manual_seed(0)
    hypernet = StaticHyperNetwork(4, in_channels=16, out_channels=16,
                                  kernel_size=3)
    layer = StaticHyperConv2d(32, 64, 3, hypernet=hypernet)
    assert layer.grid == (4, 2) and layer.z.shape == (8, 4)
    w = layer.weight
    assert w.shape == (64, 32, 3, 3)
    basic = hypernet(layer.z)
    # Block (r, c) of the kernel is the basic kernel of embedding r * 2 + c.
    assert torch.allclose(w[16:32, 16:32], basic[1 * 2 + 1])
    assert torch.allclose(w[48:64, 0:16], basic[3 * 2 + 0])
    x = torch.randn(2, 32, 6, 6)
    assert torch.allclose(layer(x), F.conv2d(x, w, layer.bias, padding=1),
                          atol=1e-5)
    # Two layers sharing one hypernetwork only add their embeddings.
    other = StaticHyperConv2d(16, 16, 3, hypernet=hypernet, bias=False)
    shared = torch.nn.ModuleList([layer, other])
    assert _num_params(shared) == _num_params(layer) + 4


def test_static_gradcheck():
    torch.manual_seed(0)
    layer = StaticHyperConv2d(2, 2, 3, z_dim=2).double()
    x = torch.randn(1, 2, 4, 4, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x, ), fast_mode=True)
    z = layer.z.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(layer.hypernet, (z, ), fast_mode=True)


def test_static_bad_inputs():
    with pytest.raises(ValueError, match='multiples'):
        StaticHyperConv2d(24, 16, 3,
                          hypernet=StaticHyperNetwork(4, 16, 16, 3))
    with pytest.raises(ValueError, match='generates 3x3'):
        StaticHyperConv2d(16, 16, 5,
                          hypernet=StaticHyperNetwork(4, 16, 16, 3))
    with pytest.raises(ValueError, match='square'):
        StaticHyperNetwork(4, 16, 16, (3, 5))
    layer = StaticHyperConv2d(4, 4, 7)
    with pytest.raises(ValueError, match='with 4 channels'):
        layer(torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match='larger than the 5x5'):
        layer(torch.randn(1, 4, 5, 5))


def test_static_kernel_must_fit_the_padded_image():
    # An integer padding enlarges the image the kernel slides over; without
    # the check torch failed with "Kernel size can't be greater than actual
    # input size".
    with pytest.raises(ValueError, match=r"'StaticHyperConv2d' has a 5x5 "
                       r"kernel, which is larger than the 3x3 zero-padded "
                       r"input image"):
        StaticHyperConv2d(2, 2, 5, padding=0)(torch.randn(1, 2, 3, 3))
    with pytest.raises(ValueError, match='larger than the 4x4 zero-padded'):
        StaticHyperConv2d(2, 2, 5, padding=1)(torch.randn(1, 2, 2, 2))
    out = StaticHyperConv2d(2, 2, 5, padding=1)(torch.randn(1, 2, 3, 3))
    assert out.shape == (1, 2, 1, 1)


def _identity_hyper(cell):
    # Switch the hypernetwork to the identity: d_h = d_x = 1, b(z_b) = 0.
    with torch.no_grad():
        cell.hyper_to_zhx.weight.zero_()
        cell.hyper_to_zhx.bias.fill_(1.0)
        cell.z_to_dh.fill_(1.0 / cell.hyper_embedding_size)
        cell.z_to_dx.fill_(1.0 / cell.hyper_embedding_size)
        cell.z_to_b.zero_()


def test_hyper_lstm_with_identity_hypernetwork_is_an_lstm():
    torch.manual_seed(0)
    model = HyperLSTM(3, 5, hyper_hidden_size=4, hyper_embedding_size=2)
    cell = model.cell
    _identity_hyper(cell)
    lstm = torch.nn.LSTM(3, 5)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(cell.weight_ih)
        lstm.weight_hh_l0.copy_(cell.weight_hh)
        lstm.bias_ih_l0.copy_(cell.bias)
        lstm.bias_hh_l0.zero_()
    x = torch.randn(6, 2, 3)
    out, (h, c, _, _) = model(x)
    ref, (h_ref, c_ref) = lstm(x)
    assert torch.allclose(out, ref, atol=1e-6)
    assert torch.allclose(h, h_ref[0], atol=1e-6)
    assert torch.allclose(c, c_ref[0], atol=1e-6)


def test_hyper_lstm_scalings_act_per_step():
    torch.manual_seed(0)
    cell = HyperLSTMCell(3, 4, hyper_hidden_size=5, hyper_embedding_size=2)
    with torch.no_grad():
        cell.hyper_to_zhx.weight.normal_()
        cell.z_to_b.normal_()
    x = torch.randn(2, 3)
    h0 = torch.randn(2, 4)
    c0 = torch.randn(2, 4)
    hh0, hc0 = torch.randn(2, 5), torch.randn(2, 5)
    h, (_, c, hyper_h, _) = cell(x, (h0, c0, hh0, hc0))
    # Recompute Eq. 8 by hand from the hyper state.
    d_h, d_x, b = cell.scalings(hyper_h)
    assert not torch.allclose(d_h, torch.ones_like(d_h))
    gates = (d_h * (h0 @ cell.weight_hh.t()) + d_x * (x @ cell.weight_ih.t())
             + b + cell.bias)
    i, f, g, o = gates.chunk(4, -1)
    c_ref = f.sigmoid() * c0 + i.sigmoid() * g.tanh()
    assert torch.allclose(c, c_ref, atol=1e-6)
    # A plain LSTM's (h, c) is not enough: the hyper cell's state too.
    with pytest.raises(ValueError, match=r"'state' to be the 4-tuple \(h, c, "
                       r"hyper_h, hyper_c\).*got tuple of length 2"):
        cell(x, (h0, c0))
    assert torch.allclose(h, o.sigmoid() * c_ref.tanh(), atol=1e-6)


def test_hyper_lstm_scalings_are_eq8_per_gate():
    # Eq. 8 written out gate by gate: d_h = W_hz z_h, d_x = W_xz z_x,
    # W_bz z_b, with z_h, z_x, z_b the hyper state's projections (the
    # first 4 * N_z outputs of hyper_to_zhx are z_h, gate after gate, then
    # z_x). W_hz and W_xz are drawn independently, so that d_x built from
    # W_hz shows; every parameter then gets a gradient.
    torch.manual_seed(0)
    cell = HyperLSTMCell(3, 4, hyper_hidden_size=5, hyper_embedding_size=2)
    with torch.no_grad():
        for p in (cell.hyper_to_zhx.weight, cell.hyper_to_zb.weight,
                  cell.z_to_dh, cell.z_to_dx, cell.z_to_b):
            p.normal_()
    hyper_h = torch.randn(2, 5)
    nz, nh = 2, 4
    zhx = cell.hyper_to_zhx(hyper_h)
    z_b = cell.hyper_to_zb(hyper_h)
    d_h, d_x, bias = [], [], []
    for g in range(4):  # gates i, f, g, o
        z_h = zhx[:, g * nz:(g + 1) * nz]
        z_x = zhx[:, (4 + g) * nz:(5 + g) * nz]
        d_h.append(z_h @ cell.z_to_dh[g])
        d_x.append(z_x @ cell.z_to_dx[g])
        bias.append(z_b[:, g * nz:(g + 1) * nz] @ cell.z_to_b[g])
    got = cell.scalings(hyper_h)
    for ours, ref in zip(got, (d_h, d_x, bias)):
        assert ours.shape == (2, 4 * nh)
        assert torch.allclose(ours, torch.cat(ref, dim=1), atol=1e-6)
    # A non-zero previous state, so that W_h and d_h reach the output.
    state = (torch.randn(2, 4), torch.randn(2, 4), hyper_h, torch.randn(2, 5))
    h, (_, c, _, _) = cell(torch.randn(2, 3), state)
    (h.sum() + c.sum()).backward()
    for name, p in cell.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize('index,name,wrong,expected', [
    (0, 'h', (2, 5), '[batch_size, hidden_size] = [2, 4]'),
    (1, 'c', (3, 4), '[batch_size, hidden_size] = [2, 4]'),
    (2, 'hyper_h', (2, 4), '[batch_size, hyper_hidden_size] = [2, 5]'),
    (3, 'hyper_c', (3, 5), '[batch_size, hyper_hidden_size] = [2, 5]'),
])
def test_hyper_lstm_state_shapes_are_checked(index, name, wrong, expected):
    # A wrong width used to surface inside the hyper LSTMCell as
    # "inconsistent input_size", naming neither the tensor nor the size.
    cell = HyperLSTMCell(3, 4, hyper_hidden_size=5)
    state = [torch.zeros(2, 4), torch.zeros(2, 4), torch.zeros(2, 5),
             torch.zeros(2, 5)]
    state[index] = torch.zeros(wrong)
    msg = (f"'HyperLSTMCell' expected '{name}' of shape {expected} "
           f"(got {list(wrong)})")
    with pytest.raises(ValueError, match=re.escape(msg)):
        cell(torch.randn(2, 3), tuple(state))


def test_hyper_lstm_gradcheck_and_bad_input():
    torch.manual_seed(0)
    model = HyperLSTM(2, 3, hyper_hidden_size=2,
                      hyper_embedding_size=2).double()
    x = torch.randn(3, 2, 2, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: model(x)[0], (x, ), fast_mode=True)
    with pytest.raises(ValueError, match=r'\[seq_len, batch_size, 2\]'):
        model(torch.randn(3, 2, 5))
    with pytest.raises(ValueError, match=r"'x' of shape \[num_rows, 2\]"):
        model.cell(torch.randn(2, 4))


@pytest.mark.parametrize('in_channels', [16, 32, 64])
def test_tiled_kernels_start_at_the_he_scale(in_channels):
    # Tiled (Eq. 3), a conv reads C_in channels while the hypernetwork's
    # init targets the N_in of one tile: the kernels started sqrt(C_in /
    # N_in) times too large, and ten such layers grew activations ~1000x.
    torch.manual_seed(0)
    shared = StaticHyperNetwork(64, 16, 16, 3)
    stds = [StaticHyperConv2d(in_channels, in_channels, 3,
                              hypernet=shared).weight.std().item()
            for _ in range(5)]
    he = math.sqrt(2.0 / (in_channels * 9))
    assert abs(sum(stds) / len(stds) / he - 1) < 0.15, (stds, he)


def test_kernel_size_is_checked_before_building_a_hypernetwork():
    with pytest.raises(ValueError, match="'StaticHyperConv2d' requires a "
                       "square 'kernel_size'"):
        StaticHyperConv2d(2, 2, (3, 5))


def test_empty_sequence_is_named():
    with pytest.raises(ValueError, match=r"with seq_len >= 1 \(got "
                       r"\[0, 2, 3\]\)"):
        HyperLSTM(3, 4)(torch.randn(0, 2, 3))
