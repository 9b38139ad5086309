from typing import Optional, Tuple, Union

import torch
from torch import Tensor

from torch_geometric.nn.conv import MessagePassing
from torch_geometric.nn.inits import reset
from torch_geometric.typing import (
    Adj,
    OptPairTensor,
    OptTensor,
    Size,
    SparseTensor,
)
from torch_geometric.utils import is_torch_sparse_tensor, spmm

from pyg_hyper.nn.hyper_linear import (
    check_generator_init,
    generator_options_repr,
)
from pyg_hyper.nn.hypernetwork import (
    FirstMessageCombiner,
    HyperMLP,
    HyperNetwork,
)
from pyg_hyper.utils.checks import (
    check_channels,
    check_dtype,
    check_edge_attr,
    check_edge_index,
    check_positive_int,
    parameter_dtype,
)


class HyperGINConv(MessagePassing):
    r"""The graph isomorphism operator with a hypernetwork-generated node
    network, from the `"Molecule Property Prediction and Classification with
    Graph Hypernetworks" <https://arxiv.org/abs/2002.00240>`_ paper.

    Each node first forms its GIN message (GINE-style with edge features if
    :obj:`edge_dim` is set),

    .. math::
        \mathbf{m}^{(t)}_i = (1 + \epsilon) \cdot \mathbf{x}_i +
        \sum_{j \in \mathcal{N}(i)} \mathbf{x}_j
        \quad\text{or}\quad
        (1 + \epsilon) \cdot \mathbf{x}_i + \sum_{j \in \mathcal{N}(i)}
        \mathrm{ReLU}(\mathbf{x}_j + \mathbf{\Theta}_e \mathbf{e}_{j,i}).

    A hypernetwork :math:`f` (3-layer tanh MLP) reads the current message
    together with the first message :math:`\mathbf{m}^{(0)}_i` and generates,
    per node, the weights of the node network :math:`g` (2-layer tanh MLP):

    .. math::
        \mathbf{z}_i &= \tanh(\mathbf{F}_2 \tanh(\mathbf{F}_1
            \mathbf{u}_i + \mathbf{c}_1) + \mathbf{c}_2), \qquad
            \mathbf{u}_i = [\mathbf{m}^{(t)}_i \,\Vert\, \mathbf{m}^{(0)}_i]
            \text{ or } c\,\mathbf{m}^{(0)}_i + (1-c)\,\mathbf{m}^{(t)}_i

        \mathbf{x}^{\prime}_i &= \mathbf{W}_2(\mathbf{z}_i) \tanh\big(
            \mathbf{W}_1(\mathbf{z}_i)\, \mathbf{m}^{(t)}_i +
            \mathbf{b}_1(\mathbf{z}_i)\big) + \mathbf{b}_2(\mathbf{z}_i),

    where every generated weight is affine in the code,
    :math:`\mathbf{W}(\mathbf{z}) = \sum_k z_k \mathbf{A}_k + \mathbf{B}`
    (:math:`f`'s output layer), and is applied in factorized form by
    :class:`~pyg_hyper.nn.HyperLinear`: no per-node weight tensor is built.

    Choices where the paper is silent, and why:

    * :math:`f` and :math:`g` are node-wise (one set of generated weights per
      node), because the paper's hypernetwork is "node-centric, GNN-style":
      its input is the aggregated message, not a per-graph summary.
    * :math:`g` acts on the message :math:`\mathbf{m}^{(t)}_i` (GIN's MLP input)
      and has a linear output, as GIN's MLP; models add the activation.
    * The first message is the *message* of the model's first layer (not its
      input features), so both inputs of :math:`f` live in message space.
      When :obj:`first_message` is not passed, the layer is the first one
      and uses its own message.

    Args:
        in_channels (int): Size of each input sample.
        out_channels (int): Size of each output sample.
        hidden_channels (int, optional): Hidden width of :math:`g`.
            (default: :obj:`out_channels`)
        hyper_channels (int, optional): Hidden width :math:`r` of the
            hypernetwork :math:`f`; generated-weight cost scales with
            :math:`r + 1`. (default: :obj:`64`)
        first_channels (int, optional): Width of the first message.
            (default: :obj:`in_channels`)
        combine (str, optional): How :math:`f` combines the current and first
            messages, :obj:`"concat"` or :obj:`"convex"` (learned
            :math:`c`). (default: :obj:`"concat"`)
        eps (float, optional): (Initial) :math:`\epsilon`-value.
            (default: :obj:`0.`)
        train_eps (bool, optional): If set to :obj:`True`, :math:`\epsilon`
            will be a trainable parameter. (default: :obj:`False`)
        edge_dim (int, optional): Edge feature dimensionality. If set, edge
            features are mapped linearly to :obj:`in_channels` and added to
            the neighbor features GINE-style. (default: :obj:`None`)
        edge_encoder (torch.nn.Module, optional): A module that maps the
            edge features to :obj:`in_channels`-wide embeddings, used in
            place of the linear map of :obj:`edge_dim` (which must then be
            :obj:`None`); e.g. :class:`ogb.graphproppred.mol_encoder.BondEncoder`
            for categorical bond features, as in OGB's GIN. Pass
            :class:`torch.nn.Identity` for edge features that are already
            embedded. (default: :obj:`None`)
        hyper_layers (int, optional): Number of hidden layers of :math:`f`
            (its output layer comes on top). (default: :obj:`2`)
        chunk_size (int, optional): If set, generated weights are applied to
            at most this many nodes at a time, bounding peak memory.
            (default: :obj:`None`)
        materialize (bool, optional): If set to :obj:`True`, builds the
            per-node weight tensors explicitly. This is the slow reference
            path, kept for tests and benchmarks. (default: :obj:`False`)
        generator_init (str, optional): :obj:`"uniform"` or :obj:`"zero"`:
            with :obj:`"zero"`, :math:`f`'s output layer starts at zero
            except for the shared :math:`\mathbf{B}`, so the layer starts as
            a GIN layer with a plain tanh MLP and learns the node-wise
            weights from there (see :class:`~pyg_hyper.nn.HyperLinear`).
            (default: :obj:`"uniform"`)
        normalize_code (bool, optional): Divide the code by its width before
            :math:`f`'s output layer, so that Adam moves the generated
            weights about as fast as plain ones (see
            :class:`~pyg_hyper.nn.HyperLinear`). (default: :obj:`False`)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:**
          node features :math:`(|\mathcal{V}|, F_{in})` or
          :math:`((|\mathcal{V_s}|, F_{in}), (|\mathcal{V_t}|, F_{in}))`
          if bipartite,
          edge indices :math:`(2, |\mathcal{E}|)`,
          edge features :math:`(|\mathcal{E}|, D)` *(optional)*,
          first message :math:`(|\mathcal{V}_t|, F_{0})` *(optional)*
        - **output:** node features :math:`(|\mathcal{V}|, F_{out})` or
          :math:`(|\mathcal{V}_t|, F_{out})` if bipartite; with
          :obj:`return_message=True`, also the message
          :math:`(|\mathcal{V}_t|, F_{in})`
    """
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: Optional[int] = None,
        hyper_channels: int = 64,
        first_channels: Optional[int] = None,
        combine: str = 'concat',
        eps: float = 0.,
        train_eps: bool = False,
        edge_dim: Optional[int] = None,
        hyper_layers: int = 2,
        chunk_size: Optional[int] = None,
        materialize: bool = False,
        edge_encoder: Optional[torch.nn.Module] = None,
        generator_init: str = 'uniform',
        normalize_code: bool = False,
        **kwargs,
    ):
        kwargs.setdefault('aggr', 'add')
        super().__init__(**kwargs)
        name = self.__class__.__name__
        check_positive_int(name, in_channels=in_channels,
                           out_channels=out_channels,
                           hyper_channels=hyper_channels,
                           hyper_layers=hyper_layers)
        for key, value in (('hidden_channels', hidden_channels),
                           ('first_channels', first_channels),
                           ('edge_dim', edge_dim)):
            if value is not None:
                check_positive_int(name, **{key: value})
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.hidden_channels = hidden_channels or out_channels
        self.hyper_channels = hyper_channels
        self.first_channels = first_channels or in_channels
        self.edge_dim = edge_dim
        self.materialize = materialize
        check_generator_init(self.__class__.__name__, generator_init)
        self.generator_init = generator_init
        self.normalize_code = normalize_code
        self.initial_eps = eps
        if train_eps:
            self.eps = torch.nn.Parameter(torch.empty(1))
        else:
            self.register_buffer('eps', torch.empty(1))

        if edge_dim is not None and edge_encoder is not None:
            raise ValueError(f"'{self.__class__.__name__}' takes either "
                             f"'edge_dim' (a linear edge map) or "
                             f"'edge_encoder', not both")
        if edge_dim is not None:
            self.lin_edge = torch.nn.Linear(edge_dim, in_channels)
        else:
            self.register_module('lin_edge', None)
        self.edge_encoder = edge_encoder
        if edge_dim is not None or edge_encoder is not None:
            # Edge features come from the sparse adjacency's values, which
            # the fused sparse-matrix product would ignore.
            self.fuse = False

        self.combiner = FirstMessageCombiner(in_channels, self.first_channels,
                                             combine)
        self.hyper = HyperNetwork(self.combiner.out_channels, hyper_channels,
                                  hyper_layers)
        self.nn = HyperMLP([in_channels, self.hidden_channels, out_channels],
                           hyper_channels, act='tanh', chunk_size=chunk_size,
                           generator_init=generator_init,
                           normalize_code=normalize_code)
        self.reset_parameters()

    def reset_parameters(self):
        super().reset_parameters()
        self.eps.data.fill_(self.initial_eps)
        if self.lin_edge is not None:
            self.lin_edge.reset_parameters()
        if self.edge_encoder is not None:
            # PyG's reset() also reaches into containers without a
            # reset_parameters() of their own (a Sequential, OGB's encoders).
            reset(self.edge_encoder)
        self.combiner.reset_parameters()
        self.hyper.reset_parameters()
        self.nn.reset_parameters()

    def forward(
        self,
        x: Union[Tensor, OptPairTensor],
        edge_index: Adj,
        edge_attr: OptTensor = None,
        size: Size = None,
        first_message: OptTensor = None,
        return_message: bool = False,
    ) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        r"""Runs the layer.

        Args:
            x (torch.Tensor or (torch.Tensor, torch.Tensor)): Node features.
            edge_index (torch.Tensor or SparseTensor): Edge indices or a
                (transposed) sparse adjacency.
            edge_attr (torch.Tensor, optional): Edge features.
            size ((int, int), optional): Bipartite size.
            first_message (torch.Tensor, optional): The first layer's message
                :math:`\mathbf{m}^{(0)}`; if :obj:`None`, this layer's own
                message is used.
            return_message (bool, optional): If set, also returns this layer's
                message, so that a model can pass it on as
                :obj:`first_message`. (default: :obj:`False`)
        """
        if isinstance(x, Tensor):
            x = (x, x)
        if is_torch_sparse_tensor(edge_index) and \
                edge_index.layout == torch.sparse_coo and \
                not edge_index.is_coalesced():
            # PyG reads a COO adjacency's edges with .indices(), which an
            # uncoalesced tensor refuses; duplicates sum, as torch's sparse
            # semantics have it.
            edge_index = edge_index.coalesce()
        name = self.__class__.__name__
        dtype = self.nn.lins[0].weight.dtype
        check_channels(name, 'x', x[0], self.in_channels, dtype)
        check_channels(name, 'x', x[1], self.in_channels, dtype)
        num_src = x[0].size(0)
        if x[1] is not None:
            num_dst = x[1].size(0)
        elif isinstance(edge_index, SparseTensor) or \
                is_torch_sparse_tensor(edge_index):
            num_dst = edge_index.size(0)  # a transposed adjacency: [dst, src]
        else:
            num_dst = num_src
        if size is not None:
            num_src, num_dst = size
        check_edge_index(name, edge_index, num_src, num_dst)
        edge_dim = self.edge_dim
        if self.edge_encoder is not None:
            if not isinstance(edge_index, Tensor) or edge_index.is_sparse \
                    or edge_index.layout != torch.strided:
                raise ValueError(f"'{name}' was built with an "
                                 f"'edge_encoder' and needs 'edge_index' as "
                                 f"a [2, num_edges] tensor with raw features "
                                 f"in 'edge_attr', not a sparse adjacency")
            if edge_attr is None:
                raise ValueError(f"'{name}' was built with an "
                                 f"'edge_encoder' and needs 'edge_attr'")
            # Checked after encoding: raw features may be categorical.
            edge_attr = self.edge_encoder(edge_attr)
            edge_dim = self.in_channels
        if isinstance(edge_index, Tensor) and not edge_index.is_sparse \
                and edge_index.layout == torch.strided:
            check_edge_attr(name, edge_attr, edge_dim, edge_index.size(1),
                            dtype)
        elif edge_dim is None:
            check_edge_attr(name, edge_attr, None, None)
        else:
            _check_adjacency_features(name, edge_index, edge_attr, edge_dim)

        # propagate_type: (x: OptPairTensor, edge_attr: OptTensor)
        message = self.propagate(edge_index, x=x, edge_attr=edge_attr,
                                 size=size)
        x_r = x[1]
        if x_r is not None:
            message = message + (1 + self.eps) * x_r

        if first_message is None:
            if self.first_channels != self.in_channels:
                raise ValueError(f"'{name}' was built with "
                                 f"'first_channels={self.first_channels}' "
                                 f"and needs 'first_message' of shape "
                                 f"[{message.size(0)}, {self.first_channels}]")
            first_message = message
        elif (first_message.dim() != 2
              or first_message.size(0) != message.size(0)
              or first_message.size(1) != self.first_channels):
            raise ValueError(f"'{name}' expected 'first_message' of shape "
                             f"[{message.size(0)}, {self.first_channels}] "
                             f"(got {list(first_message.shape)})")
        else:
            check_dtype(name, 'first_message', first_message,
                        parameter_dtype(self.hyper))

        z = self.hyper(self.combiner(message, first_message))
        out = self.nn(message, z, materialize=self.materialize)
        if return_message:
            return out, message
        return out

    def message(self, x_j: Tensor, edge_attr: OptTensor) -> Tensor:
        if self.lin_edge is not None:
            return (x_j + self.lin_edge(edge_attr)).relu()
        if self.edge_encoder is not None:  # encoded in forward()
            return (x_j + edge_attr).relu()
        return x_j

    def message_and_aggregate(self, adj_t: Adj, x: OptPairTensor) -> Tensor:
        if isinstance(adj_t, SparseTensor):
            adj_t = adj_t.set_value(None, layout=None)
        elif is_torch_sparse_tensor(adj_t):
            adj_t = _unit_values(adj_t, x[0].dtype)
        return spmm(adj_t, x[0], reduce=self.aggr)

    def __repr__(self) -> str:
        init = generator_options_repr(self.generator_init,
                                      self.normalize_code)
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'{self.out_channels}, hidden_channels={self.hidden_channels}'
                f', hyper_channels={self.hyper_channels}, '
                f'combine={self.combiner.mode}, edge_dim={self.edge_dim}'
                f'{init})')


def _check_adjacency_features(owner: str, adj_t, edge_attr: OptTensor,
                              edge_dim: int) -> None:
    """With a sparse adjacency, edge features are its values (PyG's
    convention): a separate :obj:`edge_attr` has no defined row order
    against the adjacency's sorted entries, and an adjacency of plain
    weights would silently drop the features."""
    if edge_attr is not None:
        raise ValueError(f"'{owner}' got a sparse adjacency and a separate "
                         f"'edge_attr'; store the edge features as the "
                         f"adjacency's values ([num_edges, {edge_dim}]) or "
                         f"pass 'edge_index' as a [2, num_edges] tensor")
    if isinstance(adj_t, SparseTensor):
        values = adj_t.storage.value()
    elif adj_t.layout == torch.sparse_coo:
        values = adj_t._values()  # also readable when not coalesced
    else:
        values = adj_t.values()
    if values is None or values.dim() != 2 or values.size(-1) != edge_dim:
        got = None if values is None else list(values.shape)
        raise ValueError(f"'{owner}' was built with 'edge_dim={edge_dim}' "
                         f"and needs the sparse adjacency's values to be "
                         f"edge features of shape [num_edges, {edge_dim}] "
                         f"(got values of shape {got})")


def _unit_values(adj_t: Tensor, dtype: torch.dtype) -> Tensor:
    """A torch sparse adjacency's pattern with ones of :obj:`dtype`: GIN sums
    its neighbours unweighted, as from an :obj:`edge_index` or a
    value-less :class:`SparseTensor`, and an adjacency built from an
    :obj:`edge_index` holds float32 ones whatever the model's dtype."""
    if adj_t.layout == torch.sparse_coo:
        ones = adj_t._values().new_ones(adj_t._nnz(), dtype=dtype)
        return torch.sparse_coo_tensor(adj_t._indices(), ones,
                                       adj_t.shape[:2],
                                       is_coalesced=adj_t.is_coalesced())
    ones = adj_t.values().new_ones(adj_t.values().size(0), dtype=dtype)
    if adj_t.layout == torch.sparse_csr:
        return torch.sparse_csr_tensor(adj_t.crow_indices(),
                                       adj_t.col_indices(), ones,
                                       adj_t.shape[:2])
    return torch.sparse_csc_tensor(adj_t.ccol_indices(), adj_t.row_indices(),
                                   ones, adj_t.shape[:2])
