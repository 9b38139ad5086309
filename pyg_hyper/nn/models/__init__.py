"""Full models built from :mod:`pyg_hyper.nn.conv` layers."""
from .hyper_gin import HyperGIN
from .lgnn import LGNN
from .nmp_edge import NMPEdge, HyperNMPEdge

__all__ = [
    'HyperGIN',
    'LGNN',
    'NMPEdge',
    'HyperNMPEdge',
]

classes = __all__
