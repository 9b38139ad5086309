"""Message-passing layers."""
from .hyper_gin_conv import HyperGINConv
from .nmp_edge_conv import NMPEdgeConv
from .hyper_nmp_edge_conv import HyperNMPEdgeConv

__all__ = [
    'HyperGINConv',
    'NMPEdgeConv',
    'HyperNMPEdgeConv',
]

classes = __all__
