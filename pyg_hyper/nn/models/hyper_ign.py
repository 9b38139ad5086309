from typing import Optional, Sequence

from torch import Tensor

from pyg_hyper.nn.dense.hyper_ign import HyperEquivariant2to2
from pyg_hyper.nn.models.ign import IGN


class HyperIGN(IGN):
    r"""The Hyper-IGN graph classifier from the `"Molecule Property
    Prediction and Classification with Graph Hypernetworks"
    <https://arxiv.org/abs/2002.00240>`_ paper: :class:`IGN` with every
    equivariant layer replaced by a
    :class:`~pyg_hyper.nn.dense.HyperEquivariant2to2`, whose basis
    coefficients a tanh hypernetwork generates per graph.

    The invariants of the input tensor (the first representation) are
    passed to every layer's hypernetwork, which is what stabilizes
    hypernetwork training:

    .. math::
        \mathbf{z}_l &= f_l\big([\mathbf{p}(\mathbf{X}^{(l-1)}) \,\Vert\,
            \mathbf{p}(\mathbf{X}^{(0)})]\big)
            \ \text{or}\ f_l\big(c_l\,\mathbf{p}(\mathbf{X}^{(0)}) +
            (1-c_l)\,\mathbf{p}(\mathbf{X}^{(l-1)})\big)

        \mathbf{X}^{(l)} &= \mathrm{ReLU}\big(
            L_l(\mathbf{X}^{(l-1)}; \mathbf{z}_l)\big),
            \qquad l = 1, \dots, L,

    with :math:`\mathbf{X}^{(0)}` the input tensor and the readout
    :math:`\hat{\mathbf{y}} = \mathrm{MLP}(\mathrm{pool}(\mathbf{X}^{(L)}))`
    of :class:`IGN`; :math:`\mathbf{p}` are the per-channel means of the
    diagonal and off-diagonal entries
    (:func:`~pyg_hyper.nn.dense.graph_invariants`) and
    :math:`L_l(\cdot\,; \mathbf{z}_l)` the equivariant layer whose basis
    coefficients are generated from the code :math:`\mathbf{z}_l` (see
    :class:`~pyg_hyper.nn.dense.HyperEquivariant2to2`).

    Args:
        in_channels (int): Number of node label channels :math:`C`.
        hidden_channels (List[int]): Widths of the equivariant layers.
        out_channels (int): Number of outputs per graph.
        hyper_channels (int, optional): Hypernetwork width :math:`r`.
            (default: :obj:`16`)
        combine (str, optional): :obj:`"concat"` or :obj:`"convex"`.
            (default: :obj:`"concat"`)
        factorized (bool, optional): See
            :class:`~pyg_hyper.nn.dense.HyperEquivariant2to2`.
            (default: :obj:`False`)
        materialize (bool, optional): Use the reference path.
            (default: :obj:`False`)
        generator_init (str, optional): :obj:`"uniform"` or :obj:`"zero"`
            (start as :class:`IGN`), see
            :class:`~pyg_hyper.nn.dense.HyperEquivariant2to2`.
            (default: :obj:`"uniform"`)
        normalize_code (bool, optional): Divide each hypernetwork's code by
            its width (see
            :class:`~pyg_hyper.nn.dense.HyperEquivariant2to2`).
            (default: :obj:`False`)
        **kwargs (optional): Further arguments of :class:`IGN`.

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, C)` *(or None)*,
          edge indices :math:`(2, |\mathcal{E}|)`, batch vector
          :math:`(|\mathcal{V}|)` *(optional)*, :obj:`num_nodes`
          *(needed when both the features and the batch vector are None)*;
          or, through :meth:`~pyg_hyper.nn.models.IGN.forward_dense`, dense
          tensors :math:`(B, 1 + C, m, m)` and a node mask :math:`(B, m)`
          *(optional)*
        - **output:** graph outputs :math:`(|\mathcal{G}|, F_{out})`
    """
    def __init__(
        self,
        in_channels: int,
        hidden_channels: Sequence[int],
        out_channels: int,
        hyper_channels: int = 16,
        combine: str = 'concat',
        factorized: bool = False,
        materialize: bool = False,
        generator_init: str = 'uniform',
        normalize_code: bool = False,
        **kwargs,
    ):
        # make_layer runs inside IGN.__init__ and reads these.
        self._hyper_args = dict(hyper_channels=hyper_channels,
                                first_channels=in_channels + 1,
                                combine=combine, factorized=factorized,
                                materialize=materialize,
                                generator_init=generator_init,
                                normalize_code=normalize_code)
        super().__init__(in_channels, hidden_channels, out_channels, **kwargs)
        self.hyper_channels = hyper_channels

    def make_layer(self, in_channels: int, out_channels: int):
        return HyperEquivariant2to2(in_channels, out_channels,
                                    **self._hyper_args)

    def embed_dense(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        first: Optional[Tensor] = None
        for layer in self.layers:
            x, inv = layer(x, mask, first=first, return_invariants=True)
            if first is None:
                first = inv
            x = x.relu()
        return x
