import math
from pathlib import Path

import pytest

from pyg_hyper.datasets.qm9 import find_qm9pack_data
from pyg_hyper.experiment import build_config, get_task, train

pytestmark = pytest.mark.skipif(
    find_qm9pack_data() is None,
    reason="qm9pack is not installed (pip install qm9pack)")

CONFIGS = Path(__file__).resolve().parents[2] / 'experiments' / 'qm9' / \
    'configs'


def _tiny(config, root, *extra):
    return build_config(str(CONFIGS / config), [
        f'data.root={root}', 'data.max_molecules=60', 'epochs=2', 'seeds=1',
        'eval_every=1', 'model.hidden_channels=8', 'model.hyper_channels=4',
        'threads=1', *extra
    ])


@pytest.mark.parametrize('config', ['cpu_budget_hyper_nmp_edge_u0.yaml',
                                    'cpu_budget_nmp_edge_gap.yaml'])
def test_qm9_smoke_run(tmp_path, config):
    cfg = _tiny(config, tmp_path / 'data')
    res = train(cfg, str(tmp_path / 'run'), progress=False,
                argv=['pyg-hyper', 'test'])
    scores = res['seeds']['0']['scores']
    for key in ('train', 'val', 'test', 'val_mev', 'test_mev'):
        assert math.isfinite(scores[key]) and scores[key] > 0
    assert scores['test_mev'] == pytest.approx(1000 * scores['test'])
    assert (tmp_path / 'run' / 'results.md').exists()


def test_qm9_task_uses_training_statistics(tmp_path):
    import torch
    task = get_task('qm9')
    cfg = _tiny('cpu_budget_nmp_edge_u0.yaml', tmp_path / 'data')
    data = task.load_data(cfg, torch.device('cpu'))
    split = data['split']
    assert len(split['train']) + len(split['valid']) + \
        len(split['test']) == 60
    model = task.build_model(cfg, data)
    assert float(model.std) == pytest.approx(data['stats'].std)
    # atomref 'qm9' for U0: the free-atom energies of H and C, in eV.
    assert float(model.atomref[1]) == pytest.approx(-13.6131, abs=1e-3)
    assert float(model.atomref[6]) == pytest.approx(-1029.8631, abs=1e-3)


def test_qm9_reduced_set_honours_set_split_sizes(tmp_path):
    # With max_molecules the default sizes scale down, but sizes a user set
    # must hold as given (they were ignored, while the record kept them).
    import torch
    task = get_task('qm9')
    cfg = _tiny('cpu_budget_nmp_edge_u0.yaml', tmp_path / 'data',
                'data.train_size=40', 'data.valid_size=5')
    split = task.load_data(cfg, torch.device('cpu'))['split']
    assert [len(split[k]) for k in ('train', 'valid', 'test')] == [40, 5, 15]
    cfg = _tiny('cpu_budget_nmp_edge_u0.yaml', tmp_path / 'data',
                'data.train_size=50', 'data.valid_size=20')
    with pytest.raises(ValueError, match='exceed'):
        task.load_data(cfg, torch.device('cpu'))


def test_qm9_task_bad_config(tmp_path):
    import torch
    task = get_task('qm9')
    cfg = _tiny('cpu_budget_nmp_edge_u0.yaml', tmp_path / 'data',
                'model.name=schnet')
    data = task.load_data(cfg, torch.device('cpu'))
    with pytest.raises(ValueError, match="unknown model.name 'schnet'"):
        task.build_model(cfg, data)
    for update, widths in (('msgnet', (8, 16)), ('narrow', (4, 8))):
        cfg = _tiny('cpu_budget_nmp_edge_u0.yaml', tmp_path / 'data',
                    f'model.edge_update={update}')
        conv = task.build_model(cfg, data).convs[0]
        assert (conv.edge_channels, conv.edge_hidden_channels) == widths
    cfg = _tiny('cpu_budget_nmp_edge_u0.yaml', tmp_path / 'data',
                'model.edge_update=wide')
    with pytest.raises(ValueError, match="unknown model.edge_update 'wide'"):
        task.build_model(cfg, data)
    with pytest.raises(ValueError, match="unknown data.atomref 'pyg'"):
        _tiny('cpu_budget_nmp_edge_u0.yaml', tmp_path / 'data',
              'data.atomref=pyg')
    # load_data checks a config built in code too.
    cfg['data']['atomref'] = 'pyg'
    with pytest.raises(ValueError, match="unknown data.atomref 'pyg'"):
        task.load_data(cfg, torch.device('cpu'))


@pytest.mark.parametrize('loss,expected', [('mse', 4.0), ('l1', 2.0)])
def test_qm9_training_loss(tmp_path, monkeypatch, loss, expected):
    # msgnet's graph_cost is the squared error of the normalized target: a
    # prediction 2 std off costs 4 (L1: 2).
    import torch
    task = get_task('qm9')
    cfg = _tiny('cpu_budget_nmp_edge_u0.yaml', tmp_path / 'data',
                f'optim.loss={loss}')
    data = task.data_for_seed(task.load_data(cfg, torch.device('cpu')),
                              cfg, 0)
    model = task.build_model(cfg, data)
    optimizer = task.build_optimizer(cfg, model)
    std, target = data['stats'].std, cfg['data']['target']

    def off_by_two_std(model, batch, cfg):
        weight = next(model.parameters())  # keeps the loss differentiable
        return batch.y[:, target] + 2 * std + 0 * weight.sum()

    monkeypatch.setattr(type(task), 'predict', staticmethod(off_by_two_std))
    assert task.train_epoch(model, data, optimizer, cfg) == \
        pytest.approx(expected, rel=1e-3)
    # Refused when the config is built, before any data loads.
    with pytest.raises(ValueError, match="unknown optim.loss 'huber'; "
                       "valid: \\['mse', 'l1'\\]"):
        _tiny('cpu_budget_nmp_edge_u0.yaml', tmp_path / 'data',
              'optim.loss=huber')


@pytest.mark.parametrize('target,atomref', [(7, 'qm9'), (0, '')])
def test_qm9_evaluate_scores_the_mean_absolute_error(tmp_path, monkeypatch,
                                                     target, atomref):
    # Every prediction 0.5 off: every split's MAE is 0.5 (a mean squared
    # error would give 0.25), and 500 meV for an energy target (U0, column
    # 7); the dipole moment (column 0) is not an energy and has no meV.
    import torch
    task = get_task('qm9')
    cfg = _tiny('cpu_budget_nmp_edge_u0.yaml', tmp_path / 'data',
                f'data.target={target}', f'data.atomref={atomref}')
    data = task.data_for_seed(task.load_data(cfg, torch.device('cpu')),
                              cfg, 0)
    model = task.build_model(cfg, data)

    def off_by_half(model, batch, cfg):
        return batch.y[:, target] + 0.5

    monkeypatch.setattr(type(task), 'predict', staticmethod(off_by_half))
    scores = task.evaluate(model, data, cfg)
    splits = ('train', 'val', 'test')
    # float32 targets of U0 (about -1e4 eV) hold 0.5 to within 1e-3.
    for key in splits:
        assert scores[key] == pytest.approx(0.5, abs=1e-3), key
    if target == 7:
        assert sorted(scores) == sorted(splits + ('train_mev', 'val_mev',
                                                  'test_mev'))
        for key in splits:
            assert scores[f'{key}_mev'] == pytest.approx(500, abs=1), key
    else:
        assert sorted(scores) == sorted(splits)


def test_qm9_compiled_model_is_used_and_matches(tmp_path, monkeypatch):
    # model.compile=true routes every prediction through torch.compile
    # (here its eager backend, to skip C++ compilation), given the full
    # graph's edges and the molecule count; predictions equal the eager
    # model's.
    import torch
    calls = []
    compile_ = torch.compile

    def eager_compile(model, **kwargs):
        calls.append(kwargs)
        return compile_(model, backend='eager', **kwargs)

    monkeypatch.setattr(torch, 'compile', eager_compile)
    task = get_task('qm9')
    cfg = _tiny('cpu_budget_hyper_nmp_edge_u0.yaml', tmp_path / 'data',
                'model.compile=true')
    data = task.data_for_seed(task.load_data(cfg, torch.device('cpu')), cfg,
                              0)
    model = task.build_model(cfg, data).eval()
    batch = next(iter(data['loaders']['val']))
    with torch.no_grad():
        pred = task.predict(model, batch, cfg)
        task.predict(model, batch, cfg)
        ref = model(batch.z, batch.pos, batch.batch).view(-1)
    assert calls == [{'dynamic': True}]  # compiled once per model
    torch.testing.assert_close(pred, ref)
    cfg['model']['compile'] = False
    assert torch.equal(task.predict(model, batch, cfg), ref)
