import json
import os

import pytest
import torch

from pyg_hyper.experiment import build_config, evaluate, seed_list, train
from pyg_hyper.experiment import runner as runner_mod


def _train(cfg, out, **kwargs):
    return train(cfg, str(out), progress=False, argv=['pyg-hyper', 'test'],
                 **kwargs)


def test_train_writes_records_and_reports(toy_config, tmp_path):
    cfg = build_config(toy_config)
    res = _train(cfg, tmp_path / 'run')
    assert sorted(res['seeds']) == ['0', '1', '2']
    on_disk = json.loads((tmp_path / 'run' / 'results.json').read_text())
    assert on_disk['summary']['test']['n'] == 3
    for rec in on_disk['seeds'].values():
        hist = rec['history']
        # The reported scores are those of the best-validation epoch.
        i = hist['epoch'].index(rec['best_epoch'])
        assert rec['scores']['test'] == hist['test'][i]
        assert rec['scores']['val'] == max(hist['val'])
        assert rec['num_params'] == 4 * 8 + 8 + 8 * 2 + 2
        assert rec['epoch_time_s'] > 0
    env = on_disk['environment']
    assert env['command'] == 'pyg-hyper test'
    assert env['torch'] == torch.__version__ and env['cpu_count'] >= 1
    md = (tmp_path / 'run' / 'results.md').read_text()
    assert '| test |' in md and '±' in md and 'pyg-hyper test' in md
    assert (tmp_path / 'run' / 'curves.png').stat().st_size > 1000
    assert sorted(os.listdir(tmp_path / 'run' / 'models')) == [
        'seed_0.pt', 'seed_1.pt', 'seed_2.pt']


def test_early_stopping_respects_patience(toy_config, tmp_path):
    # The toy task's validation accuracy stops improving within a few
    # epochs (deterministically), so a run that never stopped would fail.
    cfg = build_config(toy_config, ['epochs=500', 'patience=5', 'seeds=1'])
    rec = _train(cfg, tmp_path / 'run')['seeds']['0']
    assert rec['stopped_early']
    assert rec['epochs_run'] == rec['best_epoch'] + 5 < 500
    cfg = build_config(toy_config, ['epochs=40', 'patience=0', 'seeds=1'])
    rec = _train(cfg, tmp_path / 'r2')['seeds']['0']
    assert rec['epochs_run'] == 40 and not rec['stopped_early']


def test_min_epochs_delays_early_stopping(toy_config, tmp_path):
    cfg = build_config(toy_config, ['epochs=60', 'patience=1', 'seeds=1'])
    early = _train(cfg, tmp_path / 'early')['seeds']['0']
    assert early['stopped_early'] and early['epochs_run'] < 50
    cfg = build_config(toy_config, ['epochs=60', 'patience=1',
                                    'min_epochs=50', 'seeds=1'])
    rec = _train(cfg, tmp_path / 'run')['seeds']['0']
    # Patience ran out long before; the stop waits for epoch 50.
    assert rec['stopped_early'] and rec['epochs_run'] == 50


def test_seeds_are_reproducible(toy_config, tmp_path):
    cfg = build_config(toy_config, ['seeds=1'])
    a = _train(cfg, tmp_path / 'a')['seeds']['0']
    b = _train(cfg, tmp_path / 'b')['seeds']['0']
    assert a['history']['loss'] == b['history']['loss']


def test_resume_skips_finished_seeds(toy_config, tmp_path, monkeypatch):
    cfg = build_config(toy_config, ['seeds=2'])
    first = _train(cfg, tmp_path / 'run')
    ran = []
    real = runner_mod._run_seed

    def spy(task, cfg, data, seed, *args):
        ran.append(seed)
        return real(task, cfg, data, seed, *args)

    monkeypatch.setattr(runner_mod, '_run_seed', spy)
    cfg = build_config(toy_config, ['seeds=3'])
    res = _train(cfg, tmp_path / 'run')
    assert ran == [2]
    assert res['seeds']['0'] == first['seeds']['0']
    assert [s['seeds_run'] for s in res['sessions']] == [[0, 1], [2]]
    # Every session keeps its environment, and the report lists them.
    for session in res['sessions']:
        assert {'device', 'torch', 'pyg_hyper', 'git_commit', 'cpu'} <= \
            set(session)
    report = (tmp_path / 'run' / 'results.md').read_text()
    assert '| session | seeds | device |' in report
    assert '| 2 | cpu |' in report


def test_resume_warns_when_versions_differ(toy_config, tmp_path,
                                           monkeypatch):
    real = runner_mod.environment_record
    commit = 'a' * 40

    def at_commit(*args, **kwargs):
        return {**real(*args, **kwargs), 'git_commit': commit}

    monkeypatch.setattr(runner_mod, 'environment_record', at_commit)
    _train(build_config(toy_config, ['seeds=1']), tmp_path / 'run')
    commit = 'f' * 40
    with pytest.warns(UserWarning, match=r"resumes seeds recorded under "
                      r"other versions \(git_commit .* -> f{40}\)"):
        _train(build_config(toy_config, ['seeds=2']), tmp_path / 'run')
    # A record from before sessions kept their environment is compared
    # through its top-level one (its latest session's).
    path = tmp_path / 'run' / 'results.json'
    record = json.loads(path.read_text())
    record['sessions'] = [{key: session[key] for key in
                           ('command', 'time', 'seeds_run')}
                          for session in record['sessions']]
    record['environment']['git_commit'] = 'b' * 40
    path.write_text(json.dumps(record))
    with pytest.warns(UserWarning, match=r"git_commit b{40} -> f{40}"):
        _train(build_config(toy_config, ['seeds=3']), tmp_path / 'run')
    # Nothing left to run: no warning.
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        _train(build_config(toy_config, ['seeds=3']), tmp_path / 'run')


def test_killed_run_loses_no_finished_seed(toy_config, tmp_path, monkeypatch):
    cfg = build_config(toy_config)
    real = runner_mod._run_seed

    def dies_on_seed_2(task, cfg, data, seed, *args):
        if seed == 2:
            raise KeyboardInterrupt
        return real(task, cfg, data, seed, *args)

    monkeypatch.setattr(runner_mod, '_run_seed', dies_on_seed_2)
    with pytest.raises(KeyboardInterrupt):
        _train(cfg, tmp_path / 'run')
    saved = json.loads((tmp_path / 'run' / 'results.json').read_text())
    assert sorted(saved['seeds']) == ['0', '1']
    # No temporary files are left behind by the atomic writes (the lock
    # file stays, released).
    assert not [f for f in os.listdir(tmp_path / 'run')
                if f.startswith('.') and f != runner_mod.LOCK_FILE]


def test_resume_rejects_changed_config(toy_config, tmp_path):
    _train(build_config(toy_config, ['seeds=1']), tmp_path / 'run')
    with pytest.raises(ValueError, match=r'differs in: optim\.lr.*--fresh'):
        _train(build_config(toy_config, ['optim.lr=0.5']), tmp_path / 'run')
    res = _train(build_config(toy_config, ['optim.lr=0.5', 'seeds=1']),
                 tmp_path / 'run', fresh=True)
    assert res['config']['optim']['lr'] == 0.5


def test_resume_ignores_where_the_data_is_read_from():
    # A run continued on another machine reads the same dataset from other
    # folders (each task names its location keys); what it trains on (the
    # name, the split, a file format) still has to match.
    nodes = runner_mod.get_task('node_classification').location_keys
    old = {'seeds': 10, 'data': {'name': 'Photo', 'root': '/tmp/a',
                                 'raw_source': '../shared/data'}}
    moved = {'seeds': 10, 'data': {'name': 'Photo', 'root': '/out/data',
                                   'raw_source': '.devdata'}}
    assert runner_mod._config_diff(old, moved, nodes) == []
    assert runner_mod._config_diff(old, moved) == ['data.raw_source',
                                                    'data.root']
    other = {'seeds': 10, 'data': {'name': 'Computers', 'root': '/out/data',
                                   'split': 'public'}}
    assert runner_mod._config_diff(old, other, nodes) == ['data.name',
                                                          'data.split']
    # OGB's data.source is a folder; TU's and QM9's choose what is read.
    ogb = runner_mod.get_task('ogbg-rocauc').location_keys
    tu = runner_mod.get_task('tu').location_keys
    qm9 = runner_mod.get_task('qm9').location_keys
    a = {'data': {'source': 'gin', 'root': '/a', 'cache': '/c'}}
    b = {'data': {'source': 'tu', 'root': '/b', 'cache': '/d'}}
    assert runner_mod._config_diff(a, b, ogb) == ['data.cache']
    assert runner_mod._config_diff(a, b, tu) == ['data.source']
    assert runner_mod._config_diff(a, b, qm9) == ['data.cache',
                                                  'data.source']


def test_resume_accepts_records_older_than_a_new_key(toy_config, tmp_path):
    # A record written before an option existed resumes while that option
    # keeps its default, and is refused once the option is changed.
    _train(build_config(toy_config, ['seeds=1']), tmp_path / 'run')
    path = tmp_path / 'run' / 'results.json'
    saved = json.loads(path.read_text())
    default_lr = saved['config']['optim'].pop('lr')
    path.write_text(json.dumps(saved))
    res = _train(build_config(toy_config, ['seeds=2']), tmp_path / 'run')
    assert sorted(res['seeds']) == ['0', '1']
    with pytest.raises(ValueError, match=r'differs in: optim\.lr'):
        _train(build_config(toy_config, [f'optim.lr={default_lr * 2}']),
               tmp_path / 'run')


def test_mid_seed_checkpoint_resumes(toy_config, tmp_path, monkeypatch):
    cfg = build_config(toy_config, ['seeds=1', 'epochs=20', 'patience=0',
                                    'checkpoint_every=5'])
    full = _train(cfg, tmp_path / 'full')['seeds']['0']

    calls = {'n': 0}
    task_cls = type(runner_mod.get_task('toy'))
    real_epoch = task_cls.train_epoch

    def dies_at_epoch_12(self, *args):
        calls['n'] += 1
        if calls['n'] == 12:
            raise KeyboardInterrupt
        return real_epoch(self, *args)

    monkeypatch.setattr(task_cls, 'train_epoch', dies_at_epoch_12)
    with pytest.raises(KeyboardInterrupt):
        _train(cfg, tmp_path / 'part')
    assert (tmp_path / 'part' / 'checkpoints' / 'seed_0.pt').exists()
    calls['n'] = 0

    def counts(self, *args):
        calls['n'] += 1
        return real_epoch(self, *args)

    monkeypatch.setattr(task_cls, 'train_epoch', counts)
    resumed = _train(cfg, tmp_path / 'part')['seeds']['0']
    # Resumed from the epoch-10 checkpoint: epochs 11-20 only. The toy task
    # is deterministic, so a restart from scratch would give the same
    # history; the count is what shows that the checkpoint was used.
    assert calls['n'] == 10
    assert resumed['history']['loss'] == pytest.approx(full['history']['loss'])
    assert not (tmp_path / 'part' / 'checkpoints' / 'seed_0.pt').exists()


def test_mid_seed_checkpoint_keeps_the_best_so_far(toy_config, tmp_path,
                                                   monkeypatch):
    # The run's best epoch (6 here) falls before the epoch-10 checkpoint and
    # no later epoch beats it: the resumed run must report that epoch's
    # scores and save its weights, as the uninterrupted run does. A
    # checkpoint that dropped the best weights would save no model at all.
    cfg = build_config(toy_config, ['seeds=1', 'epochs=20', 'patience=0',
                                    'checkpoint_every=5', 'optim.lr=0.2'])
    full = _train(cfg, tmp_path / 'full')['seeds']['0']
    assert full['best_epoch'] <= 10, 'the config no longer peaks early'
    _interrupted_checkpoint(cfg, tmp_path / 'part', monkeypatch,
                            at_epoch=12)
    resumed = _train(cfg, tmp_path / 'part')['seeds']['0']
    assert resumed['best_epoch'] == full['best_epoch']
    assert resumed['scores'] == full['scores']
    assert sorted(resumed['history']) == sorted(full['history'])
    for key, values in full['history'].items():
        assert resumed['history'][key] == pytest.approx(values), key
    for out in (tmp_path / 'full', tmp_path / 'part'):
        assert (out / 'models' / 'seed_0.pt').is_file(), out.name
    saved = [torch.load(out / 'models' / 'seed_0.pt', weights_only=True)
             for out in (tmp_path / 'full', tmp_path / 'part')]
    assert sorted(saved[0]) == sorted(saved[1])
    for key, value in saved[0].items():
        assert torch.equal(saved[1][key], value), key


def _interrupted_checkpoint(cfg, out, monkeypatch, at_epoch=7):
    """Runs :obj:`cfg` into :obj:`out` until it dies mid-seed, leaving a
    checkpoint behind."""
    task_cls = type(runner_mod.get_task('toy'))
    real_epoch = task_cls.train_epoch
    calls = {'n': 0}

    def dies(self, *args):
        calls['n'] += 1
        if calls['n'] == at_epoch:
            raise KeyboardInterrupt
        return real_epoch(self, *args)

    with monkeypatch.context() as m:
        m.setattr(task_cls, 'train_epoch', dies)
        with pytest.raises(KeyboardInterrupt):
            _train(cfg, out)
    assert (out / 'checkpoints' / 'seed_0.pt').exists()


def _checkpoint_then_other_lr(toy_config, tmp_path, monkeypatch, lr):
    """A run of 'base' interrupted into tmp_path/run, and the config that
    differs from it in the learning rate only."""
    base = ['seeds=1', 'epochs=10', 'patience=0', 'checkpoint_every=2']
    _interrupted_checkpoint(build_config(toy_config, base), tmp_path / 'run',
                            monkeypatch)
    return base, build_config(toy_config, base + [f'optim.lr={lr}'])


def test_checkpoint_of_another_config_is_refused_and_fresh_discards_it(
        toy_config, tmp_path, monkeypatch):
    # Its optimizer state would bring back the old learning rate.
    base, other = _checkpoint_then_other_lr(toy_config, tmp_path,
                                            monkeypatch, '0.9')
    task_cls = type(runner_mod.get_task('toy'))

    def loads_nothing(self, *args):
        raise AssertionError('refused only after loading the data')

    with monkeypatch.context() as m, pytest.raises(
            ValueError, match=r"checkpoint .*seed_0\.pt' was written by a "
            r"different config \(differs in: optim\.lr\).*--fresh"):
        m.setattr(task_cls, 'load_data', loads_nothing)
        _train(other, tmp_path / 'run')
    # A changed resumable key (here the checkpoint interval) still resumes,
    # and so does a checkpoint written before a config key existed (here
    # optim.lr, dropped from its record: it ran with the default).
    ckpt_path = tmp_path / 'run' / 'checkpoints' / 'seed_0.pt'
    ckpt = torch.load(ckpt_path, weights_only=False)
    assert ckpt['state']['epoch'] == 6
    del ckpt['config']['optim']['lr']
    torch.save(ckpt, ckpt_path)
    real_epoch = task_cls.train_epoch
    calls = {'n': 0}

    def counts(self, *args):
        calls['n'] += 1
        return real_epoch(self, *args)

    monkeypatch.setattr(task_cls, 'train_epoch', counts)
    same = build_config(toy_config, base[:3] + ['checkpoint_every=1'])
    assert _train(same, tmp_path / 'run')['seeds']['0']['epochs_run'] == 10
    assert calls['n'] == 4  # epochs 7-10: resumed, not restarted
    monkeypatch.setattr(task_cls, 'train_epoch', real_epoch)
    # --fresh discards checkpoints and saved models with the seeds.
    _interrupted_checkpoint(build_config(toy_config, base), tmp_path / 'b',
                            monkeypatch)
    (tmp_path / 'b' / 'models').mkdir()
    stale = tmp_path / 'b' / 'models' / 'seed_3.pt'
    torch.save({}, stale)
    res = _train(build_config(toy_config, base[:3] + ['optim.lr=0.9',
                                                      'save_models=false']),
                 tmp_path / 'b', fresh=True)
    assert res['seeds']['0']['epochs_run'] == 10
    assert not stale.exists()
    assert not (tmp_path / 'b' / 'checkpoints' / 'seed_0.pt').exists()


def test_fresh_run_killed_before_its_first_seed_does_not_resume_the_old(
        toy_config, tmp_path, monkeypatch):
    cfg = build_config(toy_config, ['seeds=2', 'epochs=3', 'patience=0'])
    _train(cfg, tmp_path / 'run')
    assert (tmp_path / 'run' / 'models' / 'seed_0.pt').exists()

    def dies(*args, **kwargs):
        raise KeyboardInterrupt

    other = build_config(toy_config, ['seeds=2', 'epochs=3', 'patience=0',
                                      'optim.lr=0.5'])
    monkeypatch.setattr(runner_mod, '_run_seed', dies)
    with pytest.raises(KeyboardInterrupt):
        _train(other, tmp_path / 'run', fresh=True)
    monkeypatch.undo()
    saved = json.loads((tmp_path / 'run' / 'results.json').read_text())
    assert saved['seeds'] == {} and saved['config']['optim']['lr'] == 0.5
    assert not (tmp_path / 'run' / 'models' / 'seed_0.pt').exists()
    assert not (tmp_path / 'run' / 'results.md').exists()
    # A plain rerun continues the fresh record, not the discarded one.
    res = _train(other, tmp_path / 'run')
    assert sorted(res['seeds']) == ['0', '1']
    with pytest.raises(ValueError, match='differs in: optim.lr'):
        _train(cfg, tmp_path / 'run')


def test_records_older_than_a_behaviour_change_are_not_continued():
    # QM9 records from before msgnet's loss and edge widths lack those keys;
    # they ran with L1 and the narrow update, so today's config differs.
    qm9 = runner_mod.get_task('qm9')
    old = build_config(task='qm9')
    del old['optim']['loss'], old['model']['edge_update']
    filled = runner_mod._filled_config(qm9, old)
    assert runner_mod._config_diff(filled, build_config(task='qm9')) == [
        'model.edge_update', 'optim.loss']
    assert runner_mod._config_diff(filled, build_config(
        task='qm9', overrides=['optim.loss=l1',
                               'model.edge_update=narrow'])) == []
    # Written with the loss key but before 'model.edge_update': msgnet's.
    newer = build_config(task='qm9')
    del newer['model']['edge_update']
    assert runner_mod._config_diff(runner_mod._filled_config(qm9, newer),
                                   build_config(task='qm9')) == []


def test_rerun_rebuilds_reports_lost_between_writes(toy_config, tmp_path,
                                                     monkeypatch):
    # Killed after results.json was written, before results.md: the rerun
    # has nothing to train but must not leave the old report.
    cfg = build_config(toy_config, ['seeds=2', 'epochs=3', 'patience=0'])
    real = runner_mod.atomic_write_text
    calls = {'n': 0}

    def dies_on_second_report(path, text):
        calls['n'] += 1
        if calls['n'] == 2:
            raise KeyboardInterrupt
        return real(path, text)

    monkeypatch.setattr(runner_mod, 'atomic_write_text', dies_on_second_report)
    with pytest.raises(KeyboardInterrupt):
        _train(cfg, tmp_path / 'run')
    md = tmp_path / 'run' / 'results.md'
    assert '0 (1 finished)' in md.read_text()
    monkeypatch.setattr(runner_mod, 'atomic_write_text', real)
    sessions = len(json.loads((tmp_path / 'run' /
                               'results.json').read_text())['sessions'])
    _train(cfg, tmp_path / 'run')
    assert '0, 1 (2 finished)' in md.read_text()
    # Nothing was trained: no new session in the record.
    saved = json.loads((tmp_path / 'run' / 'results.json').read_text())
    assert len(saved['sessions']) == sessions


def test_resume_refuses_recorded_seeds_outside_the_config(toy_config,
                                                          tmp_path):
    _train(build_config(toy_config, ['seeds=2', 'epochs=3']), tmp_path / 'r')
    with pytest.raises(ValueError, match=r"holds seeds \[1\] outside this "
                       r"config's seeds \[0\]"):
        _train(build_config(toy_config, ['seeds=1', 'epochs=3']),
               tmp_path / 'r')
    with pytest.raises(ValueError, match=r"seeds \[0, 1\] outside"):
        _train(build_config(toy_config, ['seeds=1', 'seed_start=5',
                                         'epochs=3']), tmp_path / 'r')
    res = _train(build_config(toy_config, ['seeds=3', 'epochs=3']),
                 tmp_path / 'r')
    assert sorted(res['seeds']) == ['0', '1', '2']


def test_unwritable_results_folder(toy_config, tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('x')
    with pytest.raises(ValueError, match='is not writable.*--out'):
        _train(build_config(toy_config), blocker / 'run')


def test_denied_results_folder_names_the_reason(toy_config, tmp_path,
                                               monkeypatch):
    # What a read-only folder does to a non-root user, for any user (CI
    # runs as root, which the chmod test below cannot restrict).
    import errno

    from pyg_hyper.experiment import results as results_mod

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, 'Permission denied')

    monkeypatch.setattr(results_mod.tempfile, 'mkstemp', denied)
    with pytest.raises(ValueError, match=r"results folder '.*ro' is not "
                       r"writable \(Permission denied\); pass a writable "
                       r"folder with --out"):
        _train(build_config(toy_config), tmp_path / 'ro')


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, 'geteuid') else True,
                    reason='root ignores folder permissions')
def test_read_only_results_folder(toy_config, tmp_path):
    ro = tmp_path / 'ro'
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(ValueError, match='is not writable'):
            _train(build_config(toy_config), ro)
    finally:
        ro.chmod(0o700)


def test_cuda_request_without_cuda(toy_config, tmp_path):
    if torch.cuda.is_available():
        pytest.skip('CUDA is available here')
    with pytest.raises(ValueError, match='CUDA is not available'):
        _train(build_config(toy_config), tmp_path / 'run', device='cuda')
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        _train(build_config(toy_config), tmp_path / 'run', device='gpu0')


def test_evaluate_reproduces_recorded_scores(toy_config, tmp_path):
    res = _train(build_config(toy_config, ['seeds=2']), tmp_path / 'run')
    out = evaluate(str(tmp_path / 'run'), progress=False)
    for s, rec in res['seeds'].items():
        assert out['seeds'][s]['test'] == pytest.approx(rec['scores']['test'])
        assert out['seeds'][s]['val'] == pytest.approx(rec['scores']['val'])
    assert (tmp_path / 'run' / 'evaluation.json').exists()


def test_seed_list(toy_config):
    assert seed_list(build_config(toy_config, ['seed_start=3'])) == [3, 4, 5]


def test_val_and_loss_selection_is_gats_rule():
    state = runner_mod._SeedState()
    steps = [((0.5, 1.0), (True, True)),   # the first evaluation is kept
             ((0.6, 1.1), (True, False)),  # better val only: patience reset
             ((0.6, 0.9), (True, True)),   # val at least, loss at most: kept
             ((0.55, 0.95), (False, False)),
             ((0.55, 0.8), (True, False))]  # better loss only
    for (val, loss), expected in steps:
        got = runner_mod._select('val_and_loss',
                                 {'val': val, 'val_loss': loss}, state, True)
        assert got == expected, (val, loss)
    assert state.best_value == 0.6 and state.best_loss == 0.8
    plain = runner_mod._SeedState()
    assert [runner_mod._select('val', {'val': v}, plain, True)
            for v in (0.5, 0.5, 0.6)] == [(True, True), (False, False),
                                          (True, True)]


def test_lower_is_better_selection_keeps_the_first_best():
    # For errors (MAE, RMSE) a tie is no improvement either: the earlier
    # epoch stays selected and the patience is not reset.
    state = runner_mod._SeedState()
    assert [runner_mod._select('val', {'val': v}, state, False)
            for v in (0.5, 0.5, 0.4, 0.4, 0.45)] == [
        (True, True), (False, False), (True, True), (False, False),
        (False, False)]
    assert state.best_value == 0.4
    assert runner_mod._is_better(0.4, 0.4, False) is False
    assert runner_mod._is_better(0.3, 0.4, False) is True
    assert runner_mod._is_better(0.5, 0.4, False) is False


def test_registered_tasks_score_in_their_metrics_direction():
    # Model selection and the tables follow higher_is_better: accuracy and
    # ROC-AUC / AP up, MAE and RMSE down.
    expected = {'node_classification': ('accuracy', True),
                'tu': ('accuracy', True),
                'ogbg-rocauc': ('rocauc', True),
                'ogbg-ap': ('ap', True),
                'qm9': ('mae', False),
                'ogbg-rmse': ('rmse', False)}
    for name, (metric, higher) in expected.items():
        task = runner_mod.get_task(name)
        assert (task.metric, task.higher_is_better) == (metric, higher), name


def test_select_from_delays_selection(toy_config, tmp_path):
    cfg = build_config(toy_config, ['epochs=30', 'patience=3', 'seeds=1'])
    unrestricted = _train(cfg, tmp_path / 'all')['seeds']['0']
    assert unrestricted['best_epoch'] < 20  # the toy task peaks early
    cfg = build_config(toy_config, ['epochs=30', 'patience=3',
                                    'select_from=20', 'seeds=1'])
    rec = _train(cfg, tmp_path / 'run')['seeds']['0']
    # Nothing before epoch 20 is kept or counts towards the patience.
    assert rec['best_epoch'] >= 20
    assert rec['stopped_early'] and rec['epochs_run'] == rec['best_epoch'] + 3


@pytest.mark.parametrize('override,match', [
    ('optim.lr=-1', r"'optim.lr' must be positive \(got -1.0\)"),
    ('optim.lr=0', r"'optim.lr' must be positive \(got 0.0\)"),
    ('optim.weight_decay=-0.1', r"'optim.weight_decay' must be >= 0"),
    ('optim.lr=.inf', r"'optim.lr' must be a finite number \(got inf\)"),
    ('optim.weight_decay=.nan', r"'optim.weight_decay' must be a finite"),
])
def test_common_values_are_checked_when_built(toy_config, override, match):
    # A dry run catches them; the optimizer would reject them later
    # without naming the config key.
    from pyg_hyper.experiment import ConfigError
    with pytest.raises(ConfigError, match=match):
        build_config(toy_config, [override])


def test_dropout_keys_are_probabilities():
    from pyg_hyper.experiment import ConfigError
    cfg = build_config(task='node_classification')
    for key in ('model.dropout', 'model.message_dropout'):
        for bad in ('1.5', '1.0', '-0.1'):
            with pytest.raises(ConfigError, match=rf"'{key}' must be a "
                               rf"probability in \[0, 1\) \(got {bad}\)"):
                build_config(task='node_classification',
                             overrides=[f'{key}={bad}'])
    assert cfg['model']['dropout'] == 0.4


def test_bad_selection_settings(toy_config, tmp_path):
    from pyg_hyper.experiment import ConfigError
    with pytest.raises(ConfigError, match="'selection' must be one of val, "
                       "val_and_loss"):
        build_config(toy_config, ['selection=loss'])
    with pytest.raises(ConfigError, match=r"'select_from' \(40\) must be "
                       r"below 'epochs' \(40\)"):
        build_config(toy_config, ['epochs=40', 'select_from=40'])
    cfg = build_config(toy_config, ['selection=val_and_loss', 'seeds=1'])
    with pytest.raises(ValueError, match="needs a 'val_loss' score"):
        _train(cfg, tmp_path / 'run')


def test_flush_denormal_on_cpu_inside_the_run_only(toy_config, tmp_path,
                                                   monkeypatch):
    seen = []
    run_seed = runner_mod._run_seed

    def spy(*args, **kwargs):
        seen.append(runner_mod.subnormals_flushed())
        return run_seed(*args, **kwargs)

    monkeypatch.setattr(runner_mod, '_run_seed', spy)
    assert not runner_mod.subnormals_flushed()
    for flush in (True, False):
        cfg = build_config(toy_config, [f'flush_denormal={flush}',
                                        'seeds=1', 'epochs=2'])
        _train(cfg, tmp_path / str(flush))
        assert seen[-1] is flush
        # The process-wide setting is restored for the caller.
        assert not runner_mod.subnormals_flushed()
    from pyg_hyper.experiment import ConfigError
    with pytest.raises(ConfigError, match="'flush_denormal'.* true or false"):
        build_config(toy_config, ['flush_denormal=2'])


def test_checkpoint_without_a_recorded_config_resumes_with_a_warning(
        toy_config, tmp_path, monkeypatch):
    cfg = build_config(toy_config, ['seeds=1', 'epochs=10', 'patience=0',
                                    'checkpoint_every=2'])
    _interrupted_checkpoint(cfg, tmp_path / 'old', monkeypatch)
    ckpt_path = tmp_path / 'old' / 'checkpoints' / 'seed_0.pt'
    ckpt = torch.load(ckpt_path, weights_only=False)
    del ckpt['config']  # as written before checkpoints recorded it
    torch.save(ckpt, ckpt_path)
    with pytest.warns(UserWarning, match="predates checkpoints that record "
                      "their config; resuming it unchecked") as record:
        res = _train(cfg, tmp_path / 'old')
    assert sum('predates checkpoints' in str(w.message)
               for w in record) == 1
    assert res['seeds']['0']['epochs_run'] == 10


def test_a_second_run_on_a_folder_in_use_is_refused(toy_config, tmp_path):
    # Each run rewrites the whole record from its own copy: two at once
    # would drop each other's finished seeds.
    fcntl = pytest.importorskip('fcntl')
    out = tmp_path / 'run'
    out.mkdir()
    with open(out / runner_mod.LOCK_FILE, 'a') as other_run:
        fcntl.flock(other_run, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(ValueError, match=r"another run is writing "
                           r".*give this run another --out"):
            _train(build_config(toy_config, ['seeds=1']), out)
        assert not (out / 'results.json').exists()
    # Released (also after a run fails): the next run goes ahead.
    _train(build_config(toy_config, ['seeds=1']), out)
    _train(build_config(toy_config, ['seeds=2']), out)
    assert sorted(json.loads((out / 'results.json').read_text())['seeds']) \
        == ['0', '1']


def test_checkpoint_restores_onto_another_device(toy_config, tmp_path,
                                                 monkeypatch):
    # Read onto the CPU whatever the device: the RNG state must stay a CPU
    # byte tensor ('meta' stands in for a GPU, where mapping it failed).
    cfg = build_config(toy_config, ['seeds=1', 'epochs=10', 'patience=0',
                                    'checkpoint_every=2'])
    _interrupted_checkpoint(cfg, tmp_path / 'run', monkeypatch)
    path = tmp_path / 'run' / 'checkpoints' / 'seed_0.pt'
    saved = torch.load(path, weights_only=False)
    task = runner_mod.get_task('toy')
    data = task.load_data(cfg, torch.device('cpu'))
    model = task.build_model(cfg, data).to('meta')
    optimizer = task.build_optimizer(cfg, model)
    torch.manual_seed(123)
    state = runner_mod._restore_checkpoint(str(path), model, optimizer,
                                           torch.device('meta'))
    assert state.epoch == 6
    assert torch.equal(torch.get_rng_state(), saved['rng_cpu'])
    assert saved['rng_cuda'] is None  # written on the CPU


def test_checkpoints_of_recorded_seeds_are_removed(toy_config, tmp_path):
    # A kill between recording a seed and deleting its checkpoint.
    cfg = build_config(toy_config, ['seeds=1', 'checkpoint_every=2'])
    _train(cfg, tmp_path / 'run')
    left = tmp_path / 'run' / 'checkpoints' / 'seed_0.pt'
    left.parent.mkdir(exist_ok=True)
    left.write_bytes(b'stale')
    _train(cfg, tmp_path / 'run')
    assert not left.exists()


def test_fresh_run_on_another_rank_does_not_judge_old_checkpoints(
        toy_config, tmp_path, monkeypatch):
    # Under torchrun only rank 0 discards the old run; another rank may
    # reach the checkpoint check first and must not refuse --fresh.
    _, other = _checkpoint_then_other_lr(toy_config, tmp_path, monkeypatch,
                                         '0.5')
    with pytest.raises(ValueError, match='different config'):
        _train(other, tmp_path / 'run')
    monkeypatch.setenv('RANK', '1')
    monkeypatch.setattr(runner_mod, '_run_seed', lambda *args: {
        'seed': 0, 'scores': {'val': 1.0, 'test': 1.0}, 'num_params': 1,
        'epoch_time_s': 0.0, 'best_epoch': 1, 'history': {}})
    _train(other, tmp_path / 'run', fresh=True)


def test_non_finite_validation_score_is_an_error(toy_config, tmp_path,
                                                  monkeypatch):
    # A NaN kept as the best is never replaced (it compares false).
    task_cls = type(runner_mod.get_task('toy'))
    real = task_cls.evaluate
    monkeypatch.setattr(task_cls, 'evaluate', lambda self, *a: {
        **real(self, *a), 'val': float('nan')})
    with pytest.raises(ValueError, match=r"validation score 'val' is nan "
                       r"at epoch 1 of seed 0"):
        _train(build_config(toy_config, ['seeds=1']), tmp_path / 'run')


@pytest.mark.parametrize('override,message', [
    # A negative size would slice from the end (split[:-5]) in silence.
    ('data.num_nodes=-5', "'data.num_nodes' must be an integer >= 0"),
    ('model.hidden_channels=0',
     "'model.hidden_channels' must be an integer >= 1"),
])
def test_build_config_refuses_out_of_range_integers(toy_config, override,
                                                    message):
    with pytest.raises(runner_mod.ConfigError, match=message):
        build_config(toy_config, [override])


@pytest.mark.parametrize('override,message', [
    # A negative inner validation fraction used to select on the test fold.
    ('protocol.inner_val=-0.1', "'protocol.inner_val' must be a fraction"),
    ('protocol.inner_val=1.0', "'protocol.inner_val' must be a fraction"),
    ('train.batch_size=-1', "'train.batch_size' must be an integer >= 1"),
    ('data.fold_seed=-3', "'data.fold_seed' must be an integer >= 0"),
    ('optim.gamma=0', "'optim.gamma' must be positive"),
    ('optim.min_lr=-1e-4', "'optim.min_lr' must be >= 0"),
])
def test_build_config_refuses_out_of_range_task_values(override, message):
    with pytest.raises(runner_mod.ConfigError, match=message):
        build_config(None, [override], task='tu')


def test_build_config_wants_a_list_of_overrides(toy_config):
    # A lone string used to be read character by character ("override 's'
    # must have the form key=value").
    with pytest.raises(TypeError, match='wrap it in a list'):
        build_config(toy_config, 'seeds=1')


def test_train_checks_a_config_built_in_code(toy_config, tmp_path):
    # train() is public: a config edited in code gets the checks a built one
    # gets, before anything is written.
    cfg = build_config(toy_config, ['seeds=1'])
    cfg['epochs'] = -1
    with pytest.raises(runner_mod.ConfigError, match="'epochs' must be"):
        _train(cfg, tmp_path / 'a')
    assert not (tmp_path / 'a' / 'results.json').exists()
    cfg = build_config(toy_config, ['seeds=1'])
    cfg['model']['hiden_channels'] = 4
    with pytest.raises(runner_mod.ConfigError,
                       match="did you mean 'model.hidden_channels'"):
        _train(cfg, tmp_path / 'b')
    cfg = build_config(toy_config, ['seeds=1'])
    cfg['seeds'] = '2'
    with pytest.raises(runner_mod.ConfigError, match="'seeds'"):
        _train(cfg, tmp_path / 'c')
    # A missing section takes its defaults, as build_config fills them.
    cfg = build_config(toy_config, ['seeds=1', 'epochs=3'])
    del cfg['optim']
    assert _train(cfg, tmp_path / 'd')['config']['optim']['lr'] == 0.05


@pytest.mark.parametrize('content', [b'', b'PK\x03\x04 truncated zip'])
def test_damaged_checkpoint_is_named_with_the_fix(toy_config, tmp_path,
                                                  content):
    # A checkpoint cut short by a full disk used to end the run with
    # PytorchStreamReader's traceback (or, when empty, a note about mmap).
    run = tmp_path / 'run'
    (run / 'checkpoints').mkdir(parents=True)
    (run / 'checkpoints' / 'seed_0.pt').write_bytes(content)
    cfg = build_config(toy_config, ['seeds=1', 'checkpoint_every=1'])
    with pytest.raises(ValueError, match=r"cannot read the mid-seed "
                       r"checkpoint '.*seed_0\.pt'.*--fresh"):
        _train(cfg, run)


def test_evaluate_names_a_saved_model_that_does_not_fit(toy_config,
                                                        tmp_path):
    _train(build_config(toy_config, ['seeds=1', 'epochs=3']), tmp_path / 'r')
    model_file = tmp_path / 'r' / 'models' / 'seed_0.pt'
    torch.save({'lin.weight': torch.zeros(3, 3)}, model_file)
    with pytest.raises(ValueError, match=r"saved model '.*seed_0\.pt' does "
                       r"not fit this run's model"):
        evaluate(str(tmp_path / 'r'), progress=False)
    model_file.write_bytes(b'\x80\x04junk')
    with pytest.raises(ValueError, match=r"cannot read the saved model"):
        evaluate(str(tmp_path / 'r'), progress=False)


def test_seeds_must_fit_torch_seed_range(toy_config):
    # seed_start=2**32 failed only after the data had loaded, in
    # torch.manual_seed, without naming the config key.
    with pytest.raises(runner_mod.ConfigError, match="'seed_start' \\+ "
                       "'seeds'"):
        build_config(toy_config, [f'seed_start={2**32 - 2}', 'seeds=3'])
    assert build_config(toy_config, [f'seed_start={2**32 - 3}',
                                     'seeds=3'])['seeds'] == 3


def test_failed_run_leaves_no_folder_behind(toy_config, tmp_path,
                                            monkeypatch):
    # A run that fails before writing anything (a missing dataset) left a
    # folder holding only its lock, a phantom run for 'aggregate' and ls.
    from tests.experiment.toy_task import ToyTask

    def missing(self, cfg, device):
        raise FileNotFoundError('no raw files')

    monkeypatch.setattr(ToyTask, 'load_data', missing)
    cfg = build_config(toy_config, ['seeds=1'])
    with pytest.raises(FileNotFoundError):
        _train(cfg, tmp_path / 'new')
    assert not (tmp_path / 'new').exists()
    (tmp_path / 'kept').mkdir()
    with pytest.raises(FileNotFoundError):
        _train(cfg, tmp_path / 'kept')
    assert (tmp_path / 'kept').is_dir()  # the user's folder stays
    with pytest.raises(ValueError, match='empty path'):
        _train(cfg, '')


def test_evaluate_checks_the_folder_before_recomputing(toy_config, tmp_path,
                                                       monkeypatch):
    # A read-only run folder was reported only after every score had been
    # recomputed, with a fix ('--out') that evaluate does not have.
    from tests.experiment.toy_task import ToyTask
    _train(build_config(toy_config, ['seeds=1', 'epochs=3']), tmp_path / 'r')
    loads = []
    monkeypatch.setattr(ToyTask, 'load_data',
                        lambda self, cfg, dev: loads.append(1))

    def read_only(folder, fix):
        raise ValueError(f"'{folder}' is not writable; {fix}")

    monkeypatch.setattr(runner_mod, 'check_writable', read_only)
    with pytest.raises(ValueError, match='evaluate writes evaluation.json '
                       'into the run folder'):
        evaluate(str(tmp_path / 'r'), progress=False)
    assert not loads


@pytest.mark.parametrize('task,override,message', [
    # Each used to pass --dry-run and fail only once the data had loaded.
    ('node_classification', 'data.split=foo',
     "unknown data.split 'foo'; valid splits: public, lgnn, lgnn-val100"),
    ('node_classification', 'data.name=Coraa', "unknown dataset 'Coraa'"),
    ('qm9', 'optim.loss=huber', "unknown optim.loss 'huber'"),
    ('qm9', 'data.target=19', 'data.target must be a PyG QM9 column 0-18'),
    ('ogbg-rocauc', 'data.name=ogbg-molfoo', 'ogbg-molfoo'),
])
def test_task_values_are_checked_when_the_config_is_built(task, override,
                                                          message):
    with pytest.raises(ValueError, match=message):
        build_config(None, [override], task=task)
