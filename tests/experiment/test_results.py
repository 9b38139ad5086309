import json
import os
import stat
import threading

import pytest

from pyg_hyper.experiment import results
from pyg_hyper.experiment.results import atomic_write_json, format_mean_std


@pytest.mark.parametrize('stats,scale,expected', [
    # ROC-AUC over seeds: two significant digits of the std.
    ({'mean': 0.65374, 'std': 0.01423, 'n': 10}, 1.0, '0.654 ± 0.014'),
    # Accuracy in percent.
    ({'mean': 0.7854, 'std': 0.0187, 'n': 10}, 100.0, '78.5 ± 1.9'),
    # meV-sized errors never get fewer than one decimal.
    ({'mean': 343.07, 'std': 26.41, 'n': 3}, 1.0, '343.1 ± 26.4'),
    # One seed has no spread: four significant digits, no '± 0'.
    ({'mean': 0.633, 'std': 0.0, 'n': 1}, 1.0, '0.6330 (1 seed)'),
    ({'mean': 216.04, 'std': 0.0, 'n': 1}, 1.0, '216.0 (1 seed)'),
])
def test_automatic_digits(stats, scale, expected):
    assert format_mean_std(stats, scale, digits=None) == expected


def test_fixed_digits_and_empty():
    stats = {'mean': 0.65374, 'std': 0.01423, 'n': 10}
    assert format_mean_std(stats, digits=4) == '0.6537 ± 0.0142'
    assert format_mean_std({'n': 0}) == '–'
    assert format_mean_std({'mean': 0.6448, 'std': 0.0, 'n': 1},
                           digits=4) == '0.6448 (1 seed)'


@pytest.mark.skipif(not hasattr(os, 'fchmod'), reason='POSIX permissions')
def test_atomic_writes_get_the_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = tmp_path / 'results.json'
        atomic_write_json(str(path), {'a': 1})
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        os.umask(0o077)
        atomic_write_json(str(path), {'a': 2})
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        os.umask(old)
    assert json.loads(path.read_text()) == {'a': 2}


def test_atomic_write_replaces_whole_files_only(tmp_path, monkeypatch):
    path = tmp_path / 'sub' / 'r.json'
    atomic_write_json(str(path), {'a': 1})
    atomic_write_json(str(path), {'a': 2})
    assert json.loads(path.read_text()) == {'a': 2}
    assert [p.name for p in path.parent.iterdir()] == ['r.json']

    # Interrupted before the rename: the old file stays whole and the
    # temporary file is removed.
    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(results.os, 'replace', interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_json(str(path), {'a': 3})
    assert json.loads(path.read_text()) == {'a': 2}
    assert [p.name for p in path.parent.iterdir()] == ['r.json']


@pytest.mark.skipif(os.name == 'nt', reason='Windows refuses to replace a '
                    'file that the reader holds open')
def test_concurrent_atomic_writes_never_leave_a_partial_file(tmp_path):
    # Two writers of one file (e.g. two runs sharing an --out folder), and a
    # reader: each write goes through a temporary file of its own, so no
    # writer fails, the reader only ever sees one writer's whole record, and
    # no temporary file is left behind. A shared temporary name would let
    # one writer truncate or rename away the other's file mid-write.
    path = tmp_path / 'results.json'
    rounds = 40

    def record(writer, i):
        # About 100 kB, so that writes overlap.
        return {'writer': writer, 'round': i, 'payload': [writer] * 25000}

    atomic_write_json(str(path), record(0, -1))
    errors, seen = [], []
    done = threading.Event()

    def write(writer):
        try:
            for i in range(rounds):
                atomic_write_json(str(path), record(writer, i))
        except BaseException as exc:  # reported below, not lost in a thread
            errors.append(exc)

    def read():
        try:
            while not done.is_set():
                data = json.loads(path.read_text())
                assert data == record(data['writer'], data['round'])
                seen.append(data['writer'])
        except BaseException as exc:
            errors.append(exc)

    writers = [threading.Thread(target=write, args=(w, )) for w in (1, 2)]
    reader = threading.Thread(target=read)
    reader.start()
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    done.set()
    reader.join()
    assert errors == []
    data = json.loads(path.read_text())
    assert data == record(data['writer'], rounds - 1)
    assert seen  # the reader did read while the writers wrote
    assert [p.name for p in tmp_path.iterdir()] == ['results.json']


def test_report_precision_follows_the_metric():
    from pyg_hyper.experiment.results import (
        environment_record,
        markdown_report,
        summarize,
    )
    seeds = {str(i): {'seed': i, 'best_epoch': 3, 'epochs_run': 5,
                      'scores': {'val': v, 'test': t}, 'num_params': 7,
                      'epoch_time_s': 0.5}
             for i, (v, t) in enumerate([(0.70312, 0.68951),
                                         (0.71234, 0.73102)])}
    for metric, mean_std, seed_row in (
            ('rocauc', '| test | 0.710 ± 0.029 |', '| 0.7031 | 0.6895 |'),
            ('acc', '| test | 71.0 ± 2.9 |', '| 70.31 | 68.95 |')):
        report = markdown_report({
            'name': 'run', 'task': 't', 'metric': metric,
            'higher_is_better': True, 'environment': environment_record(),
            'summary': summarize(seeds), 'seeds': seeds, 'num_params': 7})
        assert mean_std in report and seed_row in report


def test_environment_names_the_packages_that_change_numbers():
    from pyg_hyper.experiment.results import environment_record
    ogb = pytest.importorskip('ogb')
    env = environment_record()
    assert env['ogb'] == ogb.__version__
    assert 'torch' in env and 'git_commit' in env


def test_sessions_table_says_which_seeds_ran_where():
    from pyg_hyper.experiment.results import _sessions_table
    assert _sessions_table([{'command': 'pyg-hyper train c.yaml',
                             'seeds_run': [0]}]) == []  # one session
    legacy = {'command': 'pyg-hyper train c.yaml --device cuda --out o',
              'time': 't0', 'seeds_run': [0, 1]}
    recent = {'command': 'pyg-hyper train c.yaml', 'time': 't1',
              'seeds_run': [2], 'device': 'cuda:0', 'gpu': 'H200',
              'torch': '2.11', 'pyg_hyper': '0.1.0', 'git_commit': 'abc1234x'}
    rows = _sessions_table([legacy, {'seeds_run': []}, recent])
    assert rows[3] == '| t0 | 0, 1 | cuda (from the command) | – | – |'
    assert rows[4] == '| t1 | 2 | cuda:0 (H200) | 2.11 | 0.1.0 (abc1234) |'
    # A record from before sessions kept their environment: the top-level
    # one is its latest session's, in the report as on resume.
    record = {'sessions': [legacy, dict(legacy, time='t2', seeds_run=[3])],
              'environment': {**recent, 'command': 'x', 'time': 'x',
                              'seeds_run': None}}
    history = results.session_history(record)
    assert history[0] == legacy and record['sessions'][1]['time'] == 't2'
    assert history[1]['torch'] == '2.11' and history[1]['time'] == 't2'
    assert _sessions_table(history)[4] == \
        '| t2 | 3 | cuda:0 (H200) | 2.11 | 0.1.0 (abc1234) |'
    assert 'git_commit' not in record['sessions'][1]  # not modified


def test_json_records_keep_curves_on_one_line_and_load_back_the_same():
    from pyg_hyper.experiment.results import dumps_json
    record = {'seeds': {'0': {'history': {'val': [0.5, 0.25, float('inf')],
                                          'epoch': [1, 2, 3]},
                              'scores': {'test': 0.8199999928474426}}},
              'sessions': [{'seeds_run': [0, 1]}, {'seeds_run': []}],
              'empty': {}, 'none': None, 1: (2, 'x')}
    text = dumps_json(record)
    assert '"val": [0.5, 0.25, Infinity]' in text
    assert '"epoch": [1, 2, 3]' in text
    assert '"seeds_run": [0, 1]' in text
    assert '[\n  {\n   "seeds_run": [0, 1]\n  },' in text  # dicts in lists
    # The same object as json.dumps writes (keys converted as it does).
    assert json.loads(text) == json.loads(json.dumps(record))
    assert dumps_json({'a': 1}) == json.dumps({'a': 1}, indent=1)
    with pytest.raises(TypeError):
        dumps_json({'a': object()})


def _seed_record(seed, scores, best_epoch=3, epochs_run=10):
    return {'seed': seed, 'scores': scores, 'best_epoch': best_epoch,
            'epochs_run': epochs_run, 'epoch_time_s': 0.1, 'num_params': 7}


def test_summary_covers_every_score_and_the_best_epoch():
    # Guards against taking the summary's score keys from the first seed
    # only, and averaging epochs_run in place of best_epoch.
    summary = results.summarize({
        '0': _seed_record(0, {'val': 1.0, 'test': 1.0}),
        '1': _seed_record(1, {'val': 1.0, 'test': 1.0, 'train': 0.5},
                          best_epoch=5)})
    assert summary['train'] == {'mean': 0.5, 'std': 0.0, 'n': 1}
    assert summary['best_epoch']['mean'] == 4.0  # not epochs_run (10)


def test_record_of_another_schema_is_refused(tmp_path):
    # Guards against loading a results.json of another schema version as
    # if it were this one.
    (tmp_path / 'results.json').write_text(json.dumps(
        {'schema': results.SCHEMA_VERSION + 1, 'name': 'r', 'metric': 'acc',
         'config': {}, 'seeds': {}, 'summary': {}}))
    with pytest.raises(ValueError, match='has schema '
                       f'{results.SCHEMA_VERSION + 1}'):
        results.load_results(str(tmp_path))


def test_report_lists_seeds_in_numeric_order():
    # Guards against sorting seed keys as strings ('10' before '2') in
    # results.md.
    seeds = {str(s): _seed_record(s, {'val': 0.5, 'test': 0.5})
             for s in (10, 2)}
    report = results.markdown_report({
        'name': 'r', 'task': 't', 'metric': 'rocauc',
        'higher_is_better': True,
        'environment': results.environment_record(),
        'summary': results.summarize(seeds), 'seeds': seeds,
        'num_params': 7})
    rows = [line for line in report.splitlines()
            if line.startswith('| 2 |') or line.startswith('| 10 |')]
    assert [r.split('|')[1].strip() for r in rows] == ['2', '10']
    assert '- seeds: 2, 10 (2 finished)' in report
