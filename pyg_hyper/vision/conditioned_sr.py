r"""Kernel-conditioned super-resolution after Riegler, Schulter, Rüther &
Bischof, `"Conditioned Regression Models for Non-Blind Single Image
Super-Resolution" <https://openaccess.thecvf.com/content_iccv_2015/html/Riegler_Conditioned_Regression_Models_ICCV_2015_paper.html>`_
(ICCV 2015)."""
from typing import Optional, Sequence, Tuple


import torch
import torch.nn.functional as F
from torch import Tensor

from pyg_hyper.nn.hyper_linear import HyperLinear, materialize_hyper_weight
from pyg_hyper.utils.checks import (
    check_dtype,
    check_image,
    check_kernel_fits,
    check_kernel_size,
    check_positive_int,
    check_shape,
    parameter_dtype,
)
from pyg_hyper.vision.functional import batched_conv2d

__all__ = ['ConditionedSR']


class ConditionedSR(torch.nn.Module):
    r"""An SRCNN whose first layer is generated from the blur kernel, after
    `"Conditioned Regression Models for Non-Blind Single Image
    Super-Resolution" <https://openaccess.thecvf.com/content_iccv_2015/html/Riegler_Conditioned_Regression_Models_ICCV_2015_paper.html>`_
    (Riegler et al., ICCV 2015).

    The low-resolution image is :math:`\mathbf{l} = {\downarrow}(\mathbf{k}
    \ast \mathbf{h})` with a blur kernel :math:`\mathbf{k}` known per image.
    One network serves every kernel because its first-layer filters are a
    function of it,

    .. math::
        \mathbf{W}_1(\mathbf{k}) &= \mathbf{W}_1^{0} +
            \sum_{j=1}^{r} z_j(\mathbf{k})\, \mathbf{A}_j, \qquad
        \mathbf{b}_1(\mathbf{k}) = \mathbf{b}_1^{0} +
            \sum_{j=1}^{r} z_j(\mathbf{k})\, \mathbf{a}_j

        \hat{\mathbf{h}} &= \mathbf{x} + \mathbf{W}_3 \star
            \mathrm{ReLU}(\mathbf{W}_2 \star \mathrm{ReLU}(
            \mathbf{W}_1(\mathbf{k}) \star \mathbf{x} +
            \mathbf{b}_1(\mathbf{k})) + \mathbf{b}_2) + \mathbf{b}_3,

    where :math:`\mathbf{x}` is the bicubic upsampling of :math:`\mathbf{l}`
    and the code :math:`\mathbf{z}(\mathbf{k})` is the centred, flattened
    kernel :math:`s(\mathbf{k} - 1/s^2)` (a linear generator
    :math:`\mathrm{FC}(\mathbf{k})`, the CNN variant as secondary sources
    describe it; we could not check the paper's exact layer sizes) or, with
    :obj:`hyper_channels`, a :math:`\tanh` layer of it. The generated map is a
    :class:`~pyg_hyper.nn.HyperLinear` over :math:`f_1 \times f_1` patches
    (its :math:`\mathbf{B}, \mathbf{b}` are :math:`\mathbf{W}_1^0,
    \mathbf{b}_1^0`); since all pixels of an image share one kernel, it is
    materialized once per image (:math:`B \times n_1 \times C f_1^2` values)
    and applied by one grouped convolution.

    The generator part :math:`\mathbf{A}, \mathbf{a}` is **initialized at
    zero**, so training starts from a plain SRCNN. That is this package's
    choice (:obj:`generator_init="zero"` of
    :class:`~pyg_hyper.nn.HyperLinear`), not taken from the paper: in our
    reproduction a randomly initialized generator diverged to below-bicubic
    quality.

    Args:
        blur_kernel_size (int): Side :math:`s` of the square blur kernels.
        in_channels (int, optional): Image channels :math:`C`.
            (default: :obj:`1`)
        hidden_channels (Sequence[int], optional): Widths :math:`(n_1, n_2)`.
            (default: :obj:`(64, 32)`)
        filter_sizes (Sequence[int], optional): Odd filter sizes
            :math:`(f_1, f_2, f_3)` (SRCNN 9-1-5). (default: :obj:`(9, 1, 5)`)
        hyper_channels (int, optional): If set, the code is
            :math:`\tanh(\mathbf{E}\, s(\mathbf{k} - 1/s^2) + \mathbf{e})`
            with this width instead of the raw centred kernel.
            (default: :obj:`None`)
        residual (bool, optional): Whether to add the network output to
            the bicubic input. (default: :obj:`True`)

    Shapes:
        - **input:** bicubic-upsampled images :math:`(B, C, H, W)`, blur
          kernels :math:`(B, s, s)`
        - **output:** :math:`(B, C, H, W)`
    """
    def __init__(self, blur_kernel_size: int, in_channels: int = 1,
                 hidden_channels: Sequence[int] = (64, 32),
                 filter_sizes: Sequence[int] = (9, 1, 5),
                 hyper_channels: Optional[int] = None, residual: bool = True):
        super().__init__()
        s = check_kernel_size('ConditionedSR', blur_kernel_size,
                              name='blur_kernel_size', square=True)[0]
        if len(hidden_channels) != 2 or len(filter_sizes) != 3:
            raise ValueError(f"'ConditionedSR' expects two hidden widths and "
                             f"three filter sizes (got {list(hidden_channels)}"
                             f" and {list(filter_sizes)})")
        check_positive_int(
            'ConditionedSR', in_channels=in_channels,
            **{f'hidden_channels[{i}]': c
               for i, c in enumerate(hidden_channels)})
        if hyper_channels is not None:
            check_positive_int('ConditionedSR', hyper_channels=hyper_channels)
        for f in filter_sizes:
            check_kernel_size('ConditionedSR', f, name='filter_sizes',
                              odd=True)
        self.blur_kernel_size = s
        self.in_channels = in_channels
        self.hidden_channels = tuple(hidden_channels)
        self.filter_sizes = tuple(filter_sizes)
        self.hyper_channels = hyper_channels
        self.residual = residual
        n1, n2 = hidden_channels
        f1, f2, f3 = filter_sizes
        if hyper_channels is None:
            self.encoder = None
            code_channels = s * s
        else:
            self.encoder = torch.nn.Linear(s * s, hyper_channels)
            code_channels = hyper_channels
        # A_j, a_j = 0: the generator starts at zero, and W1^0, b1^0 get the
        # default Conv2d initialization.
        self.lin1 = HyperLinear(in_channels * f1 * f1, n1, code_channels,
                                generator_init='zero')
        self.conv2 = torch.nn.Conv2d(n1, n2, f2, padding=f2 // 2)
        self.conv3 = torch.nn.Conv2d(n2, in_channels, f3, padding=f3 // 2)
        self.reset_parameters()

    def reset_parameters(self):
        if self.encoder is not None:
            self.encoder.reset_parameters()
        self.conv2.reset_parameters()
        self.conv3.reset_parameters()
        self.lin1.reset_parameters()
        if self.residual:
            # Start at the bicubic input, so early training refines it
            # instead of first having to learn the identity.
            torch.nn.init.zeros_(self.conv3.weight)
            torch.nn.init.zeros_(self.conv3.bias)

    def code(self, kernel: Tensor) -> Tensor:
        r"""The code :math:`\mathbf{z}(\mathbf{k})` of blur kernels
        :obj:`[B, s, s]`."""
        s = self.blur_kernel_size
        z = s * (kernel.flatten(1) - 1.0 / (s * s))
        return z if self.encoder is None else torch.tanh(self.encoder(z))

    def first_layer(self, kernel: Tensor) -> Tuple[Tensor, Tensor]:
        r"""The generated first layer :math:`\mathbf{W}_1(\mathbf{k})`
        :obj:`[B, n_1, C, f_1, f_1]` and :math:`\mathbf{b}_1(\mathbf{k})`
        :obj:`[B, n_1]`."""
        f1 = self.filter_sizes[0]
        weight, bias = materialize_hyper_weight(self.code(kernel),
                                                self.lin1.weight,
                                                self.lin1.in_channels)
        return weight.view(-1, self.hidden_channels[0], self.in_channels, f1,
                           f1), bias

    def forward(self, x: Tensor, kernel: Tensor) -> Tensor:
        dtype = parameter_dtype(self)
        check_image('ConditionedSR', 'x', x, self.in_channels, dtype)
        s = self.blur_kernel_size
        if kernel.dim() == 3 and kernel.size(1) != kernel.size(2):
            raise ValueError(f"'ConditionedSR' requires square blur kernels "
                             f"(got {kernel.size(1)}x{kernel.size(2)})")
        check_shape('ConditionedSR', 'kernel', kernel, (x.size(0), s, s))
        check_dtype('ConditionedSR', 'kernel', kernel, dtype)
        check_kernel_fits('ConditionedSR', (max(self.filter_sizes), ) * 2,
                          *x.shape[-2:])
        weight, bias = self.first_layer(kernel)
        h = F.relu(batched_conv2d(x, weight, bias,
                                  padding=self.filter_sizes[0] // 2))
        h = F.relu(self.conv2(h))
        out = self.conv3(h)
        return x + out if self.residual else out

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(blur_kernel_size='
                f'{self.blur_kernel_size}, in_channels={self.in_channels}, '
                f'hidden_channels={self.hidden_channels}, '
                f'filter_sizes={self.filter_sizes}, '
                f'hyper_channels={self.hyper_channels})')
