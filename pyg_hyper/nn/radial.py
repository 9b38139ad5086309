r"""Pieces shared by distance-based molecular models (NMP-Edge, SchNet-style
filters): the shifted softplus, the Gaussian distance expansion and the
molecular (full or radius) graph."""
import math
from typing import Optional

import torch
from torch import Tensor

from pyg_hyper.utils.checks import check_batch, check_positions

__all__ = [
    'shifted_softplus',
    'ShiftedSoftplus',
    'GaussianExpansion',
    'molecular_graph',
]

_LOG2 = math.log(2.0)


def shifted_softplus(x: Tensor) -> Tensor:
    r"""The shifted softplus :math:`\mathrm{ssp}(x) = \ln(1 + e^x) - \ln 2`,
    which is zero at zero (SchNet, NMP-Edge)."""
    return torch.nn.functional.softplus(x) - _LOG2


class ShiftedSoftplus(torch.nn.Module):
    r"""The shifted softplus activation from the `"SchNet: A
    continuous-filter convolutional neural network for modeling quantum
    interactions" <https://arxiv.org/abs/1706.08566>`_ paper, the module form
    of :func:`shifted_softplus`.

    .. math::
        \mathrm{ssp}(x) = \ln(1 + e^{x}) - \ln 2,

    applied elementwise; :math:`\mathrm{ssp}(0) = 0`.

    Shapes:
        - **input:** :math:`(*)`
        - **output:** :math:`(*)`, same shape as the input
    """
    def forward(self, x: Tensor) -> Tensor:
        return shifted_softplus(x)


class GaussianExpansion(torch.nn.Module):
    r"""Expands distances in Gaussians on a regular grid,

    .. math::
        e_k(d) = \exp\!\Big(-\frac{(d - \mu_k)^2}{2\sigma^2}\Big), \qquad
        \mu_k = \mathrm{start} + k\cdot\mathrm{step}, \quad \sigma =
        \mathrm{step},

    for :math:`\mu_k < \mathrm{stop}`, as msgnet's ``gaussian_expansion``:
    the radial basis expansion of interatomic distances of `"SchNet: A
    continuous-filter convolutional neural network for modeling quantum
    interactions" <https://arxiv.org/abs/1706.08566>`_ (Schütt et al., NIPS
    2017), as `"Neural Message Passing with Edge Updates for Predicting
    Properties of Molecules and Materials"
    <https://arxiv.org/abs/1806.03146>`_ (NMP-Edge, Jørgensen et al., 2018)
    uses it. The NMP-Edge defaults (0 to 15 Å in steps of 0.1 Å) give 150
    Gaussians with :math:`\sigma = 0.1` Å.

    Args:
        start (float, optional): First centre. (default: :obj:`0.0`)
        stop (float, optional): Centres stay below this. (default: :obj:`15.0`)
        step (float, optional): Centre spacing and width :math:`\sigma`.
            (default: :obj:`0.1`)

    Shapes:
        - **input:** distances :math:`(E)` or :math:`(E, 1)`
        - **output:** expansions :math:`(E, K)`, where
          :math:`K = \lceil (\mathrm{stop} - \mathrm{start}) /
          \mathrm{step} \rceil` is :attr:`num_gaussians`
    """
    def __init__(self, start: float = 0.0, stop: float = 15.0,
                 step: float = 0.1):
        super().__init__()
        if not all(math.isfinite(v) for v in (start, stop, step)) or \
                step <= 0 or stop <= start:
            raise ValueError(f"GaussianExpansion needs step > 0 and "
                             f"stop > start (got start={start}, stop={stop}, "
                             f"step={step})")
        # round() guards against 15.0 / 0.1 = 149.99999999999997.
        num = int(math.ceil(round((stop - start) / step, 6)))
        self.start, self.stop, self.step = start, stop, step
        self.register_buffer('offset', start + step * torch.arange(num))
        self.coeff = -0.5 / step**2

    @property
    def num_gaussians(self) -> int:
        """Number of Gaussians :math:`K` (the expansion's width)."""
        return self.offset.numel()

    def forward(self, dist: Tensor) -> Tensor:
        """Maps distances ``[E]`` (or ``[E, 1]``) to expansions
        ``[E, num_gaussians]``."""
        if dist.dim() not in (1, 2) or (dist.dim() == 2 and
                                        dist.size(1) != 1):
            raise ValueError(f"'GaussianExpansion' expected distances of "
                             f"shape [num_edges] or [num_edges, 1] (got "
                             f"{list(dist.shape)})")
        diff = dist.view(-1, 1) - self.offset.view(1, -1).to(dist.dtype)
        arg = self.coeff * diff.pow(2)
        # Below log(tiny) the Gaussian is a subnormal float, and x86 CPUs
        # take a microcode slow path for subnormals, in exp() and in every
        # product that reads them: about 1.5% of a QM9 batch's entries made
        # the filter network's weight gradient 40x slower. They are flushed
        # to zero (what TensorFlow, and so msgnet, does by default); the
        # entries changed are below e * tiny (3e-38 in float32).
        floor = math.log(torch.finfo(arg.dtype).tiny) + 1.0
        return torch.exp(arg.clamp(min=floor)).masked_fill(arg < floor, 0.0)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(start={self.start}, '
                f'stop={self.stop}, step={self.step}, '
                f'num_gaussians={self.num_gaussians})')


def molecular_graph(pos: Tensor, batch: Optional[Tensor] = None,
                    cutoff: Optional[float] = None) -> Tensor:
    r"""All ordered atom pairs :math:`(j, i)`, :math:`j \neq i`, of the same
    molecule, kept if :math:`\lVert \mathbf{r}_i - \mathbf{r}_j \rVert <`
    :obj:`cutoff` (all pairs if :obj:`cutoff` is :obj:`None`, the full graph
    NMP-Edge uses on QM9).

    Builds the :math:`\sum_g n_g^2` candidate pairs of a batch of molecules
    directly, so no ``torch-cluster`` is needed; for large periodic or
    condensed systems, pass your own :obj:`edge_index` instead.

    Args:
        pos (torch.Tensor): Atom positions :obj:`[N, 3]` in Å.
        batch (torch.Tensor, optional): Molecule of each atom :obj:`[N]`,
            sorted; :obj:`None` for one molecule. (default: :obj:`None`)
        cutoff (float, optional): Distance cutoff in Å; :obj:`None` keeps
            every pair. (default: :obj:`None`)

    Returns:
        torch.Tensor: :obj:`edge_index` of shape ``[2, E]`` (source, target).
    """
    check_positions('molecular_graph', pos)
    num_nodes = pos.size(0)
    check_batch('molecular_graph', batch, num_nodes)
    if batch is None:
        batch = torch.zeros(num_nodes, dtype=torch.long, device=pos.device)
    # Pairs are enumerated per contiguous block of one molecule; atoms of a
    # molecule need not be contiguous in the input, so work in sorted order.
    order = torch.argsort(batch, stable=True)
    batch = batch[order]
    counts = torch.bincount(batch)
    ptr = torch.cumsum(counts, 0) - counts  # first node of each graph
    partners = counts[batch]  # nodes in each node's molecule, itself too
    row = torch.repeat_interleave(
        torch.arange(num_nodes, device=pos.device), partners)
    start = torch.cumsum(partners, 0) - partners
    offset = torch.arange(row.numel(), device=pos.device) - \
        torch.repeat_interleave(start, partners)
    col = ptr[batch[row]] + offset
    row, col = order[row], order[col]
    mask = row != col
    if cutoff is not None:
        dist = (pos[row] - pos[col]).norm(dim=-1)
        mask &= dist < cutoff
    # Source first, as in PyG: messages flow from edge_index[0] to [1].
    return torch.stack([col[mask], row[mask]], dim=0)
