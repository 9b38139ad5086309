"""The TU wrapper scripts must still drive their recorded runs.

``experiments/tu/run_cpu_budget.sh`` and ``run_reduced.sh`` are the exact
commands behind two recorded TU leaderboards. A renamed key, a changed
default that the scripts do not pin, or a broken line would leave them
unable to rerun (resume) their records, and ``bash -n`` sees none of that.
Here each script runs against a copy of its results folder with
``--dry-run`` appended to every ``pyg-hyper train`` call: every config must
resolve and be able to continue the record it names (as ``train`` would
check), and the script must exit cleanly. Nothing is trained.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TU = ROOT / 'experiments' / 'tu'


def run_script(script, out, args, tmp_path):
    if shutil.which('bash') is None:
        pytest.skip('needs bash')
    shim = tmp_path / 'pyg-hyper'
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m pyg_hyper.cli '
                    f'"$@"\n')
    shim.chmod(0o755)
    env = dict(os.environ, PYG_HYPER=str(shim),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}"
                    f"{os.environ.get('PATH', '')}",
               PYTHONPATH=str(ROOT))
    return subprocess.run(['bash', str(TU / script), str(out), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)


def recorded_copy(name, tmp_path):
    out = tmp_path / name
    shutil.copytree(TU / 'results' / name, out)
    return out


def test_cpu_budget_script_resumes_its_recorded_runs(tmp_path):
    out = recorded_copy('cpu_30ep', tmp_path)
    proc = run_script('run_cpu_budget.sh', out, ['--dry-run'], tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    # Every run of the script names a recorded folder and would resume it.
    assert proc.stdout.count('# resumes 10 recorded seeds in') == 18
    assert 'given twice' not in proc.stderr


def test_reduced_script_resumes_its_recorded_runs(tmp_path):
    out = recorded_copy('h100_25ep', tmp_path)
    # As recorded: DEVICE, LIMIT, then the extra overrides.
    proc = run_script('run_reduced.sh', out,
                      ['cpu', '120', 'epochs=25', '--dry-run'], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    logs = sorted(out.glob('log_*.txt'))
    assert len(logs) == 8
    for log in logs:
        text = log.read_text()
        assert '# resumes' in text and 'error' not in text, (log.name, text)
