r"""The dynamic convolutional layer of Klein, Wolf & Afek, `"A Dynamic
Convolutional Layer for Short Range Weather Prediction"
<https://openaccess.thecvf.com/content_cvpr_2015/html/Klein_A_Dynamic_Convolutional_2015_CVPR_paper.html>`_
(CVPR 2015)."""
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from pyg_hyper.utils.checks import (
    check_frame_channels,
    check_image,
    check_kernel_fits,
    check_kernel_size,
    check_positive_int,
    parameter_dtype,
)
from pyg_hyper.vision.functional import depthwise_batched_conv2d

__all__ = [
    'separable_dynamic_conv2d',
    'Crop2d',
    'FilterNetworkB',
    'DynamicConv2d',
]


def separable_dynamic_conv2d(x: Tensor, vertical: Tensor,
                             horizontal: Tensor) -> Tensor:
    r"""Filters sample :math:`b` with its own separable kernel: first the
    vertical 1-D kernel :math:`\mathbf{v}_b` (DC1), then the horizontal one
    :math:`\mathbf{h}_b` (DC2), with zero 'same' padding,

    .. math::
        \mathbf{Y}_b = (\mathbf{X}_b \star_y \mathbf{v}_b) \star_x
        \mathbf{h}_b = \mathbf{X}_b \star (\mathbf{v}_b \mathbf{h}_b^\top).

    Args:
        x (torch.Tensor): Images :obj:`[B, C, H, W]`.
        vertical (torch.Tensor): Vertical kernels :obj:`[B, K_v]`, :obj:`K_v`
            odd.
        horizontal (torch.Tensor): Horizontal kernels :obj:`[B, K_h]`,
            :obj:`K_h` odd.

    Returns:
        torch.Tensor: :obj:`[B, C, H, W]`.
    """
    for name, kernel in (('vertical', vertical), ('horizontal', horizontal)):
        if kernel.dim() != 2 or kernel.size(0) != x.size(0):
            raise ValueError(f"'separable_dynamic_conv2d' expected "
                             f"'{name}' kernels of shape [{x.size(0)}, K] "
                             f"(one per image; got {list(kernel.shape)})")
    kv, kh = vertical.size(-1), horizontal.size(-1)
    if kv % 2 == 0 or kh % 2 == 0:
        # 'Same' padding needs a centre tap: an even kernel grew the image.
        raise ValueError(f"'separable_dynamic_conv2d' expected odd kernel "
                         f"lengths (got vertical {kv}, horizontal {kh})")
    x = depthwise_batched_conv2d(x, vertical[:, :, None], padding=(kv // 2, 0))
    return depthwise_batched_conv2d(x, horizontal[:, None, :],
                                    padding=(0, kh // 2))


class Crop2d(torch.nn.Module):
    r"""The CROP layer of Klein et al., `"A Dynamic Convolutional Layer for
    Short Range Weather Prediction"
    <https://openaccess.thecvf.com/content_cvpr_2015/html/Klein_A_Dynamic_Convolutional_2015_CVPR_paper.html>`_
    (Klein, Wolf & Afek, CVPR 2015): keeps the centre :math:`h \times w`
    window, discarding the border where the dynamic filter saw zero padding
    instead of image content,

    .. math::
        \mathbf{Y}_{b,c,i,j} = \mathbf{X}_{b,c,\,i + \lfloor (H-h)/2
        \rfloor,\, j + \lfloor (W-w)/2 \rfloor}.

    Args:
        size (int or (int, int)): Output size :math:`(h, w)`.

    Shapes:
        - **input:** :math:`(B, C, H, W)` with :math:`H \geq h, W \geq w`
        - **output:** :math:`(B, C, h, w)`
    """
    def __init__(self, size: Union[int, Tuple[int, int]]):
        super().__init__()
        self.size = check_kernel_size('Crop2d', size, name='size')

    def forward(self, x: Tensor) -> Tensor:
        check_image('Crop2d', 'x', x)
        h, w = self.size
        height, width = x.shape[-2:]
        if h > height or w > width:
            raise ValueError(f"'Crop2d' cannot crop a {h}x{w} window out of "
                             f"a {height}x{width} image")
        top, left = (height - h) // 2, (width - w) // 2
        return x[..., top:top + h, left:left + w]

    def extra_repr(self) -> str:
        return f'size={self.size}'


class FilterNetworkB(torch.nn.Module):
    r"""The filter network ("network B") of Klein et al.,
    `"A Dynamic Convolutional Layer for Short Range Weather Prediction"
    <https://openaccess.thecvf.com/content_cvpr_2015/html/Klein_A_Dynamic_Convolutional_2015_CVPR_paper.html>`_
    (Klein, Wolf & Afek, CVPR 2015): a small CNN over the input frames
    whose globally pooled features give the logits of one vertical and one
    horizontal 1-D kernel per sample,

    .. math::
        \mathbf{H}^{(1)} &= \mathrm{ReLU}\big(\mathrm{Conv}^{3 \times
            3}_1(\mathbf{X})\big), \qquad
        \mathbf{H}^{(i)} = \mathrm{ReLU}\big(\mathrm{Conv}^{3 \times
            3,\, \text{stride } 2}_i(\mathbf{H}^{(i-1)})\big),
            \quad i = 2, \dots, L

        [\mathbf{v}_b \,\Vert\, \mathbf{h}_b] &= \mathbf{W}\,
            \frac{1}{|\Omega|} \sum_{\mathbf{p} \in \Omega}
            \mathbf{H}^{(L)}_b(\mathbf{p}) + \mathbf{b},

    with :math:`L` = :obj:`num_layers` and :math:`\Omega` the pixels of
    the last feature map; :math:`\mathbf{v}_b, \mathbf{h}_b \in
    \mathbb{R}^K` are the vertical and horizontal logits
    (softmax-normalized by :class:`DynamicConv2d`).

    The paper does not give network B's layers. Global average pooling is
    our choice: the motion to copy is the same everywhere in a frame, and
    without pooling the kernels stayed blurry in our reproduction.

    Args:
        in_channels (int): Channels of the stacked input frames.
        kernel_size (int): Length :math:`K` of each 1-D kernel.
        hidden_channels (int, optional): Width of the CNN.
            (default: :obj:`32`)
        num_layers (int, optional): Number of :math:`3 \times 3` conv layers;
            all but the first have stride 2. (default: :obj:`3`)

    Shapes:
        - **input:** :math:`(B, C_{in}, H, W)`
        - **output:** vertical and horizontal logits :math:`(B, K)` each
    """
    def __init__(self, in_channels: int, kernel_size: int,
                 hidden_channels: int = 32, num_layers: int = 3):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"'FilterNetworkB' needs at least one layer "
                             f"(got num_layers={num_layers})")
        check_positive_int('FilterNetworkB', in_channels=in_channels,
                           kernel_size=kernel_size,
                           hidden_channels=hidden_channels,
                           num_layers=num_layers)
        self.in_channels = in_channels
        self.kernel_size = kernel_size
        layers = []
        for i in range(num_layers):
            layers += [
                torch.nn.Conv2d(in_channels if i == 0 else hidden_channels,
                                hidden_channels, 3, stride=1 if i == 0 else 2,
                                padding=1),
                torch.nn.ReLU(),
            ]
        self.convs = torch.nn.Sequential(*layers)
        self.lin = torch.nn.Linear(hidden_channels, 2 * kernel_size)

    def reset_parameters(self):
        for module in self.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                module.reset_parameters()

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        check_image('FilterNetworkB', 'x', x, self.in_channels,
                    parameter_dtype(self))
        h = self.convs(x).mean(dim=(-2, -1))
        vertical, horizontal = self.lin(h).chunk(2, dim=-1)
        return vertical, horizontal


class DynamicConv2d(torch.nn.Module):
    r"""The dynamic convolutional layer of `"A Dynamic Convolutional Layer for
    Short Range Weather Prediction"
    <https://openaccess.thecvf.com/content_cvpr_2015/html/Klein_A_Dynamic_Convolutional_2015_CVPR_paper.html>`_
    (Klein, Wolf & Afek, CVPR 2015).

    Network B (:class:`FilterNetworkB`) reads the input frames
    :math:`\mathbf{I}_1, \dots, \mathbf{I}_T` and emits a vertical and a
    horizontal kernel per sample; both are softmax-normalized and applied as
    a separable convolution (DC1, DC2) to the **last** frame, followed by
    the optional CROP layer:

    .. math::
        (\mathbf{v}, \mathbf{h}) &= B(\mathbf{I}_1, \dots, \mathbf{I}_T)

        \hat{\mathbf{I}}_{T+1} &= \mathrm{crop}\big((\mathbf{I}_T
            \star_y \mathrm{softmax}(\mathbf{v})) \star_x
            \mathrm{softmax}(\mathbf{h})\big).

    Because of the softmax every kernel is non-negative and sums to one, so
    the prediction is a convex combination of last-frame pixels: it can move
    and blur content, but not invent it.

    Args:
        in_channels (int): Channels of the stacked input frames
            (:math:`T \cdot C`), a multiple of :obj:`frame_channels`.
        kernel_size (int): Odd length :math:`K` of each 1-D kernel.
        hidden_channels (int, optional): Width of network B.
            (default: :obj:`32`)
        num_layers (int, optional): Conv layers of network B.
            (default: :obj:`3`)
        frame_channels (int, optional): Channels :math:`C` of one frame; the
            last :obj:`frame_channels` input channels are the frame that is
            filtered. (default: :obj:`1`)
        crop (int or (int, int), optional): If set, size of the centre crop.
            (default: :obj:`None`)

    Shapes:
        - **input:** frames :math:`(B, T \cdot C, H, W)`
        - **output:** :math:`(B, C, H, W)`, or :math:`(B, C, h, w)` with
          :obj:`crop`; with :obj:`return_kernels=True` also the normalized
          kernels :math:`(B, K)` and :math:`(B, K)`
    """
    def __init__(self, in_channels: int, kernel_size: int,
                 hidden_channels: int = 32, num_layers: int = 3,
                 frame_channels: int = 1,
                 crop: Optional[Union[int, Tuple[int, int]]] = None):
        super().__init__()
        k = check_kernel_size('DynamicConv2d', kernel_size, odd=True,
                              square=True)[0]
        check_frame_channels('DynamicConv2d', in_channels, frame_channels)
        check_positive_int('DynamicConv2d', hidden_channels=hidden_channels)
        self.in_channels = in_channels
        self.kernel_size = k
        self.frame_channels = frame_channels
        self.filter_net = FilterNetworkB(in_channels, k, hidden_channels,
                                         num_layers)
        self.crop = None if crop is None else Crop2d(crop)

    def reset_parameters(self):
        self.filter_net.reset_parameters()

    def kernels(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        r"""The softmax-normalized vertical and horizontal kernels."""
        vertical, horizontal = self.filter_net(x)
        return F.softmax(vertical, dim=-1), F.softmax(horizontal, dim=-1)

    def forward(self, x: Tensor, return_kernels: bool = False):
        check_image('DynamicConv2d', 'x', x, self.in_channels,
                    parameter_dtype(self))
        check_kernel_fits('DynamicConv2d', (self.kernel_size, ) * 2,
                          *x.shape[-2:])
        vertical, horizontal = self.kernels(x)
        out = separable_dynamic_conv2d(x[:, -self.frame_channels:], vertical,
                                       horizontal)
        if self.crop is not None:
            out = self.crop(out)
        if return_kernels:
            return out, vertical, horizontal
        return out

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'kernel_size={self.kernel_size}, '
                f'frame_channels={self.frame_channels}, '
                f'crop={None if self.crop is None else self.crop.size})')
