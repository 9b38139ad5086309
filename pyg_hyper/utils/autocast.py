"""Custom autograd Functions under :func:`torch.autocast`.

Autocast casts the inputs of torch's own operators, not those of a custom
:class:`torch.autograd.Function`: its forward would mix the dtypes of its
arguments, and its backward, which runs outside autocast, would meet a
lower-precision gradient beside full-precision saved tensors. Each of the
package's Functions is therefore applied through :func:`apply_autocast`.
"""
from typing import Any, Optional

import torch
from torch import Tensor

__all__ = ['apply_autocast']


def apply_autocast(function: Any, *args: Any,
                   dtype: Optional[torch.dtype] = None) -> Any:
    r"""Calls :obj:`function.apply(*args)`. Under :func:`torch.autocast`
    for the arguments' device, its floating-point tensor arguments are first
    cast to :obj:`dtype` (default: autocast's own lower-precision dtype, as
    for a matrix product; :obj:`torch.float32` for a Function that must run
    in full precision), and it runs with autocast off, so that forward and
    backward see one dtype. Without autocast it is a plain call.

    Args:
        function: A :class:`torch.autograd.Function` subclass.
        *args: Its arguments (tensors, :obj:`None` or other values).
        dtype (torch.dtype, optional): The dtype to run in under autocast.
            (default: :obj:`None`)
    """
    device = next(a.device.type for a in args if isinstance(a, Tensor))
    if not torch.is_autocast_enabled(device):
        return function.apply(*args)
    dtype = dtype or torch.get_autocast_dtype(device)
    cast = [a.to(dtype) if isinstance(a, Tensor) and a.is_floating_point()
            else a for a in args]
    with torch.autocast(device, enabled=False):
        return function.apply(*cast)
