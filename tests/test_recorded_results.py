"""Every recorded run's tables must say what its record says.

``results.md`` beside each tracked ``results.json`` is what readers open;
after a record is edited, converted or resumed, a stale table would quote
numbers that no record holds. Each must equal the report rebuilt from its
record (as ``train`` writes it), and each record's summary must be the one
of its own per-seed scores. The same holds one level up: each leaderboard
``pyg-hyper aggregate`` wrote, and each README table marked with the
aggregate command that prints it, must be what that command prints now.
"""
import math
import re
import subprocess
from pathlib import Path

import pytest

from pyg_hyper.experiment.results import (
    load_results,
    markdown_report,
    summarize,
)

ROOT = Path(__file__).resolve().parents[1]


def tracked_records():
    try:
        out = subprocess.run(['git', 'ls-files', '*results.json'], cwd=ROOT,
                             capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip('needs a git checkout')
    paths = [ROOT / p for p in out.stdout.split()]
    return [p for p in paths if p.is_file()]


def test_there_are_records():
    # The leaderboards of the four benchmarks and the vision experiments.
    assert len(tracked_records()) >= 100


def test_every_results_md_is_its_records_report():
    stale = []
    for path in tracked_records():
        report = path.with_name('results.md')
        if not report.is_file() or report.read_text() != markdown_report(
                load_results(str(path))):
            stale.append(str(path.parent.relative_to(ROOT)))
    assert not stale, (f'{len(stale)} results.md differ from their '
                       f'results.json (rebuild with markdown_report): '
                       f'{stale[:5]}')


def same(a: float, b: float) -> bool:
    # Sums in another order (another machine) differ in the last bits.
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) or (
        math.isnan(a) and math.isnan(b))


def test_every_summary_is_its_seeds_summary():
    wrong = []
    for path in tracked_records():
        results = load_results(str(path))
        expected = summarize(results['seeds'])
        recorded = results['summary']
        if set(expected) != set(recorded) or any(
                expected[k]['n'] != recorded[k]['n']
                or not same(expected[k]['mean'], recorded[k]['mean'])
                or not same(expected[k]['std'], recorded[k]['std'])
                for k in expected):
            wrong.append(str(path.parent.relative_to(ROOT)))
    assert not wrong, f'summaries that are not their seeds\': {wrong[:5]}'


#: Each tracked leaderboard the aggregate command writes, with the command
#: its benchmark's README gives for it (paths relative to the checkout).
LEADERBOARDS = {
    'experiments/qm9/results/cpu-budget/leaderboard.md':
    ['experiments/qm9/results/cpu-budget', '--split', 'test_mev'],
    'experiments/qm9/results/cpu-budget-edge-c-half/leaderboard.md':
    ['experiments/qm9/results/cpu-budget-edge-c-half', '--split', 'test_mev'],
    'experiments/ogb/results/cpu-budget/molhiv/leaderboard.md':
    ['experiments/ogb/results/cpu-budget/molhiv', '--digits', '4'],
    'experiments/ogb/results/cpu-budget/molbace/leaderboard.md':
    ['experiments/ogb/results/cpu-budget/molbace', '--digits', '4'],
    'experiments/ogb/results/cpu-budget/molbbbp/leaderboard.md':
    ['experiments/ogb/results/cpu-budget/molbbbp', '--digits', '4'],
}


def test_every_aggregate_leaderboard_is_listed():
    tracked = subprocess.run(['git', 'ls-files', '*leaderboard.md'], cwd=ROOT,
                             capture_output=True, text=True).stdout.split()
    # The TU leaderboards are experiments/tu/summarize.py's (tested there).
    assert sorted(p for p in tracked if not p.startswith('experiments/tu/')) \
        == sorted(LEADERBOARDS)


@pytest.mark.parametrize('board', sorted(LEADERBOARDS))
def test_leaderboard_is_its_records_table(board, tmp_path, monkeypatch,
                                          capsys):
    from pyg_hyper.cli import main
    monkeypatch.chdir(ROOT)
    out = tmp_path / 'leaderboard.md'
    assert main(['aggregate'] + LEADERBOARDS[board] +
                ['--output', str(out)]) == 0
    capsys.readouterr()
    assert (ROOT / board).read_text() == out.read_text(), (
        f'{board} is stale: rebuild it with pyg-hyper aggregate '
        f'{" ".join(LEADERBOARDS[board])} --output {board}')


def marked_tables(readme: Path):
    r"""``(argv, rows)`` for each ``<!-- table: pyg-hyper aggregate ... -->``
    marker of :obj:`readme`: the command and the table rows below it."""
    lines = readme.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith('<!-- table: pyg-hyper aggregate '):
            argv = line[len('<!-- table: pyg-hyper '):-len(' -->')].split()
            rows = []
            for row in lines[i + 1:]:
                if not row.startswith('|'):
                    break
                rows.append(row)
            yield argv, rows


def test_readme_tables_are_their_records_tables(monkeypatch, capsys):
    from pyg_hyper.cli import main
    monkeypatch.chdir(ROOT)
    found = 0
    for readme in sorted(ROOT.glob('experiments/*/README.md')):
        for argv, rows in marked_tables(readme):
            found += 1
            capsys.readouterr()
            assert main(argv) == 0
            printed = [line for line in capsys.readouterr().out.splitlines()
                       if line.startswith('|')]
            assert rows == printed, (
                f'the table under `{" ".join(argv)}` in {readme} is stale')
    assert found >= 1


def test_ogb_readme_rows_are_leaderboard_rows():
    # The OGB README's tables rename the runs and add best epochs, so they
    # cannot be printed verbatim; each row's scores, #params and seed count
    # must still be one row of its dataset's leaderboard.md.
    lines = (ROOT / 'experiments/ogb/README.md').read_text().splitlines()
    dataset, checked, wrong = None, 0, []
    for i, line in enumerate(lines):
        for match in re.finditer(r'(?:cpu-budget/|ogbg-)(mol\w+)', line):
            dataset = match.group(1)
        if not (line.startswith('| model | test ROC-AUC | validation ROC-AUC')
                and '#params' in line):
            continue
        header = [c.strip() for c in line.strip('|').split('|')]
        board = ROOT / f'experiments/ogb/results/cpu-budget/{dataset}' / \
            'leaderboard.md'
        recorded = {tuple(c.strip() for c in row.strip('|').split('|'))[1:]
                    for row in board.read_text().splitlines()[2:]}
        recorded = {(r[0], r[1], r[2], r[4]) for r in recorded}
        for row in lines[i + 2:]:
            if not row.startswith('|'):
                break
            cells = dict(zip(header, (c.strip()
                                      for c in row.strip('|').split('|'))))
            key = (cells['test ROC-AUC'], cells['validation ROC-AUC'],
                   cells['#params'].replace(',', ''), cells['seeds'])
            checked += 1
            if key not in recorded:
                wrong.append(f'{dataset}: {row}')
    assert checked >= 14
    assert not wrong, f'README rows no leaderboard.md holds: {wrong}'
