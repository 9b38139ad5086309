r"""Convolutions with generated (per-sample or per-patch) kernels.

Every dynamic convolution in :mod:`pyg_hyper.vision` reduces to the same
trick: fold the batch (or the patches) into the channel dimension and run
**one** grouped :func:`torch.nn.functional.conv2d`, so that sample :math:`b`
only meets its own kernel :math:`\mathbf{W}_b`,

.. math::
    \mathbf{Y}_b = \mathbf{W}_b \star \mathbf{X}_b, \qquad b = 1, \dots, B.

There is no Python loop over samples or patches; the slow loops live in the
tests as references.
"""
from typing import Optional, Tuple, Union

import torch.nn.functional as F
from torch import Tensor

from pyg_hyper.utils.checks import check_image

__all__ = [
    'batched_conv2d',
    'depthwise_batched_conv2d',
]

Padding = Union[int, Tuple[int, int], str]


def batched_conv2d(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None,
                   padding: Padding = 0, groups: int = 1) -> Tensor:
    r"""Convolves every sample with its own kernel (cross-correlation, as
    :func:`torch.nn.functional.conv2d`).

    Args:
        x (torch.Tensor): Inputs :obj:`[B, C_in, H, W]`.
        weight (torch.Tensor): One kernel per sample,
            :obj:`[B, C_out, C_in // groups, k_h, k_w]`.
        bias (torch.Tensor, optional): One bias per sample :obj:`[B, C_out]`.
            (default: :obj:`None`)
        padding (int or tuple or str, optional): Zero padding as in
            :func:`~torch.nn.functional.conv2d`. (default: :obj:`0`)
        groups (int, optional): Channel groups *within* a sample.
            (default: :obj:`1`)

    Returns:
        torch.Tensor: :obj:`[B, C_out, H_out, W_out]`.
    """
    check_image('batched_conv2d', 'x', x)
    b, c, h, w = x.shape
    # Folded into one grouped conv, a wrong batch or channel size surfaces
    # as a groups error about the folded shapes, naming neither argument.
    if c % groups:
        raise ValueError(f"'batched_conv2d' needs the {c} channels of 'x' "
                         f"to be divisible by groups ({groups})")
    if (weight.dim() != 5 or weight.size(0) != b
            or weight.size(2) != c // groups or weight.size(1) % groups):
        raise ValueError(f"'batched_conv2d' expected 'weight' of shape "
                         f"[B, C_out, C_in // groups, k_h, k_w] = "
                         f"[{b}, C_out, {c // groups}, k_h, k_w], C_out "
                         f"divisible by groups ({groups}) "
                         f"(got {list(weight.shape)})")
    c_out = weight.size(1)
    if bias is not None and tuple(bias.shape) != (b, c_out):
        raise ValueError(f"'batched_conv2d' expected 'bias' of shape "
                         f"[B, C_out] = {[b, c_out]} (got {list(bias.shape)})")
    out = F.conv2d(
        x.reshape(1, b * c, h, w),
        weight.reshape(b * c_out, *weight.shape[2:]),
        None if bias is None else bias.reshape(b * c_out),
        padding=padding,
        groups=b * groups,
    )
    return out.view(b, c_out, *out.shape[-2:])


def depthwise_batched_conv2d(x: Tensor, kernel: Tensor,
                             padding: Padding = 0) -> Tensor:
    r"""Convolves every channel of sample :math:`b` with the same 2-D kernel
    :math:`\mathbf{K}_b` (the dynamic layers of Klein et al. and De Brabandere
    et al. filter an image, not a feature stack).

    Args:
        x (torch.Tensor): Inputs :obj:`[B, C, H, W]`.
        kernel (torch.Tensor): One kernel per sample :obj:`[B, k_h, k_w]`.
        padding (int or tuple or str, optional): Zero padding.
            (default: :obj:`0`)

    Returns:
        torch.Tensor: :obj:`[B, C, H_out, W_out]`.
    """
    check_image('depthwise_batched_conv2d', 'x', x)
    b, c = x.shape[:2]
    if kernel.dim() != 3 or kernel.size(0) != b:
        raise ValueError(f"'depthwise_batched_conv2d' expected 'kernel' of "
                         f"shape [B, k_h, k_w] = [{b}, k_h, k_w] "
                         f"(got {list(kernel.shape)})")
    weight = kernel[:, None, None].expand(b, c, 1, *kernel.shape[-2:])
    return batched_conv2d(x, weight, padding=padding, groups=c)
