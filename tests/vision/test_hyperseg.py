import pytest
import torch
import torch.nn.functional as F

from pyg_hyper.vision import (
    ContextHead,
    HyperPatchConv2d,
    HyperPatchInvertedResidual,
    HyperSeg,
    HyperSegDecoder,
    divide_signal,
    patchwise_conv2d,
)


def _window(x, b, i, j, ph, pw, pad):
    # Patch (i, j) of sample b with a `pad` border from the reflect-padded
    # map: what a per-patch loop would convolve.
    xp = F.pad(x, (pad, ) * 4, mode='reflect')
    return xp[b:b + 1, :, i * ph:(i + 1) * ph + 2 * pad,
              j * pw:(j + 1) * pw + 2 * pad]


@pytest.mark.parametrize('k,groups', [(1, 1), (3, 1), (3, 2), (5, 1)])
def test_patchwise_conv_equals_per_patch_loop(k, groups):
    torch.manual_seed(0)
    x = torch.randn(2, 4, 8, 12)
    weight = torch.randn(2, 2, 3, 6, 4 // groups, k, k)
    bias = torch.randn(2, 2, 3, 6)
    out = patchwise_conv2d(x, weight, bias, groups=groups)
    assert out.shape == (2, 6, 8, 12)
    ph, pw = 4, 4
    for b in range(2):
        for i in range(2):
            for j in range(3):
                ref = F.conv2d(_window(x, b, i, j, ph, pw, k // 2),
                               weight[b, i, j], bias[b, i, j], groups=groups)
                got = out[b:b + 1, :, i * ph:(i + 1) * ph, j * pw:(j + 1) * pw]
                assert torch.allclose(got, ref, atol=1e-5)


def test_patchwise_conv_with_one_kernel_is_a_reflect_conv():
    torch.manual_seed(0)
    x, w = torch.randn(1, 3, 8, 8), torch.randn(5, 3, 3, 3)
    weight = w[None, None, None].expand(1, 4, 4, 5, 3, 3, 3)
    out = patchwise_conv2d(x, weight)
    assert torch.allclose(out, F.conv2d(F.pad(x, (1, ) * 4, mode='reflect'),
                                        w), atol=1e-5)


def test_hyper_patch_conv2d_reads_the_weight_map():
    torch.manual_seed(0)
    layer = HyperPatchConv2d(3, 2, kernel_size=3)
    assert layer.num_weights == 2 * 3 * 9
    x, wmap = torch.randn(1, 3, 6, 6), torch.randn(1, 54, 2, 3)
    out = layer(x, wmap)
    w = wmap[0, :, 1, 2].view(2, 3, 3, 3)  # patch (1, 2)
    ref = F.conv2d(_window(x, 0, 1, 2, 3, 2, 1), w)
    assert torch.allclose(out[..., 3:6, 4:6], ref, atol=1e-5)


@pytest.mark.parametrize('in_ch,out_ch', [(4, 4), (3, 5)])
def test_inverted_residual_equals_per_patch_loop(in_ch, out_ch):
    torch.manual_seed(0)
    block = HyperPatchInvertedResidual(in_ch, out_ch, 3, expand_ratio=2)
    for bn in (block.bn1, block.bn2, block.bn3):
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2)
        bn.weight.data.normal_()
    block.eval()  # per-channel affine BN: patches are independent
    x = torch.randn(2, in_ch, 8, 8)
    wmap = 0.5 * torch.randn(2, block.num_weights, 2, 2)
    out = block(x, wmap)
    hid = block.hidden_channels
    for b in range(2):
        for i in range(2):
            for j in range(2):
                w1, w2, w3 = wmap[b, :, i, j].split(block.splits)
                h = _window(x, b, i, j, 4, 4, 1)
                h = F.relu6(block.bn1(F.conv2d(h, w1.view(hid, in_ch, 1, 1))))
                h = F.relu6(block.bn2(F.conv2d(h, w2.view(hid, 1, 3, 3),
                                               groups=hid)))
                h = block.bn3(F.conv2d(h, w3.view(out_ch, hid, 1, 1)))
                if in_ch == out_ch:
                    h = h + x[b:b + 1, :, 4 * i:4 * i + 4, 4 * j:4 * j + 4]
                got = out[b:b + 1, :, 4 * i:4 * i + 4, 4 * j:4 * j + 4]
                assert torch.allclose(got, h, atol=1e-5)


def test_divide_signal_is_proportional():
    assert divide_signal(64, [300, 200, 100], min_unit=8) == [32, 24, 8]
    split = divide_signal(96, [1000, 10, 10, 500], min_unit=4)
    assert sum(split) == 96 and all(s % 4 == 0 and s >= 4 for s in split)
    assert split[0] > split[3] > split[1] == split[2]
    with pytest.raises(ValueError, match='multiple of min_unit'):
        divide_signal(30, [1, 1], min_unit=8)
    with pytest.raises(ValueError, match='at least 8'):
        divide_signal(16, [1, 1, 1], min_unit=8)


def test_context_head_shapes_and_global_context():
    torch.manual_seed(0)
    head = ContextHead(8, levels=3).eval()
    x = torch.randn(2, 8, 4, 4)
    out = head(x)
    assert out.shape == (2, 8, 4, 4)
    # Changing one corner pixel changes the signal at the far corner too,
    # through the global pooling.
    x2 = x.clone()
    x2[:, :, 0, 0] += 5
    assert not torch.allclose(head(x2)[:, :, 3, 3], out[:, :, 3, 3])
    with pytest.raises(ValueError, match='divisible by 4'):
        head(torch.randn(1, 8, 6, 6))
    with pytest.raises(ValueError, match='even number'):
        ContextHead(7)


# weight_groups of the two-level decoders below: one per level, plus one for
# the classifier with with_out_fc=True.
GROUPS = {False: [8, 4], True: [8, 4, 2]}


def _meta_blocks(dec):
    return list(dec.blocks) + ([dec.classifier] if dec.with_out_fc else [])


@pytest.mark.parametrize('with_out_fc', [False, True])
def test_decoder_signal_split_and_forward(with_out_fc):
    torch.manual_seed(0)
    dec = HyperSegDecoder([16, 8], signal_channels=32, level_channels=[8, 8],
                          num_classes=3, kernel_sizes=[3, 1],
                          weight_groups=GROUPS[with_out_fc],
                          with_out_fc=with_out_fc)
    assert sum(dec.signal_split) == 32
    assert all(s % 8 == 0 for s in dec.signal_split)
    assert len(dec.signal2weights) == len(GROUPS[with_out_fc])
    for conv, n in zip(dec.signal2weights, dec.num_weights):
        assert conv.out_channels >= n and conv.bias is None
    # The official with_out_fc=False: the last level outputs the classes
    # (its level_channels entry is not used) and there is no classifier.
    assert dec.blocks[-1].conv.out_channels == (8 if with_out_fc else 3)
    assert (dec.classifier is None) != with_out_fc
    skips = [torch.randn(2, 16, 8, 8), torch.randn(2, 8, 16, 16)]
    out = dec(skips, torch.randn(2, 32, 4, 4))
    assert out.shape == (2, 3, 16, 16)
    with pytest.raises(ValueError, match='divide the largest'):
        HyperSegDecoder([4], 24, [4], 2, weight_groups=[3, 2],
                        with_out_fc=True)


def test_weight_groups_length_depends_on_with_out_fc():
    with pytest.raises(ValueError, match=r"expected 2 values for "
                       r"'weight_groups', one per level \(with_out_fc=False"):
        HyperSegDecoder([16, 8], 32, [8, 8], 3, weight_groups=[8, 4, 2])
    with pytest.raises(ValueError, match=r"expected 3 values for "
                       r"'weight_groups', one per level and one for the "
                       r"classifier \(with_out_fc=True"):
        HyperSegDecoder([16, 8], 32, [8, 8], 3, weight_groups=[8, 4],
                        with_out_fc=True)
    with pytest.raises(ValueError, match="expected 2 values for "
                       "'weight_groups'"):
        HyperSeg(_Backbone(), [8, 16], 3, 4, [8, 8], weight_groups=[2] * 3)


def _xy_grid(b, h, w):
    # The official get_image_coordinates: channel 0 is x (along the width),
    # channel 1 is y, each linspace(-1, 1).
    xs = torch.linspace(-1, 1, w).view(1, w).expand(h, w)
    ys = torch.linspace(-1, 1, h).view(h, 1).expand(h, w)
    return torch.stack([xs, ys])[None].expand(b, 2, h, w)


@pytest.mark.parametrize('with_out_fc', [False, True])
def test_decoder_equals_hand_built_levels(with_out_fc):
    # The composition, level by level: input [x, y, skip, upsampled previous
    # output], block i fed by chunk i of the signal, then the classifier on
    # the last chunk if there is one. A 2x3 grid, so x and y differ.
    torch.manual_seed(0)
    dec = HyperSegDecoder([5, 3], signal_channels=16, level_channels=[4, 6],
                          num_classes=3, kernel_sizes=[3, 1],
                          weight_groups=2, with_out_fc=with_out_fc)
    for module in dec.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_()
            module.running_var.uniform_(0.5, 2)
    dec.eval()
    skips = [torch.randn(2, 5, 4, 6), torch.randn(2, 3, 8, 12)]
    signal = torch.randn(2, 16, 2, 3)
    out = dec(skips, signal)
    assert out.shape == (2, 3, 8, 12)

    chunks = signal.split(dec.signal_split, dim=1)

    def weights(i):
        return dec.signal2weights[i](chunks[i])[:, :dec.num_weights[i]]

    p = dec.blocks[0](torch.cat([_xy_grid(2, 4, 6), skips[0]], dim=1),
                      weights(0))
    up = F.interpolate(p, (8, 12), mode='bilinear', align_corners=False)
    p = dec.blocks[1](torch.cat([_xy_grid(2, 8, 12), skips[1], up], dim=1),
                      weights(1))
    if with_out_fc:
        p = dec.classifier(p, weights(2))
    assert torch.allclose(out, p, atol=1e-5)


@pytest.mark.parametrize('with_out_fc', [False, True])
def test_static_base_starts_as_a_static_decoder(with_out_fc):
    torch.manual_seed(0)
    dec = HyperSegDecoder([16, 8], signal_channels=32, level_channels=[8, 8],
                          num_classes=3, kernel_sizes=[3, 1],
                          weight_groups=GROUPS[with_out_fc], static_base=True,
                          with_out_fc=with_out_fc)
    blocks = _meta_blocks(dec)
    assert len(blocks) == len(dec.signal2weights)
    for block, conv in zip(blocks, dec.signal2weights):
        assert conv.bias is not None and not conv.weight.any()
        # Each base weight within PyTorch's default conv bound 1/sqrt(fan_in).
        bound = block.weight_fan_in().rsqrt()
        base = conv.bias[:block.num_weights]
        assert (base.abs() <= bound).all() and base.abs().max() > bound[0] / 4
    fans = blocks[0].weight_fan_in()
    assert fans.shape == (blocks[0].num_weights, )
    assert fans[0] == blocks[0].in_channels
    assert fans[-1] == blocks[0].hidden_channels
    assert (blocks[1].weight_fan_in() == 8 + 8 + 2).all()
    # At initialization the signal (and so the patch) does not matter ...
    skips = [torch.randn(2, 16, 8, 8), torch.randn(2, 8, 16, 16)]
    dec.eval()
    out = dec(skips, torch.randn(2, 32, 4, 4))
    assert torch.allclose(out, dec(skips, torch.randn(2, 32, 4, 4)))
    # ... but the generator still gets gradients, so it can learn to.
    dec.train()
    dec(skips, torch.rand(2, 32, 4, 4)).square().mean().backward()
    assert all(c.weight.grad.abs().sum() > 0 for c in dec.signal2weights)
    dec.reset_parameters()  # keeps the zero-initialized generator
    assert not any(c.weight.any() for c in dec.signal2weights)


class _Backbone(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.c2 = torch.nn.Conv2d(8, 16, 3, stride=2, padding=1)

    def forward(self, x):
        f1 = torch.relu(self.c1(x))
        return [f1, torch.relu(self.c2(f1))]


@pytest.mark.parametrize('with_out_fc', [False, True])
def test_hyperseg_end_to_end_and_gradients(with_out_fc):
    torch.manual_seed(0)
    model = HyperSeg(_Backbone(), [8, 16], in_channels=3, num_classes=4,
                     level_channels=[8, 8], weight_groups=2,
                     with_out_fc=with_out_fc)
    assert model.decoder.with_out_fc == with_out_fc
    based = HyperSeg(_Backbone(), [8, 16], 3, 4, [8, 8], static_base=True)
    assert not based.decoder.signal2weights[0].weight.any()
    x = torch.randn(2, 3, 16, 16)
    # The backbone's last features feed the context head, the others and
    # the image the decoder, coarse to fine.
    model.eval()
    feats = model.backbone(x)
    ref = model.decoder([feats[0], x], model.context_head(feats[1]))
    assert torch.allclose(model(x), ref, atol=1e-6)
    model.train()
    out = model(x)
    assert out.shape == (2, 4, 16, 16)
    out.square().mean().backward()
    assert model.context_head.in_conv[0].weight.grad.abs().sum() > 0
    assert all(c.weight.grad.abs().sum() > 0
               for c in model.decoder.signal2weights)
    with pytest.raises(ValueError, match='with 3 channels'):
        model(torch.randn(1, 1, 16, 16))


def test_gradcheck():
    torch.manual_seed(0)
    x = torch.randn(1, 2, 4, 4, dtype=torch.double, requires_grad=True)
    w = torch.randn(1, 2, 2, 2, 2, 3, 3, dtype=torch.double,
                    requires_grad=True)
    assert torch.autograd.gradcheck(patchwise_conv2d, (x, w), fast_mode=True)


def test_gradcheck_blocks_and_model():
    # Every module, double precision, eval mode (batch norm as a fixed
    # affine map, so the function is deterministic).
    torch.manual_seed(0)
    conv = HyperPatchConv2d(2, 2, kernel_size=3).double().eval()
    block = HyperPatchInvertedResidual(2, 2, 3, expand_ratio=2).double()
    block.eval()
    x = torch.randn(1, 2, 4, 4, dtype=torch.double, requires_grad=True)
    for layer in (conv, block):
        wmap = torch.randn(1, layer.num_weights, 2, 2, dtype=torch.double,
                           requires_grad=True)
        assert torch.autograd.gradcheck(layer, (x, wmap), fast_mode=True)
    head = ContextHead(4, levels=2).double().eval()
    feat = torch.randn(1, 4, 4, 4, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(head, (feat, ), fast_mode=True)
    model = HyperSeg(_Backbone(), [8, 16], 3, 2, [4, 4]).double().eval()
    img = torch.randn(1, 3, 8, 8, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(model, (img, ), fast_mode=True)


def test_bad_inputs():
    layer = HyperPatchConv2d(3, 2, kernel_size=3)
    block = HyperPatchInvertedResidual(4, 4, 3)
    with pytest.raises(ValueError, match='with 4 channels'):
        block(torch.randn(1, 3, 8, 8),
              torch.randn(1, block.num_weights, 2, 2))
    with pytest.raises(ValueError, match='multiples of the grid'):
        layer(torch.randn(1, 3, 7, 8), torch.randn(1, 54, 2, 2))
    with pytest.raises(ValueError, match=r"'weights' of shape \[1, 54"):
        layer(torch.randn(1, 3, 8, 8), torch.randn(1, 50, 2, 2))
    with pytest.raises(ValueError, match='with 3 channels'):
        layer(torch.randn(1, 4, 8, 8), torch.randn(1, 54, 2, 2))
    with pytest.raises(ValueError, match='larger than the 2x2'):
        layer(torch.randn(1, 3, 2, 2), torch.randn(1, 54, 1, 1))
    with pytest.raises(ValueError, match='square'):
        patchwise_conv2d(torch.randn(1, 2, 4, 4),
                         torch.randn(1, 2, 2, 2, 2, 3, 1))
    with pytest.raises(ValueError, match='odd'):
        HyperPatchInvertedResidual(4, 4, kernel_size=2)
    with pytest.raises(ValueError, match='padding_mode'):
        HyperPatchConv2d(4, 4, padding_mode='mirror')
    with pytest.raises(ValueError, match='divisible by groups'):
        HyperPatchConv2d(4, 3, groups=2)


def test_patchwise_kernel_larger_than_the_map_is_named():
    from pyg_hyper.vision.hyperseg import patchwise_conv2d
    with pytest.raises(ValueError, match=r"'patchwise_conv2d' has a 9x9 "
                       r"kernel, which is larger than the 4x4 input image"):
        patchwise_conv2d(torch.randn(1, 1, 4, 4),
                         torch.randn(1, 2, 2, 1, 1, 9, 9))


def test_context_head_is_the_documented_u_net():
    # F_0 = CBR(X), F_j = CBR_j(F_{j-1}) (stride 2), U_{n-1} = GAP(F_{n-1})
    # (the spatial mean, broadcast), U_{j-1} = Up2_nearest(CBR_j([F_j || U_j]))
    # and phi = [F_0 || U_0]; the CBR blocks are the head's own.
    torch.manual_seed(0)
    head = ContextHead(6, levels=3).double().eval()
    x = torch.randn(2, 6, 8, 4, dtype=torch.double)
    feats = [head.in_conv(x)]
    for down in head.down:
        feats.append(down(feats[-1]))
    deepest = feats[2]
    u = deepest.mean(dim=(2, 3), keepdim=True).expand_as(deepest)
    for j in (2, 1):
        v = head.up[j - 1](torch.cat([feats[j], u], dim=1))
        # nearest x2: every pixel repeated into a 2x2 block
        u = v.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    # The upward path is not dead (ReLU) and varies over the deepest map.
    assert (u - u.mean(dim=(2, 3), keepdim=True)).abs().max() > 1e-3
    expected = torch.cat([feats[0], u], dim=1)
    assert torch.allclose(head(x), expected, atol=1e-12)
