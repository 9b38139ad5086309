import pytest
import torch

from pyg_hyper.experiment import adam


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(),
                               torch.nn.Linear(7, 2))


def _train(optimizer, model, steps=5):
    torch.manual_seed(1)
    x = torch.randn(16, 5)
    for _ in range(steps):
        optimizer.zero_grad()
        model(x).square().mean().backward()
        optimizer.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_adam_is_fused_on_cpu_and_matches_the_unfused_update():
    fused_model, plain_model = _model(), _model()
    fused = adam(fused_model.parameters(), lr=0.01, weight_decay=1e-3)
    assert fused.defaults['fused'] is True
    plain = torch.optim.Adam(plain_model.parameters(), lr=0.01,
                             weight_decay=1e-3)
    assert torch.allclose(_train(fused, fused_model),
                          _train(plain, plain_model), atol=1e-6)


def test_adam_takes_parameter_groups_and_explicit_choices():
    model = _model()
    groups = [{'params': list(model[0].parameters()), 'weight_decay': 0.1},
              {'params': list(model[2].parameters())}]
    opt = adam(groups, lr=0.01)
    assert opt.defaults['fused'] is True
    assert [g['weight_decay'] for g in opt.param_groups] == [0.1, 0]
    # A caller's own choice of implementation wins.
    opt = adam(model.parameters(), lr=0.01, foreach=True)
    assert not opt.defaults['fused']


def test_adam_falls_back_where_fusing_is_unsupported():
    p = torch.nn.Parameter(torch.zeros(3, device='meta'))
    assert not adam([p], lr=0.1).defaults['fused']
    with pytest.raises(ValueError, match='empty parameter list'):
        adam([], lr=0.1)
