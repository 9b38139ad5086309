r"""Hyper-convolutions after Ma, Dalca & Sabuncu, `"Hyper-Convolution
Networks for Biomedical Image Segmentation" <https://arxiv.org/abs/2105.10559>`_
(WACV 2022)."""
from typing import Tuple, Union

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from pyg_hyper.utils.checks import (
    check_image,
    check_kernel_fits,
    check_kernel_size,
    check_padding_mode,
    check_positive_int,
    parameter_dtype,
)

__all__ = ['kernel_coordinates', 'HyperConv2d']


def kernel_coordinates(kernel_size: Tuple[int, int]) -> Tensor:
    r"""The integer offsets :math:`(u, v)` of the taps of an odd
    :math:`k_h \times k_w` kernel, centred at zero, as a
    :obj:`[k_h * k_w, 2]` tensor in row-major order."""
    kh, kw = kernel_size
    u = torch.arange(kh, dtype=torch.float) - (kh - 1) / 2
    v = torch.arange(kw, dtype=torch.float) - (kw - 1) / 2
    return torch.stack(torch.meshgrid(u, v, indexing='ij'), dim=-1).view(-1, 2)


class HyperConv2d(torch.nn.Module):
    r"""The hyper-convolution of `"Hyper-Convolution Networks for Biomedical
    Image Segmentation" <https://arxiv.org/abs/2105.10559>`_ (Ma, Dalca &
    Sabuncu, WACV 2022).

    Kernel values are a smooth function of the tap's coordinates. A small
    per-layer hypernetwork :math:`\Phi` (the official code's :math:`1 \times
    1` convolutions on the coordinate grid, i.e. an MLP applied to every
    tap) maps each offset :math:`(u, v)` to the :math:`C_{in} C_{out}`
    weights of that tap,

    .. math::
        \mathbf{W}[:, :, u, v] &= \Phi(u, v) = \mathbf{A}_4\,
            \rho(\mathbf{A}_3\, \rho(\mathbf{A}_2\, \rho(\mathbf{A}_1
            [u, v]^\top + \mathbf{c}_1) + \mathbf{c}_2) + \mathbf{c}_3)
            + \mathbf{c}_4

        \mathbf{Y} &= \mathbf{W} \star \mathbf{X} + \mathbf{b},

    with :math:`\rho` a LeakyReLU (slope 0.1), widths
    :math:`2 \to h \to h \to N_L \to C_{in} C_{out}`, and 'same' padding.
    :math:`\Phi` has :math:`3h + h(h+1) + N_L(h+1) + (N_L+1) C_{in} C_{out}`
    parameters (:math:`388 + 5\, C_{in} C_{out}` for :math:`h = 16, N_L = 4`)
    **whatever the kernel size**, so large kernels are cheap.

    Args:
        in_channels (int): Input channels :math:`C_{in}`.
        out_channels (int): Output channels :math:`C_{out}`.
        kernel_size (int or (int, int)): Odd kernel size.
        hidden_channels (int, optional): Width :math:`h` of :math:`\Phi`.
            (default: :obj:`16`)
        latent_channels (int, optional): Width :math:`N_L` of :math:`\Phi`'s
            last hidden layer. (default: :obj:`4`)
        bias (bool, optional): Whether to learn a (non-generated) bias
            :math:`\mathbf{b}`. (default: :obj:`True`)
        padding_mode (str, optional): Padding of the 'same' convolution:
            :obj:`"zeros"`, :obj:`"reflect"`, :obj:`"replicate"` or
            :obj:`"circular"`. (default: :obj:`"zeros"`)

    Shapes:
        - **input:** :math:`(B, C_{in}, H, W)`
        - **output:** :math:`(B, C_{out}, H, W)`
    """
    def __init__(self, in_channels: int, out_channels: int,
                 kernel_size: Union[int, Tuple[int, int]],
                 hidden_channels: int = 16, latent_channels: int = 4,
                 bias: bool = True, padding_mode: str = 'zeros'):
        super().__init__()
        check_positive_int('HyperConv2d', in_channels=in_channels,
                           out_channels=out_channels,
                           hidden_channels=hidden_channels,
                           latent_channels=latent_channels)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = check_kernel_size('HyperConv2d', kernel_size,
                                             odd=True)
        check_padding_mode('HyperConv2d', padding_mode)
        self.padding_mode = padding_mode
        self.hidden_channels = hidden_channels
        self.latent_channels = latent_channels
        self.register_buffer('coords', kernel_coordinates(self.kernel_size),
                             persistent=False)
        self.hypernet = torch.nn.Sequential(
            torch.nn.Linear(2, hidden_channels), torch.nn.LeakyReLU(0.1),
            torch.nn.Linear(hidden_channels, hidden_channels),
            torch.nn.LeakyReLU(0.1),
            torch.nn.Linear(hidden_channels, latent_channels),
            torch.nn.LeakyReLU(0.1),
            torch.nn.Linear(latent_channels, in_channels * out_channels))
        self.bias = torch.nn.Parameter(torch.empty(out_channels)) if bias \
            else None
        self.reset_parameters()

    @staticmethod
    def num_hyper_parameters(in_channels: int, out_channels: int,
                             hidden_channels: int = 16,
                             latent_channels: int = 4) -> int:
        r"""Parameters of :math:`\Phi` (without the bias), independent of the
        kernel size."""
        h, n = hidden_channels, latent_channels
        return 3 * h + h * (h + 1) + n * (h + 1) + (n + 1) * in_channels * \
            out_channels

    def reset_parameters(self):
        # He-normal as the official code, then one rescale of the output
        # layer so that the generated kernel has the He standard deviation
        # sqrt(2 / fan_in) of a regular conv; otherwise its scale depends on
        # the coordinate range, i.e. on the kernel size.
        for module in self.hypernet:
            if isinstance(module, torch.nn.Linear):
                torch.nn.init.kaiming_normal_(module.weight,
                                              nonlinearity='leaky_relu',
                                              a=0.1)
                torch.nn.init.zeros_(module.bias)
        last = self.hypernet[-1]
        he_std = math.sqrt(2.0 / (self.in_channels * self.kernel_size[0] *
                                  self.kernel_size[1]))
        with torch.no_grad():
            if self.kernel_size == (1, 1):
                # The only tap is (0, 0), where every hidden layer is zero
                # (zero biases), so the kernel is the output bias c_4: the
                # official code starts from an all-zero kernel here. Draw c_4
                # at the He scale instead.
                last.bias.normal_(0.0, he_std)
            else:
                last.weight.mul_(he_std / float(self._generate().std()))
        if self.bias is not None:
            torch.nn.init.zeros_(self.bias)

    def _generate(self) -> Tensor:
        kh, kw = self.kernel_size
        taps = self.hypernet(self.coords)  # [kh * kw, C_out * C_in]
        return taps.t().reshape(self.out_channels, self.in_channels, kh, kw)

    @property
    def weight(self) -> Tensor:
        r"""The generated kernel :math:`(C_{out}, C_{in}, k_h, k_w)`."""
        return self._generate()

    def forward(self, x: Tensor) -> Tensor:
        check_image('HyperConv2d', 'x', x, self.in_channels,
                    parameter_dtype(self))
        check_kernel_fits('HyperConv2d', self.kernel_size, *x.shape[-2:])
        ph, pw = self.kernel_size[0] // 2, self.kernel_size[1] // 2
        if self.padding_mode == 'zeros':
            return F.conv2d(x, self.weight, self.bias, padding=(ph, pw))
        x = F.pad(x, (pw, pw, ph, ph), mode=self.padding_mode)
        return F.conv2d(x, self.weight, self.bias)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'{self.out_channels}, kernel_size={self.kernel_size}, '
                f'hidden_channels={self.hidden_channels}, '
                f'latent_channels={self.latent_channels})')
