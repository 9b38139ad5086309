"""Dense layers over padded second-order tensors (as PyG's
:mod:`torch_geometric.nn.dense`)."""
from .ign import (
    Equivariant2to2,
    Equivariant2to1,
    Invariant2to0,
    diag_offdiag_pool,
    equivariant_basis_2_to_2,
)
from .hyper_ign import HyperEquivariant2to2, graph_invariants
from .ign_input import to_dense_ign_input

__all__ = [
    'Equivariant2to2',
    'Equivariant2to1',
    'Invariant2to0',
    'HyperEquivariant2to2',
    'diag_offdiag_pool',
    'equivariant_basis_2_to_2',
    'to_dense_ign_input',
    'graph_invariants',
]

classes = __all__
