import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pyg_hyper.experiment import build_config, get_task, train

from tests.experiment.overrides import with_overrides
from tests.ogb_data import copy_ogb, no_network  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / 'experiments' / 'ogb' / 'configs'

# A tiny, fast version of the leaderboard configs: 48 graphs per split,
# width 32, two layers. Never used for reported numbers.
TINY = ['data.max_graphs_per_split=48', 'model.emb_dim=32',
        'model.num_layers=2', 'model.hyper_channels=4',
        'model.hyper_hidden_channels=16', 'seeds=1', 'epochs=2',
        'train.batch_size=16', 'save_models=false']


def tiny_config(config, root, *overrides):
    return build_config(str(CONFIGS / config), with_overrides(
        TINY, [f'data.root={root}', 'data.source='], overrides))


@pytest.mark.parametrize('config', ['full/gin-virtual.yaml',
                                    'cpu-budget/hyper-gin-cheap.yaml'])
def test_runner_trains_an_ogb_entry(shared_data, tmp_path, config):
    root = copy_ogb(shared_data, 'ogbg-molbace', tmp_path / 'data')
    cfg = tiny_config(config, root, 'data.name=ogbg-molbace')
    results = train(cfg, str(tmp_path / 'out'), progress=False)
    assert results['metric'] == 'rocauc'
    record = results['seeds']['0']
    history = record['history']
    best = max(range(len(history['val'])), key=history['val'].__getitem__)
    # OGB's rule: the test score at the best-validation epoch.
    assert record['scores']['test'] == history['test'][best]
    assert 0.0 <= record['scores']['test'] <= 1.0
    assert record['num_params'] > 0
    assert (tmp_path / 'out' / 'results.md').exists()


def test_evaluate_is_roc_auc_of_each_splits_own_labels(shared_data,
                                                       tmp_path):
    # For a fixed model, every split's score is sklearn's ROC-AUC of the
    # model's logits for that split's graphs against that split's labels
    # (one batch per split; BatchNorm in evaluation mode makes the logits
    # independent of the batching).
    from sklearn.metrics import roc_auc_score
    from torch_geometric.data import Batch

    root = copy_ogb(shared_data, 'ogbg-molbace', tmp_path / 'data')
    cfg = tiny_config('full/gin.yaml', root, 'data.name=ogbg-molbace',
                      'train.eval_train=true', 'train.eval_batch_size=20')
    task = get_task(cfg['task'])
    data = task.data_for_seed(task.load_data(cfg, torch.device('cpu')),
                              cfg, 0)
    torch.manual_seed(0)
    model = task.build_model(cfg, data)
    scores = task.evaluate(model, data, cfg)
    assert sorted(scores) == ['test', 'train', 'val']
    for key in ('train', 'val', 'test'):
        batch = Batch.from_data_list(list(data['sets'][key]))
        with torch.no_grad():
            logits = model(batch.x, batch.edge_index, batch.edge_attr,
                           batch.batch, batch.num_graphs).view(-1)
        y = batch.y.view(-1)
        labeled = y == y
        expected = roc_auc_score(y[labeled].numpy(),
                                 logits[labeled].numpy())
        # Far from 0.5: a negated logit would give 1 - expected.
        assert abs(expected - 0.5) > 0.02, (key, expected)
        assert scores[key] == pytest.approx(expected, abs=1e-6), key
    # The three splits are told apart: not one split scored three times.
    assert len(set(scores.values())) == 3


def test_source_is_copied_into_an_empty_root(shared_data, tmp_path,
                                             no_network):
    # data.source names a read-only OGB-layout folder: a root without the
    # dataset gets a copy (made under a temporary name, then renamed), and
    # processed/ is written into the copy, never into the source.
    root = tmp_path / 'data'
    source = shared_data / 'OGB'
    cfg = tiny_config('full/gin.yaml', root, 'data.name=ogbg-molbace',
                      f'data.source={source}')
    task = get_task(cfg['task'])
    data = task.load_data(cfg, torch.device('cpu'))
    assert len(data['sets']['test']) == 48
    copied = root / 'ogbg_molbace'
    for name in sorted(p.relative_to(source / 'ogbg_molbace')
                       for p in (source / 'ogbg_molbace').rglob('*')
                       if p.is_file()):
        assert (copied / name).read_bytes() == \
            (source / 'ogbg_molbace' / name).read_bytes(), name
    assert (copied / 'processed').is_dir()
    assert not (source / 'ogbg_molbace' / 'processed').exists()
    assert [p.name for p in root.iterdir()] == ['ogbg_molbace']
    assert list(root.rglob('.tmp-*')) == []


def test_split_that_cannot_be_scored_is_refused_before_training(
        shared_data, tmp_path):
    # One graph per split has a single class: OGB's evaluator raised "No
    # positively labeled data" after the first epoch had trained.
    root = copy_ogb(shared_data, 'ogbg-molbace', tmp_path / 'data')
    cfg = tiny_config('full/gin.yaml', root, 'data.name=ogbg-molbace',
                      'data.max_graphs_per_split=1')
    with pytest.raises(ValueError, match=r"the 'train' split of "
                       r"'ogbg-molbace' has 1 graph\(s\) \(after "
                       r"data.max_graphs_per_split=1\) and no task with "
                       r"both positive and negative labels"):
        get_task(cfg['task']).load_data(cfg, torch.device('cpu'))
    # An empty split (a scaffold split of a small CSV can leave one) used to
    # surface as "torch.cat(): expected a non-empty list of Tensors".
    from pyg_hyper.experiment.ogb_task import _check_scorable
    with pytest.raises(ValueError, match="the 'val' split of 'x' is empty"):
        _check_scorable('x', 'val', torch.zeros(0, 1), 'rmse', 0)
    _check_scorable('x', 'val', torch.tensor([[0.], [1.]]), 'rocauc', 0)


def test_regression_task_and_metric_mismatch(shared_data, tmp_path):
    root = copy_ogb(shared_data, 'ogbg-molfreesolv', tmp_path / 'data')
    # Refused when the config is built (so by --dry-run too), before the
    # dataset is processed.
    with pytest.raises(ValueError, match="scored by rmse.*task=ogbg-rmse"):
        tiny_config('full/gin.yaml', root, 'data.name=ogbg-molfreesolv')
    assert not any(p.name == 'processed' for p in Path(root).rglob('*'))
    # load_data checks the processed dataset's own metric too.
    cfg = tiny_config('full/gin.yaml', root, 'data.name=ogbg-molbace')
    cfg['data']['name'] = 'ogbg-molfreesolv'
    with pytest.raises(ValueError, match="scored by rmse.*task=ogbg-rmse"):
        get_task(cfg['task']).load_data(cfg, torch.device('cpu'))
    cfg = tiny_config('full/gin.yaml', root, 'data.name=ogbg-molfreesolv',
                      'task=ogbg-rmse')
    results = train(cfg, str(tmp_path / 'out'), progress=False)
    assert results['metric'] == 'rmse' and not results['higher_is_better']
    assert results['seeds']['0']['scores']['val'] > 0


def test_run_names_tell_the_models_apart():
    names = {build_config(str(p))['name']
             for p in sorted((CONFIGS / 'full').glob('*.yaml'))}
    assert names == {'molhiv-gin', 'molhiv-gin-virtual', 'molhiv-hyper-gin',
                     'molhiv-hyper-gin-virtual', 'molhiv-hyper-gin-cheap',
                     'molhiv-hyper-gin-cheap-virtual'}
    zero = build_config(str(CONFIGS / 'full' / 'hyper-gin-cheap.yaml'),
                        overrides=['model.generator_init=zero'])
    assert zero['name'] == 'molhiv-hyper-gin-cheap-zeroinit'


def run_cli(nproc, root, out, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS='1')
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone',
           f'--nproc_per_node={nproc}', '-m', 'pyg_hyper.cli', 'train',
           str(CONFIGS / 'full' / 'gin-virtual.yaml'), *TINY,
           'data.name=ogbg-molbace', f'data.root={root}', 'data.source=',
           'model.dropout=0.0', 'threads=1', '--out', str(out),
           '--no-progress']
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / 'molbace-gin-virtual' /
                       'results.json').read_text())


@pytest.mark.slow
def test_torchrun_two_processes_match_one(shared_data, tmp_path):
    """DDP over 2 gloo processes, each with half of every global batch of
    16, against 1 process with the whole batch. The global batches are the
    same (DistributedSampler); BatchNorm statistics are per process on CPU,
    so the results agree within a tolerance, not bit for bit."""
    root = copy_ogb(shared_data, 'ogbg-molbace', tmp_path / 'data')
    # Process the dataset once, so both runs start from the same files.
    from pyg_hyper.datasets import OGBGraphDataset
    OGBGraphDataset(root, 'molbace')
    one = run_cli(1, root, tmp_path / 'one', tmp_path)
    two = run_cli(2, root, tmp_path / 'two', tmp_path)
    h1, h2 = one['seeds']['0']['history'], two['seeds']['0']['history']
    assert len(h1['loss']) == len(h2['loss']) == 2
    for a, b in zip(h1['loss'], h2['loss']):
        assert a == pytest.approx(b, rel=0.1)
    for key in ('val', 'test'):
        for a, b in zip(h1[key], h2[key]):
            assert abs(a - b) < 0.1, (key, h1[key], h2[key])
    # Only rank 0 wrote: one results file, no stray temporaries.
    assert two['environment']['command']
    leftovers = [p.name for p in (tmp_path / 'two').rglob('.tmp-*')]
    assert leftovers == []


@pytest.mark.slow
def test_ddp_keeps_the_replicas_identical(shared_data, tmp_path):
    """The tolerance above cannot tell averaged gradients from a few steps
    of per-process ones; this can. After an epoch through the task's DDP
    path, both processes hold the same parameters; with averaging off (the
    control), they drift apart."""
    root = copy_ogb(shared_data, 'ogbg-molbace', tmp_path / 'data')
    from pyg_hyper.datasets import OGBGraphDataset
    OGBGraphDataset(root, 'molbace')
    out = tmp_path / 'spread.json'
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS='1')
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone',
           '--nproc_per_node=2',
           str(REPO / 'tests' / 'experiment' / 'ddp_worker.py'),
           str(CONFIGS / 'full' / 'gin-virtual.yaml'), str(root), str(out),
           *TINY, 'data.name=ogbg-molbace', 'model.dropout=0.0']
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    spread = json.loads(out.read_text())
    assert spread['synced'] == 0.0
    assert spread['unsynced'] > 1e-4


def test_single_graph_batches_are_skipped(shared_data, tmp_path):
    # 49 training graphs in batches of 16 leave a last batch of one graph:
    # the virtual node's BatchNorm cannot train on one row (it used to raise
    # in epoch 1), and OGB's example skips such batches.
    root = copy_ogb(shared_data, 'ogbg-molbace', tmp_path / 'data')
    cfg = tiny_config('full/gin-virtual.yaml', root, 'data.name=ogbg-molbace',
                      'data.max_graphs_per_split=49', 'epochs=1')
    results = train(cfg, str(tmp_path / 'out'), progress=False)
    assert 0.0 <= results['seeds']['0']['scores']['test'] <= 1.0


def _collectives(rank, init_file, out):
    import torch.distributed as dist
    from pyg_hyper.experiment.distributed import all_agree, broadcast_buffers
    dist.init_process_group('gloo', init_method=f'file://{init_file}',
                            rank=rank, world_size=2)
    bn = torch.nn.BatchNorm1d(2)
    bn.running_mean.fill_(float(rank + 1))
    broadcast_buffers(bn)
    cpu = torch.device('cpu')
    result = {'mean': bn.running_mean.tolist(),
              'mixed': all_agree(rank == 0, cpu),
              'all': all_agree(True, cpu)}
    with open(f'{out}.{rank}', 'w') as f:
        json.dump(result, f)
    dist.destroy_process_group()


def test_collectives_agree_across_two_processes(tmp_path):
    # Guards against broadcast_buffers leaving each rank's buffers (BatchNorm
    # statistics) as they were, and all_agree reducing with MAX (one rank's
    # 'yes' outvoting another's 'no').
    torch.multiprocessing.spawn(
        _collectives, args=(str(tmp_path / 'init'), str(tmp_path / 'out')),
        nprocs=2)
    for rank in (0, 1):
        got = json.loads((tmp_path / f'out.{rank}').read_text())
        assert got == {'mean': [1.0, 1.0], 'mixed': False, 'all': True}
