"""Full models built from :mod:`pyg_hyper.nn.conv` layers."""
from .hyper_gin import HyperGIN
from .lgnn import LGNN
from .ign import IGN
from .hyper_ign import HyperIGN

__all__ = [
    'HyperGIN',
    'LGNN',
    'IGN',
    'HyperIGN',
]

classes = __all__
