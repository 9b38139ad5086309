"""Every recorded run's tables must say what its record says.

``results.md`` beside each tracked ``results.json`` is what readers open;
after a record is edited, converted or resumed, a stale table would quote
numbers that no record holds. Each must equal the report rebuilt from its
record (as ``train`` writes it), and each record's summary must be the one
of its own per-seed scores.
"""
import math
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
