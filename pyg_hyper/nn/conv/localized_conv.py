r"""Shared machinery of the LGNN layers (:class:`LGCNConv`,
:class:`LGATConv`, :class:`LGINConv`): normalized edges, the context,
localized per-edge messages and the regularizer."""
from typing import NamedTuple, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from torch_geometric.nn.conv import MessagePassing
from torch_geometric.typing import Adj, OptTensor, SparseTensor
from torch_geometric.utils import is_sparse, scatter

from pyg_hyper.nn.localization import (
    EdgeFeaturePairs,
    EdgeLocalization,
    FeatureNonzeros,
    NodeLocalization,
    WeightDropout,
    feature_matmul,
    feature_nonzeros,
    localization_regularizer,
    edge_feature_pairs,
    localized_edge_transform,
    materialize_localized_weight,
    pairwise_edge_transform,
    use_sparse_features,
)
from pyg_hyper.nn.structure_cache import StructureCache
from pyg_hyper.utils.checks import (
    check_channels,
    check_dtype,
    check_edge_index,
    check_node_index,
    check_positive_int,
    is_tracing,
    sparse_adjacency_edges,
)
from pyg_hyper.utils.docs import fill_docs

__all__ = ['LocalizedConv', 'NormalizedEdges', 'LocalizedMessages']


class NormalizedEdges(NamedTuple):
    """Edges with one self loop per node appended, and their weights
    :math:`\\hat{A}_{vu}` of :math:`D^{-1/2}(A+I)D^{-1/2}`."""
    edge_index: Tensor
    norm: Tensor
    num_loops_start: int  # index of the first appended self loop
    # (E,) False on the input's own self loops where the layer merges them
    # into the appended ones (weight 0, no attention, no regularizer term);
    # None where every edge counts.
    live: OptTensor = None


class LocalizedMessages(NamedTuple):
    msg: Tensor  # (E, out): gamma_vu * (h_u W_v + b) + beta_vu
    base: Tensor  # (E, out): h_u W_v, before edge-level localization
    regularizer: Tensor  # scalar
    # (N, out): h_u W for every node when W is shared (node level off);
    # base is then node_base[src]. None otherwise.
    node_base: OptTensor = None


class LocalizedConv(MessagePassing):
    r"""Base class of the LGNN layers: a shared weight
    :math:`\mathbf{W} \in \mathbb{R}^{d_{in} \times d_{msg}}` localized per
    target node (:class:`~pyg_hyper.nn.NodeLocalization`) and per edge
    (:class:`~pyg_hyper.nn.EdgeLocalization`), each switchable. With both
    switched off, a subclass reduces exactly to its backbone (GCN, GAT, GIN).

    Subclasses call :meth:`normalized_edges` and :meth:`localized_messages`
    and aggregate the returned per-edge messages. :obj:`loc_init`
    (:obj:`"glorot"` or :obj:`"he"`) initializes the localization
    parameters (see :class:`~pyg_hyper.nn.NodeLocalization`).
    :obj:`message_dropout` drops entries of every localized message before
    the aggregation during training, and :obj:`weight_dropout` entries of
    every per-node weight :math:`\mathbf{W}_v` (without building it: see
    :class:`~pyg_hyper.nn.WeightDropout`), as the official
    code does (defaults :obj:`0.0`: off). :obj:`cached` keeps the
    structure-only bookkeeping of a call for the next ones with the same
    graph (see :class:`~pyg_hyper.nn.StructureCache`).
    """
    #: Whether a sparse adjacency's values are edge weights (LGCN's, as in
    #: GCN). Layers without an 'edge_weight' ignore them, so that an
    #: adjacency and an edge_index of the same graph give the same output.
    takes_edge_weight: bool = False
    #: Whether the input's self loops merge into the one appended per node
    #: (GCN's and GAT's convention) rather than count as extra neighbours
    #: (GIN's).
    merges_self_loops: bool = True

    def __init__(self, in_channels: int, msg_channels: int,
                 node_level: bool = True, edge_level: bool = True,
                 node_rank: Optional[int] = None,
                 localization_slope: float = 0.2,
                 sparse_input: Optional[bool] = None,
                 materialize: bool = False, loc_init: str = 'glorot',
                 message_dropout: float = 0.0, weight_dropout: float = 0.0,
                 cached: bool = False, **kwargs):
        kwargs.setdefault('aggr', 'add')
        # Messages are [E, C] or [E, heads, C]: nodes on the first dim.
        kwargs.setdefault('node_dim', 0)
        super().__init__(**kwargs)
        name = self.__class__.__name__
        # Sub-classes check their own sizes (msg_channels derives from them).
        if node_rank is not None:
            check_positive_int(name, node_rank=node_rank)
        for key, value in (('message_dropout', message_dropout),
                           ('weight_dropout', weight_dropout)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"'{name}' expected '{key}' in [0, 1) "
                                 f"(got {value})")
        if weight_dropout > 0 and not node_level:
            raise ValueError(f"'{name}' got 'weight_dropout' without "
                             f"node-level localization: there is no "
                             f"per-node weight W_v to drop")
        self.in_channels = in_channels
        self.message_dropout = message_dropout
        self.weight_dropout = weight_dropout
        self.node_level = node_level
        self.edge_level = edge_level
        self.node_rank = node_rank
        self.sparse_input = sparse_input
        self.materialize = materialize
        self.cached = cached
        self._structure = StructureCache() if cached else None
        self.weight = torch.nn.Parameter(torch.empty(in_channels,
                                                     msg_channels))
        self.node_loc = (NodeLocalization(in_channels, node_rank,
                                          localization_slope, loc_init)
                         if node_level else None)
        if edge_level:
            self.edge_loc = EdgeLocalization(in_channels, msg_channels,
                                             localization_slope, loc_init)
            # b inside gamma_vu * (h_u W_v + b): without edge-level
            # localization it would only rescale the outer bias.
            self.msg_bias = torch.nn.Parameter(torch.empty(msg_channels))
        else:
            self.edge_loc = None
            self.register_parameter('msg_bias', None)

    def reset_parameters(self):
        super().reset_parameters()
        if self._structure is not None:
            self._structure.clear()
        torch.nn.init.xavier_uniform_(self.weight)
        if self.node_loc is not None:
            self.node_loc.reset_parameters()
        if self.edge_loc is not None:
            self.edge_loc.reset_parameters()
            torch.nn.init.zeros_(self.msg_bias)

    def normalized_edges(self, x: Tensor, edge_index: Adj,
                         edge_weight: OptTensor = None,
                         output_index: OptTensor = None) -> NormalizedEdges:
        """Checks the inputs and returns the GCN-normalized edges with self
        loops (the context weights :math:`\\hat{A}`); with
        :obj:`output_index`, only the edges into those nodes, normalized
        with the whole graph's degrees."""
        name = self.__class__.__name__
        if not isinstance(x, Tensor):
            raise ValueError(f"'{name}' expected 'x' to be one tensor of "
                             f"shape [num_nodes, {self.in_channels}]; "
                             f"bipartite inputs are not supported because "
                             f"the context needs a square adjacency")
        check_channels(name, 'x', x, self.in_channels, self.weight.dtype)
        num_nodes = x.size(0)
        check_edge_index(name, edge_index, num_nodes, num_nodes)
        if isinstance(edge_index, SparseTensor) or is_sparse(edge_index):
            edge_index, value = sparse_adjacency_edges(edge_index)
            if edge_weight is not None:
                # A separate weight vector has no defined order against the
                # adjacency's sorted entries (and PyG's GCNConv ignores it
                # for the adjacency's values): either reading is a guess.
                raise ValueError(f"'{name}' got a sparse adjacency and a "
                                 f"separate 'edge_weight'; store the weights "
                                 f"as the adjacency's values or pass "
                                 f"'edge_index' as a [2, num_edges] tensor")
            if self.takes_edge_weight and edge_weight is None and \
                    value.dim() == 1 and value.is_floating_point():
                # An adjacency built from an edge_index holds float32 ones
                # whatever the model's dtype; normalizing in float32 would
                # cost a float64 model its precision.
                edge_weight = value.to(x.dtype)
        if edge_weight is not None and (
                edge_weight.dim() != 1 or
                edge_weight.numel() != edge_index.size(1)):
            raise ValueError(f"'{name}' expected 'edge_weight' of shape "
                             f"[{edge_index.size(1)}] (got "
                             f"{list(edge_weight.shape)})")
        if edge_weight is not None:
            check_dtype(name, 'edge_weight', edge_weight, self.weight.dtype)
        if output_index is not None:
            check_node_index(name, 'output_index', output_index, num_nodes)
        # Learned edge weights require a gradient: the cache then steps
        # aside, so the normalization stays in the autograd graph.
        return self._memo(
            'normalized_edges',
            (edge_index, edge_weight, num_nodes, x.dtype, output_index),
            lambda: _normalize(edge_index, edge_weight, num_nodes, x.dtype,
                               output_index, self.merges_self_loops))

    def _memo(self, name: str, keys: tuple, compute):
        if self._structure is None:
            return compute()
        return self._structure.get(name, keys, compute)

    def _features(self, x: Tensor):
        """:obj:`x`, or its :class:`FeatureNonzeros` when the sparse path
        applies (with a cached pattern, only the values are new)."""
        if not use_sparse_features(x, self.sparse_input):
            return x
        if self._structure is None or not x.is_sparse:
            return feature_nonzeros(x)
        x = x.coalesce()
        pattern = self._memo(
            'features', (x.indices(), x.size(0), x.size(1),
                         torch.is_grad_enabled()),
            lambda: _detached(feature_nonzeros(x)))
        return pattern._replace(val=x.values())

    def scope(self, x: Tensor, edge_index: Adj,
              edge_weight: OptTensor = None, reg_index: OptTensor = None,
              output_index: OptTensor = None, regularize: bool = True
              ) -> Tuple[NormalizedEdges, OptTensor]:
        """:meth:`normalized_edges` (only those into :obj:`output_index`)
        and the nodes the regularizer covers: :obj:`reg_index` (which must
        then lie within :obj:`output_index`), or :obj:`output_index`
        itself."""
        edges = self.normalized_edges(x, edge_index, edge_weight,
                                      output_index)
        if output_index is not None:
            if reg_index is None:
                reg_index = output_index
            elif regularize and not bool(torch.isin(reg_index,
                                                    output_index).all()):
                raise ValueError(
                    f"'{self.__class__.__name__}' expected 'reg_index' to "
                    f"be a subset of 'output_index': the scales of nodes "
                    f"whose outputs are not computed are not built")
        return edges, reg_index

    def localize(self, x: Tensor, edge_index: Adj,
                 edge_weight: OptTensor = None, reg_index: OptTensor = None,
                 output_index: OptTensor = None, regularize: bool = True
                 ) -> Tuple[NormalizedEdges, LocalizedMessages]:
        """:meth:`scope` and :meth:`localized_messages` in one call. With
        :obj:`output_index`, only those nodes' incoming messages are built,
        and the regularizer covers the scales that are built."""
        if not isinstance(regularize, bool):
            # LGCNConv's third argument is an edge weight; the others' is
            # this flag, and a tensor there failed as an ambiguous truth
            # value.
            raise ValueError(f"'{self.__class__.__name__}' expected "
                             f"'return_regularizer' to be a bool (got "
                             f"{type(regularize).__name__}); only LGCNConv "
                             f"takes an 'edge_weight'")
        edges, reg_index = self.scope(x, edge_index, edge_weight, reg_index,
                                      output_index, regularize)
        return edges, self.localized_messages(x, edges, reg_index,
                                              regularize)

    def localized_messages(self, x: Tensor, edges: NormalizedEdges,
                           reg_index: OptTensor = None,
                           regularize: bool = True) -> LocalizedMessages:
        r"""Per-edge :math:`\boldsymbol{\gamma}_{vu} \odot (\mathbf{h}_u
        \mathbf{W}_v + \mathbf{b}) + \boldsymbol{\beta}_{vu}` (each factor
        only where its level is on), with the regularizer over the scales of
        the nodes in :obj:`reg_index` and of the edges into them (all if
        :obj:`None`; zero, and not computed, if :obj:`regularize=False`)."""
        src, dst = edges.edge_index[0], edges.edge_index[1]
        num_nodes = x.size(0)
        if reg_index is not None:
            check_node_index(self.__class__.__name__, 'reg_index', reg_index,
                             num_nodes)
        # Sparse (bag-of-words) inputs: every product with x touches only
        # its non-zeros, listed once here.
        feats = self._features(x)
        reg = self.weight.new_zeros(())
        node_base = None
        if self.node_loc is None:
            # One shared W: transform once per node, gather per edge.
            node_base = feature_matmul(feats, self.weight)
            base = node_base.index_select(0, src)
        else:
            # a_v M = sum_u Ahat_vu (h_u M): aggregate the projection, which
            # is narrower than the features.
            ctx = self.propagate(edges.edge_index,
                                 msg=self.node_loc.project(feats).index_select(
                                     0, src),
                                 norm=edges.norm, size=(num_nodes, num_nodes))
            drop = (WeightDropout.draw(self.weight_dropout)
                    if self.training and self.weight_dropout > 0 else None)
            if isinstance(feats, FeatureNonzeros) and not self.materialize:
                base, node_reg = self._sparse_node_localized(
                    feats, ctx, src, dst, reg_index, regularize, drop)
            else:
                gamma, beta = self.node_loc(ctx)
                node_reg = (localization_regularizer(
                    *_rows((gamma, beta), reg_index)) if regularize else reg)
                if self.materialize:
                    weight = materialize_localized_weight(self.weight, gamma,
                                                          beta)
                    if drop is not None:
                        weight = weight * drop.mask(
                            torch.arange(weight[..., 0].numel(),
                                         device=weight.device),
                            weight.size(-1), weight.dtype).view_as(weight)
                    dense = x.to_dense() if x.is_sparse else x
                    base = torch.einsum('ei,eio->eo', dense[src],
                                        weight[dst])
                else:
                    # The path is chosen: dense `feats` are not recounted.
                    base = localized_edge_transform(
                        feats, gamma, beta, self.weight, src, dst,
                        sparse=False, weight_dropout=drop)
            reg = reg + node_reg
        msg = base
        if self.edge_loc is not None:
            edge_gamma, edge_beta = self.edge_loc(feats, src, dst)
            msg = edge_gamma * (msg + self.msg_bias) + edge_beta
            if regularize:
                # The edges into the scoped nodes carry their scales.
                into = None if reg_index is None else self._memo(
                    'edges_into_scope', (dst, reg_index),
                    lambda: torch.isin(dst, reg_index).nonzero().view(-1))
                # Merged self loops carry no message: no term either.
                reg = reg + localization_regularizer(
                    *_rows((edge_gamma, edge_beta), into),
                    weight=(None if edges.live is None
                            else _rows((edges.live, ), into)[0]))
        return LocalizedMessages(msg, base, reg, node_base)

    def aggregates_first(self, x: Tensor) -> bool:
        r"""Whether :meth:`aggregated_node_localized` applies to :obj:`x`:
        dense features (sparse ones take the per-(edge, non-zero) path,
        which touches fewer entries than the non-zeros of
        :math:`\hat{\mathbf{A}}\mathbf{X}` plus a sparse-sparse product),
        node-level localization only, and nothing applied per edge after
        :math:`\mathbf{h}_u \mathbf{W}_v` (no edge-level scales, no message
        dropout in training), so that the weighted sum over edges commutes
        with :math:`\mathbf{W}_v`."""
        # Not under torch.compile: the sparse adjacency product breaks the
        # graph, while the per-edge path traces.
        return (self.node_loc is not None and self.edge_loc is None
                and not self.materialize and not is_tracing()
                and not (self.training and self.message_dropout > 0)
                and not use_sparse_features(x, self.sparse_input))

    def aggregated_node_localized(self, x: Tensor, edges: NormalizedEdges,
                                  reg_index: OptTensor = None,
                                  regularize: bool = True
                                  ) -> Tuple[Tensor, Tensor]:
        r""":math:`\sum_u \hat{A}_{vu} \mathbf{h}_u \mathbf{W}_v =
        (\mathbf{a}_v \odot \boldsymbol{\gamma}_v) \mathbf{W} +
        (\mathbf{a}_v \cdot \boldsymbol{\beta}_v) \mathbf{1}^\top` for every
        node, with :math:`\mathbf{a}_v = \sum_u \hat{A}_{vu} \mathbf{h}_u`
        (see :meth:`aggregates_first`), and the node-level regularizer.

        Why: on dense features the per-edge path holds
        :math:`|\mathcal{E}| \times d_{in}` values (1.4 GB for Amazon
        Photo); aggregating first costs one sparse product and
        :math:`N d_{in} d_{out}` work. The weight dropout of
        :math:`\mathbf{W}_v` commutes with the sum as well, since every edge
        into :math:`v` shares its mask."""
        src, dst = edges.edge_index[0], edges.edge_index[1]
        num_nodes = x.size(0)
        if reg_index is not None:
            check_node_index(self.__class__.__name__, 'reg_index', reg_index,
                             num_nodes)
        adj = self._memo(
            'adjacency', (edges.edge_index, edges.norm, num_nodes),
            lambda: torch.sparse_coo_tensor(
                torch.stack([dst, src]), edges.norm, (num_nodes, num_nodes),
                check_invariants=False).coalesce())
        x = x.to_dense() if x.is_sparse else x
        ctx = _sparse_mm(adj, self.node_loc.project(x))
        gamma, beta = self.node_loc(ctx)
        reg = (localization_regularizer(*_rows((gamma, beta), reg_index))
               if regularize else self.weight.new_zeros(()))
        drop = (WeightDropout.draw(self.weight_dropout)
                if self.training and self.weight_dropout > 0 else None)
        every = torch.arange(num_nodes, device=x.device)
        return localized_edge_transform(_sparse_mm(adj, x), gamma, beta,
                                        self.weight, every, every,
                                        sparse=False,
                                        weight_dropout=drop), reg

    def _sparse_node_localized(self, feats: FeatureNonzeros, ctx: Tensor,
                               src: Tensor, dst: Tensor,
                               reg_index: OptTensor = None,
                               regularize: bool = True,
                               weight_dropout: Optional[WeightDropout] = None
                               ) -> Tuple[Tensor, Tensor]:
        """:math:`h_u W_v` on sparse features, evaluating the node-level
        scales only at the (target, feature) pairs that occur."""
        layout = self._memo(
            'pair_layout', (feats.row, feats.col, src, dst, reg_index,
                            regularize, ctx.size(0), self.in_channels,
                            torch.is_grad_enabled()),
            lambda: _pair_layout(feats, src, dst, reg_index, regularize,
                                 ctx.size(0), self.in_channels,
                                 self._structure is not None))
        pairs = layout.pairs._replace(
            val=feats.val.index_select(0, layout.pairs.source_entry))
        if layout.rows is not None:
            ctx = ctx.index_select(0, layout.rows)
        offsets, reg = self.node_loc.at(ctx, layout.flat,
                                        reg_index=layout.reg_index,
                                        regularize=regularize)
        base = pairwise_edge_transform(pairs, offsets[:, 0] + 1,
                                       offsets[:, 1], self.weight,
                                       dst.numel(), weight_dropout)
        return base.index_select(0, layout.inverse), reg

    def localized_node_transform(self, loc: LocalizedMessages,
                                 edges: NormalizedEdges,
                                 num_nodes: int) -> Tensor:
        r""":math:`\mathbf{h}_v \mathbf{W}_v` for every node (its own
        localized transform, e.g. GAT's target term): the self loops'
        messages before edge-level localization (zero for the nodes whose
        self loop was left out by :obj:`output_index`)."""
        loops = loc.base[edges.num_loops_start:]
        if loops.size(0) == num_nodes:
            return loops
        nodes = edges.edge_index[1, edges.num_loops_start:]
        return loops.new_zeros((num_nodes, ) + loops.shape[1:]).index_copy(
            0, nodes, loops)

    def drop_messages(self, msg: Tensor) -> Tensor:
        """Dropout on the per-edge messages that enter the aggregation."""
        if self.message_dropout == 0.0:
            return msg
        return F.dropout(msg, p=self.message_dropout, training=self.training)

    def message(self, msg: Tensor, norm: Tensor) -> Tensor:
        return norm.unsqueeze(-1) * msg

    def _levels_repr(self) -> str:
        return (f'node_level={self.node_level}, '
                f'edge_level={self.edge_level}')


def edges_into(edges: NormalizedEdges, nodes: Tensor,
               num_nodes: int) -> NormalizedEdges:
    """The edges whose target is in :obj:`nodes` (sorted), weights kept.

    Every edge into a kept node is kept, so a layer computes those nodes'
    outputs, contexts and attention exactly, and skips the rest of the graph
    (e.g. the part that cannot reach the training nodes)."""
    member = torch.zeros(num_nodes, dtype=torch.bool, device=nodes.device)
    member[nodes] = True
    keep = member[edges.edge_index[1]].nonzero().view(-1)
    num_kept_edges = int((keep < edges.num_loops_start).sum())
    return NormalizedEdges(
        edges.edge_index.index_select(1, keep),
        edges.norm.index_select(0, keep), num_kept_edges,
        None if edges.live is None else edges.live.index_select(0, keep))


def _normalize(edge_index: Tensor, edge_weight: OptTensor, num_nodes: int,
               dtype: torch.dtype, output_index: OptTensor,
               merge_self_loops: bool = False) -> NormalizedEdges:
    """Self loops, :math:`D^{-1/2}(A+I)D^{-1/2}` weights, and only the
    edges into :obj:`output_index` if given.

    With :obj:`merge_self_loops`, a node keeps one self loop, with the
    weight of its existing loop if it has one (else 1), as GCNConv's
    ``add_remaining_self_loops`` and GATConv's remove-then-add do. The
    existing loops stay in the edge list, with weight 0 and marked not
    :obj:`live`: removing them would give the edge list a data-dependent
    size, a graph break under :func:`torch.compile`."""
    if edge_weight is None:
        edge_weight = torch.ones(edge_index.size(1), dtype=dtype,
                                 device=edge_index.device)
    num_edges = edge_index.size(1)
    loop_weight = edge_weight.new_ones(num_nodes)
    live = None
    if merge_self_loops:
        is_loop = edge_index[0] == edge_index[1]
        # Existing loops write their weight into their node's slot, the
        # other edges into a spare slot past the end.
        slot = torch.where(is_loop, edge_index[0], num_nodes)
        loop_weight = edge_weight.new_ones(num_nodes + 1).scatter(
            0, slot, edge_weight)[:num_nodes]
        edge_weight = edge_weight.masked_fill(is_loop, 0.0)
        live = torch.cat([~is_loop, is_loop.new_ones(num_nodes)])
    loops = torch.arange(num_nodes, device=edge_index.device)
    edge_index = torch.cat([edge_index, torch.stack([loops, loops])], dim=1)
    edge_weight = torch.cat([edge_weight, loop_weight])
    src, dst = edge_index[0], edge_index[1]
    deg = scatter(edge_weight, dst, 0, dim_size=num_nodes, reduce='sum')
    # Not pow(-0.5) then masked: its gradient at a zero degree is 0 * inf,
    # NaN for learned edge weights.
    zero = deg == 0
    inv_sqrt = torch.where(zero, 0.0, deg.masked_fill(zero, 1.0).pow(-0.5))
    norm = inv_sqrt[src] * edge_weight * inv_sqrt[dst]
    edges = NormalizedEdges(edge_index, norm, num_edges, live)
    if output_index is not None:
        edges = edges_into(edges, output_index, num_nodes)
    return edges


def _detached(feats: FeatureNonzeros) -> FeatureNonzeros:
    """A pattern to cache: without the values' autograd history."""
    return feats._replace(val=feats.val.detach())


class _PairLayout(NamedTuple):
    """The structure of :meth:`LocalizedConv._sparse_node_localized`."""
    pairs: EdgeFeaturePairs  # in target-sorted edge order
    inverse: Tensor  # (E,) back to the caller's edge order
    flat: Tensor  # (P,) entries v * d_in + k among the kept context rows
    rows: OptTensor  # kept context rows (None: all)
    reg_index: OptTensor  # regularized rows among the kept ones


def _pair_layout(feats: FeatureNonzeros, src: Tensor, dst: Tensor,
                 reg_index: OptTensor, regularize: bool, num_nodes: int,
                 dim: int, cached: bool) -> _PairLayout:
    # Edges sorted by target make the pairs sorted by target, so the
    # scales can be built in cache-sized blocks of target rows.
    perm = torch.argsort(dst, stable=True)
    # The transposed pattern pays off only when the layout is reused.
    pairs = edge_feature_pairs(feats, src.index_select(0, perm),
                               dst.index_select(0, perm), dim,
                               transpose=cached and torch.is_grad_enabled())
    flat, rows, reg_index = _compact_targets(pairs.target_feat, num_nodes,
                                             dst, reg_index, regularize,
                                             dim)
    inverse = torch.empty_like(perm).scatter_(
        0, perm, torch.arange(perm.numel(), device=perm.device))
    return _PairLayout(pairs, inverse, flat, rows, reg_index)


def _compact_targets(flat: Tensor, num_nodes: int, dst: Tensor,
                     reg_index: OptTensor, regularize: bool, dim: int
                     ) -> Tuple[Tensor, OptTensor, OptTensor]:
    """Keeps only the context rows of nodes that receive an edge or are
    regularized, renumbering the flat (node, feature) entries: the
    node-level scales are then built for those rows only. Returns the
    entries, the kept rows (:obj:`None`: all) and the regularized rows
    among them."""
    if regularize and reg_index is None:
        return flat, None, reg_index  # every node's scales are regularized
    needed = torch.zeros(num_nodes, dtype=torch.bool, device=dst.device)
    needed[dst] = True
    if regularize:
        needed[reg_index] = True
    rows = needed.nonzero().view(-1)
    if rows.numel() == num_nodes:
        return flat, None, reg_index
    position = torch.full((num_nodes, ), -1, dtype=torch.long,
                          device=dst.device)
    position[rows] = torch.arange(rows.numel(), device=dst.device)
    node = torch.div(flat, dim, rounding_mode='floor')
    flat = position.index_select(0, node) * dim + (flat - node * dim)
    if regularize:
        reg_index = position.index_select(0, reg_index)
        if reg_index.numel() == rows.numel():
            reg_index = None  # every kept row is regularized
    return flat, rows, reg_index


#: Argument docs shared by the LGNN layers (:func:`with_shared_docs`).
SHARED_DOCS = {
    '{LOCALIZATION_LEVEL_ARGS}': r"""
        node_level (bool, optional): Localize the weight per target node.
            (default: :obj:`True`)
        edge_level (bool, optional): Localize every message per edge
            (:math:`\boldsymbol{\gamma}_{vu}`,
            :math:`\boldsymbol{\beta}_{vu}` and the inner bias
            :math:`\mathbf{b}`, which without
            :math:`\boldsymbol{\gamma}_{vu}` would only add to
            :math:`\mathbf{b}^{\prime}`). (default: :obj:`True`)
        node_rank (int, optional): Inner width of the node-level projection
            :math:`\mathbf{M} = \mathbf{M}_1 \mathbf{M}_2`; :obj:`None` uses
            a full :math:`d_{in} \times d_{in}` matrix. The paper uses the
            hidden width in the first layer. (default: :obj:`None`)
        localization_slope (float, optional): LeakyReLU slope of the
            localization. (default: :obj:`0.2`)
        sparse_input (bool, optional): Force (:obj:`True`) or forbid
            (:obj:`False`) the sparse-feature path; :obj:`None` decides from
            the input density. (default: :obj:`None`)
        materialize (bool, optional): Build the per-node weights
            :math:`\mathbf{W}_v` explicitly. The slow reference path, for
            tests and benchmarks. (default: :obj:`False`)""".strip(),
    '{LOCALIZED_CONV_ARGS}': r"""
        loc_init (str, optional): Initialization of the localization
            parameters, :obj:`"glorot"` or :obj:`"he"` (the official code's;
            see :class:`~pyg_hyper.nn.NodeLocalization`).
            (default: :obj:`"glorot"`)
        message_dropout (float, optional): Dropout on every localized
            message before the aggregation, in training (the official
            code's). (default: :obj:`0.0`)
        weight_dropout (float, optional): Dropout on every per-node
            weight :math:`\mathbf{W}_v` in training (the official code's),
            without building :math:`\mathbf{W}_v`; needs
            :obj:`node_level=True`. (default: :obj:`0.0`)
        cached (bool, optional): If set to :obj:`True`, the layer keeps
            the structure-only work of a call (self loops and
            normalization, the edges into :obj:`output_index`, the sparse
            features' pattern and their (edge, non-zero feature) pairs) and
            reuses it while the graph, the feature pattern and the index
            arguments are unchanged, as in transductive learning. Unlike
            :class:`~torch_geometric.nn.conv.GCNConv`'s cache it compares
            them on every call (a changed graph is recomputed); see
            :class:`~pyg_hyper.nn.StructureCache`. (default: :obj:`False`)""".strip(),
    '{LOCALIZED_FORWARD_ARGS}': r"""
            return_regularizer (bool, optional): Also return the
                localization regularizer. (default: :obj:`False`)
            reg_index (torch.Tensor, optional): Sorted indices of the nodes
                whose node-level scales (and whose incoming edges'
                edge-level scales) the regularizer averages, e.g. the
                training nodes' receptive field, as the official code does.
                (default: :obj:`None`, all nodes and edges)
            output_index (torch.Tensor, optional): Sorted indices of the
                only nodes whose outputs are computed (the other rows are
                zero): only the edges into them are localized, e.g. the
                training nodes' receptive field in a training step, as the
                official code does. The regularizer then defaults to these
                nodes' scales. (default: :obj:`None`, all nodes)""".strip(),
}


#: Fills :data:`SHARED_DOCS` into an LGNN layer's class and
#: :meth:`forward` docstrings: one text for three layers.
with_shared_docs = fill_docs(SHARED_DOCS)


def _rows(tensors: Tuple[Tensor, ...], index: OptTensor
          ) -> Tuple[Tensor, ...]:
    return tensors if index is None else tuple(
        t.index_select(0, index) for t in tensors)


def finish(out: Tensor, reg: Tensor, return_regularizer: bool
           ) -> Union[Tensor, Tuple[Tensor, Tensor]]:
    """Returns :obj:`out` alone or with the regularizer, as asked."""
    return (out, reg) if return_regularizer else out


def _sparse_mm(adj: Tensor, dense: Tensor) -> Tensor:
    # Autocast casts the dense operand to lower precision and leaves the
    # sparse one, and the product's backward refuses the mix: under
    # autocast it runs in the adjacency's dtype.
    if not torch.is_autocast_enabled(dense.device.type):
        return torch.sparse.mm(adj, dense)
    with torch.autocast(dense.device.type, enabled=False):
        return torch.sparse.mm(adj, dense.to(adj.dtype))
