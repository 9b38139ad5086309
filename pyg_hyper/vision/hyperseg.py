r"""Patch-wise hypernetwork blocks after Nirkin, Wolf & Hassner, `"HyperSeg:
Patch-wise Hypernetwork for Real-time Semantic Segmentation"
<https://arxiv.org/abs/2012.11582>`_ (CVPR 2021).

The pipeline is

.. math::
    \mathbf{F}_1, \dots, \mathbf{F}_n = b(\mathbf{I}), \qquad
    \boldsymbol\phi = h(\mathbf{F}_n), \qquad
    \boldsymbol\theta^{m_i} = w_i(\boldsymbol\phi_i), \qquad
    \mathbf{S} = d(\{\mathbf{F}_i\} \mid \{\boldsymbol\theta^{m_i}\}):

a backbone :math:`b`, a context head :math:`h` (the hypernetwork) whose
signal map :math:`\boldsymbol\phi` has one pixel per decoder patch, one
grouped :math:`1 \times 1` :obj:`signal2weights` map :math:`w_i` per decoder
meta-block on its share :math:`\boldsymbol\phi_i` of the signal channels, and
a decoder :math:`d` of meta-blocks whose weights differ from patch to patch.
"""
from typing import List, Optional, Sequence, Tuple, Union

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from pyg_hyper.utils.checks import (
    check_dtype,
    check_floating,
    check_image,
    check_kernel_fits,
    check_kernel_size,
    check_padding_mode,
    check_positive_int,
    parameter_dtype,
)
from pyg_hyper.vision.functional import batched_conv2d

__all__ = [
    'divide_signal',
    'patchwise_conv2d',
    'HyperPatchConv2d',
    'HyperPatchInvertedResidual',
    'ContextHead',
    'HyperSegDecoder',
    'HyperSeg',
]

IntList = Union[int, Sequence[int]]


def _entries(name: str, value) -> dict:
    # Keyword arguments for check_positive_int: a single value as 'name', the
    # entries of a sequence as 'name[i]' (scalars as in _as_list).
    if isinstance(value, (int, float)):
        return {name: value}
    return {f'{name}[{i}]': v for i, v in enumerate(value)}


def divide_signal(channels: int, weight_counts: Sequence[int],
                  min_unit: int = 1) -> List[int]:
    r"""Splits :obj:`channels` signal channels among meta-blocks in
    proportion to their numbers of generated weights, in multiples of
    :obj:`min_unit` (so that every share can feed a grouped
    :obj:`signal2weights` convolution) and at least :obj:`min_unit` each.

    Largest-remainder rounding of :math:`u \cdot n_i / \sum_j n_j` units, with
    :math:`u = \text{channels} / \text{min\_unit}`. (The official code uses
    its own greedy rounding; the proportionality is the same.)

    Returns:
        List[int]: The channels of each block, summing to :obj:`channels`.
    """
    if channels % min_unit:
        raise ValueError(f"'divide_signal' needs the signal channels "
                         f"({channels}) to be a multiple of min_unit "
                         f"({min_unit})")
    units = channels // min_unit
    if units < len(weight_counts):
        raise ValueError(f"'divide_signal' cannot give each of "
                         f"{len(weight_counts)} blocks at least {min_unit} "
                         f"of {channels} signal channels")
    if any(n < 1 for n in weight_counts):
        raise ValueError(f"'divide_signal' needs positive weight counts "
                         f"(got {list(weight_counts)})")
    total = sum(weight_counts)
    ideal = [units * n / total for n in weight_counts]
    alloc = [max(1, math.floor(v)) for v in ideal]
    while sum(alloc) > units:  # the max(1, .) floors may overshoot
        i = max((i for i in range(len(alloc)) if alloc[i] > 1),
                key=lambda i: alloc[i] - ideal[i])
        alloc[i] -= 1
    while sum(alloc) < units:
        i = max(range(len(alloc)), key=lambda i: ideal[i] - alloc[i])
        alloc[i] += 1
    return [a * min_unit for a in alloc]


def _patch_grid(owner: str, x: Tensor, grid: Tuple[int, int]):
    h, w = x.shape[-2:]
    gh, gw = grid
    if h % gh or w % gw:
        raise ValueError(f"'{owner}' splits a {h}x{w} map into a {gh}x{gw} "
                         f"grid of patches, so the height and width must be "
                         f"multiples of the grid")
    return h // gh, w // gw


def _to_patches(x: Tensor, grid: Tuple[int, int], pad: int,
                padding_mode: str) -> Tensor:
    # Overlapping windows: each p_h x p_w patch plus a `pad` border taken
    # from its neighbours (or the reflect padding at the image border).
    b, c = x.shape[:2]
    ph, pw = _patch_grid('patchwise_conv2d', x, grid)
    if pad > 0:
        x = F.pad(x, (pad, ) * 4, mode=padding_mode)
    kh, kw = ph + 2 * pad, pw + 2 * pad
    windows = F.unfold(x, (kh, kw), stride=(ph, pw))  # [B, C*kh*kw, P]
    return windows.transpose(1, 2).reshape(-1, c, kh, kw)


def _from_patches(y: Tensor, batch_size: int, grid: Tuple[int, int]) -> Tensor:
    _, c, ph, pw = y.shape
    gh, gw = grid
    y = y.view(batch_size, gh, gw, c, ph, pw).permute(0, 3, 1, 4, 2, 5)
    return y.reshape(batch_size, c, gh * ph, gw * pw)


def _per_patch(weights: Tensor) -> Tensor:
    # [B, n, g_h, g_w] weight map -> [B * g_h * g_w, n], patches row-major.
    return weights.permute(0, 2, 3, 1).reshape(-1, weights.size(1))


def patchwise_conv2d(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None,
                     groups: int = 1, padding_mode: str = 'reflect') -> Tensor:
    r"""Convolves each patch of a :math:`g_h \times g_w` grid with its own
    kernel, 'same'-sized, vectorized as in HyperSeg: pad the whole map, unfold
    overlapping :math:`(p_h + k - 1) \times (p_w + k - 1)` windows at stride
    :math:`(p_h, p_w)`, run one grouped convolution, and put the patches
    back. Patches see their neighbours' pixels at their borders, not padding.

    Args:
        x (torch.Tensor): Maps :obj:`[B, C_in, H, W]`, :obj:`H, W` multiples
            of the grid.
        weight (torch.Tensor): Kernels
            :obj:`[B, g_h, g_w, C_out, C_in // groups, k, k]`, :obj:`k` odd.
        bias (torch.Tensor, optional): Biases :obj:`[B, g_h, g_w, C_out]`.
            (default: :obj:`None`)
        groups (int, optional): Channel groups. (default: :obj:`1`)
        padding_mode (str, optional): Padding at the map border.
            (default: :obj:`"reflect"`)

    Returns:
        torch.Tensor: :obj:`[B, C_out, H, W]`.
    """
    b, gh, gw, c_out = weight.shape[:4]
    k = check_kernel_size('patchwise_conv2d', tuple(weight.shape[-2:]),
                          odd=True, square=True)[0]
    # Larger than a patch is fine (it reads the neighbours' border), but not
    # than the map: padding needs the pixels.
    check_kernel_fits('patchwise_conv2d', (k, k), *x.shape[-2:])
    windows = _to_patches(x, (gh, gw), k // 2, padding_mode)
    out = batched_conv2d(windows, weight.reshape(-1, *weight.shape[3:]),
                         None if bias is None else bias.reshape(-1, c_out),
                         groups=groups)
    return _from_patches(out, b, (gh, gw))


class _MetaBlock(torch.nn.Module):
    num_weights: int

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 padding_mode: str):
        super().__init__()
        owner = self.__class__.__name__
        check_positive_int(owner, in_channels=in_channels,
                           out_channels=out_channels)
        self.kernel_size = check_kernel_size(owner, kernel_size, odd=True,
                                             square=True)[0]
        check_padding_mode(owner, padding_mode)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.padding_mode = padding_mode

    def _check(self, x: Tensor, weights: Tensor) -> Tuple[int, int]:
        owner = self.__class__.__name__
        check_image(owner, 'x', x, self.in_channels, parameter_dtype(self))
        check_floating(owner, 'x', x)
        if (weights.dim() != 4 or weights.size(0) != x.size(0)
                or weights.size(1) != self.num_weights):
            raise ValueError(f"'{owner}' expected 'weights' of shape "
                             f"[{x.size(0)}, {self.num_weights}, grid_h, "
                             f"grid_w] (got {list(weights.shape)})")
        # x has the parameters' dtype (if any, HyperPatchConv2d has none),
        # so matching x is enough.
        check_dtype(owner, 'weights', weights, x.dtype, like='x')
        grid = tuple(weights.shape[-2:])
        _patch_grid(owner, x, grid)
        # A kernel may be larger than a patch (it reads the neighbours'
        # border), but not than the map (reflect padding needs the pixels).
        check_kernel_fits(owner, (self.kernel_size, ) * 2, *x.shape[-2:])
        return grid

    def weight_fan_in(self) -> Tensor:
        r"""The fan-in of the convolution each generated weight belongs to,
        :obj:`[num_weights]` (sets the scale of a static initialization)."""
        raise NotImplementedError


class HyperPatchConv2d(_MetaBlock):
    r"""A patch-wise convolution whose kernel is read from a weight map with
    one pixel per patch (see :func:`patchwise_conv2d`), the generated
    convolution of the meta-blocks of `"HyperSeg: Patch-wise Hypernetwork
    for Real-time Semantic Segmentation" <https://arxiv.org/abs/2012.11582>`_
    (Nirkin, Wolf & Hassner, CVPR 2021),

    .. math::
        \mathbf{Y}|_{P} = \mathbf{W}_{P} \star \mathbf{X}|_{P^+},

    where :math:`P^+` is patch :math:`P` with a :math:`\lfloor k/2 \rfloor`
    border.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int, optional): Odd kernel size. (default: :obj:`1`)
        groups (int, optional): Channel groups. (default: :obj:`1`)
        padding_mode (str, optional): Padding at the map border.
            (default: :obj:`"reflect"`)

    Shapes:
        - **input:** :math:`(B, C_{in}, H, W)`, weights
          :math:`(B, \text{num\_weights}, g_h, g_w)`
        - **output:** :math:`(B, C_{out}, H, W)`
    """
    def __init__(self, in_channels: int, out_channels: int,
                 kernel_size: int = 1, groups: int = 1,
                 padding_mode: str = 'reflect'):
        super().__init__(in_channels, out_channels, kernel_size, padding_mode)
        check_positive_int('HyperPatchConv2d', groups=groups)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"'HyperPatchConv2d' needs in_channels and "
                             f"out_channels divisible by groups (got "
                             f"{in_channels}, {out_channels}, {groups})")
        self.groups = groups
        self.num_weights = (out_channels * (in_channels // groups) *
                            self.kernel_size**2)

    def forward(self, x: Tensor, weights: Tensor) -> Tensor:
        gh, gw = self._check(x, weights)
        k = self.kernel_size
        w = weights.permute(0, 2, 3, 1).reshape(
            x.size(0), gh, gw, self.out_channels,
            self.in_channels // self.groups, k, k)
        return patchwise_conv2d(x, w, groups=self.groups,
                                padding_mode=self.padding_mode)

    def weight_fan_in(self) -> Tensor:
        fan = self.in_channels // self.groups * self.kernel_size**2
        return torch.full((self.num_weights, ), float(fan))

    def extra_repr(self) -> str:
        return (f'{self.in_channels}, {self.out_channels}, '
                f'kernel_size={self.kernel_size}, groups={self.groups}')


class HyperPatchInvertedResidual(_MetaBlock):
    r"""The meta-block of `"HyperSeg: Patch-wise Hypernetwork for Real-time
    Semantic Segmentation" <https://arxiv.org/abs/2012.11582>`_ (Nirkin,
    Wolf & Hassner, CVPR 2021): an inverted residual whose three
    convolutions are patch-wise and generated,

    .. math::
        \mathbf{Y}|_P = [\mathbf{X}|_P +]\ \mathrm{BN}\big(\mathbf{W}^3_P
        \ \rho(\mathrm{BN}(\mathbf{W}^2_P \star_{dw}
        \rho(\mathrm{BN}(\mathbf{W}^1_P\, \mathbf{X}|_{P^+}))))\big),

    a :math:`1 \times 1` expansion :math:`\mathbf{W}^1_P`, a :math:`k \times
    k` depthwise :math:`\mathbf{W}^2_P` (valid, on the bordered window, so it
    returns to the patch size) and a :math:`1 \times 1` projection
    :math:`\mathbf{W}^3_P`, with :math:`\rho = \mathrm{ReLU6}`; the residual
    is used when input and output widths agree. Batch normalization runs on
    the stacked patches, so its statistics pool all patches.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int, optional): Odd depthwise kernel size.
            (default: :obj:`3`)
        expand_ratio (float, optional): Hidden width over input width.
            (default: :obj:`1`)
        padding_mode (str, optional): Padding at the map border.
            (default: :obj:`"reflect"`)

    Shapes:
        - **input:** :math:`(B, C_{in}, H, W)`, weights
          :math:`(B, \text{num\_weights}, g_h, g_w)`
        - **output:** :math:`(B, C_{out}, H, W)`
    """
    def __init__(self, in_channels: int, out_channels: int,
                 kernel_size: int = 3, expand_ratio: float = 1,
                 padding_mode: str = 'reflect'):
        super().__init__(in_channels, out_channels, kernel_size, padding_mode)
        self.hidden_channels = max(1, int(round(in_channels * expand_ratio)))
        self.use_residual = in_channels == out_channels
        hid, k = self.hidden_channels, self.kernel_size
        # Where each conv's weights sit in the block's weight vector.
        self.splits = (in_channels * hid, hid * k * k, hid * out_channels)
        self.num_weights = sum(self.splits)
        self.bn1 = torch.nn.BatchNorm2d(hid)
        self.bn2 = torch.nn.BatchNorm2d(hid)
        self.bn3 = torch.nn.BatchNorm2d(out_channels)

    def reset_parameters(self):
        for bn in (self.bn1, self.bn2, self.bn3):
            bn.reset_parameters()

    def forward(self, x: Tensor, weights: Tensor) -> Tensor:
        grid = self._check(x, weights)
        n = x.size(0) * grid[0] * grid[1]
        hid, k = self.hidden_channels, self.kernel_size
        w1, w2, w3 = _per_patch(weights).split(self.splits, dim=-1)
        p = _to_patches(x, grid, k // 2, self.padding_mode)
        p = F.relu6(self.bn1(batched_conv2d(
            p, w1.view(n, hid, self.in_channels, 1, 1))))
        p = F.relu6(self.bn2(batched_conv2d(
            p, w2.view(n, hid, 1, k, k), groups=hid)))
        p = self.bn3(batched_conv2d(p, w3.view(n, self.out_channels, hid, 1,
                                               1)))
        out = _from_patches(p, x.size(0), grid)
        return x + out if self.use_residual else out

    def weight_fan_in(self) -> Tensor:
        fans = (self.in_channels, self.kernel_size**2, self.hidden_channels)
        return torch.cat([torch.full((n, ), float(f))
                          for n, f in zip(self.splits, fans)])

    def extra_repr(self) -> str:
        return (f'{self.in_channels}, {self.out_channels}, '
                f'kernel_size={self.kernel_size}, '
                f'hidden_channels={self.hidden_channels}')


class _PatchConvBlock(torch.nn.Module):
    # HyperSeg's kernel-size-1 levels: patch-wise conv, BN, ReLU.
    def __init__(self, in_channels: int, out_channels: int, groups: int):
        super().__init__()
        self.conv = HyperPatchConv2d(in_channels, out_channels, 1, groups)
        self.bn = torch.nn.BatchNorm2d(out_channels)
        self.num_weights = self.conv.num_weights

    def weight_fan_in(self) -> Tensor:
        return self.conv.weight_fan_in()

    def forward(self, x: Tensor, weights: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x, weights)))


def _conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int,
                  stride: int = 1) -> torch.nn.Sequential:
    return torch.nn.Sequential(
        torch.nn.Conv2d(in_channels, out_channels, kernel_size, stride,
                        bias=False), torch.nn.BatchNorm2d(out_channels),
        torch.nn.ReLU())


class ContextHead(torch.nn.Module):
    r"""The context head :math:`h` (the hypernetwork) of `"HyperSeg:
    Patch-wise Hypernetwork for Real-time Semantic Segmentation"
    <https://arxiv.org/abs/2012.11582>`_ (Nirkin, Wolf & Hassner, CVPR
    2021): a small U-Net over the backbone's last features whose output, the
    signal map :math:`\boldsymbol\phi`, keeps their resolution, so each
    signal pixel describes one decoder patch with global context mixed in.

    A :math:`1 \times 1` conv halves the width; :obj:`levels - 1` stride-2
    :math:`2 \times 2` convs go down; the deepest map is globally averaged and
    broadcast back; on the way up, each level concatenates its skip, applies
    a :math:`1 \times 1` conv and a nearest :math:`\times 2` upsampling; the
    output concatenates the first map with the upward path. With
    :math:`n` = :obj:`levels` and :math:`\mathrm{CBR}` a bias-free
    convolution, batch norm and ReLU,

    .. math::
        \mathbf{F}_0 &= \mathrm{CBR}^{1 \times 1}(\mathbf{X}), \qquad
        \mathbf{F}_j = \mathrm{CBR}^{2 \times 2,\, \text{stride }
            2}_j(\mathbf{F}_{j-1}), \quad j = 1, \dots, n-1

        \mathbf{U}_{n-1} &= \mathrm{GAP}(\mathbf{F}_{n-1})
            \text{ (broadcast to the map)}, \qquad
        \mathbf{U}_{j-1} = \mathrm{Up}_{\times 2}\big(
            \mathrm{CBR}^{1 \times 1}_j([\mathbf{F}_j \,\Vert\,
            \mathbf{U}_j])\big), \quad j = n-1, \dots, 1

        \boldsymbol\phi &= [\mathbf{F}_0 \,\Vert\, \mathbf{U}_0],

    with :math:`C/2` channels in every :math:`\mathbf{F}_j` and
    :math:`\mathbf{U}_j`.

    Args:
        in_channels (int): Channels :math:`C` of the backbone's last
            features (even).
        levels (int, optional): Number of resolutions. (default: :obj:`3`)

    Shapes:
        - **input:** :math:`(B, C, g_h, g_w)`, :math:`g_h, g_w` multiples of
          :math:`2^{\text{levels}-1}`
        - **output:** signal map :math:`(B, C, g_h, g_w)`
    """
    def __init__(self, in_channels: int, levels: int = 3):
        super().__init__()
        if in_channels % 2:
            raise ValueError(f"'ContextHead' needs an even number of input "
                             f"channels (got {in_channels})")
        if levels < 1:
            raise ValueError(f"'ContextHead' needs levels >= 1 (got {levels})")
        check_positive_int('ContextHead', in_channels=in_channels,
                           levels=levels)
        half = in_channels // 2
        self.in_channels = in_channels
        self.levels = levels
        self.in_conv = _conv_bn_relu(in_channels, half, 1)
        self.down = torch.nn.ModuleList(
            [_conv_bn_relu(half, half, 2, stride=2) for _ in range(levels - 1)])
        self.up = torch.nn.ModuleList(
            [_conv_bn_relu(in_channels, half, 1) for _ in range(levels - 1)])

    @property
    def out_channels(self) -> int:
        return self.in_channels

    def forward(self, x: Tensor) -> Tensor:
        check_image('ContextHead', 'x', x, self.in_channels,
                    parameter_dtype(self))
        factor = 2**(self.levels - 1)
        if x.size(-2) % factor or x.size(-1) % factor:
            raise ValueError(f"'ContextHead' with {self.levels} levels needs "
                             f"a height and width divisible by {factor} (got "
                             f"{x.size(-2)}x{x.size(-1)})")
        feats = [self.in_conv(x)]
        for down in self.down:
            feats.append(down(feats[-1]))
        # Global context: the deepest map averaged over the whole image.
        h = F.adaptive_avg_pool2d(feats[-1], 1).expand_as(feats[-1])
        for level in range(self.levels - 2, -1, -1):
            h = self.up[level](torch.cat([feats.pop(), h], dim=1))
            h = F.interpolate(h, scale_factor=2, mode='nearest')
        return torch.cat([feats.pop(), h], dim=1)


def _as_list(value: IntList, n: int, name: str,
             per: str = 'one per level') -> List[int]:
    if isinstance(value, (int, float)):
        return [value] * n
    if len(value) != n:
        raise ValueError(f"'HyperSegDecoder' expected {n} values for "
                         f"'{name}', {per} (got {list(value)})")
    return list(value)


def _coordinates(x: Tensor) -> Tensor:
    b, _, h, w = x.shape
    ys = torch.linspace(-1, 1, h, device=x.device, dtype=x.dtype)
    xs = torch.linspace(-1, 1, w, device=x.device, dtype=x.dtype)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing='xy'), dim=0)
    return grid.unsqueeze(0).expand(b, -1, -1, -1)


class HyperSegDecoder(torch.nn.Module):
    r"""The dynamic decoder :math:`d` of `"HyperSeg: Patch-wise Hypernetwork
    for Real-time Semantic Segmentation" <https://arxiv.org/abs/2012.11582>`_
    (Nirkin, Wolf & Hassner, CVPR 2021): one meta-block per level, from the
    coarsest skip feature to the finest. As in the published models
    (the official code's :obj:`with_out_fc=False`, which all its configs
    use), the last level's block outputs the class logits; with
    :obj:`with_out_fc=True` it keeps its width and a patch-wise
    :math:`1 \times 1` classifier (the official :obj:`out_fc`) follows.

    Each level's input is its skip feature, the bilinearly upsampled output
    of the previous level and 2 coordinate channels in :math:`[-1, 1]`. The
    signal map's channels are split among the blocks in proportion to their
    weight counts (:func:`divide_signal`), and block :math:`i` generates its
    weights right before use with its own grouped, bias-free
    :math:`1 \times 1` convolution :math:`w_i` on its share:

    .. math::
        \boldsymbol\theta^{m_i} &= w_i(\boldsymbol\phi_i), \qquad
        \mathbf{Y}_1 = m_1\big([\mathbf{c}_1 \,\Vert\, \mathbf{S}_1]
            \mid \boldsymbol\theta^{m_1}\big)

        \mathbf{Y}_i &= m_i\big([\mathbf{c}_i \,\Vert\, \mathbf{S}_i
            \,\Vert\, \mathrm{Up}(\mathbf{Y}_{i-1})] \mid
            \boldsymbol\theta^{m_i}\big), \quad i = 2, \dots, L,

    with :math:`\mathbf{S}_i` the skip features (coarse to fine),
    :math:`\mathbf{c}_i` their coordinate channels,
    :math:`\mathrm{Up}` bilinear resizing to :math:`\mathbf{S}_i`,
    :math:`m_i` a :class:`HyperPatchInvertedResidual` (a patch-wise
    :math:`1 \times 1` conv, batch norm and ReLU for kernel size 1) and
    :math:`\boldsymbol\phi_i` block :math:`i`'s share of the signal map.
    The output is :math:`\mathbf{Y}_L`, or with :obj:`with_out_fc=True`
    the patch-wise classifier
    :math:`m_{L+1}(\mathbf{Y}_L \mid \boldsymbol\theta^{m_{L+1}})`.

    Args:
        skip_channels (Sequence[int]): Channels of the skip features, coarse
            to fine, one per level.
        signal_channels (int): Channels of the signal map.
        level_channels (Sequence[int]): Output channels of each level; with
            :obj:`with_out_fc=False` the last level outputs
            :obj:`num_classes` channels and its entry is not used (as in the
            official code).
        num_classes (int): Number of classes.
        kernel_sizes (int or Sequence[int], optional): Depthwise kernel of
            each level; levels with kernel size 1 use a patch-wise conv block
            instead of an inverted residual. (default: :obj:`3`)
        expand_ratio (float, optional): Inverted-residual expansion.
            (default: :obj:`1`)
        weight_groups (int or Sequence[int], optional): Groups of each
            :obj:`signal2weights`: one per level with
            :obj:`with_out_fc=False`, one per level and then one for the
            classifier (:obj:`len(level_channels) + 1`) with
            :obj:`with_out_fc=True`. Each must divide the largest, which is
            the split unit. (default: :obj:`1`)
        static_base (bool, optional): If :obj:`True`, every block's weights
            are a learned base shared by all patches plus the generated
            part, :math:`\boldsymbol\theta^{m_i}_P =
            \boldsymbol\theta^{m_i}_0 + w_i(\boldsymbol\phi_{i,P})`: each :obj:`signal2weights` gets a
            bias :math:`\boldsymbol\theta^{m_i}_0`, initialized like the
            static convolutions it stands for, and a zero-initialized
            weight, so the decoder starts as a static decoder and learns the
            patch-wise part (the zero-initialization recipe of
            :class:`ConditionedSR`). Neither the paper nor the official code
            has it (their :obj:`signal2weights` is bias-free and
            default-initialized); trained from scratch on small tasks it
            removes a long plateau, see ``experiments/vision``.
            (default: :obj:`False`)
        with_out_fc (bool, optional): If :obj:`True`, add the patch-wise
            :math:`1 \times 1` classifier after the last level instead of
            letting the last level output the classes. (Without it, a last
            level of kernel size 1 gives logits after batch norm and ReLU,
            as in the official code.) (default: :obj:`False`)

    Shapes:
        - **input:** skip features :math:`(B, C_l, H_l, W_l)` (coarse to
          fine, :math:`H_l, W_l` multiples of the grid), signal map
          :math:`(B, S, g_h, g_w)`
        - **output:** logits :math:`(B, \text{num\_classes}, H_L, W_L)` at the
          finest skip resolution
    """
    def __init__(self, skip_channels: Sequence[int], signal_channels: int,
                 level_channels: Sequence[int], num_classes: int,
                 kernel_sizes: IntList = 3, expand_ratio: float = 1,
                 weight_groups: IntList = 1, static_base: bool = False,
                 with_out_fc: bool = False):
        super().__init__()
        levels = len(level_channels)
        if len(skip_channels) != levels:
            raise ValueError(f"'HyperSegDecoder' needs one skip feature per "
                             f"level (got {len(skip_channels)} skip channels "
                             f"for {levels} levels)")
        check_positive_int('HyperSegDecoder',
                           **_entries('skip_channels', skip_channels),
                           signal_channels=signal_channels,
                           **_entries('level_channels', level_channels),
                           num_classes=num_classes,
                           **_entries('kernel_sizes', kernel_sizes),
                           **_entries('weight_groups', weight_groups))
        kernel_sizes = _as_list(kernel_sizes, levels, 'kernel_sizes')
        groups = _as_list(
            weight_groups, levels + int(with_out_fc), 'weight_groups',
            'one per level and one for the classifier (with_out_fc=True)'
            if with_out_fc else 'one per level (with_out_fc=False)')
        min_unit = max(groups)
        if any(min_unit % g for g in groups):
            raise ValueError(f"'HyperSegDecoder' needs every weight group to "
                             f"divide the largest one (got {groups})")
        self.skip_channels = list(skip_channels)
        self.signal_channels = signal_channels
        self.with_out_fc = with_out_fc
        if not with_out_fc:
            level_channels = list(level_channels[:-1]) + [num_classes]
        self.blocks = torch.nn.ModuleList()
        prev = 0
        for skip, out, k in zip(skip_channels, level_channels, kernel_sizes):
            in_ch = skip + prev + 2
            if k > 1:
                block = HyperPatchInvertedResidual(in_ch, out, k, expand_ratio)
            else:
                block = _PatchConvBlock(in_ch, out, 1)
            self.blocks.append(block)
            prev = out
        self.classifier = (HyperPatchConv2d(prev, num_classes, 1)
                           if with_out_fc else None)
        counts = [b.num_weights for b in self._meta_blocks()]
        self.num_weights = counts
        self.signal_split = divide_signal(signal_channels, counts, min_unit)
        # Grouped convs need an output width divisible by the groups; the
        # extra rows are generated and dropped.
        self.static_base = static_base
        self.signal2weights = torch.nn.ModuleList([
            torch.nn.Conv2d(s, math.ceil(n / g) * g, 1, bias=static_base,
                            groups=g)
            for s, n, g in zip(self.signal_split, counts, groups)
        ])
        self.reset_parameters()

    def _meta_blocks(self) -> List[torch.nn.Module]:
        # In signal2weights order: the levels, then the classifier if any.
        extra = [] if self.classifier is None else [self.classifier]
        return list(self.blocks) + extra

    def reset_parameters(self):
        for module in self.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.BatchNorm2d)):
                module.reset_parameters()
        if not self.static_base:
            return
        for block, conv in zip(self._meta_blocks(), self.signal2weights):
            torch.nn.init.zeros_(conv.weight)
            # PyTorch's default conv bound 1/sqrt(fan_in), weight by weight;
            # the rows that pad the grouped output are dropped anyway.
            fan = torch.ones(conv.out_channels)
            fan[:block.num_weights] = block.weight_fan_in()
            with torch.no_grad():
                conv.bias.uniform_(-1, 1).div_(fan.sqrt())

    def block_weights(self, i: int, signal_chunk: Tensor) -> Tensor:
        r"""The weight map :math:`\boldsymbol\theta^{m_i}` of block
        :obj:`i` (with :obj:`with_out_fc`, the classifier is the last) from
        its signal share."""
        return self.signal2weights[i](signal_chunk)[:, :self.num_weights[i]]

    def forward(self, skips: Sequence[Tensor], signal: Tensor) -> Tensor:
        dtype = parameter_dtype(self)
        check_image('HyperSegDecoder', 'signal', signal, self.signal_channels,
                    dtype)
        if len(skips) != len(self.blocks):
            raise ValueError(f"'HyperSegDecoder' expected {len(self.blocks)} "
                             f"skip features (got {len(skips)})")
        chunks = signal.split(self.signal_split, dim=1)
        p = None
        for i, (skip, block) in enumerate(zip(skips, self.blocks)):
            check_image('HyperSegDecoder', f'skips[{i}]', skip,
                        self.skip_channels[i], dtype)
            h = skip
            if p is not None:
                p = F.interpolate(p, skip.shape[-2:], mode='bilinear',
                                  align_corners=False)
                h = torch.cat([h, p], dim=1)
            h = torch.cat([_coordinates(h), h], dim=1)
            # Generated right before use, so only one block's weights live.
            p = block(h, self.block_weights(i, chunks[i]))
        if self.classifier is None:
            return p
        return self.classifier(p, self.block_weights(-1, chunks[-1]))


class HyperSeg(torch.nn.Module):
    r"""A HyperSeg segmentation model around any backbone: `"HyperSeg:
    Patch-wise Hypernetwork for Real-time Semantic Segmentation"
    <https://arxiv.org/abs/2012.11582>`_ (Nirkin, Wolf & Hassner, CVPR 2021).

    .. math::
        \mathbf{F}_1, \dots, \mathbf{F}_n = b(\mathbf{I}), \qquad
        \boldsymbol\phi = h(\mathbf{F}_n), \qquad
        \boldsymbol\theta^{m_i} = w_i(\boldsymbol\phi_i), \qquad
        \mathbf{S} = d(\{\mathbf{F}_i\} \mid \{\boldsymbol\theta^{m_i}\})

    The backbone :math:`b` returns features :math:`\mathbf{F}_1, \dots,
    \mathbf{F}_n` from fine to coarse; :class:`ContextHead` (:math:`h`)
    turns :math:`\mathbf{F}_n` into the signal map :math:`\boldsymbol\phi`, and :class:`HyperSegDecoder` decodes the image and
    :math:`\mathbf{F}_1, \dots, \mathbf{F}_{n-1}` (coarse to fine, the last
    :obj:`len(level_channels)` of them) with patch-wise generated weights.
    The logits are bilinearly resized to the image.

    Args:
        backbone (torch.nn.Module): Maps an image to a list of features.
        feat_channels (Sequence[int]): Channels of the backbone features,
            fine to coarse.
        in_channels (int): Image channels.
        num_classes (int): Number of classes.
        level_channels (Sequence[int]): Decoder widths, coarse to fine (the
            last one is not used with :obj:`with_out_fc=False`, see
            :class:`HyperSegDecoder`).
        kernel_sizes (int or Sequence[int], optional): Decoder depthwise
            kernel sizes. (default: :obj:`3`)
        expand_ratio (float, optional): Decoder expansion. (default:
            :obj:`1`)
        weight_groups (int or Sequence[int], optional): Groups of the
            :obj:`signal2weights` maps: :obj:`len(level_channels)` entries,
            or :obj:`len(level_channels) + 1` with :obj:`with_out_fc=True`
            (the last for the classifier). (default: :obj:`1`)
        context_levels (int, optional): Levels of the context head.
            (default: :obj:`2`)
        static_base (bool, optional): Generated weights as a learned shared
            base plus a zero-initialized patch-wise part (see
            :class:`HyperSegDecoder`; not in the paper). (default:
            :obj:`False`)
        with_out_fc (bool, optional): If :obj:`True`, a patch-wise
            :math:`1 \times 1` classifier follows the last decoder level,
            which otherwise outputs the classes itself as in the published
            models (the official code's :obj:`with_out_fc`).
            (default: :obj:`False`)

    Shapes:
        - **input:** :math:`(B, C_{in}, H, W)`
        - **output:** logits :math:`(B, \text{num\_classes}, H, W)`
    """
    def __init__(self, backbone: torch.nn.Module, feat_channels: Sequence[int],
                 in_channels: int, num_classes: int,
                 level_channels: Sequence[int], kernel_sizes: IntList = 3,
                 expand_ratio: float = 1, weight_groups: IntList = 1,
                 context_levels: int = 2, static_base: bool = False,
                 with_out_fc: bool = False):
        super().__init__()
        check_positive_int('HyperSeg',
                           **_entries('feat_channels', feat_channels),
                           in_channels=in_channels, num_classes=num_classes,
                           **_entries('level_channels', level_channels),
                           **_entries('kernel_sizes', kernel_sizes),
                           **_entries('weight_groups', weight_groups))
        levels = len(level_channels)
        skips = ([in_channels] + list(feat_channels[:-1]))[::-1]
        if levels > len(skips):
            raise ValueError(f"'HyperSeg' has only {len(skips)} skip inputs "
                             f"for {levels} decoder levels")
        self.in_channels = in_channels
        self.levels = levels
        self.backbone = backbone
        self.context_head = ContextHead(feat_channels[-1], context_levels)
        self.decoder = HyperSegDecoder(skips[:levels], feat_channels[-1],
                                       level_channels, num_classes,
                                       kernel_sizes, expand_ratio,
                                       weight_groups, static_base,
                                       with_out_fc)

    def forward(self, x: Tensor) -> Tensor:
        check_image('HyperSeg', 'x', x, self.in_channels,
                    parameter_dtype(self))
        feats = list(self.backbone(x))
        signal = self.context_head(feats[-1])
        skips = ([x] + feats[:-1])[::-1][:self.levels]
        out = self.decoder(skips, signal)
        if out.shape[-2:] != x.shape[-2:]:
            out = F.interpolate(out, x.shape[-2:], mode='bilinear',
                                align_corners=False)
        return out
