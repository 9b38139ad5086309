from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from torch_geometric.nn.conv import MessagePassing
from torch_geometric.utils import is_sparse

from pyg_hyper.nn.inits import glorot_linear_
from pyg_hyper.nn.radial import shifted_softplus
from pyg_hyper.utils.docs import fill_docs
from pyg_hyper.utils.checks import (
    check_channels,
    check_edge_attr,
    check_edge_index,
    check_positive_int,
)


EDGE_UPDATE_DOCS = {'{EDGE_UPDATE_ARGS}': r"""edge_channels (int, optional): Width of the updated edge states.
            Without the update (:obj:`update_edge=False`) the edge states
            keep :obj:`edge_dim` channels. (default: :obj:`channels`, as
            msgnet's ``edge_update``)
        update_edge (bool, optional): Update the edge states first.
            (default: :obj:`True`)
        edge_hidden_channels (int, optional): Hidden width of the edge
            update, the output width of :math:`\mathbf{W}_a`. (default:
            :obj:`2 * channels`: msgnet sizes it by the width of the
            concatenated atom pair)"""}


@fill_docs(EDGE_UPDATE_DOCS)
class NMPEdgeConv(MessagePassing):
    r"""One interaction pass of NMP-Edge (SchNet with edge updates), from the
    `"Neural Message Passing with Edge Updates for Predicting Properties of
    Molecules and Materials" <https://arxiv.org/abs/1806.03146>`_ paper.

    Following the official code (peterbjorgensen/msgnet), a pass first
    updates the edge states from both atoms (if :obj:`update_edge`), then
    sends SchNet-style messages and updates the atom states residually:

    .. math::
        \mathbf{e}_{wv} &\leftarrow \mathbf{W}_b\,\mathrm{ssp}\big(
            \mathbf{W}_a [\mathbf{h}_w \,\Vert\, \mathbf{h}_v \,\Vert\,
            \mathbf{e}_{wv}] + \mathbf{b}_a\big) + \mathbf{b}_b

        \mathbf{m}_v &= \sum_{w \in \mathcal{N}(v)} (\mathbf{W}\mathbf{h}_w)
            \odot \mathrm{ssp}\big(\mathbf{W}_2\,\mathrm{ssp}(\mathbf{W}_1
            \mathbf{e}_{wv} + \mathbf{b}_1) + \mathbf{b}_2\big)

        \mathbf{h}_v &\leftarrow \mathbf{h}_v + \mathbf{W}_4\,\mathrm{ssp}(
            \mathbf{W}_3 \mathbf{m}_v + \mathbf{b}_3) + \mathbf{b}_4

    with :math:`\mathrm{ssp}(x) = \ln(1 + e^x) - \ln 2`. msgnet updates the
    edges before the first pass and after every pass but the last; updating
    them at the start of every pass is the same schedule.
    :math:`\mathbf{W}_a [\cdot]` is computed as
    :math:`\mathbf{W}_{a,w}\mathbf{h}_w + \mathbf{W}_{a,v}\mathbf{h}_v +
    \mathbf{W}_{a,e}\mathbf{e}_{wv}` with the atom terms projected once per
    atom (same function, fewer FLOPs), and :math:`\mathbf{W}\mathbf{h}_w` is
    likewise computed per atom before it is gathered onto edges.

    As in msgnet, every weight matrix starts Glorot-uniform (the three
    blocks of :math:`\mathbf{W}_a` with the bound of the whole matrix) and
    every bias at zero.

    Args:
        channels (int): Width :math:`C` of the atom states.
        edge_dim (int): Width of the incoming edge states (e.g. the number
            of Gaussians of the distance expansion).
        {EDGE_UPDATE_ARGS}
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing` (e.g.
            :obj:`aggr="mean"` for msgnet's ``--avg_msg``).

    Shapes:
        - **input:** atom states :math:`(|\mathcal{V}|, C)`, edge indices
          :math:`(2, |\mathcal{E}|)`, edge states
          :math:`(|\mathcal{E}|, D)`
        - **output:** atom states :math:`(|\mathcal{V}|, C)` and the edge
          states the pass used, :math:`(|\mathcal{E}|, D')` with
          :math:`D' =` :obj:`edge_channels` if :obj:`update_edge` else
          :math:`D`
    """
    def __init__(
        self,
        channels: int,
        edge_dim: int,
        edge_channels: Optional[int] = None,
        update_edge: bool = True,
        edge_hidden_channels: Optional[int] = None,
        **kwargs,
    ):
        kwargs.setdefault('aggr', 'add')
        super().__init__(**kwargs)
        check_positive_int(self.__class__.__name__, channels=channels,
                           edge_dim=edge_dim)
        for arg, value in (('edge_channels', edge_channels),
                           ('edge_hidden_channels', edge_hidden_channels)):
            if value is None:
                continue
            check_positive_int(self.__class__.__name__, **{arg: value})
            if not update_edge and (arg == 'edge_hidden_channels'
                                    or value != edge_dim):
                # Without the update the edge states keep their width.
                raise ValueError(
                    f"'{self.__class__.__name__}' got {arg}={value} with "
                    f"update_edge=False: the edge states are not updated "
                    f"and keep edge_dim={edge_dim} channels (leave {arg} "
                    f"unset)")
        self.channels = channels
        self.edge_dim = edge_dim
        self.update_edge = update_edge
        self.edge_channels = (edge_channels or channels) \
            if update_edge else edge_dim
        C = channels

        if update_edge:
            self.edge_hidden_channels = edge_hidden_channels or 2 * C
            hidden = self.edge_hidden_channels
            self.edge_lin_src = torch.nn.Linear(C, hidden, bias=False)
            self.edge_lin_dst = torch.nn.Linear(C, hidden, bias=False)
            self.edge_lin_edge = torch.nn.Linear(edge_dim, hidden)
            self.edge_lin_out = torch.nn.Linear(hidden, self.edge_channels)
        else:
            self.edge_hidden_channels = None
        # Filter-generating network of the SchNet message.
        self.filter1 = torch.nn.Linear(self.edge_channels, C)
        self.filter2 = torch.nn.Linear(C, C)
        self.lin_msg = self._make_message_lin()
        self._make_state_update()
        self.reset_parameters()

    # Sub-classes swap these two parts for generated ones.
    def _make_message_lin(self) -> torch.nn.Module:
        return torch.nn.Linear(self.channels, self.channels, bias=False)

    def _make_state_update(self) -> None:
        self.update1 = torch.nn.Linear(self.channels, self.channels)
        self.update2 = torch.nn.Linear(self.channels, self.channels)

    def reset_parameters(self):
        super().reset_parameters()
        for module in self.children():
            if isinstance(module, torch.nn.Linear):
                glorot_linear_(module)
            elif hasattr(module, 'reset_parameters'):
                module.reset_parameters()
        if self.update_edge:
            # W_a acts on [h_w || h_v || e]: its three blocks share the
            # Glorot bound of the whole matrix, as one layer in msgnet.
            fan_in = 2 * self.channels + self.edge_dim
            for lin in (self.edge_lin_src, self.edge_lin_dst,
                        self.edge_lin_edge):
                glorot_linear_(lin, fan_in=fan_in)

    def _check_inputs(self, x: Tensor, edge_index: Tensor,
                      edge_attr: Tensor) -> None:
        name = self.__class__.__name__
        check_channels(name, 'x', x, self.channels, self.filter1.weight.dtype)
        # Before check_edge_index, which reads an adjacency's size only;
        # is_sparse() also covers CSR/CSC (Tensor.is_sparse is COO only).
        if not isinstance(edge_index, Tensor) or is_sparse(edge_index):
            raise ValueError(f"'{name}' needs 'edge_index' as a [2, "
                             f"num_edges] tensor: its edge states are "
                             f"updated per edge")
        check_edge_index(name, edge_index, x.size(0), x.size(0))
        check_edge_attr(name, edge_attr, self.edge_dim, edge_index.size(1),
                        self.filter1.weight.dtype)

    def update_edges(self, x: Tensor, edge_index: Tensor,
                     edge_attr: Tensor) -> Tensor:
        r"""The edge update :math:`\mathbf{e}_{wv} \leftarrow \dots`."""
        if not self.update_edge:
            return edge_attr
        src, dst = edge_index
        # index_select rather than x[src]: its backward is an index_add_,
        # where advanced indexing's is an accumulating index_put_, 2.2x
        # slower forward and backward on the CPU at these sizes.
        hidden = (self.edge_lin_src(x).index_select(0, src)
                  + self.edge_lin_dst(x).index_select(0, dst)
                  + _unfused_linear(self.edge_lin_edge, edge_attr))
        return self.edge_lin_out(shifted_softplus(hidden))

    def filters(self, edge_attr: Tensor) -> Tensor:
        return shifted_softplus(_unfused_linear(
            self.filter2,
            shifted_softplus(_unfused_linear(self.filter1, edge_attr))))

    def state_update(self, message: Tensor, x: Tensor,
                     first_state: Optional[Tensor]) -> Tensor:
        return self.update2(shifted_softplus(self.update1(message)))

    def aggregate_messages(self, x: Tensor, edge_index: Tensor,
                           edge_attr: Tensor) -> Tensor:
        # W h_w is linear: project once per atom, then gather onto edges.
        # propagate_type: (x: Tensor, gate: Tensor)
        return self.propagate(edge_index, x=self.lin_msg(x),
                              gate=self.filters(edge_attr))

    def forward(self, x: Tensor, edge_index: Tensor,
                edge_attr: Tensor) -> Tuple[Tensor, Tensor]:
        r"""Runs one pass.

        Returns:
            (torch.Tensor, torch.Tensor): New atom states and the (updated)
            edge states, to be passed to the next pass.
        """
        return self._run(x, edge_index, edge_attr, None)

    def _run(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor,
             first_state: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        self._check_inputs(x, edge_index, edge_attr)
        edge_attr = self.update_edges(x, edge_index, edge_attr)
        message = self.aggregate_messages(x, edge_index, edge_attr)
        return x + self.state_update(message, x, first_state), edge_attr

    def message(self, x_j: Tensor, gate: Tensor) -> Tensor:
        return x_j * gate

    def _repr_args(self) -> str:
        args = (f'{self.channels}, edge_dim={self.edge_dim}, '
                f'edge_channels={self.edge_channels}, '
                f'update_edge={self.update_edge}')
        if self.update_edge:
            args += f', edge_hidden_channels={self.edge_hidden_channels}'
        return args

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}({self._repr_args()})'


def _unfused_linear(lin: torch.nn.Linear, x: Tensor) -> Tensor:
    """``lin(x)`` with the bias added after the product. Why: on CPU a
    fused ``addmm`` first copies the broadcast bias into its output, one
    more pass over a per-edge tensor, while a separate add fuses into the
    following activation under :func:`torch.compile` (eagerly it costs the
    same pass as the copy)."""
    return F.linear(x, lin.weight) + lin.bias
