from typing import Optional, Tuple

import torch
from torch import Tensor

from pyg_hyper.nn.conv.nmp_edge_conv import EDGE_UPDATE_DOCS, NMPEdgeConv
from pyg_hyper.nn.hyper_linear import HyperLinear
from pyg_hyper.nn.hypernetwork import (
    FirstMessageCombiner,
    HyperMLP,
    HyperNetwork,
)
from pyg_hyper.utils.checks import check_dtype
from pyg_hyper.utils.docs import fill_docs


@fill_docs(EDGE_UPDATE_DOCS)
class HyperNMPEdgeConv(NMPEdgeConv):
    r"""An NMP-Edge pass whose state-update network is generated per atom by
    a hypernetwork, from the `"Molecule Property Prediction and
    Classification with Graph Hypernetworks"
    <https://arxiv.org/abs/2002.00240>`_ paper (Hyper-NMP-Edge).

    The edge update and the message are those of :class:`NMPEdgeConv`. A
    tanh hypernetwork :math:`f` reads the current atom state together with
    the first state :math:`\mathbf{h}^{(0)}_v` (the atom embedding) and
    generates the weights of the state update :math:`g`:

    .. math::
        \mathbf{z}_v &= f\big(\mathbf{u}_v\big), \qquad \mathbf{u}_v =
            [\mathbf{h}_v \,\Vert\, \mathbf{h}^{(0)}_v] \text{ (concat) or }
            c\,\mathbf{h}^{(0)}_v + (1-c)\,\mathbf{h}_v \text{ (convex)}

        \mathbf{h}_v &\leftarrow \mathbf{h}_v + \mathbf{W}_4(\mathbf{z}_v)\,
            \sigma\big(\mathbf{W}_3(\mathbf{z}_v)\,\mathbf{m}_v +
            \mathbf{b}_3(\mathbf{z}_v)\big) + \mathbf{b}_4(\mathbf{z}_v),

    with :math:`\mathbf{W}(\mathbf{z}) = \sum_k z_k\mathbf{A}_k +
    \mathbf{B}` applied in factorized form by
    :class:`~pyg_hyper.nn.HyperLinear` (no per-atom weight tensor is built).

    With :obj:`edge_hyper=True`, the message weight :math:`\mathbf{W}` is
    generated per edge as well, from the edge state by a second tanh
    hypernetwork :math:`f_e`:
    :math:`\mathbf{m}_v = \sum_w \mathbf{W}(f_e(\mathbf{e}_{wv}))
    \mathbf{h}_w \odot \mathrm{ssp}(\dots)` (edge-conditioned, like
    :class:`~torch_geometric.nn.conv.NNConv`, but factorized).

    Choices where the paper is ambiguous, and why:

    * :math:`f` reads atom *states* (current and first), not messages: the
      hypernetwork generates the *state-update* network, and the third-party
      reimplementation galkampel/HyperNetworks mixes
      :math:`c\,\mathbf{h}^{(0)} + (1-c)\,\mathbf{h}^{(t)}` the same way.
    * The first state is the atom embedding, so the layer needs no extra
      input on the first pass (then :math:`\mathbf{h} = \mathbf{h}^{(0)}`).
    * :math:`g` keeps NMP-Edge's shape (two layers, residual) and its
      activation :math:`\sigma` (:obj:`act="ssp"`); only its weights are
      generated. :obj:`act="tanh"` gives galkampel's tanh :math:`g`.
    * One hypernetwork per pass (untied), as NMP-Edge's passes are untied.

    Args:
        channels (int): Width :math:`C` of the atom states.
        edge_dim (int): Width of the incoming edge states.
        {EDGE_UPDATE_ARGS}
        hyper_channels (int, optional): Width :math:`r` of the hypernetwork
            code; the generated maps cost :math:`r + 1` times a plain
            linear layer. (default: :obj:`32`)
        combine (str, optional): :obj:`"concat"` or :obj:`"convex"`.
            (default: :obj:`"concat"`)
        hyper_layers (int, optional): Hidden layers of :math:`f` (and of
            :math:`f_e`).
            (default: :obj:`2`)
        act (str, optional): Activation inside :math:`g`: :obj:`"ssp"`,
            :obj:`"tanh"` or :obj:`"relu"`. (default: :obj:`"ssp"`)
        edge_hyper (bool, optional): Also generate the message weight per
            edge. (default: :obj:`False`)
        edge_hyper_channels (int, optional): Code width of :math:`f_e`.
            (default: :obj:`hyper_channels`)
        chunk_size (int, optional): Rows per chunk of the generated maps,
            bounding temporary memory. (default: :obj:`None`)
        edge_chunk_size (int, optional): Edges per chunk of the per-edge
            generated map. (default: :obj:`8192`)
        materialize (bool, optional): Build every generated weight tensor
            explicitly (the slow reference path, for tests and benchmarks).
            (default: :obj:`False`)
        generator_init (str, optional): :obj:`"uniform"` or :obj:`"zero"`
            (every generated map starts as its shared part, a plain NMP-Edge
            map), as in :class:`~pyg_hyper.nn.HyperLinear`.
            (default: :obj:`"uniform"`)
        normalize_code (bool, optional): Divide each code by its width
            before the generator, as in :class:`~pyg_hyper.nn.HyperLinear`.
            (default: :obj:`False`)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:** atom states :math:`(|\mathcal{V}|, C)`, edge indices
          :math:`(2, |\mathcal{E}|)`, edge states
          :math:`(|\mathcal{E}|, D)`, first states
          :math:`(|\mathcal{V}|, C)` *(optional)*
        - **output:** atom states :math:`(|\mathcal{V}|, C)` and the edge
          states the pass used
    """
    def __init__(
        self,
        channels: int,
        edge_dim: int,
        edge_channels: Optional[int] = None,
        update_edge: bool = True,
        edge_hidden_channels: Optional[int] = None,
        hyper_channels: int = 32,
        combine: str = 'concat',
        hyper_layers: int = 2,
        act: str = 'ssp',
        edge_hyper: bool = False,
        edge_hyper_channels: Optional[int] = None,
        chunk_size: Optional[int] = None,
        edge_chunk_size: Optional[int] = 8192,
        materialize: bool = False,
        generator_init: str = 'uniform',
        normalize_code: bool = False,
        **kwargs,
    ):
        # Read by the _make_* hooks that NMPEdgeConv.__init__ calls.
        self._hyper_config = dict(
            hyper_channels=hyper_channels, combine=combine,
            hyper_layers=hyper_layers, act=act, edge_hyper=edge_hyper,
            edge_hyper_channels=edge_hyper_channels or hyper_channels,
            chunk_size=chunk_size, edge_chunk_size=edge_chunk_size)
        self._generator = dict(generator_init=generator_init,
                               normalize_code=normalize_code)
        self.hyper_channels = hyper_channels
        self.edge_hyper = edge_hyper
        self.materialize = materialize
        super().__init__(channels, edge_dim, edge_channels, update_edge,
                         edge_hidden_channels, **kwargs)

    def _make_message_lin(self) -> torch.nn.Module:
        cfg = self._hyper_config
        if not cfg['edge_hyper']:
            return super()._make_message_lin()
        self.edge_hyper_net = HyperNetwork(self.edge_channels,
                                           cfg['edge_hyper_channels'],
                                           cfg['hyper_layers'])
        return HyperLinear(self.channels, self.channels,
                           cfg['edge_hyper_channels'], bias=False,
                           chunk_size=cfg['edge_chunk_size'],
                           **self._generator)

    def _make_state_update(self) -> None:
        cfg = self._hyper_config
        C = self.channels
        self.combiner = FirstMessageCombiner(C, C, cfg['combine'])
        self.hyper = HyperNetwork(self.combiner.out_channels,
                                  cfg['hyper_channels'], cfg['hyper_layers'])
        self.update_nn = HyperMLP([C, C, C], cfg['hyper_channels'],
                                  act=cfg['act'],
                                  chunk_size=cfg['chunk_size'],
                                  **self._generator)

    def state_update(self, message: Tensor, x: Tensor,
                     first_state: Optional[Tensor]) -> Tensor:
        z = self.hyper(self.combiner(x, x if first_state is None
                                     else first_state))
        return self.update_nn(message, z, materialize=self.materialize)

    def aggregate_messages(self, x: Tensor, edge_index: Tensor,
                           edge_attr: Tensor) -> Tensor:
        z_edge: Optional[Tensor] = None
        if self.edge_hyper:
            # A generated map per edge cannot be applied per atom first, so
            # the atom states go to the edges unprojected and message()
            # applies it there.
            z_edge = self.edge_hyper_net(edge_attr)
        else:
            x = self.lin_msg(x)
        # propagate_type: (x: Tensor, gate: Tensor, z_edge: Optional[Tensor])
        return self.propagate(edge_index, x=x, gate=self.filters(edge_attr),
                              z_edge=z_edge)

    def message(self, x_j: Tensor, gate: Tensor,
                z_edge: Optional[Tensor] = None) -> Tensor:
        if z_edge is not None:
            x_j = self.lin_msg(x_j, z_edge, materialize=self.materialize)
        return x_j * gate

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor,
                first_state: Optional[Tensor] = None) -> Tuple[Tensor,
                                                                Tensor]:
        r"""Runs one pass.

        Args:
            x (torch.Tensor): Atom states.
            edge_index (torch.Tensor): Edge indices.
            edge_attr (torch.Tensor): Edge states.
            first_state (torch.Tensor, optional): First atom states
                :math:`\mathbf{h}^{(0)}`; if :obj:`None`, :obj:`x` is the
                first state.

        Returns:
            (torch.Tensor, torch.Tensor): New atom states and the edge
            states the pass used.
        """
        if first_state is not None and first_state.shape != x.shape:
            raise ValueError(f"'{self.__class__.__name__}' expected "
                             f"'first_state' of shape {list(x.shape)} "
                             f"(got {list(first_state.shape)})")
        if first_state is not None:
            check_dtype(self.__class__.__name__, 'first_state', first_state,
                        self.filter1.weight.dtype)
        return self._run(x, edge_index, edge_attr, first_state)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self._repr_args()}, '
                f'hyper_channels={self.hyper_channels}, '
                f'combine={self.combiner.mode}, '
                f'edge_hyper={self.edge_hyper})')
