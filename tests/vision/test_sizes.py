import re

import pytest
import torch

from pyg_hyper.vision import (
    ConditionedSR,
    ContextHead,
    DynamicConv2d,
    DynamicFilterNetwork,
    FilterGenerator,
    FilterNetworkB,
    HyperConv2d,
    HyperLSTM,
    HyperLSTMCell,
    HyperPatchConv2d,
    HyperPatchInvertedResidual,
    HyperSeg,
    HyperSegDecoder,
    StaticHyperConv2d,
    StaticHyperNetwork,
)

# (constructor, args, kwargs, offending argument, its value). Before these
# checks each call built a module with empty weights or failed with
# ZeroDivisionError / TypeError / a torch error.
CASES = [
    (FilterNetworkB, (3, ), dict(kernel_size=0), 'kernel_size', 0),
    (DynamicConv2d, (3, 5), dict(hidden_channels=0), 'hidden_channels', 0),
    (FilterGenerator, (3, 3), dict(hidden_channels=0), 'hidden_channels', 0),
    (DynamicFilterNetwork, (3, 3), dict(hidden_channels=0),
     'hidden_channels', 0),
    (ConditionedSR, (5, ), dict(hidden_channels=(64, 0)),
     'hidden_channels[1]', 0),
    (HyperConv2d, (0, 4, 3), {}, 'in_channels', 0),
    (StaticHyperNetwork, (), dict(z_dim=0, in_channels=2, out_channels=2,
                                  kernel_size=3), 'z_dim', 0),
    (StaticHyperConv2d, (4, 4, 3), dict(z_dim=0), 'z_dim', 0),
    (HyperLSTMCell, (2, ), dict(hidden_size=0), 'hidden_size', 0),
    (HyperLSTM, (2, 8), dict(hyper_embedding_size=0),
     'hyper_embedding_size', 0),
    (HyperPatchConv2d, (4, 4), dict(groups=0), 'groups', 0),
    (HyperPatchInvertedResidual, (0, 4), {}, 'in_channels', 0),
    (ContextHead, (0, ), {}, 'in_channels', 0),
    (HyperSegDecoder, ([16, 0], 32, [8, 8], 3), {}, 'skip_channels[1]', 0),
    (HyperSeg, (torch.nn.Identity(), [8, 16], 3, 4, [8, 8]),
     dict(weight_groups=0), 'weight_groups', 0),
]


@pytest.mark.parametrize('cls,args,kwargs,name,value', CASES,
                         ids=[case[0].__name__ for case in CASES])
def test_constructor_refuses_bad_size(cls, args, kwargs, name, value):
    msg = (f"'{cls.__name__}' needs a positive integer '{name}' "
           f"(got {value!r})")
    with pytest.raises(ValueError, match=f'^{re.escape(msg)}$'):
        cls(*args, **kwargs)


def test_float64_images_are_named_as_a_dtype_mismatch():
    # They used to fail deep inside conv2d with a bare dtype RuntimeError.
    from pyg_hyper.vision import HyperConv2d
    with pytest.raises(ValueError, match=r"'HyperConv2d' expected 'x' of "
                       r"its parameters' dtype torch.float32 \(got "
                       r"torch.float64\)"):
        HyperConv2d(2, 3, 3)(torch.randn(1, 2, 8, 8, dtype=torch.float64))
