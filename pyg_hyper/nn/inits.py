"""Initializations taken from the official code of the papers we follow."""
import math
from typing import Optional

import torch


def glorot_linear_(lin: torch.nn.Module, fan_in: Optional[int] = None) -> None:
    r"""TensorFlow's default dense layer: Glorot-uniform weights
    (``variance_scaling_initializer(1.0, "fan_avg", "uniform")``, also
    ``xavier_initializer()``) and zero biases, as msgnet's and the IGN
    code's ``fully_connected`` layers start.

    Args:
        lin (torch.nn.Module): A linear layer with a :obj:`weight` of shape
            :obj:`[out, in]` and an optional :obj:`bias` (PyTorch's or
            PyG's).
        fan_in (int, optional): The input width of the whole matrix when
            :obj:`lin` is one block of a wider one (the bound is that of the
            whole matrix). (default: :obj:`None`: the layer's own)
    """
    fan_out, own_fan_in = lin.weight.shape
    fan_in = own_fan_in if fan_in is None else fan_in
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        lin.weight.uniform_(-bound, bound)
        if getattr(lin, 'bias', None) is not None:
            lin.bias.zero_()
