from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from torch_geometric.nn.inits import glorot
from torch_geometric.typing import Adj, OptTensor
from torch_geometric.utils import softmax

from pyg_hyper.nn.conv.localized_conv import (
    LocalizedConv,
    finish,
    with_shared_docs,
)
from pyg_hyper.utils.checks import check_positive_int


@with_shared_docs
class LGATConv(LocalizedConv):
    r"""The localized graph attention operator (LGAT) from the `"Node-wise
    Localization of Graph Neural Networks"
    <https://arxiv.org/abs/2110.14322>`_ paper.

    Localization acts *inside* attention: the attention scores are computed
    from the localized messages,

    .. math::
        \mathbf{m}_{vu} &= \boldsymbol{\gamma}_{vu} \odot
            (\mathbf{x}_u \mathbf{W}_v + \mathbf{b}) + \boldsymbol{\beta}_{vu},
        \qquad \mathbf{z}_v = \mathbf{x}_v \mathbf{W}_v,

        \alpha_{vu} &= \mathrm{softmax}_{u \in \mathcal{N}(v) \cup \{v\}}
            \Big( \mathrm{LeakyReLU}\big(\mathbf{a}_s^{\top} \mathbf{m}_{vu}
            + \mathbf{a}_t^{\top} \mathbf{z}_v\big) \Big),

        \mathbf{x}^{\prime}_v &= \sum_{u \in \mathcal{N}(v) \cup \{v\}}
            \alpha_{vu} \mathbf{m}_{vu} + \mathbf{b}^{\prime},

    per head (heads concatenated or averaged), with :math:`\mathbf{W}_v`,
    :math:`\boldsymbol{\gamma}_{vu}`, :math:`\boldsymbol{\beta}_{vu}` as in
    :class:`LGCNConv` (the context uses :math:`\hat{\mathbf{A}}`). With both
    levels off the layer equals :class:`~torch_geometric.nn.conv.GATConv`,
    self loops included: a loop the graph already has merges into the one
    the layer adds (with :obj:`return_attention_weights=True` it is listed
    with weight 0).

    Args:
        in_channels (int): Size of each input sample.
        out_channels (int): Size of each output sample per head.
        heads (int, optional): Number of attention heads.
            (default: :obj:`1`)
        concat (bool, optional): Concatenate the heads (else average).
            (default: :obj:`True`)
        negative_slope (float, optional): LeakyReLU slope of the attention.
            (default: :obj:`0.2`)
        dropout (float, optional): Dropout on the attention coefficients.
            (default: :obj:`0.`)
        {LOCALIZATION_LEVEL_ARGS}
        bias (bool, optional): Learn the additive bias
            :math:`\mathbf{b}^{\prime}`. (default: :obj:`True`)
        {LOCALIZED_CONV_ARGS}
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:**
          node features :math:`(|\mathcal{V}|, F_{in})`,
          edge indices :math:`(2, |\mathcal{E}|)` or a sparse adjacency
        - **output:** node features :math:`(|\mathcal{V}|, H \cdot F_{out})`
          (:math:`(|\mathcal{V}|, F_{out})` if :obj:`concat=False`), and a
          scalar regularizer if :obj:`return_regularizer=True`
    """
    def __init__(self, in_channels: int, out_channels: int, heads: int = 1,
                 concat: bool = True, negative_slope: float = 0.2,
                 dropout: float = 0.0, node_level: bool = True,
                 edge_level: bool = True, node_rank: Optional[int] = None,
                 localization_slope: float = 0.2,
                 sparse_input: Optional[bool] = None,
                 materialize: bool = False, bias: bool = True,
                 loc_init: str = 'glorot',
                 message_dropout: float = 0.0, weight_dropout: float = 0.0,
                 cached: bool = False, **kwargs):
        check_positive_int('LGATConv', in_channels=in_channels,
                           out_channels=out_channels, heads=heads)
        super().__init__(in_channels, heads * out_channels, node_level,
                         edge_level, node_rank, localization_slope,
                         sparse_input,
                         materialize, loc_init=loc_init,
                         message_dropout=message_dropout,
                         weight_dropout=weight_dropout, cached=cached,
                         **kwargs)
        self.out_channels = out_channels
        self.heads = heads
        self.concat = concat
        self.negative_slope = negative_slope
        self.dropout = dropout
        self.att_src = torch.nn.Parameter(torch.empty(1, heads, out_channels))
        self.att_dst = torch.nn.Parameter(torch.empty(1, heads, out_channels))
        if bias:
            width = heads * out_channels if concat else out_channels
            self.bias = torch.nn.Parameter(torch.empty(width))
        else:
            self.register_parameter('bias', None)
        self.reset_parameters()

    def reset_parameters(self):
        super().reset_parameters()
        glorot(self.att_src)
        glorot(self.att_dst)
        if self.bias is not None:
            torch.nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, edge_index: Adj,
                return_regularizer: bool = False,
                reg_index: OptTensor = None,
                output_index: OptTensor = None,
                return_attention_weights: bool = False):
        r"""Runs the layer.

        Args:
            x (torch.Tensor): Node features.
            edge_index (torch.Tensor or SparseTensor): Edge indices or a
                (transposed) sparse adjacency.
            {LOCALIZED_FORWARD_ARGS}
            return_attention_weights (bool, optional): Also return
                :obj:`(edge_index, alpha)`, the edges with the added self
                loops and their attention weights :math:`(|\mathcal{E}|,
                H)`, as :class:`~torch_geometric.nn.conv.GATConv` does:
                the output becomes :obj:`(out, (edge_index, alpha))`,
                followed by the regularizer if requested.
                (default: :obj:`False`)
        """
        H, C = self.heads, self.out_channels
        edges, loc = self.localize(x, edge_index, None, reg_index,
                                   output_index, return_regularizer)
        num_nodes = x.size(0)  # after localize(), which checks x
        msg = loc.msg.view(-1, H, C)
        z = self.localized_node_transform(loc, edges, num_nodes)
        dst = edges.edge_index[1]
        if loc.node_base is not None and self.edge_loc is None:
            # Every message is its source's h_u W: score each source once
            # per node and gather, as GATConv does (not per edge).
            src_score = (loc.node_base.view(-1, H, C) * self.att_src).sum(
                -1).index_select(0, edges.edge_index[0])
        else:
            src_score = (msg * self.att_src).sum(-1)
        score = src_score + (z.view(-1, H, C) * self.att_dst).sum(-1)[dst]
        score = F.leaky_relu(score, self.negative_slope)
        if edges.live is not None:  # the input's own loops, merged
            score = score.masked_fill(~edges.live.view(-1, 1), float('-inf'))
        alpha = softmax(score, dst, num_nodes=num_nodes)
        alpha = F.dropout(alpha, p=self.dropout, training=self.training)
        out = self.propagate(edges.edge_index,
                             msg=self.drop_messages(msg),
                             norm=alpha, size=(num_nodes, num_nodes))
        out = out.reshape(-1, H * C) if self.concat else out.mean(dim=1)
        if self.bias is not None:
            out = out + self.bias
        if return_attention_weights:
            return finish((out, (edges.edge_index, alpha)), loc.regularizer,
                          return_regularizer)
        return finish(out, loc.regularizer, return_regularizer)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'{self.out_channels}, heads={self.heads}, '
                f'concat={self.concat}, {self._levels_repr()})')
