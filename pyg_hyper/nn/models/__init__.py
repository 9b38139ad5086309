"""Full models built from :mod:`pyg_hyper.nn.conv` layers."""
from .hyper_gin import HyperGIN
from .ign import IGN
from .hyper_ign import HyperIGN

__all__ = [
    'HyperGIN',
    'IGN',
    'HyperIGN',
]

classes = __all__
