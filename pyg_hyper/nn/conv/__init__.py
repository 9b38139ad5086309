"""Message-passing layers."""
from .hyper_gin_conv import HyperGINConv
from .lgcn_conv import LGCNConv
from .lgat_conv import LGATConv
from .lgin_conv import LGINConv
from .nmp_edge_conv import NMPEdgeConv
from .hyper_nmp_edge_conv import HyperNMPEdgeConv

__all__ = [
    'HyperGINConv',
    'LGCNConv',
    'LGATConv',
    'LGINConv',
    'NMPEdgeConv',
    'HyperNMPEdgeConv',
]

classes = __all__
