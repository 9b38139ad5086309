import pytest
import torch

from pyg_hyper.experiment import build_config, get_task, train
from pyg_hyper.experiment.tu_task import protocol_summary, same_size_batches

from tests.experiment.overrides import with_overrides

SMALL = ['seeds=2', 'epochs=2', 'patience=0', 'threads=1',
         'save_models=false', 'model.hidden_channels=8',
         'model.num_layers=2', 'model.hyper_channels=4',
         'model.ign_channels=[4, 8]', 'model.mlp_channels=[8]',
         'train.batch_size=16', 'train.iters_per_epoch=2']


def run(tmp_path, shared_data, *overrides):
    cfg = build_config(task='tu', overrides=with_overrides(SMALL, [
        f"data.root={shared_data / 'GIN_format'}",
        f"data.cache={tmp_path / 'cache'}"], overrides))
    return train(cfg, str(tmp_path / 'run'), progress=False,
                 argv=['pyg-hyper', 'test'])


@pytest.mark.parametrize('model', ['gin', 'hyper_gin', 'ign', 'hyper_ign'])
def test_models_train_on_published_folds(tmp_path, shared_data, model):
    res = run(tmp_path, shared_data, f'model.name={model}',
              'protocol.inner_val=0.2')
    assert sorted(res['seeds']) == ['0', '1']
    for rec in res['seeds'].values():
        assert len(rec['history']['test']) == 2
        assert all(0.0 <= a <= 1.0 for a in rec['history']['val'])
    summary = protocol_summary(res)
    assert summary['folds'] == 2
    assert 1 <= summary['gin']['epoch'] <= 2
    assert len(summary['inner_val']['folds']) == 2


def test_gin_paper_readout(tmp_path, shared_data):
    res = run(tmp_path, shared_data, 'seeds=1', 'model.gin_readout=layers')
    assert len(res['seeds']['0']['history']['test']) == 2
    with pytest.raises(ValueError, match="Unknown readout 'all'"):
        run(tmp_path / 'bad', shared_data, 'seeds=1',
            'model.gin_readout=all')


def test_gin_protocol_validates_on_the_held_out_fold(tmp_path, shared_data):
    # The runner's per-seed "test at best validation" is then each fold's
    # best test accuracy: it says so.
    with pytest.warns(UserWarning, match="inner_val=0 .* best test "
                      "accuracy"):
        res = run(tmp_path, shared_data, 'data.name=PTC', 'seeds=1')
    hist = res['seeds']['0']['history']
    assert hist['val'] == hist['test']
    assert 'inner_val' not in protocol_summary(res)
    assert len(hist['train']) == 2


def test_run_names_tell_hypernetwork_widths_apart():
    task = get_task('tu')
    names = [task.describe(build_config(task='tu', overrides=o)) for o in (
        ['model.name=gin', 'model.hyper_channels=8'],
        ['model.name=hyper_gin', 'model.hyper_channels=64'],
        ['model.name=hyper_gin', 'model.hyper_channels=8'],
        ['model.name=hyper_ign', 'data.name=PTC'],
        ['model.name=hyper_gin', 'model.hyper_channels=8',
         'model.generator_init=zero'],
        ['model.name=hyper_ign', 'model.generator_init=zero'],
        ['model.name=ign', 'model.generator_init=zero'],  # nothing to init
        ['model.name=hyper_ign', 'model.generator_init=zero',
         'model.normalize_code=true'],
        ['model.name=hyper_gin', 'model.normalize_code=true'],
    )]
    assert names == ['gin-MUTAG', 'hyper_gin-MUTAG', 'hyper_gin-r8-MUTAG',
                     'hyper_ign-PTC', 'hyper_gin-r8-zeroinit-MUTAG',
                     'hyper_ign-zeroinit-MUTAG', 'ign-MUTAG',
                     'hyper_ign-zeroinit-ncode-MUTAG',
                     'hyper_gin-r16-ncode-MUTAG']
    with pytest.raises(ValueError, match="'model.normalize_code'.*expects "
                       "true or false"):
        build_config(task='tu', overrides=['model.name=hyper_gin',
                                           'model.normalize_code=2'])
    with pytest.raises(ValueError, match=r"model.generator_init must be one "
                       r"of \['uniform', 'zero'\] \(got 'he'\)"):
        build_config(task='tu', overrides=['model.name=hyper_gin',
                                           'model.generator_init=he'])


def test_eval_train_off_skips_the_train_split(tmp_path, shared_data):
    res = run(tmp_path, shared_data, 'seeds=1', 'train.eval_train=false')
    hist = res['seeds']['0']['history']
    assert 'train' not in hist
    assert len(hist['test']) == 2 and 'inner_val' not in protocol_summary(res)


def test_step_decay_halves_at_gins_epochs(tmp_path, shared_data):
    # GIN steps StepLR(50, 0.5) before each epoch: epochs 1-49 train at
    # 0.01, epoch 50 at 0.005, epoch 100 at 0.0025.
    task = get_task('tu')
    cfg = build_config(task='tu', overrides=with_overrides(SMALL, [
        f"data.root={shared_data / 'GIN_format'}",
        f"data.cache={tmp_path / 'cache'}"]))
    data = task.data_for_seed(task.load_data(cfg, torch.device('cpu')),
                              cfg, 0)
    model = task.build_model(cfg, data)
    optimizer = task.build_optimizer(cfg, model)
    lrs = []
    for _ in range(100):
        task.train_epoch(model, data, optimizer, cfg)
        lrs.append(optimizer.param_groups[0]['lr'])
    assert lrs[0] == lrs[48] == pytest.approx(0.01)
    assert lrs[49] == lrs[98] == pytest.approx(0.005)
    assert lrs[99] == pytest.approx(0.0025)


def test_batch_clock_decays_as_the_official_ign_code(tmp_path, shared_data):
    # exponential_decay(global_step * batch_size, 2 * train_size, 0.5,
    # staircase=True): the rate drops once 2 training sets of samples have
    # been stepped through nominally, which with same-size batches (more
    # batches than train_size / batch_size) happens inside epoch 2.
    task = get_task('tu')
    cfg = build_config(task='tu', overrides=with_overrides(SMALL, [
        f"data.root={shared_data / 'GIN_format'}",
        f"data.cache={tmp_path / 'cache'}", 'model.name=ign',
        'train.batching=same_size', 'train.batch_size=5',
        'train.iters_per_epoch=0', 'optim.lr=0.01', 'optim.gamma=0.5',
        'optim.step_size=2', 'optim.decay_clock=batches']))
    data = task.data_for_seed(task.load_data(cfg, torch.device('cpu')),
                              cfg, 0)
    num_train = data['split']['train'].numel()
    model = task.build_model(cfg, data)
    optimizer = task.build_optimizer(cfg, model)
    lrs, per_epoch = [], []
    step = optimizer.step

    def records(*args, **kwargs):
        lrs.append(optimizer.param_groups[0]['lr'])
        return step(*args, **kwargs)

    optimizer.step = records
    for _ in range(5):
        task.train_epoch(model, data, optimizer, cfg)
        per_epoch.append(len(lrs))
    assert per_epoch[0] > num_train / 5  # partial batches per node count
    assert lrs == [0.01 * 0.5**(s * 5 // (2 * num_train))
                   for s in range(len(lrs))]
    first_drop = lrs.index(0.005)
    assert per_epoch[0] < first_drop < per_epoch[1]  # inside epoch 2
    # The clock is in the optimizer's state, which checkpoints save.
    assert optimizer.state_dict()['param_groups'][0]['steps'] == len(lrs)
    with pytest.raises(ValueError, match="optim.decay_clock must be one of "
                       r"\['epochs', 'batches'\] \(got 'steps'\)"):
        task.load_data(dict(cfg, optim=dict(cfg['optim'],
                                            decay_clock='steps')),
                       torch.device('cpu'))


def test_summed_loss_scales_each_batch_gradient_by_its_size(
        tmp_path, shared_data):
    # The official IGN code minimizes the batch's summed cross-entropy, so
    # a partial same-size batch steps less than a full one.
    task = get_task('tu')
    grads = {}
    for reduction in ('mean', 'sum'):
        cfg = build_config(task='tu', overrides=with_overrides(SMALL, [
            f"data.root={shared_data / 'GIN_format'}",
            f"data.cache={tmp_path / 'cache'}", 'model.name=ign',
            'train.batching=same_size', 'train.batch_size=5',
            'train.iters_per_epoch=0',
            f'train.loss_reduction={reduction}']))
        data = task.data_for_seed(task.load_data(cfg, torch.device('cpu')),
                                  cfg, 0)
        torch.manual_seed(0)
        model = task.build_model(cfg, data)
        optimizer = task.build_optimizer(cfg, model)
        seen = []

        def records(*args, **kwargs):
            seen.append([p.grad.clone() for p in model.parameters()])
            raise StopIteration  # one step is enough

        optimizer.step = records
        torch.manual_seed(1)  # the same batches for both
        with pytest.raises(StopIteration):
            task.train_epoch(model, data, optimizer, cfg)
        grads[reduction] = seen[0]
    torch.manual_seed(1)
    first = same_size_batches(data['split']['train'],
                              data['num_nodes'][data['split']['train']], 5)[0]
    for m, s in zip(grads['mean'], grads['sum']):
        assert torch.allclose(s, m * len(first), atol=1e-6)
    with pytest.raises(ValueError, match="train.loss_reduction must be "
                       "'mean' or 'sum' \\(got 'max'\\)"):
        task.load_data(dict(cfg, train=dict(cfg['train'],
                                            loss_reduction='max')),
                       torch.device('cpu'))


def test_tu_source_and_bad_config(tmp_path, shared_data):
    cfg = build_config(task='tu', overrides=with_overrides(SMALL, [
        'seeds=1', 'data.source=tu', 'data.name=MUTAG',
        f"data.root={shared_data / 'TUDataset'}",
        f"data.cache={tmp_path / 'cache'}"]))
    res = train(cfg, str(tmp_path / 'tu'), progress=False,
                argv=['pyg-hyper', 'test'])
    assert len(res['seeds']['0']['history']['test']) == 2
    bad = dict(cfg, model=dict(cfg['model'], name='gcn'))
    with pytest.raises(ValueError, match="model.name must be one of"):
        train(bad, str(tmp_path / 'bad'), progress=False,
              argv=['pyg-hyper', 'test'])


def test_same_size_batches_group_graphs_by_node_count():
    # The official IGN code's batches: one node count per batch, at most
    # batch_size graphs, every graph exactly once, order reshuffled.
    torch.manual_seed(0)
    index = torch.arange(100, 130)
    num_nodes = torch.randint(3, 7, (30, ))
    orders = set()
    for _ in range(5):
        batches = same_size_batches(index, num_nodes, 4)
        orders.add(tuple(b[0].item() for b in batches))
        for batch in batches:
            assert 1 <= batch.numel() <= 4
            assert num_nodes[batch - 100].unique().numel() == 1
        flat = torch.cat(batches)
        assert sorted(flat.tolist()) == index.tolist()
        # Per node count: full batches, then one remainder.
        counts = torch.bincount(num_nodes)
        assert len(batches) == int(sum((c + 3) // 4 for c in counts.tolist()))
    assert len(orders) > 1
    # Evaluation order: deterministic, by size, given order within a size.
    fixed = same_size_batches(index, num_nodes, 4, shuffle=False)
    assert [b.tolist() for b in fixed] == [
        b.tolist() for b in same_size_batches(index, num_nodes, 4,
                                              shuffle=False)]
    flat = torch.cat(fixed)
    assert num_nodes[flat - 100].tolist() == sorted(num_nodes.tolist())
    for size in num_nodes.unique():
        same = flat[num_nodes[flat - 100] == size]
        assert same.tolist() == sorted(same.tolist())
    with pytest.raises(ValueError, match='one node count per graph'):
        same_size_batches(index, num_nodes[:3], 4)


def test_ign_trains_with_same_size_batches(tmp_path, shared_data):
    res = run(tmp_path, shared_data, 'seeds=1', 'model.name=ign',
              'train.iters_per_epoch=0', 'train.batching=same_size',
              'train.eval_train=false')
    assert len(res['seeds']['0']['history']['test']) == 2
    # Evaluating in equal-size batches gives the padded batches' scores.
    task = get_task('tu')
    cfg = build_config(task='tu', overrides=with_overrides(SMALL, [
        'model.name=ign', f"data.root={shared_data / 'GIN_format'}",
        f"data.cache={tmp_path / 'cache'}"]))
    data = task.data_for_seed(task.load_data(cfg, torch.device('cpu')),
                              cfg, 0)
    torch.manual_seed(0)
    model = task.build_model(cfg, data).eval()
    scores = {}
    for batching in ('random', 'same_size'):
        cfg['train']['batching'] = batching
        scores[batching] = task.evaluate(model, data, cfg)
    assert scores['random'] == scores['same_size']
    with pytest.raises(ValueError, match=r"train.batching must be one of "
                       r"\['random', 'same_size'\]"):
        run(tmp_path / 'bad', shared_data, 'seeds=1',
            'train.batching=by_size')


def test_protocol_epochs_are_recorded_epochs_not_curve_positions():
    # Evaluated every second epoch: curve position 3 is epoch 6.
    hist = {'epoch': [2, 4, 6], 'test': [0.5, 0.6, 0.9],
            'val': [0.4, 0.8, 0.7]}
    res = {'config': {'protocol': {'inner_val': 0.1}},
           'seeds': {'0': {'history': hist}, '1': {'history': hist}}}
    summary = protocol_summary(res)
    assert summary['gin']['epoch'] == 6
    assert summary['inner_val']['epochs'] == [4, 4]
    other = dict(hist, epoch=[1, 2, 3])
    res['seeds']['1'] = {'history': other}
    with pytest.raises(ValueError, match="same epochs"):
        protocol_summary(res)


def test_seeds_beyond_the_folds_are_refused(tmp_path, shared_data):
    # seed 10 would silently rerun fold 0; seeds=20 is refused before the
    # first ten train (nothing is recorded).
    with pytest.raises(ValueError, match=r"0\.\.9 \(got seed 10\)"):
        run(tmp_path, shared_data, 'seeds=1', 'seed_start=10')
    with pytest.raises(ValueError, match=r"0\.\.9 \(got seed 10\)"):
        run(tmp_path, shared_data, 'seeds=20')
    assert not (tmp_path / 'run' / 'results.json').exists()
    task = get_task('tu')
    with pytest.raises(ValueError, match=r"got seed -1"):
        task.data_for_seed({'folds': [None] * 10}, {}, -1)


def test_social_sets_without_degree_tags_are_refused(tmp_path, shared_data):
    with pytest.raises(ValueError, match="data.degree_as_tag=true"):
        run(tmp_path, shared_data, 'data.name=IMDBBINARY', 'seeds=1')


def test_summarize_pairs_twins_run_under_the_published_protocol(
        tmp_path, shared_data):
    # protocol.inner_val=0 (the GIN protocol as published) records no
    # inner-validation score; the paired table shows a dash.
    import subprocess
    import sys
    from pathlib import Path
    runs = tmp_path / 'runs'
    for model in ('gin', 'hyper_gin'):
        cfg = build_config(task='tu', overrides=with_overrides(SMALL, [
            f"data.root={shared_data / 'GIN_format'}",
            f"data.cache={tmp_path / 'cache'}", f'model.name={model}',
            'seeds=1']))
        with pytest.warns(UserWarning, match="inner_val=0"):
            train(cfg, str(runs / f'{model}-MUTAG'), progress=False,
                  argv=['pyg-hyper', 'test'])
    script = Path(__file__).parents[2] / 'experiments' / 'tu' / 'summarize.py'
    proc = subprocess.run([sys.executable, str(script), str(runs), '--out',
                           str(tmp_path / 'out')], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    paired = [line for line in proc.stdout.splitlines()
              if ' vs ' in line and line.startswith('| MUTAG')]
    assert len(paired) == 1 and paired[0].endswith('/ – |')


def test_root_without_the_dataset_is_named_even_when_cached(tmp_path,
                                                            shared_data):
    # When the cache was keyed by dataset name only, once MUTAG was cached
    # a data.root without it (a typo, an empty folder) was ignored in
    # silence.
    cache = tmp_path / 'cache'
    cfg = build_config(task='tu', overrides=with_overrides(SMALL, [
        f"data.root={shared_data / 'GIN_format'}", f'data.cache={cache}']))
    get_task('tu').load_data(cfg, torch.device('cpu'))
    (tmp_path / 'empty').mkdir()
    cfg = build_config(task='tu', overrides=with_overrides(SMALL, [
        f"data.root={tmp_path / 'empty'}", f'data.cache={cache}']))
    with pytest.raises(FileNotFoundError, match=r"data.root '.*empty' has no "
                       r"'MUTAG.zip' for 'MUTAG'"):
        get_task('tu').load_data(cfg, torch.device('cpu'))


def test_roots_holding_different_copies_get_their_own_cache(tmp_path,
                                                             shared_data):
    # Two roots with a MUTAG each, one of them with every label flipped:
    # the second must not be served the first one's cached copy.
    import shutil
    roots = {}
    for kind in ('orig', 'flipped'):
        raw = tmp_path / kind / 'MUTAG' / 'raw'
        shutil.copytree(shared_data / 'TUDataset' / 'MUTAG' / 'raw', raw)
        roots[kind] = tmp_path / kind
    labels = raw / 'MUTAG_graph_labels.txt'
    labels.write_text('\n'.join(str(-int(v)) for v in
                                labels.read_text().split()) + '\n')
    ys = {}
    for kind, root in roots.items():
        cfg = build_config(task='tu', overrides=with_overrides(SMALL, [
            'data.source=tu', 'data.name=MUTAG', f'data.root={root}',
            f"data.cache={tmp_path / 'cache'}"]))
        data = get_task('tu').load_data(cfg, torch.device('cpu'))
        ys[kind] = data['labels']
    assert ys['orig'].numel() == 188
    # TUDataset maps labels to 0..C-1, so flipping {-1, 1} swaps them.
    assert torch.equal(ys['flipped'], 1 - ys['orig'])
