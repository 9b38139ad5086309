from typing import Optional

import torch
from torch import Tensor

from torch_geometric.utils import scatter

from pyg_hyper.nn.conv.hyper_nmp_edge_conv import HyperNMPEdgeConv
from pyg_hyper.nn.conv.nmp_edge_conv import NMPEdgeConv
from pyg_hyper.nn.inits import glorot_linear_
from pyg_hyper.nn.radial import (
    GaussianExpansion,
    molecular_graph,
    shifted_softplus,
)
from pyg_hyper.utils.checks import (
    check_batch,
    check_edge_index,
    check_edges_within_graphs,
    check_positions,
    is_tracing,
    parameter_dtype,
)

MAX_Z = 100


class NMPEdge(torch.nn.Module):
    r"""The NMP-Edge network from the `"Neural Message Passing with Edge
    Updates for Predicting Properties of Molecules and Materials"
    <https://arxiv.org/abs/1806.03146>`_ paper, for molecular properties.

    Atoms start from an embedding of their atomic number; edges join every
    pair of atoms closer than :obj:`cutoff` (every pair of the molecule if
    :obj:`cutoff=None`, as NMP-Edge on QM9) and start from a Gaussian
    expansion of their length (150 Gaussians, 0-15 Å, :math:`\sigma` = 0.1
    Å). :obj:`num_layers` :class:`~pyg_hyper.nn.conv.NMPEdgeConv` passes
    follow, then a sum over atoms of an atom MLP:

    .. math::
        \hat{y} = \sum_{v} \Big(\mathrm{std}\cdot \big(\mathbf{w}^\top
        \mathrm{ssp}(\mathbf{W}\mathbf{h}_v + \mathbf{b}) + b_2\big) +
        \mathrm{mean} + \mathrm{atomref}[z_v]\Big)

    (per-atom normalization, as msgnet; with :obj:`per_atom=False` mean and
    std apply to the sum). Set them from training data only, e.g. with
    :func:`pyg_hyper.datasets.target_statistics` and
    :meth:`set_normalization`.

    Args:
        hidden_channels (int, optional): Atom state width :math:`C`.
            (default: :obj:`64`, the width of msgnet's QM9 command)
        num_layers (int, optional): Interaction passes. (default: :obj:`3`)
        cutoff (float, optional): Edge cutoff in Å; :obj:`None` for the full
            graph. (default: :obj:`None`)
        gaussian_start, gaussian_stop, gaussian_step (float, optional):
            Distance expansion grid. (default: :obj:`0.0`, :obj:`15.0`,
            :obj:`0.1`)
        update_edge (bool, optional): Edge updates (the "Edge" of NMP-Edge).
            (default: :obj:`True`)
        readout_channels (int, optional): Hidden width of the atom MLP.
            (default: :obj:`hidden_channels // 2`)
        mean (float, optional): Target mean. (default: :obj:`0.0`)
        std (float, optional): Target standard deviation.
            (default: :obj:`1.0`)
        atomref (torch.Tensor, optional): Per-element reference
            :obj:`[100]` or :obj:`[100, 1]`. (default: :obj:`None`)
        per_atom (bool, optional): Whether mean and std are per atom.
            (default: :obj:`True`)
        **conv_kwargs (optional): Further arguments of every
            :class:`~pyg_hyper.nn.conv.NMPEdgeConv` pass (e.g.
            :obj:`edge_channels`, or :obj:`aggr="mean"` for msgnet's
            averaged messages).

    Shapes:
        - **input:** atomic numbers :math:`(|\mathcal{V}|)`, positions
          :math:`(|\mathcal{V}|, 3)`, batch vector :math:`(|\mathcal{V}|)`
          *(optional)*, edge indices :math:`(2, |\mathcal{E}|)` *(optional,
          built from positions if absent)*
        - **output:** one value per molecule :math:`(|\mathcal{G}|, 1)`
    """
    def __init__(
        self,
        hidden_channels: int = 64,
        num_layers: int = 3,
        cutoff: Optional[float] = None,
        gaussian_start: float = 0.0,
        gaussian_stop: float = 15.0,
        gaussian_step: float = 0.1,
        update_edge: bool = True,
        readout_channels: Optional[int] = None,
        mean: float = 0.0,
        std: float = 1.0,
        atomref: Optional[Tensor] = None,
        per_atom: bool = True,
        **conv_kwargs,
    ):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"'num_layers' must be at least 1 "
                             f"(got {num_layers})")
        if cutoff is not None and cutoff <= 0:
            raise ValueError(f"'cutoff' must be positive or None "
                             f"(got {cutoff})")
        self.hidden_channels = hidden_channels
        self.num_layers = num_layers
        self.cutoff = cutoff
        self.per_atom = per_atom
        self.embedding = torch.nn.Embedding(MAX_Z, hidden_channels)
        self.expansion = GaussianExpansion(gaussian_start, gaussian_stop,
                                           gaussian_step)
        self.convs = torch.nn.ModuleList()
        edge_dim = self.expansion.num_gaussians
        for _ in range(num_layers):
            conv = self._make_conv(hidden_channels, edge_dim, update_edge,
                                   **conv_kwargs)
            edge_dim = conv.edge_channels
            self.convs.append(conv)
        readout_channels = readout_channels or max(hidden_channels // 2, 1)
        self.readout1 = torch.nn.Linear(hidden_channels, readout_channels)
        self.readout2 = torch.nn.Linear(readout_channels, 1)
        self.register_buffer('mean', torch.zeros(()))
        self.register_buffer('std', torch.ones(()))
        self.register_buffer('atomref', torch.zeros(MAX_Z))
        self.reset_parameters()
        self.set_normalization(mean, std, atomref, per_atom)

    def _make_conv(self, channels: int, edge_dim: int, update_edge: bool,
                   **kwargs) -> NMPEdgeConv:
        return NMPEdgeConv(channels, edge_dim, update_edge=update_edge,
                           **kwargs)

    def reset_parameters(self):
        # msgnet draws the species embedding from N(0, 1/sqrt(C)), and
        # starts its readout MLP Glorot-uniform with zero biases.
        torch.nn.init.normal_(self.embedding.weight,
                              std=self.hidden_channels**-0.25)
        for conv in self.convs:
            conv.reset_parameters()
        glorot_linear_(self.readout1)
        glorot_linear_(self.readout2)

    def set_normalization(self, mean: float = 0.0, std: float = 1.0,
                          atomref: Optional[Tensor] = None,
                          per_atom: Optional[bool] = None) -> None:
        r"""Sets the target scale (fit on training data only)."""
        if not std > 0:
            raise ValueError(f"'std' must be positive (got {std})")
        self.mean.fill_(float(mean))
        self.std.fill_(float(std))
        self.atomref.zero_()
        if atomref is not None:
            atomref = torch.as_tensor(atomref).view(-1)
            if atomref.numel() > MAX_Z:
                raise ValueError(f"'atomref' has {atomref.numel()} entries, "
                                 f"at most {MAX_Z} are supported")
            self.atomref[:atomref.numel()] = atomref.to(self.atomref)
        if per_atom is not None:
            self.per_atom = per_atom

    def _check_inputs(self, z: Tensor, pos: Optional[Tensor],
                      batch: Optional[Tensor],
                      num_graphs: Optional[int]) -> None:
        name = self.__class__.__name__
        if not isinstance(z, Tensor) or z.dim() != 1 or \
                z.dtype not in (torch.long, torch.int):
            got = (f'{z.dtype} of shape {list(z.shape)}'
                   if isinstance(z, Tensor) else type(z).__name__)
            raise ValueError(f"'{name}' expected atomic numbers 'z' as an "
                             f"integer tensor of shape [num_atoms] (got "
                             f"{got})")
        if not is_tracing() and z.numel() > 0 and \
                (int(z.min()) < 0 or int(z.max()) >= MAX_Z):
            raise ValueError(f"'{name}' expected atomic numbers 'z' in "
                             f"[0, {MAX_Z}) (got {int(z.min())} to "
                             f"{int(z.max())})")
        check_positions(name, pos, z.numel(), parameter_dtype(self))
        check_batch(name, batch, z.numel(), num_graphs)

    def forward(self, z: Tensor, pos: Tensor, batch: Optional[Tensor] = None,
                edge_index: Optional[Tensor] = None,
                num_graphs: Optional[int] = None) -> Tensor:
        r"""Predicts one value per molecule.

        Args:
            z (torch.Tensor): Atomic numbers.
            pos (torch.Tensor): Positions in Å.
            batch (torch.Tensor, optional): Molecule of each atom.
            edge_index (torch.Tensor, optional): Edges to use instead of the
                cutoff graph.
            num_graphs (int, optional): Number of molecules (e.g.
                :obj:`data.num_graphs`). Passing it and :obj:`edge_index`
                (e.g. from :func:`~pyg_hyper.nn.molecular_graph`) makes the
                forward pass free of value-dependent shapes, so that
                :func:`torch.compile` captures it as one graph.
                (default: :obj:`None`, :obj:`batch.max() + 1`)
        """
        self._check_inputs(z, pos, batch, num_graphs)
        if batch is None:
            batch = torch.zeros_like(z, dtype=torch.long)
        if edge_index is None:
            edge_index = molecular_graph(pos, batch, self.cutoff)
        else:
            check_edge_index(self.__class__.__name__, edge_index,
                             z.numel(), z.numel())
            # The energy is a sum over each molecule: an edge between two
            # molecules would couple them in silence.
            check_edges_within_graphs(self.__class__.__name__, edge_index,
                                      batch)
        src, dst = edge_index
        edge_attr = self.expansion((pos[dst] - pos[src]).norm(dim=-1))

        h = self.embedding(z)
        first = h
        for conv in self.convs:
            h, edge_attr = self._pass(conv, h, edge_index, edge_attr, first)

        out = self.readout2(shifted_softplus(self.readout1(h)))
        if self.per_atom:
            out = out * self.std + self.mean
        out = scatter(out, batch, dim=0, dim_size=num_graphs, reduce='sum')
        if not self.per_atom:
            out = out * self.std + self.mean
        # The reference energies are in the target's units: added after the
        # de-normalization, never scaled by std.
        ref = self.atomref[z].view(-1, 1).to(out.dtype)
        return out + scatter(ref, batch, dim=0, dim_size=num_graphs,
                             reduce='sum')

    def _pass(self, conv, h, edge_index, edge_attr, first):
        return conv(h, edge_index, edge_attr)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(hidden_channels='
                f'{self.hidden_channels}, num_layers={self.num_layers}, '
                f'cutoff={self.cutoff})')


class HyperNMPEdge(NMPEdge):
    r"""Hyper-NMP-Edge, from the `"Molecule Property Prediction and
    Classification with Graph Hypernetworks"
    <https://arxiv.org/abs/2002.00240>`_ paper: :class:`NMPEdge` with
    :class:`~pyg_hyper.nn.conv.HyperNMPEdgeConv` passes, whose state-update
    networks are generated per atom from the current and the first atom
    state (the embedding):

    .. math::
        \mathbf{h}^{(0)}_v &= \mathrm{Emb}(z_v), \qquad
        \mathbf{e}^{(0)}_{wv} = \big[e_k(\lVert \mathbf{r}_v -
            \mathbf{r}_w \rVert)\big]_k

        \big(\mathbf{h}^{(t)}, \mathbf{e}^{(t)}\big) &=
            \mathrm{HyperNMPEdgeConv}_t\big(\mathbf{h}^{(t-1)},
            \mathbf{e}^{(t-1)}; \mathbf{h}^{(0)}\big),
            \qquad t = 1, \dots, T

        \hat{y} &= \sum_{v} \Big(\mathrm{std}\cdot \big(\mathbf{w}^\top
            \mathrm{ssp}(\mathbf{W}\mathbf{h}^{(T)}_v + \mathbf{b}) +
            b_2\big) + \mathrm{mean} + \mathrm{atomref}[z_v]\Big),

    with :math:`e_k` the Gaussian expansion
    (:class:`~pyg_hyper.nn.GaussianExpansion`), :math:`T` =
    :obj:`num_layers` and the readout of :class:`NMPEdge` (per-atom
    normalization; with :obj:`per_atom=False` mean and std apply to the
    sum).

    Args:
        hidden_channels (int, optional): Atom state width.
            (default: :obj:`64`)
        num_layers (int, optional): Interaction passes. (default: :obj:`3`)
        hyper_channels (int, optional): Hypernetwork code width :math:`r`.
            (default: :obj:`32`)
        combine (str, optional): :obj:`"concat"` or :obj:`"convex"`.
            (default: :obj:`"concat"`)
        edge_hyper (bool, optional): Also generate per-edge message weights.
            (default: :obj:`False`)
        materialize (bool, optional): Build generated weights explicitly
            (reference path). (default: :obj:`False`)
        **kwargs (optional): Further arguments of :class:`NMPEdge`
            (:obj:`cutoff`, the Gaussian grid, :obj:`mean`, :obj:`std`,
            :obj:`atomref`, ...) and of
            :class:`~pyg_hyper.nn.conv.HyperNMPEdgeConv`
            (:obj:`hyper_layers`, :obj:`act`, :obj:`chunk_size`, ...).

    Shapes:
        - **input:** atomic numbers :math:`(|\mathcal{V}|)`, positions
          :math:`(|\mathcal{V}|, 3)`, batch vector :math:`(|\mathcal{V}|)`
          *(optional)*, edge indices :math:`(2, |\mathcal{E}|)` *(optional,
          built from positions if absent)*
        - **output:** one value per molecule :math:`(|\mathcal{G}|, 1)`
    """
    def __init__(self, hidden_channels: int = 64, num_layers: int = 3,
                 hyper_channels: int = 32, combine: str = 'concat',
                 edge_hyper: bool = False, materialize: bool = False,
                 **kwargs):
        super().__init__(hidden_channels, num_layers,
                         hyper_channels=hyper_channels, combine=combine,
                         edge_hyper=edge_hyper, materialize=materialize,
                         **kwargs)

    def _make_conv(self, channels: int, edge_dim: int, update_edge: bool,
                   **kwargs) -> NMPEdgeConv:
        return HyperNMPEdgeConv(channels, edge_dim, update_edge=update_edge,
                                **kwargs)

    def _pass(self, conv, h, edge_index, edge_attr, first):
        return conv(h, edge_index, edge_attr, first_state=first)
