r"""Static and dynamic hypernetworks after Ha, Dai & Le, `"HyperNetworks"
<https://arxiv.org/abs/1609.09106>`_ (ICLR 2017).

* Static (Sec. 3.1): the kernels of a CNN are generated from small layer
  embeddings by a two-layer linear hypernetwork shared across layers
  (Eq. 2), tiled from basic kernels for deep nets (Eq. 3).
* Dynamic (Sec. 3.2): the HyperLSTM, whose small hyper LSTM rescales the
  main LSTM's weight rows at every time step (Eq. 8).

Neither uses :class:`~pyg_hyper.nn.HyperLinear`: the static hypernetwork
*is* two plain linear maps (Eq. 2) whose output is a kernel, not a map applied
to an input, and Eq. 8 generates only a row scaling
:math:`\mathrm{diag}(\mathbf{d}(\mathbf{z}))\mathbf{W}`, which is an
elementwise product and much cheaper than a full generated matrix.
"""
from typing import Optional, Tuple, Union

import math

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter
from torch.nn.modules.utils import _pair

from pyg_hyper.utils.checks import (
    check_channels,
    check_dtype,
    check_image,
    check_kernel_fits,
    check_kernel_size,
    check_positive_int,
    parameter_dtype,
)

__all__ = [
    'static_hypernetwork_num_parameters',
    'StaticHyperNetwork',
    'StaticHyperConv2d',
    'HyperLSTMCell',
    'HyperLSTM',
]


def static_hypernetwork_num_parameters(z_dim: int, num_embeddings: int,
                                       hidden_dim: int, in_channels: int,
                                       out_channels: int,
                                       kernel_size: int) -> int:
    r"""The learnable parameter count of Ha et al.'s static hypernetwork,

    .. math::
        N_z D + d (N_z + 1) N_{in} + f N_{out} f (d + 1),

    for :math:`D` layer embeddings of size :math:`N_z`, hidden size
    :math:`d` and :math:`f \times f` basic kernels with :math:`N_{in}`
    input and :math:`N_{out}` output channels."""
    return (z_dim * num_embeddings + hidden_dim * (z_dim + 1) * in_channels +
            kernel_size * out_channels * kernel_size * (hidden_dim + 1))


class StaticHyperNetwork(torch.nn.Module):
    r"""The static hypernetwork of Eq. 2 of `"HyperNetworks"
    <https://arxiv.org/abs/1609.09106>`_: a layer embedding
    :math:`\mathbf{z}^j \in \mathbb{R}^{N_z}` becomes a kernel
    :math:`\mathbf{K}^j` in two linear steps,

    .. math::
        \mathbf{a}^j_i &= \mathbf{W}_i \mathbf{z}^j + \mathbf{B}_i,
            \qquad i = 1, \dots, N_{in}

        \mathbf{K}^j_i &= \langle \mathbf{W}_{out}, \mathbf{a}^j_i \rangle
            + \mathbf{B}_{out},

    with :math:`\mathbf{W}_i \in \mathbb{R}^{d \times N_z}` per input channel
    and :math:`\mathbf{W}_{out} \in \mathbb{R}^{f \times N_{out} f \times d}`
    **shared** by all input channels (and all layers using this module);
    :math:`\mathbf{K}^j = (\mathbf{K}^j_1, \dots, \mathbf{K}^j_{N_{in}})`.
    Each :math:`\mathbf{K}^j_i` is laid out as the :math:`N_{out} \times f
    \times f` slice of input channel :math:`i` of a
    :func:`~torch.nn.functional.conv2d` weight.

    Its :math:`d(N_z + 1)N_{in} + f N_{out} f (d + 1)` parameters (see
    :func:`static_hypernetwork_num_parameters`, which adds the embeddings)
    do not grow with the number of kernels generated.

    Args:
        z_dim (int): Embedding size :math:`N_z`.
        in_channels (int): Input channels :math:`N_{in}` of a basic kernel.
        out_channels (int): Output channels :math:`N_{out}` of a basic kernel.
        kernel_size (int): Side :math:`f` of a (square) basic kernel.
        hidden_dim (int, optional): Size :math:`d` of :math:`\mathbf{a}_i`;
            the paper uses :math:`d = N_z`. (default: :obj:`None`)

    Shapes:
        - **input:** embeddings :math:`(M, N_z)`
        - **output:** kernels :math:`(M, N_{out}, N_{in}, f, f)`
    """
    def __init__(self, z_dim: int, in_channels: int, out_channels: int,
                 kernel_size: int, hidden_dim: Optional[int] = None):
        super().__init__()
        check_positive_int('StaticHyperNetwork', z_dim=z_dim,
                           in_channels=in_channels, out_channels=out_channels)
        if hidden_dim is not None:
            check_positive_int('StaticHyperNetwork', hidden_dim=hidden_dim)
        self.z_dim = z_dim
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = check_kernel_size('StaticHyperNetwork', kernel_size,
                                             square=True)[0]
        self.hidden_dim = z_dim if hidden_dim is None else hidden_dim
        f, d = self.kernel_size, self.hidden_dim
        # W_i, B_i for all i at once: z -> (a_1, ..., a_{N_in}).
        self.lin_in = torch.nn.Linear(z_dim, in_channels * d)
        # <W_out, a_i> + B_out, shared across i.
        self.lin_out = torch.nn.Linear(d, out_channels * f * f)
        self.reset_parameters()

    def reset_parameters(self):
        # a_i has unit variance for unit-variance embeddings, and the kernel
        # gets the He variance 2 / (N_in f^2) of a ReLU network's conv.
        torch.nn.init.normal_(self.lin_in.weight, std=1 / math.sqrt(self.z_dim))
        torch.nn.init.zeros_(self.lin_in.bias)
        fan_in = self.in_channels * self.kernel_size**2
        torch.nn.init.normal_(self.lin_out.weight,
                              std=math.sqrt(2.0 / (fan_in * self.hidden_dim)))
        torch.nn.init.zeros_(self.lin_out.bias)

    def num_parameters(self, num_embeddings: int = 1) -> int:
        """The formula count for :obj:`num_embeddings` layer embeddings."""
        return static_hypernetwork_num_parameters(
            self.z_dim, num_embeddings, self.hidden_dim, self.in_channels,
            self.out_channels, self.kernel_size)

    def forward(self, z: Tensor) -> Tensor:
        check_channels('StaticHyperNetwork', 'z', z, self.z_dim,
                       parameter_dtype(self))
        m, f = z.size(0), self.kernel_size
        a = self.lin_in(z).view(m, self.in_channels, self.hidden_dim)
        k = self.lin_out(a).view(m, self.in_channels, self.out_channels, f, f)
        return k.transpose(1, 2)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(z_dim={self.z_dim}, '
                f'{self.in_channels}, {self.out_channels}, '
                f'kernel_size={self.kernel_size}, '
                f'hidden_dim={self.hidden_dim})')


class StaticHyperConv2d(torch.nn.Module):
    r"""A convolution whose kernel is generated by a
    :class:`StaticHyperNetwork`, tiled as in Eq. 3 of `"HyperNetworks"
    <https://arxiv.org/abs/1609.09106>`_.

    A :math:`C_{out} \times C_{in}` kernel is a grid of
    :math:`(C_{out}/N_{out}) \times (C_{in}/N_{in})` basic kernels, each
    generated from its own embedding :math:`\mathbf{z}^{j}`:

    .. math::
        \mathbf{K} = \begin{pmatrix}
        \mathbf{K}(\mathbf{z}^{1,1}) & \cdots &
            \mathbf{K}(\mathbf{z}^{1,n}) \\
        \vdots & \ddots & \vdots \\
        \mathbf{K}(\mathbf{z}^{m,1}) & \cdots &
            \mathbf{K}(\mathbf{z}^{m,n}) \end{pmatrix}, \qquad
        \mathbf{Y} = \mathbf{K} \star \mathbf{X} + \mathbf{b}.

    Pass one :class:`StaticHyperNetwork` to several layers to share it; the
    layer then owns only its embeddings (and its bias).

    Args:
        in_channels (int): Input channels, a multiple of the hypernetwork's
            :math:`N_{in}`.
        out_channels (int): Output channels, a multiple of its
            :math:`N_{out}`.
        kernel_size (int): Square kernel size :math:`f`.
        z_dim (int, optional): Embedding size if the layer builds its own
            hypernetwork. (default: :obj:`4`)
        hypernet (StaticHyperNetwork, optional): A shared hypernetwork. If
            :obj:`None`, one with basic kernel :math:`C_{in} \to C_{out}` is
            built. (default: :obj:`None`)
        padding (int or str, optional): Padding of the convolution, as in
            :func:`~torch.nn.functional.conv2d`. (default: :obj:`"same"`)
        bias (bool, optional): Whether to learn a bias. (default: :obj:`True`)

    Shapes:
        - **input:** :math:`(B, C_{in}, H, W)`
        - **output:** :math:`(B, C_{out}, H_{out}, W_{out})`
    """
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 z_dim: int = 4, hypernet: Optional[StaticHyperNetwork] = None,
                 padding: Union[int, str] = 'same', bias: bool = True):
        super().__init__()
        # z_dim is only used to build the layer's own hypernetwork.
        check_positive_int('StaticHyperConv2d', in_channels=in_channels,
                           out_channels=out_channels,
                           **({'z_dim': z_dim} if hypernet is None else {}))
        f = check_kernel_size('StaticHyperConv2d', kernel_size,
                              square=True)[0]
        if hypernet is None:
            hypernet = StaticHyperNetwork(z_dim, in_channels, out_channels,
                                          kernel_size)
        if f != hypernet.kernel_size:
            raise ValueError(f"'StaticHyperConv2d' has kernel_size={f} but "
                             f"its hypernetwork generates {hypernet.kernel_size}"
                             f"x{hypernet.kernel_size} kernels")
        if (in_channels % hypernet.in_channels
                or out_channels % hypernet.out_channels):
            raise ValueError(f"'StaticHyperConv2d' tiles basic kernels of "
                             f"{hypernet.in_channels} -> "
                             f"{hypernet.out_channels} channels, so "
                             f"in_channels and out_channels must be multiples "
                             f"of them (got {in_channels} -> {out_channels})")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = f
        self.padding = padding
        self.hypernet = hypernet
        self.grid = (out_channels // hypernet.out_channels,
                     in_channels // hypernet.in_channels)
        self.z = Parameter(torch.empty(self.grid[0] * self.grid[1],
                                       hypernet.z_dim))
        self.bias = Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        # The hypernetwork gives a kernel of one tile the He variance of an
        # N_in-channel input; tiled (Eq. 3) the conv reads C_in channels, so
        # the embeddings' variance is N_in / C_in (the kernel is linear in
        # z): every layer sharing the hypernetwork starts at its own He
        # scale, not C_in / N_in times it.
        torch.nn.init.normal_(self.z, std=math.sqrt(
            self.hypernet.in_channels / self.in_channels))
        if self.bias is not None:
            torch.nn.init.zeros_(self.bias)

    @property
    def weight(self) -> Tensor:
        r"""The generated kernel :math:`(C_{out}, C_{in}, f, f)`."""
        m, n = self.grid
        k = self.hypernet(self.z)  # [m*n, N_out, N_in, f, f]
        k = k.view(m, n, *k.shape[1:]).permute(0, 2, 1, 3, 4, 5)
        return k.reshape(self.out_channels, self.in_channels,
                         self.kernel_size, self.kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        check_image('StaticHyperConv2d', 'x', x, self.in_channels,
                    parameter_dtype(self))
        h, w = x.shape[-2:]
        image = 'input image'
        if not isinstance(self.padding, str):  # 'same' and 'valid' add none
            # The kernel slides over the zero-padded image.
            ph, pw = _pair(self.padding)
            h, w = h + 2 * ph, w + 2 * pw
            image = 'zero-padded input image'
        check_kernel_fits('StaticHyperConv2d', (self.kernel_size, ) * 2, h, w,
                          image)
        return F.conv2d(x, self.weight, self.bias, padding=self.padding)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'{self.out_channels}, kernel_size={self.kernel_size}, '
                f'tiles={self.grid}, z_dim={self.hypernet.z_dim})')


# The HyperLSTMCell state, in order: each tensor's name and the attribute
# holding its width.
_STATE = (('h', 'hidden_size'), ('c', 'hidden_size'),
          ('hyper_h', 'hyper_hidden_size'), ('hyper_c', 'hyper_hidden_size'))


class HyperLSTMCell(torch.nn.Module):
    r"""The HyperLSTM cell of Eq. 8 of `"HyperNetworks"
    <https://arxiv.org/abs/1609.09106>`_.

    A small hyper LSTM reads :math:`[\mathbf{x}_t, \mathbf{h}_{t-1}]`; its
    state :math:`\hat{\mathbf{h}}_t` is projected to embeddings that scale
    the rows of the main LSTM's weights, for each gate
    :math:`y \in \{i, f, g, o\}`:

    .. math::
        \mathbf{z}^y_h &= \mathbf{W}^y_{\hat h h}\hat{\mathbf{h}}_t +
            \mathbf{b}^y_{\hat h h}, \quad
        \mathbf{z}^y_x = \mathbf{W}^y_{\hat h x}\hat{\mathbf{h}}_t +
            \mathbf{b}^y_{\hat h x}, \quad
        \mathbf{z}^y_b = \mathbf{W}^y_{\hat h b}\hat{\mathbf{h}}_t

        \mathbf{y}_t &= \mathbf{d}^y_h(\mathbf{z}^y_h) \odot
            \mathbf{W}^y_h \mathbf{h}_{t-1} +
            \mathbf{d}^y_x(\mathbf{z}^y_x) \odot \mathbf{W}^y_x \mathbf{x}_t +
            \mathbf{W}^y_{bz}\mathbf{z}^y_b + \mathbf{b}^y_0,

    with :math:`\mathbf{d}^y_h = \mathbf{W}^y_{hz}\mathbf{z}^y_h` and
    :math:`\mathbf{d}^y_x = \mathbf{W}^y_{xz}\mathbf{z}^y_x` (no bias), then
    the usual LSTM update
    :math:`\mathbf{c}_t = \sigma(\mathbf{f}_t) \odot \mathbf{c}_{t-1} +
    \sigma(\mathbf{i}_t) \odot \tanh(\mathbf{g}_t)`,
    :math:`\mathbf{h}_t = \sigma(\mathbf{o}_t) \odot \tanh(\mathbf{c}_t)`.
    Gates are ordered :math:`(i, f, g, o)` as in :class:`torch.nn.LSTM`, so
    with :math:`\mathbf{d} \equiv 1` and :math:`\mathbf{W}_{bz} = 0` the cell
    is exactly an :class:`torch.nn.LSTMCell` (see :meth:`reset_parameters`:
    that is also where training starts, up to small random projections).

    Args:
        input_size (int): Input size.
        hidden_size (int): Hidden size :math:`N_h` of the main LSTM.
        hyper_hidden_size (int, optional): Hidden size
            :math:`N_{\hat h}` of the hyper LSTM. (default: :obj:`16`)
        hyper_embedding_size (int, optional): Embedding size :math:`N_z`.
            (default: :obj:`4`)

    Shapes:
        - **input:** :math:`(B, F_{in})` and optionally the state
          :math:`((B, N_h), (B, N_h), (B, N_{\hat h}), (B, N_{\hat h}))`
        - **output:** :math:`\mathbf{h}_t` :math:`(B, N_h)` and the new state
    """
    def __init__(self, input_size: int, hidden_size: int,
                 hyper_hidden_size: int = 16, hyper_embedding_size: int = 4):
        super().__init__()
        check_positive_int('HyperLSTMCell', input_size=input_size,
                           hidden_size=hidden_size,
                           hyper_hidden_size=hyper_hidden_size,
                           hyper_embedding_size=hyper_embedding_size)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.hyper_hidden_size = hyper_hidden_size
        self.hyper_embedding_size = hyper_embedding_size
        h, nz = hidden_size, hyper_embedding_size
        self.hyper_cell = torch.nn.LSTMCell(input_size + h, hyper_hidden_size)
        self.weight_ih = Parameter(torch.empty(4 * h, input_size))
        self.weight_hh = Parameter(torch.empty(4 * h, h))
        self.bias = Parameter(torch.empty(4 * h))
        # z_h and z_x of all four gates (with bias), z_b (without).
        self.hyper_to_zhx = torch.nn.Linear(hyper_hidden_size, 2 * 4 * nz)
        self.hyper_to_zb = torch.nn.Linear(hyper_hidden_size, 4 * nz,
                                           bias=False)
        # W_hz, W_xz, W_bz for each gate: [gate, N_z, N_h].
        self.z_to_dh = Parameter(torch.empty(4, nz, h))
        self.z_to_dx = Parameter(torch.empty(4, nz, h))
        self.z_to_b = Parameter(torch.empty(4, nz, h))
        self.reset_parameters()

    def reset_parameters(self):
        r"""Initializes the main LSTM's weights and bias as
        :class:`torch.nn.LSTMCell` does (uniform in
        :math:`\pm 1 / \sqrt{N_h}`), resets the hyper LSTM, and sets the
        hypernetwork so that the cell starts as a plain LSTM cell: the
        embeddings :math:`\mathbf{z}_h, \mathbf{z}_x` have unit bias and
        projections of std 0.01, :math:`\mathbf{W}_{hz} = \mathbf{W}_{xz} =
        1 / N_z` (so :math:`\mathbf{d} \approx 1`) and
        :math:`\mathbf{W}_{bz} = 0`."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for w in (self.weight_ih, self.weight_hh, self.bias):
            torch.nn.init.uniform_(w, -bound, bound)
        self.hyper_cell.reset_parameters()
        nz = self.hyper_embedding_size
        # d = 1 at the start: z = 1 (bias) plus a small hyper-state term, and
        # W_hz = W_xz = 1 / N_z, so the cell starts as a plain LSTM and the
        # hypernetwork learns deviations from it.
        torch.nn.init.normal_(self.hyper_to_zhx.weight, std=0.01)
        torch.nn.init.ones_(self.hyper_to_zhx.bias)
        torch.nn.init.normal_(self.hyper_to_zb.weight, std=0.01)
        torch.nn.init.constant_(self.z_to_dh, 1.0 / nz)
        torch.nn.init.constant_(self.z_to_dx, 1.0 / nz)
        torch.nn.init.zeros_(self.z_to_b)

    def scalings(self, hyper_h: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        r"""The generated :math:`\mathbf{d}_h, \mathbf{d}_x` and
        :math:`\mathbf{W}_{bz}\mathbf{z}_b` of all gates, each
        :obj:`[B, 4 * N_h]`, from the hyper state :obj:`[B, N_hat]`."""
        b, nz = hyper_h.size(0), self.hyper_embedding_size
        z_h, z_x = self.hyper_to_zhx(hyper_h).view(b, 2, 4, nz).unbind(1)
        z_b = self.hyper_to_zb(hyper_h).view(b, 4, nz)
        d_h = torch.einsum('bgz,gzh->bgh', z_h, self.z_to_dh)
        d_x = torch.einsum('bgz,gzh->bgh', z_x, self.z_to_dx)
        bias = torch.einsum('bgz,gzh->bgh', z_b, self.z_to_b)
        return d_h.reshape(b, -1), d_x.reshape(b, -1), bias.reshape(b, -1)

    def forward(
        self, x: Tensor,
        state: Optional[Tuple[Tensor, Tensor, Tensor, Tensor]] = None
    ) -> Tuple[Tensor, Tuple[Tensor, Tensor, Tensor, Tensor]]:
        dtype = parameter_dtype(self)
        check_channels('HyperLSTMCell', 'x', x, self.input_size, dtype)
        if state is None:
            zeros = x.new_zeros(x.size(0), self.hidden_size)
            hyper_zeros = x.new_zeros(x.size(0), self.hyper_hidden_size)
            state = (zeros, zeros, hyper_zeros, hyper_zeros)
        if not isinstance(state, (tuple, list)) or len(state) != 4:
            raise ValueError(
                "'HyperLSTMCell' expected 'state' to be the 4-tuple "
                "(h, c, hyper_h, hyper_c) it returned at the previous step "
                "(the hyper cell's state rides along with the main one), "
                f"got {type(state).__name__} of length "
                f"{len(state) if isinstance(state, (tuple, list)) else '-'}")
        h, c, hyper_h, hyper_c = state
        # Without this a wrong size surfaced inside the hyper LSTMCell as
        # "inconsistent input_size", naming neither the tensor nor the size.
        for (name, size_name), t in zip(_STATE, state):
            size = getattr(self, size_name)
            if tuple(t.shape) != (x.size(0), size):
                raise ValueError(f"'HyperLSTMCell' expected '{name}' of shape "
                                 f"[batch_size, {size_name}] = "
                                 f"{[x.size(0), size]} (got "
                                 f"{list(t.shape)})")
            check_dtype('HyperLSTMCell', name, t, dtype)
        hyper_h, hyper_c = self.hyper_cell(torch.cat([x, h], dim=-1),
                                           (hyper_h, hyper_c))
        d_h, d_x, bias = self.scalings(hyper_h)
        gates = (d_h * (h @ self.weight_hh.t()) +
                 d_x * (x @ self.weight_ih.t()) + bias + self.bias)
        i, f, g, o = gates.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, (h, c, hyper_h, hyper_c)

    def extra_repr(self) -> str:
        return (f'{self.input_size}, {self.hidden_size}, '
                f'hyper_hidden_size={self.hyper_hidden_size}, '
                f'hyper_embedding_size={self.hyper_embedding_size}')


class HyperLSTM(torch.nn.Module):
    r"""The HyperLSTM of `"HyperNetworks" <https://arxiv.org/abs/1609.09106>`_
    (Ha, Dai & Le, ICLR 2017): a :class:`HyperLSTMCell` run over a sequence
    (time-major, as :class:`torch.nn.LSTM` with :obj:`batch_first=False`),

    .. math::
        (\mathbf{h}_t, \mathbf{c}_t, \hat{\mathbf{h}}_t, \hat{\mathbf{c}}_t)
        = \mathrm{HyperLSTMCell}(\mathbf{x}_t; \mathbf{h}_{t-1},
        \mathbf{c}_{t-1}, \hat{\mathbf{h}}_{t-1}, \hat{\mathbf{c}}_{t-1}),
        \qquad t = 1, \dots, T,

    where the hyper LSTM's state :math:`\hat{\mathbf{h}}_t` rescales the
    main LSTM's weight rows at every step (Eq. 8, see
    :class:`HyperLSTMCell`).

    Args:
        input_size (int): Input size.
        hidden_size (int): Hidden size of the main LSTM.
        hyper_hidden_size (int, optional): Hidden size of the hyper LSTM.
            (default: :obj:`16`)
        hyper_embedding_size (int, optional): Embedding size :math:`N_z`.
            (default: :obj:`4`)

    Shapes:
        - **input:** :math:`(T, B, F_{in})`
        - **output:** hidden states :math:`(T, B, N_h)` and the final state
    """
    def __init__(self, input_size: int, hidden_size: int,
                 hyper_hidden_size: int = 16, hyper_embedding_size: int = 4):
        super().__init__()
        check_positive_int('HyperLSTM', input_size=input_size,
                           hidden_size=hidden_size,
                           hyper_hidden_size=hyper_hidden_size,
                           hyper_embedding_size=hyper_embedding_size)
        self.cell = HyperLSTMCell(input_size, hidden_size, hyper_hidden_size,
                                  hyper_embedding_size)

    def reset_parameters(self):
        self.cell.reset_parameters()

    def forward(self, x: Tensor, state=None):
        if x.dim() != 3 or x.size(-1) != self.cell.input_size or \
                x.size(0) == 0:
            raise ValueError(f"'HyperLSTM' expected 'x' of shape "
                             f"[seq_len, batch_size, {self.cell.input_size}] "
                             f"with seq_len >= 1 (got {list(x.shape)})")
        check_dtype('HyperLSTM', 'x', x, parameter_dtype(self))
        outs = []
        for x_t in x.unbind(0):  # recurrent: time steps are sequential
            h, state = self.cell(x_t, state)
            outs.append(h)
        return torch.stack(outs, dim=0), state
