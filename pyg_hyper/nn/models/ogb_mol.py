from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import BatchNorm1d, Linear, ReLU, Sequential

from torch_geometric.nn import GINEConv, global_add_pool
from torch_geometric.typing import Adj, OptTensor

from pyg_hyper.nn.conv.hyper_gin_conv import HyperGINConv
from pyg_hyper.nn.models.hyper_gin import POOLS
from pyg_hyper.utils.checks import (
    check_batch,
    check_positive_int,
    is_tracing,
)

CONVS = ('gin', 'hyper_gin')
JKS = ('last', 'sum')

#: Named Hyper-GIN configurations for :class:`OGBMolGNN` (keyword arguments).
#: ``full`` keeps :class:`~pyg_hyper.nn.conv.HyperGINConv`'s defaults at OGB's
#: width: its generated node network has OGB's width and a 64-wide code.
#: ``cheap`` narrows the code and the generated network's hidden layer so
#: that a training epoch costs at most about 3x GIN's (see
#: ``benchmarks/bench_ogb_throughput.py``); its generated weights cost
#: :math:`(r+1)(F_{in}+1)` per output unit, so :math:`r = 8` and a 64-wide
#: hidden layer bring the per-node FLOPs near GIN's MLP.
HYPER_GIN_CONFIGS: Dict[str, Dict[str, int]] = {
    'full': dict(hyper_channels=64, hyper_hidden_channels=300),
    'cheap': dict(hyper_channels=8, hyper_hidden_channels=64),
}


#: The atom feature sizes of the ogb releases that produced the leaderboard's
#: GIN entries. ogb 1.3.5 (snap-stanford/ogb#399) added a fifth, 'misc',
#: chirality category, so the installed ogb's AtomEncoder has 300 more
#: parameters at width 300 (1,885,506 instead of 1,885,206 for GIN). No
#: molecule of the OGB molecule sets uses that category, so either size
#: gives the same model function.
OGB_LEADERBOARD_ATOM_DIMS = (119, 4, 12, 12, 10, 6, 6, 2, 2)


class CategoricalEncoder(torch.nn.Module):
    r"""Embeds rows of categorical features as the sum of one embedding per
    column, each initialized by Xavier-uniform: OGB's
    :class:`~ogb.graphproppred.mol_encoder.AtomEncoder` and
    :class:`~ogb.graphproppred.mol_encoder.BondEncoder`, with the category
    counts as an argument instead of fixed by the installed ogb.

    Args:
        feature_dims (List[int]): Number of categories of each column.
        emb_dim (int): Embedding width.
    """
    def __init__(self, feature_dims: Sequence[int], emb_dim: int):
        super().__init__()
        self.feature_dims = list(feature_dims)
        self.embeddings = torch.nn.ModuleList(
            [torch.nn.Embedding(dim, emb_dim) for dim in self.feature_dims])
        self.reset_parameters()

    def reset_parameters(self):
        for emb in self.embeddings:
            torch.nn.init.xavier_uniform_(emb.weight)

    def forward(self, x: Tensor) -> Tensor:
        name = self.__class__.__name__
        if x.dim() != 2 or x.size(1) != len(self.embeddings) or \
                x.dtype not in (torch.long, torch.int):
            raise ValueError(f"'{name}' expected integer categorical "
                             f"features of shape [num_rows, "
                             f"{len(self.embeddings)}] (got {x.dtype} of "
                             f"shape {list(x.shape)})")
        # On CPU only: on a GPU each check would cost a device sync per
        # layer, and an out-of-range index there is a device-side assert,
        # not a silent result.
        if not is_tracing() and x.numel() > 0 and x.device.type == 'cpu':
            low, high = x.min(dim=0).values, x.max(dim=0).values
            for i, dim in enumerate(self.feature_dims):
                if int(low[i]) < 0 or int(high[i]) >= dim:
                    raise ValueError(
                        f"'{name}' expected column {i} in [0, {dim}) (got "
                        f"{int(low[i])} to {int(high[i])}); were the "
                        f"features built by another ogb version's "
                        f"smiles2graph?")
        out = self.embeddings[0](x[:, 0])
        for i in range(1, len(self.embeddings)):
            out = out + self.embeddings[i](x[:, i])
        return out

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}({self.feature_dims})'


def _ogb_feature_dims():
    from ogb.utils.features import get_atom_feature_dims, get_bond_feature_dims
    return get_atom_feature_dims(), get_bond_feature_dims()


def _mlp(channels: int, hidden: int, final_act: bool) -> Sequential:
    # OGB's two-layer MLP block: Linear-BN-ReLU-Linear[-BN-ReLU].
    layers = [Linear(channels, hidden), BatchNorm1d(hidden), ReLU(),
              Linear(hidden, channels)]
    if final_act:
        layers += [BatchNorm1d(channels), ReLU()]
    return Sequential(*layers)


class OGBMolGNN(torch.nn.Module):
    r"""The GIN and GIN+virtual-node models of OGB's molecule example
    (`snap-stanford/ogb examples/graphproppred/mol
    <https://github.com/snap-stanford/ogb/tree/master/examples/graphproppred/mol>`_,
    `"Open Graph Benchmark" <https://arxiv.org/abs/2005.00687>`_), and the
    same model with every GIN layer replaced by
    :class:`~pyg_hyper.nn.conv.HyperGINConv` (`"Molecule Property Prediction
    and Classification with Graph Hypernetworks"
    <https://arxiv.org/abs/2002.00240>`_). One argument, :obj:`conv`,
    switches between them.

    Atoms and bonds are embedded as by OGB's
    :class:`~ogb.graphproppred.mol_encoder.AtomEncoder` and (one per layer)
    :class:`~ogb.graphproppred.mol_encoder.BondEncoder`
    (:class:`~pyg_hyper.nn.models.ogb_mol.CategoricalEncoder`). Each layer
    is

    .. math::
        \mathbf{h}^{(l+1)} = \mathrm{Dropout}(\sigma(\mathrm{BN}(
        \mathrm{conv}(\mathbf{h}^{(l)} + \mathbf{v}^{(l)}_{b},
        \mathbf{E}^{(l)}))))

    with :math:`\sigma` = ReLU except after the last layer, and
    :math:`\mathbf{v}^{(l)}_b` the graph's virtual node (zero without one).
    The virtual node starts at a learned embedding (initialized to zero) and
    is updated after every layer but the last by an MLP of the sum-pooled
    node states plus itself. The node states are read out by JK (the last
    layer, or the sum over all layers and the input embedding), pooled, and
    mapped to the tasks by a linear head.

    With :obj:`conv="gin"` the layer is OGB's GIN: message
    :math:`\mathrm{ReLU}(\mathbf{h}_j + \mathbf{e}_{ji})`, update
    :math:`\mathrm{MLP}((1+\epsilon)\mathbf{h}_i + \sum_j \cdot)` with MLP
    Linear(:math:`d, 2d`)-BN-ReLU-Linear(:math:`2d, d`) and learned
    :math:`\epsilon`; with OGB's defaults and
    :obj:`atom_feature_dims=OGB_LEADERBOARD_ATOM_DIMS` it has exactly the
    leaderboard's parameter counts (1,885,206; 3,336,306 with the virtual
    node, for one task), and 300 more with the installed ogb's atom
    categories. With :obj:`conv="hyper_gin"`, the same message feeds a
    hypernetwork that generates the node network (see
    :class:`~pyg_hyper.nn.conv.HyperGINConv`); the first layer's message is
    passed to every later layer.

    Args:
        num_tasks (int): Number of outputs per graph.
        conv (str, optional): :obj:`"gin"` or :obj:`"hyper_gin"`.
            (default: :obj:`"gin"`)
        num_layers (int, optional): Number of message-passing layers.
            (default: :obj:`5`)
        emb_dim (int, optional): Width of every node state.
            (default: :obj:`300`)
        virtual_node (bool, optional): Add a virtual node.
            (default: :obj:`False`)
        jk (str, optional): :obj:`"last"` or :obj:`"sum"`.
            (default: :obj:`"last"`)
        pool (str, optional): :obj:`"mean"`, :obj:`"sum"` or :obj:`"max"`.
            (default: :obj:`"mean"`)
        dropout (float, optional): Dropout ratio. (default: :obj:`0.5`)
        residual (bool, optional): Add residual connections between layers.
            (default: :obj:`False`)
        hyper_channels (int, optional): Hypernetwork code width :math:`r`
            (:obj:`conv="hyper_gin"` only). (default: :obj:`64`)
        hyper_hidden_channels (int, optional): Hidden width of the generated
            node network (:obj:`conv="hyper_gin"` only).
            (default: :obj:`emb_dim`)
        combine (str, optional): How the hypernetwork combines current and
            first message, :obj:`"concat"` or :obj:`"convex"`.
            (default: :obj:`"concat"`)
        generator_init (str, optional): :obj:`"uniform"` or :obj:`"zero"`
            (the hyper layers start as GIN layers with plain tanh MLPs), see
            :class:`~pyg_hyper.nn.conv.HyperGINConv`
            (:obj:`conv="hyper_gin"` only). (default: :obj:`"uniform"`)
        normalize_code (bool, optional): Divide the hypernetwork codes by
            their width (see :class:`~pyg_hyper.nn.conv.HyperGINConv`;
            :obj:`conv="hyper_gin"` only). (default: :obj:`False`)
        atom_feature_dims (List[int], optional): Category counts of the atom
            features; :obj:`None` takes the installed ogb's, and
            :data:`~pyg_hyper.nn.models.ogb_mol.OGB_LEADERBOARD_ATOM_DIMS`
            those of the leaderboard's
            parameter counts. (default: :obj:`None`)
        bond_feature_dims (List[int], optional): Category counts of the bond
            features; :obj:`None` takes the installed ogb's.
            (default: :obj:`None`)

    Shapes:
        - **input:** categorical atom features :math:`(|\mathcal{V}|, 9)`,
          edge indices :math:`(2, |\mathcal{E}|)`, categorical bond features
          :math:`(|\mathcal{E}|, 3)`, batch vector :math:`(|\mathcal{V}|)`
        - **output:** graph outputs :math:`(|\mathcal{G}|, T)`
    """
    def __init__(
        self,
        num_tasks: int,
        conv: str = 'gin',
        num_layers: int = 5,
        emb_dim: int = 300,
        virtual_node: bool = False,
        jk: str = 'last',
        pool: str = 'mean',
        dropout: float = 0.5,
        residual: bool = False,
        hyper_channels: int = 64,
        hyper_hidden_channels: Optional[int] = None,
        combine: str = 'concat',
        generator_init: str = 'uniform',
        normalize_code: bool = False,
        atom_feature_dims: Optional[Sequence[int]] = None,
        bond_feature_dims: Optional[Sequence[int]] = None,
    ):
        super().__init__()
        name = self.__class__.__name__
        for arg, value, choices in (('conv', conv, CONVS), ('jk', jk, JKS),
                                    ('pool', pool, tuple(POOLS))):
            if value not in choices:
                raise ValueError(f"'{name}' got unknown {arg} '{value}' "
                                 f"(expected one of {list(choices)})")
        if num_layers < 2:
            # OGB's example requires it too: a one-layer GIN is not a GNN
            # with a virtual node to update.
            raise ValueError(f"'{name}' needs 'num_layers' >= 2 "
                             f"(got {num_layers})")
        check_positive_int(name, num_tasks=num_tasks, emb_dim=emb_dim)
        for dims in (atom_feature_dims, bond_feature_dims):
            if dims is not None:
                if len(dims) == 0:
                    raise ValueError(f"'{name}' needs at least one feature "
                                     f"column in 'atom_feature_dims' and "
                                     f"'bond_feature_dims' (got {dims!r})")
                check_positive_int(name, **{f'feature_dims[{i}]': d
                                            for i, d in enumerate(dims)})
        self.num_tasks = num_tasks
        self.conv = conv
        self.num_layers = num_layers
        self.emb_dim = emb_dim
        self.virtual_node = virtual_node
        self.jk = jk
        self.pool = pool
        self.dropout = dropout
        self.residual = residual

        ogb_atom_dims, ogb_bond_dims = _ogb_feature_dims()
        atom_dims = list(atom_feature_dims or ogb_atom_dims)
        bond_dims = list(bond_feature_dims or ogb_bond_dims)
        self.bond_feature_dims = bond_dims
        self.atom_encoder = CategoricalEncoder(atom_dims, emb_dim)
        self.convs = torch.nn.ModuleList()
        self.bond_encoders = torch.nn.ModuleList()
        self.norms = torch.nn.ModuleList()
        for _ in range(num_layers):
            if conv == 'gin':
                # PyG's GINEConv without 'edge_dim' is OGB's GINConv on
                # bond embeddings computed outside.
                self.convs.append(
                    GINEConv(_mlp(emb_dim, 2 * emb_dim, final_act=False),
                             train_eps=True))
                self.bond_encoders.append(
                    CategoricalEncoder(bond_dims, emb_dim))
            else:
                self.convs.append(
                    HyperGINConv(emb_dim, emb_dim,
                                 hidden_channels=hyper_hidden_channels,
                                 hyper_channels=hyper_channels,
                                 combine=combine, train_eps=True,
                                 generator_init=generator_init,
                                 normalize_code=normalize_code,
                                 edge_encoder=CategoricalEncoder(bond_dims,
                                                                 emb_dim)))
            self.norms.append(BatchNorm1d(emb_dim))

        if virtual_node:
            self.vn_embedding = torch.nn.Embedding(1, emb_dim)
            self.vn_mlps = torch.nn.ModuleList([
                _mlp(emb_dim, 2 * emb_dim, final_act=True)
                for _ in range(num_layers - 1)
            ])
        self.head = Linear(emb_dim, num_tasks)
        self.reset_parameters()

    def reset_parameters(self):
        self.atom_encoder.reset_parameters()
        for encoder in self.bond_encoders:
            encoder.reset_parameters()
        for conv in self.convs:
            conv.reset_parameters()  # HyperGINConv resets its edge encoder
        for norm in self.norms:
            norm.reset_parameters()
        if self.virtual_node:
            torch.nn.init.constant_(self.vn_embedding.weight.data, 0)
            for mlp in self.vn_mlps:
                for module in mlp:
                    if hasattr(module, 'reset_parameters'):
                        module.reset_parameters()
        self.head.reset_parameters()

    def forward(self, x: Tensor, edge_index: Adj, edge_attr: Tensor,
                batch: OptTensor = None,
                batch_size: Optional[int] = None) -> Tensor:
        r"""Returns one output row per graph.

        Args:
            x (torch.Tensor): Categorical atom features.
            edge_index (torch.Tensor): Edge indices.
            edge_attr (torch.Tensor): Categorical bond features.
            batch (torch.Tensor, optional): Graph index of every node.
            batch_size (int, optional): Number of graphs (saves a device
                sync when given).
        """
        name = self.__class__.__name__
        if edge_attr is None:
            raise ValueError(f"'{name}' needs categorical bond features "
                             f"'edge_attr' of shape [num_edges, "
                             f"{len(self.bond_feature_dims)}]")
        check_batch(name, batch, x.size(0), batch_size)
        if batch is None:
            batch = x.new_zeros(x.size(0), dtype=torch.long)
            batch_size = 1
        if batch_size is None:
            batch_size = int(batch.max()) + 1 if batch.numel() > 0 else 0

        h = self.atom_encoder(x)
        states = [h]
        vn: OptTensor = None
        if self.virtual_node:
            vn = self.vn_embedding.weight.expand(batch_size, -1)
        first_message: OptTensor = None
        for layer in range(self.num_layers):
            h_in = states[layer]
            if vn is not None:
                h_in = h_in + vn[batch]
                states[layer] = h_in  # OGB pools the shifted states below
            conv = self.convs[layer]
            if isinstance(conv, HyperGINConv):
                h, message = conv(h_in, edge_index, edge_attr,
                                  first_message=first_message,
                                  return_message=True)
                if first_message is None:
                    first_message = message
            else:
                h = conv(h_in, edge_index, self.bond_encoders[layer](edge_attr))
            h = self.norms[layer](h)
            if layer < self.num_layers - 1:
                h = h.relu()
            h = F.dropout(h, p=self.dropout, training=self.training)
            if self.residual:
                h = h + h_in
            states.append(h)
            if vn is not None and layer < self.num_layers - 1:
                pooled = global_add_pool(h_in, batch, size=batch_size) + vn
                update = F.dropout(self.vn_mlps[layer](pooled),
                                   p=self.dropout, training=self.training)
                vn = vn + update if self.residual else update

        h = states[-1] if self.jk == 'last' else torch.stack(states).sum(0)
        return self.head(POOLS[self.pool](h, batch, size=batch_size))

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.num_tasks}, '
                f'conv={self.conv}, num_layers={self.num_layers}, '
                f'emb_dim={self.emb_dim}, virtual_node={self.virtual_node})')
