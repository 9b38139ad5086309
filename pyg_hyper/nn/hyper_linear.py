r"""The factorized hypernetwork primitive shared by every hyper layer.

A hypernetwork emits, for every row :math:`n` (a node, an edge or a graph), a
conditioning vector :math:`\mathbf{z}_n \in \mathbb{R}^{r}` (its last hidden
layer). Its output layer :math:`(\mathbf{A}, \mathbf{B})` turns that vector
into the weight and bias of a linear map,

.. math::
    \mathbf{W}_n = \sum_{k=1}^{r} z_{n,k} \mathbf{A}_k + \mathbf{B}, \qquad
    \mathbf{b}_n = \sum_{k=1}^{r} z_{n,k} \mathbf{a}_k + \mathbf{b},

and the map is applied to the row's input :math:`\mathbf{x}_n`. Writing
:math:`\tilde{\mathbf{z}} = [\mathbf{z}, 1]` and
:math:`\tilde{\mathbf{x}} = [\mathbf{x}, 1]`,

.. math::
    \mathbf{y}_n = \mathbf{W}_n \mathbf{x}_n + \mathbf{b}_n
    = \mathbf{\Theta} \, \mathrm{vec}(\tilde{\mathbf{z}}_n \otimes
    \tilde{\mathbf{x}}_n),

with :math:`\mathbf{\Theta} \in \mathbb{R}^{F_{out} \times (r+1)(F_{in}+1)}`
holding :math:`\mathbf{A}, \mathbf{B}, \mathbf{a}, \mathbf{b}`. The right-hand
side is **one** dense matrix product over all rows and never builds the
:math:`N \times F_{out} \times F_{in}` weight tensor. Both sides cost the same
:math:`2 N (r+1)(F_{in}+1) F_{out}` FLOPs, but the factorized side keeps only
:math:`N (r+1)(F_{in}+1)` temporaries, which are recomputed in the backward
pass instead of being stored.
"""
from typing import Optional, Tuple

import math

import torch
from torch import Tensor
from torch.nn import Parameter

from pyg_hyper.utils.autocast import apply_autocast
from pyg_hyper.utils.checks import check_dtype, check_positive_int

__all__ = [
    'GENERATOR_INITS',
    'HyperLinear',
    'hyper_linear',
    'materialize_hyper_weight',
]


#: How :class:`HyperLinear` initializes the hypernetwork's output layer.
GENERATOR_INITS = ('uniform', 'zero')


def check_generator_init(owner: str, generator_init: str) -> None:
    if generator_init not in GENERATOR_INITS:
        raise ValueError(f"'{owner}' got unknown generator_init "
                         f"'{generator_init}' (expected one of "
                         f"{list(GENERATOR_INITS)})")


def generator_options_repr(generator_init: str,
                           normalize_code: bool) -> str:
    """The non-default generator options, as a hyper layer's repr shows
    them."""
    out = '' if generator_init == 'uniform' else (
        f', generator_init={generator_init}')
    return out + (', normalize_code=True' if normalize_code else '')


def _append_one(t: Tensor) -> Tensor:
    return torch.cat([t, t.new_ones(t.shape[:-1] + (1, ))], dim=-1)


def _outer(z1: Tensor, x1: Tensor) -> Tensor:
    # Row-wise outer product, flattened to match the (r+1, F_in+1) layout of
    # the weight's last dimension.
    if z1.device.type == 'cpu':
        # A rank-1 batched product: on the CPU, 2.6x faster than the
        # broadcast multiply (9 against 24 ms for 900 x 65 x 301), whose
        # inner loop runs over the short broadcast dimension.
        return torch.bmm(z1.unsqueeze(-1), x1.unsqueeze(-2)).flatten(-2)
    return (z1.unsqueeze(-1) * x1.unsqueeze(-2)).flatten(-2)


def _chunks(num_rows: int, chunk_size: Optional[int]):
    if chunk_size is None or chunk_size >= num_rows:
        yield 0, num_rows
        return
    for start in range(0, num_rows, chunk_size):
        yield start, min(start + chunk_size, num_rows)


class _FactorizedHyperLinear(torch.autograd.Function):
    """Saves only ``z`` and ``x`` for backward and recomputes the outer
    product there, so that a deep stack of hyper layers keeps O(N (r + F_in))
    activations per layer instead of O(N r F_in)."""
    @staticmethod
    def forward(z1: Tensor, x1: Tensor, weight: Tensor,
                chunk_size: Optional[int]) -> Tensor:
        if chunk_size is None:
            return _outer(z1, x1) @ weight.t()
        out = x1.new_empty(x1.size(0), weight.size(0))
        for start, end in _chunks(x1.size(0), chunk_size):
            out[start:end] = _outer(z1[start:end], x1[start:end]) @ weight.t()
        return out

    @staticmethod
    def setup_context(ctx, inputs, output):
        z1, x1, weight, chunk_size = inputs
        ctx.save_for_backward(z1, x1, weight)
        ctx.chunk_size = chunk_size

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        z1, x1, weight = ctx.saved_tensors
        r1, f1 = z1.size(-1), x1.size(-1)
        grad_z = grad_x = grad_w = None
        need_z, need_x, need_w = ctx.needs_input_grad[:3]
        if need_z:
            grad_z = torch.empty_like(z1)
        if need_x:
            grad_x = torch.empty_like(x1)
        for start, end in _chunks(x1.size(0), ctx.chunk_size):
            g = grad_out[start:end]
            z, x = z1[start:end], x1[start:end]
            if need_w:
                # The outer product is recomputed here and freed before
                # grad_outer exists, so the two never coexist.
                if grad_w is None:
                    grad_w = g.t() @ _outer(z, x)
                else:  # in place: chunking is there to save memory
                    grad_w.addmm_(g.t(), _outer(z, x))
            if need_z or need_x:
                grad_outer = (g @ weight).view(-1, r1, f1)
                if need_z:
                    grad_z[start:end] = (grad_outer @ x.unsqueeze(-1)).squeeze(-1)
                if need_x:
                    grad_x[start:end] = (z.unsqueeze(-2) @ grad_outer).squeeze(-2)
        return grad_z, grad_x, grad_w, None


def hyper_linear(x: Tensor, z: Tensor, weight: Tensor, bias: bool = True,
                 chunk_size: Optional[int] = None) -> Tensor:
    r"""Applies a per-row generated linear map in factorized form.

    Args:
        x (torch.Tensor): Inputs of shape :obj:`[N, F_in]`.
        z (torch.Tensor): Hypernetwork codes of shape :obj:`[N, r]`.
        weight (torch.Tensor): The hypernetwork's output layer of shape
            :obj:`[F_out, (r + 1) * (F_in + 1)]`, or
            :obj:`[F_out, (r + 1) * F_in]` if :obj:`bias=False`
            (see :class:`HyperLinear`).
        bias (bool, optional): Whether :obj:`weight` holds a generated bias.
            (default: :obj:`True`)
        chunk_size (int, optional): If set, works through at most this many
            rows at a time, bounding temporary memory by
            :obj:`chunk_size * (r + 1) * (F_in + 1)` values.
            (default: :obj:`None`)

    Returns:
        torch.Tensor: Outputs of shape :obj:`[N, F_out]`.
    """
    x1 = _append_one(x) if bias else x
    return apply_autocast(_FactorizedHyperLinear, _append_one(z), x1, weight,
                          chunk_size)


def materialize_hyper_weight(
        z: Tensor, weight: Tensor, in_channels: int,
        bias: bool = True) -> Tuple[Tensor, Optional[Tensor]]:
    r"""Builds the per-row weights :math:`\mathbf{W}_n` and biases
    :math:`\mathbf{b}_n` explicitly.

    This is the reference the factorized path is tested against, and what a
    naive hypernetwork implementation (and :class:`~torch_geometric.nn.conv.NNConv`)
    does. It costs :math:`N F_{out} F_{in}` memory.

    Args:
        z (torch.Tensor): Hypernetwork codes of shape :obj:`[N, r]`.
        weight (torch.Tensor): The hypernetwork's output layer, as in
            :func:`hyper_linear`.
        in_channels (int): :math:`F_{in}`, to unflatten :obj:`weight`.
        bias (bool, optional): Whether :obj:`weight` holds a generated bias
            (as it was built). (default: :obj:`True`)

    Returns:
        (torch.Tensor, torch.Tensor): Weights :obj:`[N, F_out, F_in]` and
        biases :obj:`[N, F_out]` (:obj:`None` if :obj:`bias=False`).
    """
    out_channels = weight.size(0)
    r1 = z.size(-1) + 1
    theta = weight.view(out_channels, r1, in_channels + int(bias))
    full = torch.einsum('nk,oki->noi', _append_one(z), theta)
    if not bias:
        return full, None
    return full[..., :in_channels], full[..., in_channels]


class HyperLinear(torch.nn.Module):
    r"""A linear map whose weight and bias are generated per row by the output
    layer of a hypernetwork (the hypernetwork layers of the `"Molecule
    Property Prediction and Classification with Graph Hypernetworks"
    <https://arxiv.org/abs/2002.00240>`_ paper by Nachmani & Wolf), applied
    in factorized form.

    .. math::
        \mathbf{y}_n = \Big(\sum_{k=1}^{r} z_{n,k}\mathbf{A}_k + \mathbf{B}\Big)
        \mathbf{x}_n + \sum_{k=1}^{r} z_{n,k}\mathbf{a}_k + \mathbf{b}

    computed as one matrix product on the row-wise outer products
    :math:`[\mathbf{z}_n, 1] \otimes [\mathbf{x}_n, 1]`, which is the same math
    as materializing :math:`\mathbf{W}_n` without ever storing the
    :math:`N \times F_{out} \times F_{in}` tensor.

    Args:
        in_channels (int): Size :math:`F_{in}` of each input row.
        out_channels (int): Size :math:`F_{out}` of each output row.
        hyper_channels (int): Size :math:`r` of the hypernetwork code
            :math:`\mathbf{z}`.
        bias (bool, optional): If set to :obj:`False`, no bias is generated.
            (default: :obj:`True`)
        chunk_size (int, optional): If set, rows are processed in chunks of
            this size to bound peak memory. (default: :obj:`None`)
        generator_init (str, optional): :obj:`"uniform"` draws every
            :math:`\mathbf{A}_k, \mathbf{B}` at the same scale, so the
            generated map is row-dependent from the start. :obj:`"zero"`
            sets :math:`\mathbf{A}_k, \mathbf{a}_k = 0` and gives
            :math:`\mathbf{B}, \mathbf{b}` :class:`torch.nn.Linear`'s
            initialization: the layer starts as one shared linear map and
            learns how its weights depend on the code (this package's
            choice, used by :class:`~pyg_hyper.vision.ConditionedSR`; not in
            Nachmani & Wolf). (default: :obj:`"uniform"`)
        normalize_code (bool, optional): If set to :obj:`True`, the code is
            divided by its width before the output layer,
            :math:`\mathbf{W}_n = \mathbf{B} + \frac{1}{r} \sum_k z_{n,k}
            \mathbf{A}_k`, and likewise :math:`\mathbf{b}_n = \mathbf{b} +
            \frac{1}{r} \sum_k z_{n,k} \mathbf{a}_k`. The functions are the same; the training
            dynamics are not: Adam moves every :math:`\mathbf{A}_k` by about
            the learning rate per step whatever its gradient's scale, so the
            sum moves :math:`\mathbf{W}_n` up to :math:`1 + \lVert
            \mathbf{z}_n \rVert_1` times as fast as a plain weight, and the
            mean about twice as fast at most (not in Nachmani & Wolf).
            (default: :obj:`False`)

    Shapes:
        - **input:** rows :math:`(N, F_{in})`, codes :math:`(N, r)`
        - **output:** rows :math:`(N, F_{out})`
    """
    def __init__(self, in_channels: int, out_channels: int,
                 hyper_channels: int, bias: bool = True,
                 chunk_size: Optional[int] = None,
                 generator_init: str = 'uniform',
                 normalize_code: bool = False):
        super().__init__()
        check_generator_init(self.__class__.__name__, generator_init)
        check_positive_int(self.__class__.__name__, in_channels=in_channels,
                           out_channels=out_channels,
                           hyper_channels=hyper_channels)
        if chunk_size is not None and (
                not isinstance(chunk_size, int) or isinstance(chunk_size, bool)
                or chunk_size < 1):
            raise ValueError(f"'chunk_size' must be a positive integer or "
                             f"None (got {chunk_size!r})")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.hyper_channels = hyper_channels
        self.bias = bias
        self.chunk_size = chunk_size
        self.generator_init = generator_init
        self.normalize_code = normalize_code
        self.weight = Parameter(
            torch.empty(out_channels,
                        (hyper_channels + 1) * (in_channels + int(bias))))
        self.reset_parameters()

    def reset_parameters(self):
        r"""Initializes :math:`\mathbf{A}_k, \mathbf{B}` so that the generated
        weight has the scale of a default :class:`torch.nn.Linear` weight when
        the code entries are :math:`\mathcal{O}(1)` (as after :obj:`tanh`);
        see :obj:`generator_init`."""
        if self.generator_init == 'zero':
            theta = self.weight.data.view(self.out_channels,
                                          self.hyper_channels + 1, -1)
            theta.zero_()
            bound = 1.0 / math.sqrt(self.in_channels)
            theta[:, -1].uniform_(-bound, bound)  # the shared B, b
            return
        bound = 1.0 / math.sqrt(self.in_channels * (self.hyper_channels + 1))
        torch.nn.init.uniform_(self.weight, -bound, bound)

    def forward(self, x: Tensor, z: Tensor, materialize: bool = False) -> Tensor:
        r"""Applies the generated map.

        Args:
            x (torch.Tensor): Inputs :obj:`[N, in_channels]`.
            z (torch.Tensor): Hypernetwork codes :obj:`[N, hyper_channels]`.
            materialize (bool, optional): If set to :obj:`True`, builds the
                per-row weights explicitly (the slow reference path).
                (default: :obj:`False`)
        """
        if x.dim() != 2 or x.size(-1) != self.in_channels:
            raise ValueError(f"Expected input of shape [N, {self.in_channels}] "
                             f"in '{self.__class__.__name__}' "
                             f"(got {list(x.shape)})")
        if z.dim() != 2 or z.size(-1) != self.hyper_channels:
            raise ValueError(f"Expected hypernetwork codes of shape "
                             f"[N, {self.hyper_channels}] in "
                             f"'{self.__class__.__name__}' "
                             f"(got {list(z.shape)})")
        if z.size(0) != x.size(0):
            raise ValueError(f"Inputs and hypernetwork codes must have the "
                             f"same number of rows in "
                             f"'{self.__class__.__name__}' (got {x.size(0)} "
                             f"and {z.size(0)})")
        check_dtype(self.__class__.__name__, 'x', x, self.weight.dtype)
        check_dtype(self.__class__.__name__, 'z', z, self.weight.dtype)
        if self.normalize_code:
            z = z / self.hyper_channels
        if materialize:
            w, b = materialize_hyper_weight(z, self.weight, self.in_channels,
                                            self.bias)
            out = (w @ x.unsqueeze(-1)).squeeze(-1)
            return out if b is None else out + b
        return hyper_linear(x, z, self.weight, self.bias, self.chunk_size)

    def extra_repr(self) -> str:
        return (f'{self.in_channels}, {self.out_channels}, '
                f'hyper_channels={self.hyper_channels}, bias={self.bias}'
                + generator_options_repr(self.generator_init,
                                         self.normalize_code))
