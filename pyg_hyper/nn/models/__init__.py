"""Full models built from :mod:`pyg_hyper.nn.conv` layers."""
from .hyper_gin import HyperGIN
from .lgnn import LGNN
from .ogb_mol import OGBMolGNN
from .ign import IGN
from .hyper_ign import HyperIGN
from .nmp_edge import NMPEdge, HyperNMPEdge

__all__ = [
    'HyperGIN',
    'LGNN',
    'OGBMolGNN',
    'IGN',
    'HyperIGN',
    'NMPEdge',
    'HyperNMPEdge',
]

classes = __all__
