from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from torch_geometric.typing import Adj, OptTensor, SparseTensor
from torch_geometric.utils import is_sparse

from pyg_hyper.nn.conv import LGATConv, LGCNConv, LGINConv
from pyg_hyper.nn.structure_cache import StructureCache
from pyg_hyper.utils.checks import (
    check_edge_index,
    check_node_index,
    sparse_adjacency_edges,
)

BACKBONES = ('gcn', 'gat', 'gin')


def dropout_features(x: Tensor, p: float, training: bool) -> Tensor:
    """Dropout that also accepts sparse COO features (dropping stored
    entries only, which is the same distribution as dense dropout since
    zeros stay zero)."""
    if not x.is_sparse:
        return F.dropout(x, p=p, training=training)
    if not training or p == 0.0:
        return x
    x = x.coalesce()
    return torch.sparse_coo_tensor(x.indices(),
                                   F.dropout(x.values(), p=p, training=True),
                                   x.size(), is_coalesced=True,
                                   check_invariants=False)


def in_neighbourhood(edge_index: Adj, nodes: Tensor,
                     num_nodes: int) -> Tensor:
    """Sorted union of :obj:`nodes` and the sources of the edges into them:
    the nodes a one-hop layer reads to compute :obj:`nodes`."""
    if isinstance(edge_index, SparseTensor) or is_sparse(edge_index):
        edge_index = sparse_adjacency_edges(edge_index)[0]
    member = torch.zeros(num_nodes, dtype=torch.bool, device=nodes.device)
    member[nodes] = True
    src, dst = edge_index[0], edge_index[1]
    member[src[member[dst]]] = True
    return member.nonzero().view(-1)


def _run(conv: torch.nn.Module, x: Tensor, edge_index: Adj,
         regularize: bool, reg_index: OptTensor, output_index: OptTensor
         ) -> Tuple[Tensor, Optional[Tensor]]:
    # Without the regularizer (evaluation) nothing is spent on it.
    if not regularize:
        return conv(x, edge_index, output_index=output_index), None
    return conv(x, edge_index, return_regularizer=True, reg_index=reg_index,
                output_index=output_index)


class LGNN(torch.nn.Module):
    r"""Two-layer node classifier with node- and edge-level localization,
    from the `"Node-wise Localization of Graph Neural Networks"
    <https://arxiv.org/abs/2110.14322>`_ paper (LGCN, LGAT, LGIN).

    ``dropout -> conv -> ELU -> dropout -> conv``, where the convolutions
    are :class:`~pyg_hyper.nn.conv.LGCNConv`,
    :class:`~pyg_hyper.nn.conv.LGATConv` or
    :class:`~pyg_hyper.nn.conv.LGINConv`. With :obj:`node_level=False` and
    :obj:`edge_level=False` it is the plain GCN / GAT / GIN baseline, so
    baselines and localized models share one code path. As in the paper, the
    first layer's node-level projection is factorized through the hidden
    width (:math:`d_0 \to d_1 \to d_0`) and the second is a full matrix.

    .. math::
        \mathbf{H} &= \mathrm{Dropout}\big(\mathrm{ELU}(\mathrm{conv}_1(
            \mathrm{Dropout}(\mathbf{X}), \mathbf{A}))\big)

        \mathbf{Y} &= \mathrm{conv}_2(\mathbf{H}, \mathbf{A})

        \mathcal{R} &= \mathcal{R}_1 + \mathcal{R}_2, \qquad
        \mathcal{R}_l = \sum_{\text{active levels of layer } l}
            \mathrm{mean}((\boldsymbol{\gamma}-1)^2) +
            \mathrm{mean}(\boldsymbol{\beta}^2),

    with ELU applied to the logits :math:`\mathbf{Y}` as well if
    :obj:`output_elu=True`. :math:`\mathcal{R}` is the localization
    regularizer (:obj:`return_regularizer=True`), which the training loop
    adds to the loss with weight :math:`\lambda`.

    Args:
        in_channels (int): Size of each input sample.
        hidden_channels (int): Hidden width (per head for GAT).
        out_channels (int): Number of classes.
        backbone (str, optional): :obj:`"gcn"`, :obj:`"gat"` or
            :obj:`"gin"`. (default: :obj:`"gcn"`)
        node_level (bool, optional): Node-level localization.
            (default: :obj:`True`)
        edge_level (bool, optional): Edge-level localization.
            (default: :obj:`True`)
        dropout (float, optional): Dropout on each layer's input (and, for
            GAT, on the attention coefficients). (default: :obj:`0.4`)
        heads (int, optional): Attention heads of the first GAT layer.
            (default: :obj:`8`)
        output_heads (int, optional): Attention heads of the second GAT
            layer (averaged). (default: :obj:`1`)
        materialize (bool, optional): Use the materialized reference path in
            every layer. (default: :obj:`False`)
        loc_init (str, optional): Initialization of the localization
            parameters, :obj:`"glorot"` or :obj:`"he"` (the official code's).
            (default: :obj:`"glorot"`)
        message_dropout (float, optional): Dropout on every localized
            message before each layer's aggregation (the official code's;
            see :class:`~pyg_hyper.nn.conv.LGCNConv`). (default: :obj:`0.0`)
        output_elu (bool, optional): Apply ELU to the logits as well, as
            the official code does. (default: :obj:`False`)
        weight_dropout (float, optional): Dropout on every per-node weight
            :math:`\mathbf{W}_v` (the official code's; node-level
            localization only). (default: :obj:`0.0`)
        cached (bool, optional): Keep the structure-only work of a call
            (normalized edges, receptive fields, the sparse features'
            pattern) for later calls on the same graph, as in transductive
            learning; checked on every call, so a changed graph is
            recomputed (see :class:`~pyg_hyper.nn.StructureCache`).
            (default: :obj:`False`)
        sparse_input (bool, optional): Whether the first layer takes its
            sparse-feature path (see
            :class:`~pyg_hyper.nn.conv.LGCNConv`); :obj:`None` decides from
            the input's density on every call, which costs a pass over a
            dense input. (default: :obj:`None`)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})` (dense
          or sparse COO), edge indices :math:`(2, |\mathcal{E}|)` or a
          sparse adjacency, :obj:`reg_nodes` and :obj:`output_nodes`
          :math:`(|\mathcal{V}'|)` *(optional, sorted node indices)*
        - **output:** class logits :math:`(|\mathcal{V}|, C)` (zero outside
          :obj:`output_nodes` if given), and the regularizer
          :math:`\mathcal{R}` as a 0-dim tensor if
          :obj:`return_regularizer=True`
    """
    def __init__(self, in_channels: int, hidden_channels: int,
                 out_channels: int, backbone: str = 'gcn',
                 node_level: bool = True, edge_level: bool = True,
                 dropout: float = 0.4, heads: int = 8, output_heads: int = 1,
                 materialize: bool = False, loc_init: str = 'glorot',
                 message_dropout: float = 0.0, output_elu: bool = False,
                 weight_dropout: float = 0.0, cached: bool = False,
                 sparse_input: Optional[bool] = None):
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"'LGNN' got unknown backbone '{backbone}'; "
                             f"valid backbones: {', '.join(BACKBONES)}")
        self.backbone = backbone
        self.dropout = dropout
        self.output_elu = output_elu
        levels = dict(node_level=node_level, edge_level=edge_level,
                      materialize=materialize, loc_init=loc_init,
                      message_dropout=message_dropout,
                      weight_dropout=weight_dropout, cached=cached)
        self._structure = StructureCache() if cached else None
        first = dict(levels, node_rank=hidden_channels,
                     sparse_input=sparse_input)
        if backbone == 'gcn':
            self.conv1 = LGCNConv(in_channels, hidden_channels, **first)
            self.conv2 = LGCNConv(hidden_channels, out_channels, **levels)
        elif backbone == 'gat':
            self.conv1 = LGATConv(in_channels, hidden_channels, heads=heads,
                                  dropout=dropout, **first)
            self.conv2 = LGATConv(heads * hidden_channels, out_channels,
                                  heads=output_heads, concat=False,
                                  dropout=dropout, **levels)
        else:
            self.conv1 = LGINConv(in_channels, hidden_channels, **first)
            self.conv2 = LGINConv(hidden_channels, out_channels,
                                  hidden_channels=hidden_channels, **levels)
        self.reset_parameters()

    def reset_parameters(self):
        if self._structure is not None:
            self._structure.clear()
        self.conv1.reset_parameters()
        self.conv2.reset_parameters()

    def forward(self, x: Tensor, edge_index: Adj,
                return_regularizer: bool = False,
                reg_nodes: OptTensor = None,
                output_nodes: OptTensor = None
                ) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        """Returns class logits (and the summed localization regularizer of
        both layers if :obj:`return_regularizer=True`).

        :obj:`reg_nodes` (sorted node indices, e.g. the training nodes)
        restricts the regularizer to the scales that reach those nodes'
        outputs, as the official code computes it on a batch's receptive
        field: the second layer's at :obj:`reg_nodes`, the first layer's at
        :obj:`reg_nodes` and their in-neighbours. (default: :obj:`None`,
        every node)

        :obj:`output_nodes` (sorted node indices) computes the logits of
        those nodes only (the other rows are zero), and of the graph only
        what reaches them: the second layer the edges into
        :obj:`output_nodes`, the first layer the edges into them and their
        in-neighbours. Their logits are exactly the full forward's; a
        training step on the training nodes does a fraction of the work, as
        the official code's receptive-field batches do. The regularizer then
        covers the scales it builds unless :obj:`reg_nodes` (which must lie
        within :obj:`output_nodes`) narrows it. (default: :obj:`None`, every
        node)"""
        num_nodes = x.size(0)
        # Checked here: the neighbourhoods below index with them before the
        # layers' own checks run.
        for key, nodes in (('reg_nodes', reg_nodes),
                           ('output_nodes', output_nodes)):
            if nodes is not None:
                check_node_index(self.__class__.__name__, key, nodes,
                                 num_nodes)
        if reg_nodes is not None or output_nodes is not None:
            check_edge_index(self.__class__.__name__, edge_index, num_nodes,
                             num_nodes)
        scope1 = scope2 = None
        if reg_nodes is not None:
            scope2 = reg_nodes
            scope1 = self._in_neighbourhood(edge_index, reg_nodes, num_nodes)
        field1 = field2 = None
        if output_nodes is not None:
            field2 = output_nodes
            field1 = self._in_neighbourhood(edge_index, output_nodes,
                                            num_nodes)
        x = dropout_features(x, self.dropout, self.training)
        x, reg1 = _run(self.conv1, x, edge_index, return_regularizer, scope1,
                       field1)
        if field1 is None:
            x = F.dropout(F.elu(x), p=self.dropout, training=self.training)
        else:
            # The other rows are zero and stay zero: draw dropout masks for
            # the field's rows only.
            x = torch.zeros_like(x).index_copy_(0, field1, F.dropout(
                F.elu(x.index_select(0, field1)), p=self.dropout,
                training=self.training))
        x, reg2 = _run(self.conv2, x, edge_index, return_regularizer, scope2,
                       field2)
        if self.output_elu:
            x = F.elu(x)
        return (x, reg1 + reg2) if return_regularizer else x

    def _in_neighbourhood(self, edge_index: Adj, nodes: Tensor,
                          num_nodes: int) -> Tensor:
        if self._structure is None or not isinstance(edge_index, Tensor) \
                or is_sparse(edge_index):
            return in_neighbourhood(edge_index, nodes, num_nodes)
        return self._structure.get(
            'in_neighbourhood', (edge_index, nodes, num_nodes),
            lambda: in_neighbourhood(edge_index, nodes, num_nodes))

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(backbone={self.backbone}, '
                f'{self.conv1}, {self.conv2})')
