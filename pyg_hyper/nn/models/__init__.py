"""Full models built from :mod:`pyg_hyper.nn.conv` layers."""
from .hyper_gin import HyperGIN
from .lgnn import LGNN

__all__ = [
    'HyperGIN',
    'LGNN',
]

classes = __all__
