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


def _dtype_cases():
    # (layer, call, message): a float64 tensor meets float32 parameters or a
    # float32 input. Each used to fail inside torch with a bare RuntimeError
    # ("mat1 and mat2 must have the same dtype", "expected scalar type ...").
    from pyg_hyper.vision import DynamicFilterConv2d, DynamicLocalFilter2d
    d = torch.float64
    params = r"of its parameters' dtype torch.float32 \(got torch.float64\)"
    like_x = (r"of the dtype of 'x', torch.float32 \(got torch.float64\)")
    cell = HyperLSTMCell(3, 4, hyper_hidden_size=5)
    state = [torch.zeros(2, 4), torch.zeros(2, 4), torch.zeros(2, 5),
             torch.zeros(2, 5)]
    state[2] = state[2].to(d)
    block = HyperPatchInvertedResidual(4, 4, 3)
    dec = HyperSegDecoder([4], 8, [4], 2)
    sr = ConditionedSR(3, hidden_channels=(4, 2), filter_sizes=(3, 1, 1))
    return {
        'HyperLSTMCell-x': (lambda: cell(torch.randn(2, 3, dtype=d)),
                            rf"'HyperLSTMCell' expected 'x' {params}"),
        'HyperLSTMCell-state': (lambda: cell(torch.randn(2, 3), state),
                                rf"'HyperLSTMCell' expected 'hyper_h' "
                                rf"{params}"),
        'HyperLSTM-x': (lambda: HyperLSTM(3, 4)(torch.randn(2, 2, 3,
                                                            dtype=d)),
                        rf"'HyperLSTM' expected 'x' {params}"),
        'StaticHyperNetwork-z': (
            lambda: StaticHyperNetwork(4, 2, 2, 3)(torch.randn(1, 4,
                                                               dtype=d)),
            rf"'StaticHyperNetwork' expected 'z' {params}"),
        'DynamicFilterConv2d-filters': (
            lambda: DynamicFilterConv2d(3)(torch.rand(1, 1, 6, 6),
                                           torch.randn(1, 9, dtype=d)),
            rf"'DynamicFilterConv2d' expected 'filters' {like_x}"),
        'DynamicLocalFilter2d-filters': (
            lambda: DynamicLocalFilter2d(3)(torch.rand(1, 1, 6, 6),
                                            torch.randn(1, 9, 6, 6, dtype=d)),
            rf"'DynamicLocalFilter2d' expected 'filters' {like_x}"),
        'DynamicFilterConv2d-integer-x': (
            lambda: DynamicFilterConv2d(3)(torch.ones(1, 1, 6, 6,
                                                      dtype=torch.long),
                                           torch.randn(1, 9)),
            r"'DynamicFilterConv2d' expected a floating-point 'x' "
            r"\(got torch.int64\)"),
        'ConditionedSR-kernel': (
            lambda: sr(torch.rand(2, 1, 6, 6), torch.rand(2, 3, 3, dtype=d)),
            rf"'ConditionedSR' expected 'kernel' {params}"),
        'HyperPatchConv2d-weights': (
            lambda: HyperPatchConv2d(2, 2)(torch.randn(1, 2, 4, 4),
                                           torch.randn(1, 4, 2, 2, dtype=d)),
            rf"'HyperPatchConv2d' expected 'weights' {like_x}"),
        'HyperPatchInvertedResidual-weights': (
            lambda: block(torch.randn(1, 4, 8, 8),
                          torch.randn(1, block.num_weights, 2, 2, dtype=d)),
            rf"'HyperPatchInvertedResidual' expected 'weights' {like_x}"),
        'HyperSegDecoder-signal': (
            lambda: dec([torch.randn(1, 4, 4, 4)],
                        torch.randn(1, 8, 2, 2, dtype=d)),
            rf"'HyperSegDecoder' expected 'signal' {params}"),
    }


@pytest.mark.parametrize('case', list(_dtype_cases()))
def test_dtype_mismatches_are_named(case):
    call, message = _dtype_cases()[case]
    with pytest.raises(ValueError, match=message):
        call()
