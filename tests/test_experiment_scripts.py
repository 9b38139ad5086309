"""The TU wrapper scripts must still drive their recorded runs.

``experiments/tu/run_cpu_budget.sh`` and ``run_reduced.sh`` are the exact
commands behind two recorded TU leaderboards. A renamed key, a changed
default that the scripts do not pin, or a broken line would leave them
unable to rerun (resume) their records, and ``bash -n`` sees none of that.
Here each script runs against a copy of its results folder with a stand-in
``pyg-hyper`` that records its arguments; every recorded call then runs
through ``pyg-hyper train ... --dry-run`` in this process: every config
must resolve and be able to continue the record it names (as ``train``
would check), and the script must exit cleanly. Nothing is trained.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pyg_hyper.cli import main

ROOT = Path(__file__).resolve().parents[1]
TU = ROOT / 'experiments' / 'tu'


def script_calls(script, out, args, tmp_path):
    """Runs :obj:`script`; returns the argument lists of its pyg-hyper
    calls."""
    if shutil.which('bash') is None:
        pytest.skip('needs bash')
    calls = tmp_path / 'calls'
    calls.mkdir()
    shim = tmp_path / 'pyg-hyper'
    # One file per call, one argument per line (none holds a newline).
    shim.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > '
                    f'"{calls}/$$-$(date +%s%N)"\n')
    shim.chmod(0o755)
    env = dict(os.environ, PYG_HYPER=str(shim),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}"
                    f"{os.environ.get('PATH', '')}",
               PYTHONPATH=str(ROOT))
    proc = subprocess.run(['bash', str(TU / script), str(out), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [f.read_text().splitlines() for f in sorted(calls.iterdir())]


def resumes(call, monkeypatch, capsys):
    assert call[0] == 'train', call
    monkeypatch.chdir(ROOT)
    rc = main([*call, '--dry-run'])
    out, err = capsys.readouterr()
    assert rc == 0, f'`pyg-hyper {" ".join(call)}` fails:\n{err}'
    # Only run_reduced.sh's recorded extra 'epochs=25' may repeat a key.
    repeated = [line for line in err.splitlines() if 'given twice' in line]
    assert all("config key 'epochs'" in line for line in repeated), err
    return out


def recorded_copy(name, tmp_path):
    out = tmp_path / name
    shutil.copytree(TU / 'results' / name, out)
    return out


def test_cpu_budget_script_resumes_its_recorded_runs(tmp_path, monkeypatch,
                                                      capsys):
    out = recorded_copy('cpu_30ep', tmp_path)
    calls = script_calls('run_cpu_budget.sh', out, [], tmp_path)
    assert len(calls) == 18
    # Every run of the script names a recorded folder and would resume it.
    assert sum(resumes(c, monkeypatch, capsys).count(
        '# resumes 10 recorded seeds in') for c in calls) == 18


def test_reduced_script_resumes_its_recorded_runs(tmp_path, monkeypatch,
                                                  capsys):
    out = recorded_copy('h100_25ep', tmp_path)
    # As recorded: DEVICE, LIMIT, then the extra overrides.
    calls = script_calls('run_reduced.sh', out, ['cpu', '120', 'epochs=25'],
                         tmp_path)
    assert len(calls) == 8
    # The H100 runs were cut off by their time limit: not every one has all
    # 10 folds, but every one must be resumable.
    for call in calls:
        assert '# resumes' in resumes(call, monkeypatch, capsys), call
        assert '--device' in call and 'epochs=25' in call
