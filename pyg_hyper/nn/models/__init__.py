"""Full models built from :mod:`pyg_hyper.nn.conv` layers."""
from .hyper_gin import HyperGIN
from .lgnn import LGNN
from .ogb_mol import OGBMolGNN

__all__ = [
    'HyperGIN',
    'LGNN',
    'OGBMolGNN',
]

classes = __all__
