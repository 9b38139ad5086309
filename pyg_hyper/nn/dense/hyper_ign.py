r"""The Hyper-IGN layer: an equivariant 2-to-2 layer whose basis
coefficients are generated per graph by a hypernetwork."""
from typing import List, Optional, Tuple, Union

import torch
from torch import Tensor
from torch.nn import Parameter

from pyg_hyper.nn.dense.ign import (
    add_bias_and_mask,
    apply_blocks,
    apply_equivariant_2_to_2,
    coefficient_block_index,
    coefficient_block_shapes,
    dense_reductions,
    DenseLayer,
    DenseReductions,
    equivariant_basis_2_to_2,
    init_coefficients,
    mask_padding,
    NUM_BASIS_2_TO_2,
)
from pyg_hyper.nn.hypernetwork import FirstMessageCombiner, HyperNetwork
from pyg_hyper.nn.hyper_linear import (
    check_generator_init,
    generator_options_repr,
)
from pyg_hyper.utils.checks import (
    check_dense_input,
    check_dtype,
    parameter_dtype,
)

__all__ = [
    'graph_invariants',
    'invariants_from_reductions',
    'HyperEquivariant2to2',
]


def graph_invariants(x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
    r"""The hypernetwork's view of a representation: the mean of the
    diagonal and the mean of the off-diagonal entries of every channel,
    :obj:`[B, 2D]`. Means (not sums or maxima) keep the input of the
    :obj:`tanh` network on the same scale for small and large graphs."""
    return invariants_from_reductions(dense_reductions(x, mask,
                                                       with_full=False))


def invariants_from_reductions(red: DenseReductions) -> Tensor:
    r""":func:`graph_invariants` from already computed reductions (the
    trace and total sum), without another pass over the tensor."""
    trace_n, total_n2 = red.scalar.chunk(2, dim=1)
    n = red.num_nodes.unsqueeze(-1)
    off_sum = total_n2 * n * n - trace_n * n
    # A single-node graph has no off-diagonal entries: its mean is 0.
    off_mean = off_sum / (n * (n - 1)).clamp(min=1)
    return torch.cat([trace_n, off_mean], dim=1)


def _with_code(t: Tensor, z1: Tensor, groups: int) -> Tensor:
    # t: [B, groups * D, ...] -> [B, groups * R * D, ...] holding
    # z1[b, k] * t[b, g * D + d] at channel (g * R + k) * D + d, the layout
    # that `weight.view(R * D, S, 15)` contracts against.
    B, R = z1.shape
    t = t.unflatten(1, (groups, -1)).unsqueeze(2)
    z = z1.view((B, 1, R, 1) + (1, ) * (t.dim() - 4))
    return (z * t).flatten(1, 3)


class HyperEquivariant2to2(DenseLayer):
    r"""The equivariant 2-to-2 layer of IGN with per-graph generated basis
    coefficients, the Hyper-IGN layer of the `"Molecule Property Prediction
    and Classification with Graph Hypernetworks"
    <https://arxiv.org/abs/2002.00240>`_ paper.

    A hypernetwork :math:`f` (tanh MLP) reads invariants of the current
    representation together with those of the first one and emits a code
    per graph,

    .. math::
        \mathbf{u} = [\mathbf{p}(\mathbf{X}) \,\Vert\, \mathbf{p}(\mathbf{X}^{(0)})]
        \ \text{or}\ c\,\mathbf{p}(\mathbf{X}^{(0)}) + (1-c)\,\mathbf{p}(\mathbf{X}),
        \qquad \mathbf{z} = f(\mathbf{u}) \in \mathbb{R}^r,

    with :math:`\mathbf{p}` the per-channel means of the diagonal and the
    off-diagonal entries (:func:`graph_invariants`). The code generates the
    15 basis coefficients of every channel pair, affinely as in every
    :mod:`pyg_hyper` hyper layer,

    .. math::
        w_{d,s,b}(\mathbf{z}) = \sum_{k=1}^{r} z_k\, \theta_{k,d,s,b}
        + \theta_{r+1,d,s,b},
        \qquad
        \mathbf{Y}_s = \sum_{d,b} w_{d,s,b}(\mathbf{z})\, L_b(\mathbf{X}_d)
        + \beta_s \mathbf{1}\mathbf{1}^\top + \gamma_s \mathbf{I}.

    (:obj:`weight[:r]` holds :math:`\theta_1, \dots, \theta_r` and
    :obj:`weight[r]` the constant term :math:`\theta_{r+1}`.) Because one
    code serves all entries of a graph, the layer stays
    permutation-equivariant. The output is bilinear in :math:`[\mathbf{z},1]`
    and the basis responses, so it can be evaluated three ways, all equal:

    * :obj:`factorized=False` (default): the per-graph coefficients are
      generated once per graph (one :math:`[B, r+1] \times [r+1, 15DS]`
      matrix product, directly in the block layout of the contraction) and
      contracted like the plain layer. A code is shared by all :math:`n^2`
      entries of its graph, so generating costs :math:`(r+1) \cdot 15DS`
      FLOPs per graph against the layer's :math:`\mathcal{O}(n^2 DS)`, and
      the :math:`15DS` coefficients per graph are fewer than the
      :math:`S n^2` outputs once :math:`n^2 > 15D`.
    * :obj:`factorized=True`: no coefficient tensor is formed. The reduced
      quantities of :math:`\mathbf{X}` (see
      :class:`~pyg_hyper.nn.dense.Equivariant2to2`) are multiplied by
      :math:`[\mathbf{z},1]` and contracted with :math:`\theta` as one plain
      equivariant layer with :math:`(r+1)D` input channels. This is the
      per-row factorization of :class:`~pyg_hyper.nn.HyperLinear`, which
      wins when every *row* has its own code; here every entry of a graph
      shares one, and the factorization costs :math:`(r+1)\times` the
      plain layer's FLOPs and :math:`[\mathbf{z},1] \otimes \mathbf{X}`
      temporaries (``benchmarks/bench_ign.py`` measured 1.0 - 7.2x the
      plain layer's time and 9.3 - 9.6x its peak memory on an H100, and
      9.1 - 18.6x its time and 10.2 - 11.8x its peak memory on one CPU
      thread, ``benchmarks/results/bench_ign_{cuda,cpu}.json``). Kept for
      comparison and tests.
    * :obj:`materialize=True`: the coefficients :math:`[B, D, S, 15]` are
      contracted with the stacked 15 basis responses, the direct form of
      the equations (slow, the reference for tests).

    Choices where the paper is silent, and why:

    * The code is per graph (not per entry): per-entry coefficients would
      break equivariance unless generated from equivariant features, and
      the predecessor code (HyperNetworkDecoder) generates per sample.
    * The hypernetwork reads pooled invariants, the only permutation-
      invariant summary of a second-order tensor that a plain MLP can take.
    * The first representation is the model's input tensor, and the first
      layer uses its own invariants; the biases :math:`\beta, \gamma` are
      ordinary parameters.

    Args:
        in_channels (int): Number of input channels :math:`D`.
        out_channels (int): Number of output channels :math:`S`.
        hyper_channels (int, optional): Width :math:`r` of the hypernetwork
            and of its code. (default: :obj:`16`)
        first_channels (int, optional): Channels of the first
            representation. (default: :obj:`in_channels`)
        combine (str, optional): :obj:`"concat"` or :obj:`"convex"`.
            (default: :obj:`"concat"`)
        hyper_layers (int, optional): Hidden layers of :math:`f`.
            (default: :obj:`2`)
        bias (bool, optional): Learn the all-entries and diagonal biases.
            (default: :obj:`True`)
        factorized (bool, optional): Apply the generated coefficients without
            forming them (see above). (default: :obj:`False`)
        materialize (bool, optional): Use the direct reference form.
            (default: :obj:`False`)
        generator_init (str, optional): :obj:`"uniform"` spreads the official
            initialization's variance over all :math:`r + 1` terms of a
            generated coefficient. :obj:`"zero"` starts the code-dependent
            terms at zero and gives the constant term the official
            :math:`\mathcal{N}(0, 2 / (D + S))`, so the layer starts as an
            :class:`~pyg_hyper.nn.dense.Equivariant2to2` layer (as
            :class:`~pyg_hyper.nn.HyperLinear`'s :obj:`generator_init`).
            (default: :obj:`"uniform"`)
        normalize_code (bool, optional): Divide the code by its width
            before it meets :math:`\boldsymbol\Theta`, so that Adam moves
            the generated coefficients about as fast as plain ones (see
            :class:`~pyg_hyper.nn.HyperLinear`). (default: :obj:`False`)

    Shapes:
        - **input:** tensors :math:`(B, D, m, m)`, node mask :math:`(B, m)`
          *(optional)*, first invariants :math:`(B, 2 D_0)` *(optional)*
        - **output:** tensors :math:`(B, S, m, m)`, zero outside the mask;
          with :obj:`return_invariants=True` also the invariants
          :math:`(B, 2D)` the hypernetwork read
    """
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hyper_channels: int = 16,
        first_channels: Optional[int] = None,
        combine: str = 'concat',
        hyper_layers: int = 2,
        bias: bool = True,
        factorized: bool = False,
        materialize: bool = False,
        generator_init: str = 'uniform',
        normalize_code: bool = False,
    ):
        super().__init__(in_channels, out_channels,
                         ('all_bias', 'diag_bias'), bias)
        check_generator_init(self.__class__.__name__, generator_init)
        self.generator_init = generator_init
        self.normalize_code = normalize_code
        self.hyper_channels = hyper_channels
        self.first_channels = first_channels or in_channels
        self.factorized = factorized
        self.materialize = materialize
        self.combiner = FirstMessageCombiner(2 * in_channels,
                                             2 * self.first_channels, combine)
        self.hyper = HyperNetwork(self.combiner.out_channels, hyper_channels,
                                  hyper_layers)
        # theta[k] for k < r multiplies z_k; theta[r] is the constant part,
        # matching the [z, 1] layout of pyg_hyper.nn.HyperLinear.
        self.weight = Parameter(
            torch.empty(hyper_channels + 1, in_channels, out_channels,
                        NUM_BASIS_2_TO_2))
        # The three blocks' positions back to back: one gather per call.
        self.register_buffer('_block_index', torch.cat(
            coefficient_block_index(in_channels, out_channels)),
            persistent=False)
        self.reset_parameters()

    def reset_parameters(self):
        self.combiner.reset_parameters()
        self.hyper.reset_parameters()
        if self.generator_init == 'zero':
            with torch.no_grad():
                self.weight[:-1].zero_()
            init_coefficients(self.weight[-1], self.in_channels,
                              self.out_channels)
        else:
            # Spread the official N(0, 2 / (D + S)) variance over the r + 1
            # terms of a generated coefficient (tanh codes are O(1)).
            init_coefficients(self.weight, self.in_channels,
                              self.out_channels, fan=self.hyper_channels + 1)
        self.reset_biases()

    def code(self, red: DenseReductions,
             first: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        r"""Returns the per-graph code :math:`[\mathbf{z}, 1]` :obj:`[B, r+1]`
        and the invariants :obj:`[B, 2D]` of the tensor reduced to
        :obj:`red` (see :func:`~pyg_hyper.nn.dense.ign.dense_reductions`)."""
        name = self.__class__.__name__
        inv = invariants_from_reductions(red)
        B = inv.size(0)
        if first is None:
            if self.first_channels != self.in_channels:
                raise ValueError(f"'{name}' was built with 'first_channels="
                                 f"{self.first_channels}' and needs 'first' "
                                 f"of shape [{B}, "
                                 f"{2 * self.first_channels}]")
            first = inv
        elif first.dim() != 2 or tuple(first.shape) != (
                B, 2 * self.first_channels):
            raise ValueError(f"'{name}' expected 'first' invariants of shape "
                             f"[{B}, {2 * self.first_channels}] "
                             f"(got {list(first.shape)})")
        else:
            check_dtype(name, 'first', first, parameter_dtype(self.hyper))
        z = self.hyper(self.combiner(inv, first))
        if self.normalize_code:
            z = z / self.hyper_channels
        return torch.cat([z, z.new_ones(z.size(0), 1)], dim=-1), inv

    def coefficients(self, z1: Tensor) -> Tensor:
        r"""The generated coefficients :obj:`[B, D, S, 15]` for codes
        :math:`[\mathbf{z}, 1]` :obj:`[B, r+1]`."""
        theta = self.weight.flatten(1)
        return (z1 @ theta).view((-1, ) + self.weight.shape[1:])

    def generated_blocks(self, z1: Tensor) -> List[Tensor]:
        r"""The per-graph coefficients for codes :math:`[\mathbf{z}, 1]`
        :obj:`[B, r+1]` in the block layout of
        :func:`~pyg_hyper.nn.dense.ign.coefficient_blocks`, :obj:`[B, K, S']`
        each, as transposed views of output-major tensors: the batched
        contraction reads them without a copy and its gradient flows back
        without one. One gather, from the :obj:`[B, 15DS]` coefficients or
        from :math:`\Theta` :obj:`[r+1, 15DS]`, whichever is smaller."""
        theta = self.weight.flatten(1)
        index = self._block_index
        if z1.size(0) <= theta.size(0):
            flat = (z1 @ theta).index_select(1, index)
        else:
            flat = z1 @ theta.index_select(1, index)
        shapes = coefficient_block_shapes(self.in_channels,
                                          self.out_channels)
        return [block.view(-1, s, k).transpose(1, 2) for block, (s, k) in
                zip(flat.split([s * k for s, k in shapes], dim=1), shapes)]

    def forward(
        self,
        x: Tensor,
        mask: Optional[Tensor] = None,
        first: Optional[Tensor] = None,
        return_invariants: bool = False,
    ) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        r"""Applies the layer.

        Args:
            x (torch.Tensor): Second-order tensors :obj:`[B, D, m, m]`.
            mask (torch.BoolTensor, optional): Node mask :obj:`[B, m]`.
            first (torch.Tensor, optional): Invariants of the first
                representation :obj:`[B, 2 * first_channels]`; if :obj:`None`
                this layer is the first and uses its own.
            return_invariants (bool, optional): Also return the invariants of
                :obj:`x`, for a model to pass on as :obj:`first`.
                (default: :obj:`False`)
        """
        check_dense_input(self.__class__.__name__, x, mask, self.in_channels,
                          next(self.parameters()).dtype)
        red = dense_reductions(x, mask)
        z1, inv = self.code(red, first)
        biases = (self.all_bias, self.diag_bias)
        if self.materialize:
            out = add_bias_and_mask(
                torch.einsum('bdsc,bdcij->bsij', self.coefficients(z1),
                             equivariant_basis_2_to_2(x, mask)),
                *biases, red.mask2d)
        elif self.factorized:
            red_z = red._replace(full=_with_code(red.full, z1, 2),
                                 vec=_with_code(red.vec, z1, 3),
                                 scalar=_with_code(red.scalar, z1, 2))
            out = mask_padding(apply_equivariant_2_to_2(
                red_z, self.weight.flatten(0, 1), *biases), red.mask2d)
        else:
            out = mask_padding(apply_blocks(red, self.generated_blocks(z1),
                                            self.out_channels, *biases),
                               red.mask2d)
        if return_invariants:
            return out, inv
        return out

    def __repr__(self) -> str:
        init = generator_options_repr(self.generator_init,
                                      self.normalize_code)
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'{self.out_channels}, hyper_channels={self.hyper_channels}, '
                f'combine={self.combiner.mode}{init})')
