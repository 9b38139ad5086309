import json
import re

import pytest

from pyg_hyper.cli import build_parser, main

# Importing registers the 'toy' task used below.
from tests.experiment.toy_task import ToyTask  # noqa: F401


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit):
        main(['--help'])
    out = capsys.readouterr().out
    for cmd in ('train', 'evaluate', 'aggregate', 'tasks'):
        assert cmd in out
    assert build_parser().prog == 'pyg-hyper'


def test_train_two_configs_then_aggregate(tmp_path, capsys):
    for h in (4, 8):
        (tmp_path / f'h{h}.yaml').write_text(
            f'task: toy\nepochs: 15\nseeds: 2\nmodel: {{hidden_channels: {h}}}\n')
    out = tmp_path / 'res'
    rc = main(['train', str(tmp_path / 'h4.yaml'), str(tmp_path / 'h8.yaml'),
               'optim.lr=0.1', '--out', str(out), '--no-progress'])
    assert rc == 0
    stdout = capsys.readouterr().out
    assert 'toy-h4: test' in stdout and 'toy-h8: test' in stdout
    board = (out / 'leaderboard.md').read_text()
    assert board.count('| toy-h') == 2
    # The validation score beside the test score, as OGB's rules ask.
    assert board.splitlines()[0] == ('| name | test | val | #params | '
                                     'epoch (ms) | seeds |')
    assert all(row.count('±') == 2 for row in board.splitlines()[2:])
    assert (out / 'leaderboard.png').stat().st_size > 1000
    rec = json.loads((out / 'toy-h4' / 'results.json').read_text())
    assert rec['config']['optim']['lr'] == 0.1
    assert rec['environment']['command'].startswith('pyg-hyper train')

    rc = main(['aggregate', str(out), '--rows', 'model.hidden_channels',
               '--cols', 'task', '--output', str(tmp_path / 't.md'),
               '--plot', str(tmp_path / 't.png')])
    assert rc == 0
    assert (tmp_path / 't.png').stat().st_size > 1000
    table = (tmp_path / 't.md').read_text()
    assert table.splitlines()[0] == '| model.hidden_channels | toy |'
    assert '| 4 |' in table and '| 8 |' in table

    assert main(['evaluate', str(out / 'toy-h8'), '--no-progress']) == 0
    assert 'recorded' in capsys.readouterr().out


def test_bad_input_exits_2_with_message(tmp_path, capsys):
    cfg = tmp_path / 'c.yaml'
    cfg.write_text('task: toy\nepochs: 2\nseeds: 1\n')
    assert main(['train', str(cfg), 'optim.lrate=1', '--out',
                 str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "pyg-hyper: error: unknown config key 'optim.lrate'" in err
    assert "did you mean 'optim.lr'" in err
    assert 'Traceback' not in err
    for bad in ('../escape', 'a/b', '..'):
        assert main(['train', str(cfg), f'name={bad}', '--out',
                     str(tmp_path)]) == 2
        assert f"run name '{bad}' cannot be a folder name" in \
            capsys.readouterr().err
    assert main(['train', str(cfg), 'data.name', 'CiteSeer']) == 2
    assert "'data.name' is neither a config file nor a KEY=VALUE override" \
        in capsys.readouterr().err
    assert main(['train', 'seeds=1']) == 2
    assert 'at least one YAML config' in capsys.readouterr().err
    assert main(['aggregate', str(tmp_path / 'none')]) == 2
    assert 'neither a results file nor a folder' in capsys.readouterr().err
    assert main(['train', str(cfg), '--out', str(tmp_path / 'r'),
                 '--no-progress']) == 0
    capsys.readouterr()
    assert main(['aggregate', str(tmp_path / 'r'), '--plot',
                 str(tmp_path / 'p.png'), '--panels', 'modle.name']) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'modle.name'" in err and 'Traceback' not in err
    blocker = tmp_path / 'a_file'
    blocker.write_text('x')
    for flag in ('--plot', '--output'):
        assert main(['aggregate', str(tmp_path / 'r'), flag,
                     str(blocker / 'board.png')]) == 2
        err = capsys.readouterr().err
        assert 'is not writable' in err and f'another path with {flag}' \
            in err and 'Traceback' not in err
    with pytest.raises(SystemExit):
        main(['aggregate', str(tmp_path / 'r'), '--digits', '-1'])
    assert 'expected 0 to 12 decimals (got -1)' in capsys.readouterr().err


def test_loader_os_errors_are_bad_input(tmp_path, capsys, monkeypatch):
    # The loaders raise FileNotFoundError listing missing raw files, and a
    # root that cannot be written raises PermissionError: their messages
    # reached the user as tracebacks.
    def missing(self, cfg, device):
        raise FileNotFoundError("no raw files for 'FOO' in '/data'; put "
                                "FOO_A.txt there")

    monkeypatch.setattr(ToyTask, 'load_data', missing)
    cfg = tmp_path / 'c.yaml'
    cfg.write_text('task: toy\nepochs: 2\nseeds: 1\n')
    assert main(['train', str(cfg), '--out', str(tmp_path / 'r'),
                 '--no-progress']) == 2
    err = capsys.readouterr().err
    assert "pyg-hyper: error: no raw files for 'FOO'" in err
    assert 'Traceback' not in err


def test_empty_out_is_refused(tmp_path, capsys, monkeypatch):
    # '--out ""' wrote the run into the current directory.
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / 'c.yaml'
    cfg.write_text('task: toy\nepochs: 2\nseeds: 1\n')
    assert main(['train', str(cfg), '--out', '', '--no-progress']) == 2
    assert '--out is empty' in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ['c.yaml']


def test_dry_run_prints_resolved_config(tmp_path, capsys):
    cfg = tmp_path / 'c.yaml'
    cfg.write_text('task: toy\n')
    assert main(['train', str(cfg), 'epochs=7', '--dry-run']) == 0
    out = capsys.readouterr().out
    assert 'epochs: 7' in out and 'patience: 200' in out
    # Overrides after an option count too (argparse alone refused them).
    assert main(['train', str(cfg), '--dry-run', 'epochs=9', 'seeds=2']) == 0
    out = capsys.readouterr().out
    assert 'epochs: 9' in out and 'seeds: 2' in out
    with pytest.raises(SystemExit):
        main(['train', str(cfg), '--dry-run', '--bogus'])
    assert 'unrecognized arguments: --bogus' in capsys.readouterr().err
    assert not (tmp_path / 'results').exists()


def test_dry_run_checks_the_record_it_would_resume(tmp_path, capsys):
    # A command whose config no longer matches its recorded run fails at
    # once (the README commands are checked this way), as train would.
    cfg = tmp_path / 'c.yaml'
    cfg.write_text('task: toy\nname: run\nepochs: 3\nseeds: 2\n')
    out = tmp_path / 'res'
    assert main(['train', str(cfg), '--out', str(out), '--no-progress']) == 0
    capsys.readouterr()
    assert main(['train', str(cfg), '--out', str(out), '--dry-run']) == 0
    assert f"# resumes 2 recorded seeds in {out / 'run'}" in \
        capsys.readouterr().out
    assert main(['train', str(cfg), 'optim.lr=0.5', '--out', str(out),
                 '--dry-run']) == 2
    assert ('holds results of a different config (differs in: optim.lr)'
            in capsys.readouterr().err)
    assert main(['train', str(cfg), 'seeds=1', '--out', str(out),
                 '--dry-run']) == 2
    assert 'holds seeds [1] outside' in capsys.readouterr().err
    # --fresh would discard the record: nothing to check.
    assert main(['train', str(cfg), 'optim.lr=0.5', '--out', str(out),
                 '--dry-run', '--fresh']) == 0
    rec = json.loads((out / 'run' / 'results.json').read_text())
    assert sorted(rec['seeds']) == ['0', '1']  # a dry run writes nothing


def test_tasks_lists_registered(capsys):
    assert main(['tasks']) == 0
    assert 'toy' in capsys.readouterr().out.split()


def test_loss_splits_are_shown_unscaled(tmp_path, capsys):
    # An accuracy run shows its scores in percent, but a loss as it is (as
    # results.md does): 1.94, not 194.
    (tmp_path / 'c.yaml').write_text('task: toy\nepochs: 3\nseeds: 2\n')
    out = tmp_path / 'res'
    assert main(['train', str(tmp_path / 'c.yaml'), '--out', str(out),
                 '--no-progress']) == 0
    path = out / 'toy-h8' / 'results.json'
    rec = json.loads(path.read_text())
    for seed, loss in zip(rec['seeds'].values(), (1.9, 2.0)):
        seed['scores']['val_loss'] = loss
    rec['summary']['val_loss'] = {'mean': 1.95, 'std': 0.0707, 'n': 2}
    path.write_text(json.dumps(rec))
    capsys.readouterr()
    assert main(['aggregate', str(out), '--split', 'val_loss',
                 '--output', str(tmp_path / 'l.md'),
                 '--plot', str(tmp_path / 'l.png')]) == 0
    row = (tmp_path / 'l.md').read_text().splitlines()[2]
    assert '1.950 ± 0.071' in row and '195' not in row
    capsys.readouterr()
    assert main(['aggregate', str(out)]) == 0
    test_cell = capsys.readouterr().out.splitlines()[2].split('|')[2]
    mean = float(test_cell.split('±')[0])
    assert mean == pytest.approx(rec['summary']['test']['mean'] * 100,
                                 abs=0.05)


def test_aggregate_tells_same_named_runs_apart(tmp_path, capsys):
    # The same config run into two folders: each row names its folder
    # instead of two identical '| toy-h8 |' rows.
    (tmp_path / 'c.yaml').write_text('task: toy\nepochs: 3\nseeds: 2\n')
    for out in ('first', 'second', 'a/run', 'b/run'):
        assert main(['train', str(tmp_path / 'c.yaml'), '--out',
                     str(tmp_path / out), '--no-progress']) == 0
    for folders, expected in (
            (['first', 'second'], ['toy-h8 (first)', 'toy-h8 (second)']),
            (['a/run', 'b/run'], ['toy-h8 (a/run)', 'toy-h8 (b/run)'])):
        capsys.readouterr()
        assert main(['aggregate'] + [str(tmp_path / f)
                                     for f in folders]) == 0
        rows = [line.split('|')[1].strip()
                for line in capsys.readouterr().out.splitlines()[2:]]
        assert rows == expected


def _toy_run(tmp_path, out='run'):
    (tmp_path / 'c.yaml').write_text('task: toy\nepochs: 2\nseeds: 1\n')
    assert main(['train', str(tmp_path / 'c.yaml'), '--out',
                 str(tmp_path / out), '--no-progress']) == 0
    return tmp_path / out


def _error(argv, capsys):
    capsys.readouterr()
    assert main(argv) == 2
    return capsys.readouterr().err


def test_aggregate_refuses_what_it_would_silently_get_wrong(tmp_path,
                                                             capsys):
    run = _toy_run(tmp_path)
    (tmp_path / 'empty').mkdir()
    # A folder without runs beside one with runs was left out unsaid.
    assert "no results.json found under" in _error(
        ['aggregate', str(run), str(tmp_path / 'empty')], capsys)
    # Non-scores as a split printed epochs x 100 as a percentage.
    assert "'best_epoch' is not a score" in _error(
        ['aggregate', str(run), '--split', 'best_epoch'], capsys)
    # Output paths that are folders ended in IsADirectoryError.
    for flag in ('--output', '--plot'):
        assert f"{flag} '{tmp_path / 'empty'}' is a folder" in _error(
            ['aggregate', str(run), flag, str(tmp_path / 'empty')], capsys)
    assert '--panels arranges the plot: it needs --plot' in _error(
        ['aggregate', str(run), '--panels', 'data.name'], capsys)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:  # argparse's usage error
        main(['aggregate', str(run), '--digits', 'abc'])
    assert exit_info.value.code == 2
    assert "expected a whole number of decimals, 0 to 12 (got 'abc')" in \
        capsys.readouterr().err
    # The same run spelt twice is one row.
    capsys.readouterr()
    assert main(['aggregate', str(run), str(run) + '/./']) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_aggregate_digits_sets_the_decimals(tmp_path, capsys):
    # --digits reaches the table: every score cell shows 4 decimals (the
    # default shows two significant digits of the std instead).
    (tmp_path / 'c.yaml').write_text('task: toy\nepochs: 2\nseeds: 2\n')
    assert main(['train', str(tmp_path / 'c.yaml'), '--out',
                 str(tmp_path / 'run'), '--no-progress']) == 0
    capsys.readouterr()
    assert main(['aggregate', str(tmp_path / 'run'), '--digits', '4']) == 0
    header, _, row = capsys.readouterr().out.splitlines()
    cells = dict(zip(header.split('|'), row.split('|')))
    for split in (' test ', ' val '):
        assert re.fullmatch(r' \d+\.\d{4} ± \d+\.\d{4} ', cells[split]), \
            cells[split]


def test_aggregate_names_metrics_or_refuses_to_mix_them(tmp_path, capsys):
    run = _toy_run(tmp_path)
    other = tmp_path / 'other'
    other.mkdir()
    record = json.loads((run / 'toy-h8' / 'results.json').read_text())
    record.update(name='toy-mae', metric='mae', higher_is_better=False)
    record['config'] = dict(record['config'], name='toy-mae')
    (other / 'toy-mae').mkdir()
    (other / 'toy-mae' / 'results.json').write_text(json.dumps(record))
    capsys.readouterr()
    assert main(['aggregate', str(run), str(other)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith('| name | metric | test |')
    assert {line.split('|')[2].strip() for line in table[2:]} == {
        'accuracy', 'mae'}
    assert "the runs mix metrics ['accuracy', 'mae']" in _error(
        ['aggregate', str(run), str(other), '--cols', 'name'], capsys)


@pytest.mark.parametrize('content,match', [
    ('[]', 'holds a list, not a run record'),
    ('{"schema": SCHEMA}', "'name' should be a str"),
    (b'\x89PNG', 'is not valid JSON'),
])
def test_damaged_records_are_named(tmp_path, capsys, content, match):
    from pyg_hyper.experiment.results import SCHEMA_VERSION
    run = tmp_path / 'r'
    run.mkdir()
    path = run / 'results.json'
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content.replace('SCHEMA', str(SCHEMA_VERSION)))
    err = _error(['aggregate', str(run)], capsys)
    assert str(path) in err and match in err


def test_evaluate_accepts_the_results_file_of_a_run(tmp_path, capsys):
    (tmp_path / 'c.yaml').write_text('task: toy\nepochs: 2\nseeds: 1\n'
                                     'save_models: true\n')
    assert main(['train', str(tmp_path / 'c.yaml'), '--out',
                 str(tmp_path / 'out'), '--no-progress']) == 0
    capsys.readouterr()
    path = tmp_path / 'out' / 'toy-h8' / 'results.json'
    assert main(['evaluate', str(path), '--no-progress']) == 0
    assert 'recorded' in capsys.readouterr().out


@pytest.mark.parametrize('flag, expected', [([], 1), (['--system-malloc'], 0)])
def test_train_reuses_freed_memory_unless_told_not_to(tmp_path, monkeypatch,
                                                      capsys, flag, expected):
    from pyg_hyper.utils import malloc
    calls = []
    monkeypatch.setattr(malloc, 'reuse_freed_memory',
                        lambda: calls.append(1))
    cfg = tmp_path / 'c.yaml'
    cfg.write_text('task: toy\n')
    assert main(['train', str(cfg), '--dry-run'] + flag) == 0
    assert len(calls) == expected
    assert main(['aggregate', str(tmp_path / 'none')]) == 2  # not here
    assert len(calls) == expected
