import pytest
import torch

from pyg_hyper.nn import HyperLinear
from pyg_hyper.nn.conv import HyperGINConv, LGATConv, LGCNConv, LGINConv
from pyg_hyper.utils.autocast import apply_autocast

EDGE_INDEX = torch.tensor([[0, 1, 2, 3, 4, 5, 1, 3], [1, 2, 3, 4, 5, 0, 0, 0]])


def _cases():
    z = torch.randn(6, 4)
    return [
        ('HyperLinear', lambda: HyperLinear(5, 3, 4), (z, )),
        ('HyperGINConv', lambda: HyperGINConv(5, 3, hyper_channels=4),
         (EDGE_INDEX, )),
        ('HyperGINConv chunked',
         lambda: HyperGINConv(5, 3, hyper_channels=4, chunk_size=2),
         (EDGE_INDEX, )),
        ('LGCN node-level', lambda: LGCNConv(5, 3, edge_level=False),
         (EDGE_INDEX, )),
        ('LGCN low-rank', lambda: LGCNConv(5, 3, node_rank=2),
         (EDGE_INDEX, )),
        ('LGAT low-rank', lambda: LGATConv(5, 3, node_rank=2),
         (EDGE_INDEX, )),
        ('LGIN low-rank', lambda: LGINConv(5, 3, node_rank=2),
         (EDGE_INDEX, )),
    ]


@pytest.mark.parametrize('name,build,args', _cases(),
                         ids=[c[0] for c in _cases()])
def test_layers_train_under_autocast(name, build, args):
    # As PyTorch's AMP recipe runs it: forward under autocast, backward
    # outside. The custom autograd Functions mixed bf16 gradients with fp32
    # saved tensors.
    torch.manual_seed(0)
    x = torch.randn(6, 5)
    module = build()

    def forward():
        out = module(x, *args)
        return out[0] if isinstance(out, tuple) else out

    reference = forward().detach()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = forward()
    out.float().pow(2).sum().backward()
    for pname, param in module.named_parameters():
        if param.grad is not None:
            assert param.grad.dtype == torch.float32, pname
            assert torch.isfinite(param.grad).all(), pname
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in module.parameters())
    # bf16 keeps about 3 significant digits.
    err = (out.float() - reference).norm() / reference.norm()
    assert err < 0.05, err


def test_apply_autocast_is_a_plain_call_without_autocast():
    class Double(torch.autograd.Function):
        @staticmethod
        def forward(ctx, t, factor):
            return t * factor

        @staticmethod
        def backward(ctx, grad):
            return grad * 2, None

    t = torch.ones(3, requires_grad=True)
    out = apply_autocast(Double, t, 2)
    assert out.dtype == torch.float32 and out.tolist() == [2.0, 2.0, 2.0]
    with torch.autocast('cpu', dtype=torch.bfloat16):
        low = apply_autocast(Double, t, 2)
        full = apply_autocast(Double, t, 2, dtype=torch.float32)
    assert low.dtype == torch.bfloat16 and full.dtype == torch.float32
    (low.float().sum() + full.sum()).backward()
    assert t.grad.dtype == torch.float32 and t.grad.tolist() == [4.0] * 3
