r"""Dynamic filter networks after De Brabandere, Jia, Tuytelaars & Van Gool,
`"Dynamic Filter Networks" <https://arxiv.org/abs/1605.09673>`_ (NIPS 2016).

A *filter-generating network* maps an input to filters, which a *dynamic
filtering layer* applies to an image:

* the **dynamic convolutional layer** uses one filter per sample,
  :math:`\mathbf{O}_b = \mathbf{F}_b \star \mathbf{I}_b`;
* the **dynamic local filtering layer** uses one filter per sample *and* per
  pixel, :math:`\mathbf{O}(\mathbf{p}) = \sum_{\boldsymbol\delta}
  \mathbf{F}_{\boldsymbol\delta}(\mathbf{p})\,
  \mathbf{I}(\mathbf{p} + \boldsymbol\delta)`.
"""
import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from pyg_hyper.utils.checks import (
    check_dtype,
    check_floating,
    check_frame_channels,
    check_image,
    check_kernel_fits,
    check_kernel_size,
    check_padding_mode,
    check_positive_int,
    parameter_dtype,
)
from pyg_hyper.vision.functional import depthwise_batched_conv2d

__all__ = [
    'dynamic_local_filter2d',
    'DynamicFilterConv2d',
    'DynamicLocalFilter2d',
    'FilterGenerator',
    'DynamicFilterNetwork',
]

def _num_taps_to_size(owner: str, num_taps: int) -> int:
    k = math.isqrt(num_taps)
    if k * k != num_taps or k % 2 == 0:
        raise ValueError(f"'{owner}' expects filters with K*K taps for an odd "
                         f"K (got {num_taps} taps)")
    return k


def dynamic_local_filter2d(x: Tensor, filters: Tensor,
                           padding_mode: str = 'zeros') -> Tensor:
    r"""Location-specific filtering, vectorized with :func:`~torch.nn.functional.unfold`:

    .. math::
        \mathbf{O}_b(\mathbf{p}) = \sum_{t=1}^{K^2}
        \mathbf{F}_{b,t}(\mathbf{p})\, \mathbf{I}_b(\mathbf{p} +
        \boldsymbol\delta_t),

    with :math:`\boldsymbol\delta_t` running over the :math:`K \times K`
    window in row-major order (cross-correlation, like
    :func:`~torch.nn.functional.conv2d`). The same filter is used for all
    channels of a pixel, as in the paper's video model.

    Args:
        x (torch.Tensor): Images :obj:`[B, C, H, W]`.
        filters (torch.Tensor): Filters :obj:`[B, K*K, H, W]`, :obj:`K` odd.
        padding_mode (str, optional): :obj:`"zeros"`, :obj:`"reflect"`,
            :obj:`"replicate"` or :obj:`"circular"`. (default: :obj:`"zeros"`)

    Returns:
        torch.Tensor: :obj:`[B, C, H, W]`.
    """
    owner = 'dynamic_local_filter2d'
    check_image(owner, 'x', x)
    check_floating(owner, 'x', x)
    check_padding_mode(owner, padding_mode)
    if filters.dim() != 4:
        raise ValueError(f"'{owner}' expected 'filters' of shape "
                         f"[B, K*K, H, W] (got {list(filters.shape)})")
    check_dtype(owner, 'filters', filters, x.dtype, like='x')
    b, c, h, w = x.shape
    k = _num_taps_to_size(owner, filters.size(1))
    if filters.shape != (b, k * k, h, w):
        raise ValueError(f"'dynamic_local_filter2d' expected 'filters' of "
                         f"shape {[b, k * k, h, w]} (got {list(filters.shape)})")
    pad = k // 2
    if padding_mode != 'zeros':
        x = F.pad(x, (pad, ) * 4, mode=padding_mode)
        pad = 0
    # [B, C * K*K, H*W]: the K*K neighbours of every pixel, row-major.
    patches = F.unfold(x, k, padding=pad).view(b, c, k * k, h, w)
    return (patches * filters.unsqueeze(1)).sum(dim=2)


class _DynamicFilterLayer(torch.nn.Module):
    def __init__(self, kernel_size: int, softmax: bool = True,
                 padding_mode: str = 'zeros'):
        super().__init__()
        owner = self.__class__.__name__
        self.kernel_size = check_kernel_size(owner, kernel_size, odd=True,
                                             square=True)[0]
        check_padding_mode(owner, padding_mode)
        self.softmax = softmax
        self.padding_mode = padding_mode

    def _check(self, x: Tensor, filters: Tensor, shape: Sequence[int]):
        # Parameter-free: the filters must match the image, not the layer.
        owner = self.__class__.__name__
        check_image(owner, 'x', x)
        check_floating(owner, 'x', x)
        check_kernel_fits(owner, (self.kernel_size, ) * 2, *x.shape[-2:])
        if tuple(filters.shape) != tuple(shape):
            raise ValueError(f"'{owner}' expected 'filters' of shape "
                             f"{list(shape)} (got {list(filters.shape)})")
        check_dtype(owner, 'filters', filters, x.dtype, like='x')

    def _normalize(self, filters: Tensor) -> Tensor:
        # The video models normalize the taps into a distribution, so that a
        # filter moves content instead of changing its intensity.
        return F.softmax(filters, dim=1) if self.softmax else filters

    def extra_repr(self) -> str:
        return (f'kernel_size={self.kernel_size}, softmax={self.softmax}, '
                f'padding_mode={self.padding_mode}')


class DynamicFilterConv2d(_DynamicFilterLayer):
    r"""The dynamic convolutional layer of `"Dynamic Filter Networks"
    <https://arxiv.org/abs/1605.09673>`_: one generated filter per sample,
    shared by all positions and channels,

    .. math::
        \mathbf{O}_b = \mathrm{norm}(\mathbf{F}_b) \star \mathbf{I}_b,

    where :math:`\mathrm{norm}` is a softmax over the :math:`K^2` taps if
    :obj:`softmax=True`. Implemented as one grouped convolution.

    Args:
        kernel_size (int): Odd filter size :math:`K`.
        softmax (bool, optional): Whether to softmax-normalize the taps.
            (default: :obj:`True`)
        padding_mode (str, optional): Padding of the 'same' convolution.
            (default: :obj:`"zeros"`)

    Shapes:
        - **input:** images :math:`(B, C, H, W)`, filters :math:`(B, K^2)`
        - **output:** :math:`(B, C, H, W)`
    """
    def forward(self, x: Tensor, filters: Tensor) -> Tensor:
        k = self.kernel_size
        self._check(x, filters, (x.size(0), k * k))
        kernel = self._normalize(filters).view(-1, k, k)
        pad = k // 2
        if self.padding_mode != 'zeros':
            x = F.pad(x, (pad, ) * 4, mode=self.padding_mode)
            pad = 0
        return depthwise_batched_conv2d(x, kernel, padding=pad)


class DynamicLocalFilter2d(_DynamicFilterLayer):
    r"""The dynamic local filtering layer of `"Dynamic Filter Networks"
    <https://arxiv.org/abs/1605.09673>`_: one generated filter per sample and
    per pixel (see :func:`dynamic_local_filter2d`),

    .. math::
        \mathbf{O}(\mathbf{p}) = \sum_{\boldsymbol\delta}
        \mathrm{norm}(\mathbf{F}(\mathbf{p}))_{\boldsymbol\delta}\,
        \mathbf{I}(\mathbf{p} + \boldsymbol\delta).

    Args:
        kernel_size (int): Odd filter size :math:`K`.
        softmax (bool, optional): Whether to softmax-normalize the taps of
            every pixel. (default: :obj:`True`)
        padding_mode (str, optional): Padding at the image border.
            (default: :obj:`"zeros"`)

    Shapes:
        - **input:** images :math:`(B, C, H, W)`, filters
          :math:`(B, K^2, H, W)`
        - **output:** :math:`(B, C, H, W)`
    """
    def forward(self, x: Tensor, filters: Tensor) -> Tensor:
        k = self.kernel_size
        self._check(x, filters, (x.size(0), k * k, *x.shape[-2:]))
        return dynamic_local_filter2d(x, self._normalize(filters),
                                      self.padding_mode)


class FilterGenerator(torch.nn.Module):
    r"""A filter-generating network in the style of the video model of
    `"Dynamic Filter Networks" <https://arxiv.org/abs/1605.09673>`_
    (De Brabandere, Jia et al., NIPS 2016): a convolutional encoder (one
    stride-2 stage) and decoder (nearest upsampling) ending in a
    :math:`1 \times 1` convolution to :math:`K^2` taps per pixel, or, for
    sample-specific filters, global average pooling and a linear layer to
    :math:`K^2` taps per sample,

    .. math::
        \mathbf{E} &= \rho\big(\mathrm{Conv}^{3 \times 3}_3\,
            \rho(\mathrm{Conv}^{3 \times 3,\, \text{stride } 2}_2\,
            \rho(\mathrm{Conv}^{3 \times 3}_1 \mathbf{X}))\big)

        \mathbf{F} &= \mathrm{Conv}^{1 \times 1}\,
            \rho\big(\mathrm{Conv}^{3 \times 3}_4\,
            \mathrm{Up}_{\times 2}(\mathbf{E})\big)
            \ \text{(local)}, \qquad
        \mathbf{F}_b = \mathbf{W}\, \frac{1}{|\Omega|}
            \sum_{\mathbf{p} \in \Omega} \mathbf{E}_b(\mathbf{p}) +
            \mathbf{b} \ \text{(per sample)},

    with :math:`\rho` = LeakyReLU(0.2), widths :math:`C_{in} \to d \to d
    \to 2d` in the encoder (:math:`d` = :obj:`hidden_channels`),
    :math:`\mathrm{Up}_{\times 2}` nearest upsampling and :math:`\Omega`
    the pixels of :math:`\mathbf{E}`. The taps are returned raw; the
    filtering layers normalize them (softmax over the taps, by default).

    Args:
        in_channels (int): Input channels (e.g. stacked frames).
        kernel_size (int): Odd filter size :math:`K`.
        hidden_channels (int, optional): Width. (default: :obj:`32`)
        local (bool, optional): Per-pixel filters if :obj:`True`, per-sample
            filters otherwise. (default: :obj:`True`)

    Shapes:
        - **input:** :math:`(B, C_{in}, H, W)`, :math:`H, W` even if
          :obj:`local`
        - **output:** :math:`(B, K^2, H, W)` if :obj:`local`, else
          :math:`(B, K^2)`
    """
    def __init__(self, in_channels: int, kernel_size: int,
                 hidden_channels: int = 32, local: bool = True):
        super().__init__()
        check_positive_int('FilterGenerator', in_channels=in_channels,
                           hidden_channels=hidden_channels)
        self.in_channels = in_channels
        self.kernel_size = check_kernel_size('FilterGenerator', kernel_size,
                                             odd=True, square=True)[0]
        self.local = local
        hid = hidden_channels
        act = torch.nn.LeakyReLU(0.2)
        self.encoder = torch.nn.Sequential(
            torch.nn.Conv2d(in_channels, hid, 3, padding=1), act,
            torch.nn.Conv2d(hid, hid, 3, stride=2, padding=1), act,
            torch.nn.Conv2d(hid, 2 * hid, 3, padding=1), act)
        taps = self.kernel_size**2
        if local:
            self.decoder = torch.nn.Sequential(
                torch.nn.Upsample(scale_factor=2, mode='nearest'),
                torch.nn.Conv2d(2 * hid, hid, 3, padding=1), act,
                torch.nn.Conv2d(hid, taps, 1))
        else:
            self.decoder = torch.nn.Linear(2 * hid, taps)

    def reset_parameters(self):
        for module in self.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                module.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        check_image('FilterGenerator', 'x', x, self.in_channels,
                    parameter_dtype(self))
        if self.local and (x.size(-2) % 2 or x.size(-1) % 2):
            raise ValueError(f"'FilterGenerator' with per-pixel filters needs "
                             f"an even height and width (got "
                             f"{x.size(-2)}x{x.size(-1)})")
        h = self.encoder(x)
        if not self.local:
            h = h.mean(dim=(-2, -1))
        return self.decoder(h)


class DynamicFilterNetwork(torch.nn.Module):
    r"""A dynamic filter network for next-frame prediction, after
    `"Dynamic Filter Networks" <https://arxiv.org/abs/1605.09673>`_: a
    :class:`FilterGenerator` reads the input frames and its filters are
    applied to the **last** frame by :class:`DynamicLocalFilter2d`
    (:obj:`local=True`) or :class:`DynamicFilterConv2d`,

    .. math::
        \hat{\mathbf{I}}_{T+1} = \mathcal{L}\big(\mathbf{I}_T;\,
        G(\mathbf{I}_1, \dots, \mathbf{I}_T)\big).

    Args:
        in_channels (int): Channels :math:`T \cdot C` of the stacked input
            frames, a multiple of :obj:`frame_channels`.
        kernel_size (int, optional): Odd filter size :math:`K`.
            (default: :obj:`9`)
        hidden_channels (int, optional): Width of the generator.
            (default: :obj:`32`)
        local (bool, optional): Location-specific filters if :obj:`True`.
            (default: :obj:`True`)
        softmax (bool, optional): Softmax over the taps. (default:
            :obj:`True`)
        frame_channels (int, optional): Channels of one frame.
            (default: :obj:`1`)

    Shapes:
        - **input:** :math:`(B, T \cdot C, H, W)`, :math:`H, W` even if
          :obj:`local`
        - **output:** the predicted frame :math:`(B, C, H, W)`; with
          :obj:`return_filters=True` also the filters
          :math:`(B, K^2, H, W)` if :obj:`local`, else :math:`(B, K^2)`, as
          the generator's raw output (before the softmax over the taps that
          the filtering layer applies with :obj:`softmax=True`)
    """
    def __init__(self, in_channels: int, kernel_size: int = 9,
                 hidden_channels: int = 32, local: bool = True,
                 softmax: bool = True, frame_channels: int = 1):
        super().__init__()
        check_frame_channels('DynamicFilterNetwork', in_channels,
                             frame_channels)
        check_positive_int('DynamicFilterNetwork',
                           hidden_channels=hidden_channels)
        self.frame_channels = frame_channels
        self.generator = FilterGenerator(in_channels, kernel_size,
                                         hidden_channels, local)
        layer = DynamicLocalFilter2d if local else DynamicFilterConv2d
        self.filter = layer(kernel_size, softmax=softmax)

    def reset_parameters(self):
        self.generator.reset_parameters()

    def forward(self, x: Tensor, return_filters: bool = False):
        filters = self.generator(x)
        out = self.filter(x[:, -self.frame_channels:], filters)
        return (out, filters) if return_filters else out
