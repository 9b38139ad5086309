from typing import Optional, Tuple, Union

import torch
from torch import Tensor

from torch_geometric.typing import Adj, OptTensor

from pyg_hyper.nn.conv.localized_conv import (
    LocalizedConv,
    finish,
    with_shared_docs,
)
from pyg_hyper.utils.checks import check_positive_int


@with_shared_docs
class LGCNConv(LocalizedConv):
    r"""The localized graph convolution (LGCN) from the `"Node-wise
    Localization of Graph Neural Networks"
    <https://arxiv.org/abs/2110.14322>`_ paper.

    A GCN layer whose shared weight is localized per target node and whose
    messages are localized per edge:

    .. math::
        \mathbf{x}^{\prime}_v = \sum_{u \in \mathcal{N}(v) \cup \{ v \}}
        \hat{A}_{vu} \Big( \boldsymbol{\gamma}_{vu} \odot
        (\mathbf{x}_u \mathbf{W}_v + \mathbf{b}) + \boldsymbol{\beta}_{vu}
        \Big) + \mathbf{b}^{\prime},

    with :math:`\hat{\mathbf{A}} = \mathbf{D}^{-1/2} (\mathbf{A} +
    \mathbf{I}) \mathbf{D}^{-1/2}`, node-level weights
    :math:`\mathbf{W}_v = \mathbf{W} \odot (\boldsymbol{\gamma}_v
    \mathbf{1}^{\top}) + \boldsymbol{\beta}_v \mathbf{1}^{\top}` from the
    context :math:`\mathbf{a}_v = \sum_u \hat{A}_{vu} \mathbf{x}_u`
    (:class:`~pyg_hyper.nn.NodeLocalization`) and edge-level
    :math:`\boldsymbol{\gamma}_{vu}, \boldsymbol{\beta}_{vu}`
    (:class:`~pyg_hyper.nn.EdgeLocalization`). :math:`\mathbf{W}_v` is never
    built: see :func:`~pyg_hyper.nn.localized_edge_transform`. With both
    levels off the layer equals :class:`~torch_geometric.nn.conv.GCNConv`,
    self loops included: a node keeps one, with the weight of a loop the
    graph already has (else 1), everywhere :math:`\hat{\mathbf{A}}` is used
    (GCNConv does so for :obj:`edge_index` input; for sparse adjacencies
    its own loop weights depend on the layout, while this layer keeps the
    existing weight for every layout).
    Activation and dropout belong to the model.

    The regularizer :math:`\mathrm{mean}((\boldsymbol{\gamma}-1)^2) +
    \mathrm{mean}(\boldsymbol{\beta}^2)` (summed over the active levels) is
    returned with :obj:`return_regularizer=True`, for the training loop to
    add with weight :math:`\lambda`.

    Args:
        in_channels (int): Size of each input sample.
        out_channels (int): Size of each output sample.
        {LOCALIZATION_LEVEL_ARGS}
        bias (bool, optional): Learn the additive bias
            :math:`\mathbf{b}^{\prime}`. (default: :obj:`True`)
        {LOCALIZED_CONV_ARGS}
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:**
          node features :math:`(|\mathcal{V}|, F_{in})`,
          edge indices :math:`(2, |\mathcal{E}|)` or a sparse adjacency,
          edge weights :math:`(|\mathcal{E}|)` *(optional)*
        - **output:** node features :math:`(|\mathcal{V}|, F_{out})`, and a
          scalar regularizer if :obj:`return_regularizer=True`
    """
    takes_edge_weight = True

    def __init__(self, in_channels: int, out_channels: int,
                 node_level: bool = True, edge_level: bool = True,
                 node_rank: Optional[int] = None,
                 localization_slope: float = 0.2,
                 sparse_input: Optional[bool] = None,
                 materialize: bool = False, bias: bool = True,
                 loc_init: str = 'glorot',
                 message_dropout: float = 0.0, weight_dropout: float = 0.0,
                 cached: bool = False, **kwargs):
        check_positive_int('LGCNConv', in_channels=in_channels,
                           out_channels=out_channels)
        super().__init__(in_channels, out_channels, node_level, edge_level,
                         node_rank, localization_slope, sparse_input,
                         materialize, loc_init=loc_init,
                         message_dropout=message_dropout,
                         weight_dropout=weight_dropout, cached=cached,
                         **kwargs)
        self.out_channels = out_channels
        if bias:
            self.bias = torch.nn.Parameter(torch.empty(out_channels))
        else:
            self.register_parameter('bias', None)
        self.reset_parameters()

    def reset_parameters(self):
        super().reset_parameters()
        if self.bias is not None:
            torch.nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, edge_index: Adj,
                edge_weight: OptTensor = None,
                return_regularizer: bool = False,
                reg_index: OptTensor = None,
                output_index: OptTensor = None
                ) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        r"""Runs the layer.

        Args:
            x (torch.Tensor): Node features.
            edge_index (torch.Tensor or SparseTensor): Edge indices or a
                (transposed) sparse adjacency.
            edge_weight (torch.Tensor, optional): Edge weights, with an
                :obj:`edge_index` tensor; a sparse adjacency holds its
                weights as its values. (default: :obj:`None`)
            {LOCALIZED_FORWARD_ARGS}
        """
        if self.aggregates_first(x):
            edges, reg_index = self.scope(x, edge_index, edge_weight,
                                          reg_index, output_index,
                                          return_regularizer)
            out, reg = self.aggregated_node_localized(
                x, edges, reg_index, return_regularizer)
        else:
            edges, loc = self.localize(x, edge_index, edge_weight, reg_index,
                                       output_index, return_regularizer)
            out = self.propagate(edges.edge_index,
                                 msg=self.drop_messages(loc.msg),
                                 norm=edges.norm, size=(x.size(0), x.size(0)))
            reg = loc.regularizer
        if self.bias is not None:
            out = out + self.bias
        return finish(out, reg, return_regularizer)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'{self.out_channels}, {self._levels_repr()})')
