from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from torch_geometric.nn import (
    MLP,
    GINConv,
    GINEConv,
    global_add_pool,
    global_max_pool,
    global_mean_pool,
)
from torch_geometric.typing import Adj, OptTensor

from pyg_hyper.nn.conv.hyper_gin_conv import HyperGINConv
from pyg_hyper.utils.checks import (
    check_batch,
    check_channels,
    check_edge_attr,
    check_positive_int,
    parameter_dtype,
)

READOUTS = ('last', 'layers')
POOLS = {
    'sum': global_add_pool,
    'mean': global_mean_pool,
    'max': global_max_pool,
}


class HyperGIN(torch.nn.Module):
    r"""A graph-level Hyper-GIN network from the `"Molecule Property Prediction
    and Classification with Graph Hypernetworks"
    <https://arxiv.org/abs/2002.00240>`_ paper: a stack of
    :class:`~pyg_hyper.nn.conv.HyperGINConv` layers, each followed by batch
    normalization, ReLU and dropout, then graph pooling and a linear head.

    The first layer's message is passed to every later layer as
    :obj:`first_message`, which is what stabilizes hypernetwork training.

    With :obj:`readout="layers"` the graph output is the GIN paper's
    (`"How Powerful are Graph Neural Networks?"
    <https://arxiv.org/abs/1810.00826>`_, Eq. 4.2, official
    :obj:`powerful-gnns` code): every layer, the input included, is pooled
    and gets its own linear head, and the heads' outputs are summed,

    .. math::
        \mathbf{y}_G = \sum_{k=0}^{K} \mathrm{Dropout}\left(
        \mathbf{W}_k \, \mathrm{POOL}\left(\{\mathbf{h}_v^{(k)}\}\right)
        + \mathbf{b}_k \right),

    with dropout on these predictions only (not between layers).

    With :obj:`hyper=False` the same stack is built from PyG's
    :class:`~torch_geometric.nn.conv.GINConv` (or
    :class:`~torch_geometric.nn.conv.GINEConv` with :obj:`edge_dim`) with a
    2-layer MLP of the same widths, the plain GIN baseline.

    Args:
        in_channels (int): Size of each input node feature.
        hidden_channels (int): Width of every layer.
        out_channels (int): Number of outputs per graph (classes or targets).
        num_layers (int, optional): Number of message-passing layers.
            (default: :obj:`5`)
        hyper (bool, optional): Use hypernetwork layers. (default: :obj:`True`)
        edge_dim (int, optional): Edge feature dimensionality.
            (default: :obj:`None`)
        hyper_channels (int, optional): Hypernetwork width :math:`r`.
            (default: :obj:`64`)
        combine (str, optional): :obj:`"concat"` or :obj:`"convex"`.
            (default: :obj:`"concat"`)
        pool (str, optional): :obj:`"sum"`, :obj:`"mean"` or :obj:`"max"`.
            (default: :obj:`"sum"`)
        dropout (float, optional): Dropout after each layer
            (:obj:`readout="last"`) or on each layer's prediction
            (:obj:`readout="layers"`). (default: :obj:`0.5`)
        readout (str, optional): :obj:`"last"` (one head on the pooled last
            layer) or :obj:`"layers"` (the GIN paper's sum of per-layer
            heads, see above). (default: :obj:`"last"`)
        train_eps (bool, optional): Learn :math:`\epsilon`.
            (default: :obj:`False`)
        materialize (bool, optional): Use the materializing reference path in
            the hyper layers. (default: :obj:`False`)
        generator_init (str, optional): Initialization of the hyper layers'
            generators, :obj:`"uniform"` or :obj:`"zero"` (start as GIN with
            plain tanh MLPs), see :class:`~pyg_hyper.nn.conv.HyperGINConv`.
            (default: :obj:`"uniform"`)
        normalize_code (bool, optional): Divide the hypernetwork codes by
            their width (see :class:`~pyg_hyper.nn.conv.HyperGINConv`).
            (default: :obj:`False`)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})`,
          edge indices :math:`(2, |\mathcal{E}|)`,
          edge features :math:`(|\mathcal{E}|, D)` *(optional)*,
          batch vector :math:`(|\mathcal{V}|)` *(optional)*
        - **output:** graph outputs :math:`(|\mathcal{G}|, F_{out})`
    """
    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        num_layers: int = 5,
        hyper: bool = True,
        edge_dim: Optional[int] = None,
        hyper_channels: int = 64,
        combine: str = 'concat',
        pool: str = 'sum',
        dropout: float = 0.5,
        train_eps: bool = False,
        materialize: bool = False,
        readout: str = 'last',
        generator_init: str = 'uniform',
        normalize_code: bool = False,
    ):
        super().__init__()
        if readout not in READOUTS:
            raise ValueError(f"Unknown readout '{readout}' (expected one of "
                             f"{list(READOUTS)})")
        if pool not in POOLS:
            raise ValueError(f"Unknown pooling '{pool}' (expected one of "
                             f"{sorted(POOLS)})")
        check_positive_int('HyperGIN', in_channels=in_channels,
                           hidden_channels=hidden_channels,
                           out_channels=out_channels, num_layers=num_layers)
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.out_channels = out_channels
        self.num_layers = num_layers
        self.hyper = hyper
        self.edge_dim = edge_dim
        self.pool = pool
        self.dropout = dropout
        self.readout = readout

        self.convs = torch.nn.ModuleList()
        self.norms = torch.nn.ModuleList()
        for i in range(num_layers):
            c_in = in_channels if i == 0 else hidden_channels
            if hyper:
                conv = HyperGINConv(c_in, hidden_channels,
                                    hyper_channels=hyper_channels,
                                    first_channels=in_channels,
                                    combine=combine, train_eps=train_eps,
                                    edge_dim=edge_dim,
                                    materialize=materialize,
                                    generator_init=generator_init,
                                    normalize_code=normalize_code)
            else:
                mlp = MLP([c_in, hidden_channels, hidden_channels],
                          act='relu', norm='batch_norm')
                if edge_dim is None:
                    conv = GINConv(mlp, train_eps=train_eps)
                else:
                    conv = GINEConv(mlp, train_eps=train_eps,
                                    edge_dim=edge_dim)
            self.convs.append(conv)
            self.norms.append(torch.nn.BatchNorm1d(hidden_channels))
        widths = [hidden_channels]
        if readout == 'layers':
            widths = [in_channels] + [hidden_channels] * num_layers
        self.heads = torch.nn.ModuleList(
            [torch.nn.Linear(c, out_channels) for c in widths])
        self.reset_parameters()

    def reset_parameters(self):
        for conv, norm in zip(self.convs, self.norms):
            conv.reset_parameters()
            norm.reset_parameters()
        for head in self.heads:
            head.reset_parameters()

    def forward(self, x: Tensor, edge_index: Adj, edge_attr: OptTensor = None,
                batch: OptTensor = None,
                batch_size: Optional[int] = None) -> Tensor:
        name = self.__class__.__name__
        check_channels(name, 'x', x, self.in_channels)
        check_batch(name, batch, x.size(0), batch_size)
        if not self.hyper and (edge_attr is not None or
                               self.edge_dim is not None):
            # PyG's GIN layers would read a stray edge_attr as their 'size'
            # argument; HyperGINConv checks its own.
            num_edges = (edge_index.size(1) if isinstance(edge_index, Tensor)
                         and edge_index.layout == torch.strided else None)
            check_edge_attr(name, edge_attr, self.edge_dim, num_edges,
                            parameter_dtype(self))
        if batch is None:
            batch = x.new_zeros(x.size(0), dtype=torch.long)
            batch_size = 1
        per_layer = self.readout == 'layers'
        out = self._predict(0, x, batch, batch_size) if per_layer else None
        first_message: OptTensor = None
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            if self.hyper:
                x, message = conv(x, edge_index, edge_attr,
                                  first_message=first_message,
                                  return_message=True)
                if first_message is None:
                    first_message = message
            elif self.edge_dim is not None:
                x = conv(x, edge_index, edge_attr)
            else:
                x = conv(x, edge_index)
            x = norm(x).relu()
            if per_layer:
                out = out + self._predict(i + 1, x, batch, batch_size)
            else:
                x = F.dropout(x, p=self.dropout, training=self.training)
        if per_layer:
            return out
        return self.heads[0](POOLS[self.pool](x, batch, size=batch_size))

    def _predict(self, layer: int, x: Tensor, batch: Tensor,
                 batch_size: Optional[int]) -> Tensor:
        pooled = POOLS[self.pool](x, batch, size=batch_size)
        return F.dropout(self.heads[layer](pooled), p=self.dropout,
                         training=self.training)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'{self.hidden_channels}, {self.out_channels}, '
                f'num_layers={self.num_layers}, hyper={self.hyper}, '
                f'readout={self.readout})')
