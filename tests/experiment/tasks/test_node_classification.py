import json

import pytest

from pyg_hyper.cli import main
from pyg_hyper.experiment import ConfigError, build_config, train

CONFIGS = 'experiments/citation/models'


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    # One processed copy of Cora for the whole module.
    return str(tmp_path_factory.mktemp('data'))


@pytest.mark.parametrize('model', ['lgcn', 'lgat'])
def test_citation_configs_train_on_cora(model, tmp_path, data_root):
    cfg = build_config(f'{CONFIGS}/{model}.yaml',
                       [f'data.root={data_root}', 'seeds=1',
                        'epochs=2', 'threads=1'])
    res = train(cfg, str(tmp_path / 'out'), progress=False)
    rec = res['seeds']['0']
    assert rec['epochs_run'] == 2 and 0.0 <= rec['scores']['test'] <= 1.0
    assert res['metric'] == 'accuracy'


def test_regularizer_on_the_training_nodes_receptive_field(data_root):
    import torch
    from pyg_hyper.experiment import get_task
    task = get_task('node_classification')
    cfg = {s: build_config(f'{CONFIGS}/lgcn.yaml',
                           [f'data.root={data_root}', f'optim.reg_scope={s}'])
           for s in ('all', 'train')}
    data = task.data_for_seed(task.load_data(cfg['all'], 'cpu'),
                              cfg['all'], 0)
    losses = {}
    for scope, c in cfg.items():
        torch.manual_seed(0)  # same weights and dropout: only the scope
        model = task.build_model(c, data)
        losses[scope] = task.train_epoch(model, data, torch.optim.SGD(
            model.parameters(), lr=0.0), c)
    assert losses['all'] != losses['train']
    # 'train' computes only the training nodes' receptive field: the same
    # loss as the whole graph with the regularizer scoped to it.
    c = build_config(f'{CONFIGS}/lgcn.yaml', [f'data.root={data_root}',
                                              'model.dropout=0.0'])
    torch.manual_seed(0)
    model = task.build_model(c, data)
    train_nodes = data.train_mask.nonzero().view(-1)
    out, reg = model(data.x, data.edge_index, return_regularizer=True,
                     reg_nodes=train_nodes)
    whole = torch.nn.functional.cross_entropy(
        out[data.train_mask], data.y[data.train_mask]) + reg
    c['optim']['reg_scope'] = 'train'
    calls = []
    forward = model.forward
    model.forward = lambda *a, **kw: calls.append(kw) or forward(*a, **kw)
    field = task.train_epoch(model, data, torch.optim.SGD(
        model.parameters(), lr=0.0), c)
    assert field == pytest.approx(float(whole), rel=1e-5)
    assert torch.equal(calls[0]['output_nodes'], train_nodes)
    with pytest.raises(ValueError, match="unknown optim.reg_scope 'val'; "
                       "valid values: all, train"):
        task._model_spec(build_config(f'{CONFIGS}/lgcn.yaml',
                                      ['optim.reg_scope=val']))


def test_describe_names_levels():
    names = [build_config(f'{CONFIGS}/{m}.yaml')['name']
             for m in ('gcn', 'lgcn', 'lgcn_node', 'lgcn_edge')]
    assert names == ['Cora-GCN', 'Cora-LGCN', 'Cora-LGCN-node',
                     'Cora-LGCN-edge']


def test_run_name_uses_the_canonical_dataset_name(tmp_path, capsys):
    # 'cora' was a separate run folder and table row from 'Cora'; an
    # unknown name passed --dry-run and failed only once training began.
    assert build_config(f'{CONFIGS}/gcn.yaml', ['data.name=cora'])['name'] \
        == 'Cora-GCN'
    assert build_config(f'{CONFIGS}/lgcn.yaml', ['data.name=citeseer']
                        )['name'] == 'CiteSeer-LGCN'
    assert main(['train', f'{CONFIGS}/gcn.yaml', 'data.name=Coraa',
                 '--dry-run']) == 2
    assert "unknown dataset 'Coraa'" in capsys.readouterr().err


def test_bad_model_and_dataset_names(tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown model 'GraphSAGE'; valid "
                       "models: GCN, GAT, GIN, LGCN, LGAT, LGIN"):
        build_config(f'{CONFIGS}/gcn.yaml', ['model.name=GraphSAGE'])
    assert main(['train', f'{CONFIGS}/gcn.yaml', 'data.name=Corra',
                 f'data.root={tmp_path}', '--out', str(tmp_path)]) == 2
    assert "unknown dataset 'Corra'; valid datasets: Cora" in \
        capsys.readouterr().err
    with pytest.raises(ConfigError, match="did you mean 'model.dropout'"):
        build_config(f'{CONFIGS}/gcn.yaml', ['model.drop_out=0.5'])


def test_cli_records_environment(tmp_path, data_root):
    assert main(['train', f'{CONFIGS}/gcn.yaml', 'seeds=1', 'epochs=2',
                 f'data.root={data_root}', '--out', str(tmp_path),
                 '--no-progress']) == 0
    rec = json.loads((tmp_path / 'Cora-GCN' / 'results.json').read_text())
    assert rec['environment']['command'].startswith('pyg-hyper train')
    assert rec['config']['data']['split'] == 'lgnn-val100'


def test_localization_parameters_get_their_own_weight_decay():
    from pyg_hyper.experiment import get_task
    from pyg_hyper.nn.models import LGNN
    cfg = build_config(f'{CONFIGS}/lgcn.yaml', ['optim.loc_weight_decay=0.5'])
    model = LGNN(5, 4, 3)
    opt = get_task('node_classification').build_optimizer(cfg, model)
    decays = sorted(g['weight_decay'] for g in opt.param_groups)
    assert decays == [0.0005, 0.5]
    loc = [g for g in opt.param_groups if g['weight_decay'] == 0.5][0]
    # Exactly the localization modules' parameters and the message biases
    # they scale, collected from the modules rather than by name.
    expected = set()
    for conv in (model.conv1, model.conv2):
        expected |= {id(p) for p in conv.node_loc.parameters()}
        expected |= {id(p) for p in conv.edge_loc.parameters()}
        expected.add(id(conv.msg_bias))
    assert {id(p) for p in loc['params']} == expected
    assert len(loc['params']) == len(expected)


@pytest.mark.parametrize('model', ['lgcn', 'gcn'])
def test_official_protocol_configs(model, tmp_path, data_root):
    path = f'experiments/citation/official/{model}.yaml'
    cfg = build_config(path)
    assert cfg['selection'] == 'val_and_loss' and cfg['select_from'] == 500
    assert cfg['optim']['reg_scope'] == 'train'
    assert cfg['model']['weight_dropout'] == (0.4 if model == 'lgcn' else 0)
    cfg = build_config(path, [f'data.root={data_root}', 'seeds=1',
                              'epochs=3', 'select_from=1', 'threads=1'])
    rec = train(cfg, str(tmp_path / 'out'), progress=False)['seeds']['0']
    assert rec['epochs_run'] == 3 and rec['best_epoch'] >= 1
