from typing import Optional, Tuple, Union

import torch
from torch import Tensor

from torch_geometric.typing import Adj, OptTensor
from torch_geometric.nn.inits import reset

from pyg_hyper.nn.conv.localized_conv import (
    LocalizedConv,
    finish,
    with_shared_docs,
)
from pyg_hyper.utils.checks import check_positive_int


@with_shared_docs
class LGINConv(LocalizedConv):
    r"""The localized graph isomorphism operator (LGIN) from the `"Node-wise
    Localization of Graph Neural Networks"
    <https://arxiv.org/abs/2110.14322>`_ paper.

    GIN with a 2-layer MLP whose first linear map is localized. Because that
    map is linear, applying it to the GIN sum equals summing localized
    messages:

    .. math::
        \mathbf{x}^{\prime}_v = \mathbf{W}_2 \, \mathrm{ReLU} \Big(
        (1 + \epsilon) \mathbf{m}_{vv} + \sum_{u \in \mathcal{N}(v)}
        \mathbf{m}_{vu} + \mathbf{b}_1 \Big) + \mathbf{b}_2, \qquad
        \mathbf{m}_{vu} = \boldsymbol{\gamma}_{vu} \odot
        (\mathbf{x}_u \mathbf{W}_v + \mathbf{b}) + \boldsymbol{\beta}_{vu},

    with :math:`\mathbf{W}_v`, :math:`\boldsymbol{\gamma}_{vu}`,
    :math:`\boldsymbol{\beta}_{vu}` as in :class:`LGCNConv` (the context uses
    :math:`\hat{\mathbf{A}}`). With both levels off the layer equals
    :class:`~torch_geometric.nn.conv.GINConv` with the MLP
    ``Linear -> ReLU -> Linear``; like GINConv it sums a self loop of the
    graph's own as a neighbour (it also counts in :math:`\mathbf{A}` of the
    context's :math:`\hat{\mathbf{A}}`).

    Args:
        in_channels (int): Size of each input sample.
        out_channels (int): Size of each output sample.
        hidden_channels (int, optional): Hidden width of the MLP.
            (default: :obj:`out_channels`)
        eps (float, optional): (Initial) :math:`\epsilon`-value.
            (default: :obj:`0.`)
        train_eps (bool, optional): If set to :obj:`True`, :math:`\epsilon`
            will be a trainable parameter. (default: :obj:`False`)
        {LOCALIZATION_LEVEL_ARGS}
        {LOCALIZED_CONV_ARGS}
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:**
          node features :math:`(|\mathcal{V}|, F_{in})`,
          edge indices :math:`(2, |\mathcal{E}|)` or a sparse adjacency
        - **output:** node features :math:`(|\mathcal{V}|, F_{out})`, and a
          scalar regularizer if :obj:`return_regularizer=True`
    """
    # GINConv sums an input self loop as a neighbour, beside (1 + eps) x_v.
    merges_self_loops = False

    def __init__(self, in_channels: int, out_channels: int,
                 hidden_channels: Optional[int] = None, eps: float = 0.,
                 train_eps: bool = False, node_level: bool = True,
                 edge_level: bool = True, node_rank: Optional[int] = None,
                 localization_slope: float = 0.2,
                 sparse_input: Optional[bool] = None,
                 materialize: bool = False, loc_init: str = 'glorot',
                 message_dropout: float = 0.0, weight_dropout: float = 0.0,
                 cached: bool = False, **kwargs):
        check_positive_int('LGINConv', in_channels=in_channels,
                           out_channels=out_channels)
        if hidden_channels is not None:
            check_positive_int('LGINConv', hidden_channels=hidden_channels)
        hidden = hidden_channels or out_channels
        super().__init__(in_channels, hidden, node_level, edge_level,
                         node_rank, localization_slope, sparse_input,
                         materialize, loc_init=loc_init,
                         message_dropout=message_dropout,
                         weight_dropout=weight_dropout, cached=cached,
                         **kwargs)
        self.out_channels = out_channels
        self.hidden_channels = hidden
        self.initial_eps = eps
        if train_eps:
            self.eps = torch.nn.Parameter(torch.empty(1))
        else:
            self.register_buffer('eps', torch.empty(1))
        self.bias1 = torch.nn.Parameter(torch.empty(hidden))
        self.lin2 = torch.nn.Linear(hidden, out_channels)
        self.reset_parameters()

    def reset_parameters(self):
        super().reset_parameters()
        self.eps.data.fill_(self.initial_eps)
        torch.nn.init.zeros_(self.bias1)
        reset(self.lin2)

    def forward(self, x: Tensor, edge_index: Adj,
                return_regularizer: bool = False,
                reg_index: OptTensor = None,
                output_index: OptTensor = None
                ) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        r"""Runs the layer.

        Args:
            x (torch.Tensor): Node features.
            edge_index (torch.Tensor or SparseTensor): Edge indices or a
                (transposed) sparse adjacency.
            {LOCALIZED_FORWARD_ARGS}
        """
        edges, loc = self.localize(x, edge_index, None, reg_index,
                                   output_index, return_regularizer)
        num_nodes = x.size(0)  # after localize(), which checks x
        # GIN sums neighbours with weight 1 and the node itself with 1 + eps
        # (the appended self loops); the context alone uses Ahat.
        coef = torch.ones_like(edges.norm)
        is_loop = torch.arange(coef.numel(), device=coef.device) >= \
            edges.num_loops_start
        coef = torch.where(is_loop, 1 + self.eps, coef)
        out = self.propagate(edges.edge_index,
                             msg=self.drop_messages(loc.msg),
                             norm=coef, size=(num_nodes, num_nodes))
        if output_index is None:
            out = self.lin2(torch.relu(out + self.bias1))
        else:  # the MLP of the computed rows only; the others stay zero
            rows = self.lin2(torch.relu(out.index_select(0, output_index) +
                                        self.bias1))
            out = rows.new_zeros(num_nodes, rows.size(-1)).index_copy(
                0, output_index, rows)
        return finish(out, loc.regularizer, return_regularizer)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'{self.out_channels}, '
                f'hidden_channels={self.hidden_channels}, '
                f'train_eps={isinstance(self.eps, torch.nn.Parameter)}, '
                f'{self._levels_repr()})')
