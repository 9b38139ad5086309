r"""Building blocks of the Nachmani & Wolf hypernetwork layers.

A hyper layer has three parts, each a module here:

* :class:`FirstMessageCombiner` mixes the current message
  :math:`\mathbf{m}^{(t)}` with the first message :math:`\mathbf{m}^{(0)}`;
  feeding the first message to the hypernetwork is what keeps training
  stable (arXiv 2002.00240, Sec. 1).
* :class:`HyperNetwork` (:math:`f`) maps the combined message to a code
  :math:`\mathbf{z}`, its last hidden layer.
* :class:`HyperMLP` (:math:`g`) is the network whose weights :math:`f`
  generates; each of its layers is a :class:`~pyg_hyper.nn.HyperLinear`, which
  holds :math:`f`'s output layer for that weight and applies it in factorized
  form.
"""
from typing import List, Optional

import torch
from torch import Tensor
from torch.nn import Parameter

from torch_geometric.nn.dense.linear import Linear

from pyg_hyper.nn.hyper_linear import HyperLinear
from pyg_hyper.nn.radial import shifted_softplus
from pyg_hyper.utils.checks import check_positive_int

__all__ = ['FirstMessageCombiner', 'HyperNetwork', 'HyperMLP']

COMBINE_MODES = ('concat', 'convex')


class FirstMessageCombiner(torch.nn.Module):
    r"""Combines the current message with the first one, the input of the
    hypernetwork in the `"Molecule Property Prediction and Classification
    with Graph Hypernetworks" <https://arxiv.org/abs/2002.00240>`_ paper.

    .. math::
        \mathbf{u} = [\mathbf{m}^{(t)} \,\Vert\, \mathbf{m}^{(0)}]
        \quad \text{(concat)} \qquad \text{or} \qquad
        \mathbf{u} = c\,\mathbf{m}^{(0)} + (1 - c)\,\mathbf{m}^{(t)}
        \quad \text{(convex)},

    where :math:`c = \sigma(\theta) \in (0, 1)` is learned. (The third-party
    reimplementation galkampel/HyperNetworks clips a raw scalar to
    :math:`[0, 1]`; a sigmoid keeps the same range without a dead gradient
    at the bounds.)

    When the two widths differ (a model whose input width is not its hidden
    width, e.g. :class:`~pyg_hyper.nn.models.HyperGIN` on TU features), the
    convex mix needs :math:`\mathbf{m}^{(0)}` at the current width: it is
    first mapped by a learned bias-free linear layer,
    :math:`\mathbf{u} = c\,\mathbf{m}^{(0)} \mathbf{P} + (1 - c)\,
    \mathbf{m}^{(t)}`. The paper does not say how it mixes messages of
    different widths; a linear map keeps the mix convex in the first
    message's span.

    Args:
        channels (int): Width of the current message.
        first_channels (int): Width of the first message.
        mode (str, optional): :obj:`"concat"` or :obj:`"convex"`.
            (default: :obj:`"concat"`)

    Shapes:
        - **input:** current messages :math:`(*, F)`, first messages
          :math:`(*, F_0)`, where :math:`F` is :obj:`channels` and
          :math:`F_0` is :obj:`first_channels`
        - **output:** combined messages :math:`(*, F + F_0)` for
          :obj:`"concat"`, :math:`(*, F)` for :obj:`"convex"`
          (:attr:`out_channels`)
    """
    def __init__(self, channels: int, first_channels: int,
                 mode: str = 'concat'):
        super().__init__()
        if mode not in COMBINE_MODES:
            raise ValueError(f"Unknown combine mode '{mode}' (expected one of "
                             f"{list(COMBINE_MODES)})")
        check_positive_int(self.__class__.__name__, channels=channels,
                           first_channels=first_channels)
        self.channels = channels
        self.first_channels = first_channels
        self.mode = mode
        if mode == 'convex':
            self.logit = Parameter(torch.empty(1))
        else:
            self.register_parameter('logit', None)
        if mode == 'convex' and channels != first_channels:
            self.first_lin = Linear(first_channels, channels, bias=False,
                                    weight_initializer='glorot')
        else:
            self.register_module('first_lin', None)
        self.reset_parameters()

    def reset_parameters(self):
        if self.logit is not None:
            self.logit.data.zero_()  # c = 0.5: no prior on either message
        if self.first_lin is not None:
            self.first_lin.reset_parameters()

    @property
    def out_channels(self) -> int:
        """Width of the combined messages (:math:`F + F_0` for
        :obj:`"concat"`, :math:`F` for :obj:`"convex"`)."""
        if self.mode == 'concat':
            return self.channels + self.first_channels
        return self.channels

    @property
    def c(self) -> Optional[Tensor]:
        return None if self.logit is None else torch.sigmoid(self.logit)

    def forward(self, message: Tensor, first_message: Tensor) -> Tensor:
        r"""Combines the messages.

        Args:
            message (torch.Tensor): Current messages
                :math:`\mathbf{m}^{(t)}` of shape :obj:`[*, channels]`.
            first_message (torch.Tensor): First messages
                :math:`\mathbf{m}^{(0)}` of shape :obj:`[*, first_channels]`.
        """
        if self.mode == 'concat':
            return torch.cat([message, first_message], dim=-1)
        if self.first_lin is not None:
            first_message = self.first_lin(first_message)
        c = torch.sigmoid(self.logit)
        return c * first_message + (1 - c) * message

    def extra_repr(self) -> str:
        return f'mode={self.mode}'


class HyperNetwork(torch.nn.Sequential):
    r"""The hypernetwork body :math:`f` from the `"Molecule Property
    Prediction and Classification with Graph Hypernetworks"
    <https://arxiv.org/abs/2002.00240>`_ paper: a tanh MLP whose last hidden
    layer is the code :math:`\mathbf{z}` consumed by :class:`HyperLinear`
    layers.

    .. math::
        \mathbf{h}^{(0)} = \mathbf{u}, \qquad
        \mathbf{h}^{(\ell)} = \tanh\big(\mathbf{F}_{\ell}\,
        \mathbf{h}^{(\ell - 1)} + \mathbf{c}_{\ell}\big)
        \quad (\ell = 1, \dots, L), \qquad
        \mathbf{z} = \mathbf{h}^{(L)},

    where :math:`\mathbf{u}` is the input (e.g. the output of
    :class:`FirstMessageCombiner`), :math:`L` is :obj:`num_layers`,
    :math:`\mathbf{F}_1 \in \mathbb{R}^{r \times F_{in}}` and
    :math:`\mathbf{F}_{\ell} \in \mathbb{R}^{r \times r}` for
    :math:`\ell > 1`.

    With :obj:`num_layers=2` hidden layers plus the output layer held by the
    :class:`HyperLinear` modules, :math:`f` is the 3-layer tanh MLP of
    Nachmani & Wolf.

    Args:
        in_channels (int): Input width.
        hyper_channels (int): Width :math:`r` of every hidden layer and of
            the code.
        num_layers (int, optional): Number of hidden layers. (default: :obj:`2`)

    Shapes:
        - **input:** hypernetwork inputs :math:`(*, F_{in})`
        - **output:** codes :math:`(*, r)`
    """
    def __init__(self, in_channels: int, hyper_channels: int,
                 num_layers: int = 2):
        check_positive_int('HyperNetwork', in_channels=in_channels,
                           hyper_channels=hyper_channels,
                           num_layers=num_layers)
        layers: List[torch.nn.Module] = []
        for i in range(num_layers):
            layers.append(
                torch.nn.Linear(in_channels if i == 0 else hyper_channels,
                                hyper_channels))
            layers.append(torch.nn.Tanh())
        super().__init__(*layers)
        self.in_channels = in_channels
        self.hyper_channels = hyper_channels
        self.reset_parameters()

    def reset_parameters(self):
        for module in self:
            if isinstance(module, torch.nn.Linear):
                module.reset_parameters()


class HyperMLP(torch.nn.Module):
    r"""The target network :math:`g` of the `"Molecule Property Prediction
    and Classification with Graph Hypernetworks"
    <https://arxiv.org/abs/2002.00240>`_ paper, an MLP whose every weight and
    bias is generated per row from the code :math:`\mathbf{z}`.

    .. math::
        g(\mathbf{x}; \mathbf{z}) = \mathbf{W}_L(\mathbf{z})\,\sigma(\cdots
        \sigma(\mathbf{W}_1(\mathbf{z})\,\mathbf{x} + \mathbf{b}_1(\mathbf{z}))
        \cdots) + \mathbf{b}_L(\mathbf{z})

    Args:
        channel_list (List[int]): Widths from input to output; a list of
            length :math:`L + 1` gives :math:`L` generated layers.
        hyper_channels (int): Width of the code :math:`\mathbf{z}`.
        act (str, optional): Hidden activation, :obj:`"tanh"`,
            :obj:`"relu"` or :obj:`"ssp"` (shifted softplus).
            (default: :obj:`"tanh"`)
        chunk_size (int, optional): Row chunking for
            :class:`HyperLinear`. (default: :obj:`None`)
        generator_init (str, optional): Initialization of every layer's
            generator, :obj:`"uniform"` or :obj:`"zero"` (start as a plain
            shared MLP), see :class:`HyperLinear`.
            (default: :obj:`"uniform"`)
        normalize_code (bool, optional): Divide the code by its width in
            every layer's generator, see :class:`HyperLinear`.
            (default: :obj:`False`)

    Shapes:
        - **input:** rows :math:`(N, F_0)`, codes :math:`(N, r)`, where
          :math:`F_0` is :obj:`channel_list[0]` and :math:`r` is
          :obj:`hyper_channels`
        - **output:** rows :math:`(N, F_L)`, where :math:`F_L` is
          :obj:`channel_list[-1]`
    """
    def __init__(self, channel_list: List[int], hyper_channels: int,
                 act: str = 'tanh', chunk_size: Optional[int] = None,
                 generator_init: str = 'uniform',
                 normalize_code: bool = False):
        super().__init__()
        if len(channel_list) < 2:
            raise ValueError(f"'channel_list' needs at least an input and an "
                             f"output width (got {channel_list})")
        check_positive_int('HyperMLP', hyper_channels=hyper_channels,
                           **{f'channel_list[{i}]': c
                              for i, c in enumerate(channel_list)})
        acts = {'tanh': torch.tanh, 'relu': torch.relu,
                'ssp': shifted_softplus}
        if act not in acts:
            raise ValueError(f"Unknown activation '{act}' (expected one of "
                             f"{sorted(acts)})")
        self.channel_list = list(channel_list)
        self.act = act
        self._act = acts[act]
        self.lins = torch.nn.ModuleList([
            HyperLinear(i, o, hyper_channels, chunk_size=chunk_size,
                        generator_init=generator_init,
                        normalize_code=normalize_code)
            for i, o in zip(channel_list[:-1], channel_list[1:])
        ])
        self.reset_parameters()

    def reset_parameters(self):
        for lin in self.lins:
            lin.reset_parameters()

    def forward(self, x: Tensor, z: Tensor, materialize: bool = False) -> Tensor:
        r"""Applies the generated MLP.

        Args:
            x (torch.Tensor): Inputs :obj:`[N, channel_list[0]]`.
            z (torch.Tensor): Hypernetwork codes :obj:`[N, hyper_channels]`.
            materialize (bool, optional): If set to :obj:`True`, every layer
                builds its per-row weights explicitly (the slow reference
                path, see :meth:`HyperLinear.forward`).
                (default: :obj:`False`)
        """
        for i, lin in enumerate(self.lins):
            if i > 0:
                x = self._act(x)
            x = lin(x, z, materialize=materialize)
        return x

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.channel_list}, '
                f'act={self.act})')
