"""``experiments/gpu_session.sh`` must drive its runs and return them.

The script is what a short, lent GPU session runs, once: a mistake in it
costs the session. Here it runs on the CPU against a copy of what travels
to the device (the scripts and the recorded results, without the ignored
checkpoints) with a stand-in ``python3`` that records every call and leaves
a small and a large file where a run would write. Every recorded training
call then runs through ``pyg-hyper train ... --dry-run`` in this process
(each config resolves and can continue the record it names), and the
returned folder must hold only the archive and the summary, the archive no
file over 8 MiB (the device returns at most 16 MiB per file) and no saved
model. Nothing is trained.
"""
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from pyg_hyper.cli import main

ROOT = Path(__file__).resolve().parents[1]

STAND_IN = r'''#!/bin/bash
# python3 as gpu_session.sh calls it: imports succeed, the preprocessing
# script is read and dropped, every other call is recorded.
case "$1" in
  -c) exit 0 ;;
  -) cat > /dev/null; exit 0 ;;
  -m) shift 2 ;;  # -m pyg_hyper.cli
esac
printf "%s\n" "$@" > "CALLS/$$-$(date +%s%N)"
out=""; prev=""
for a in "$@"; do [ "$prev" = --out ] && out=$a; prev=$a; done
if [ "$1" = train ]; then
  mkdir -p "$out/standin/models"
  echo '{}' > "$out/standin/small.json"
  truncate -s 9M "$out/standin/checkpoint.pt"
  echo x > "$out/standin/models/seed_0.pt"
else
  mkdir -p "$(dirname "$out")"; echo '{}' > "$out"
fi
'''

TRAVELS = [
    'experiments/gpu_session.sh',
    'experiments/citation/run_gpu.sh',
    'experiments/citation/results/photo',
    'experiments/ogb/results/cpu-budget',
]


def travelling_copy(dest: Path) -> None:
    for rel in TRAVELS:
        src = ROOT / rel
        if src.is_dir():
            # Checkpoints and saved models are ignored files: they do not
            # travel to the device.
            shutil.copytree(src, dest / rel, ignore=shutil.ignore_patterns(
                'checkpoints', 'models', '*.png'))
        else:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def test_gpu_session_script_runs_resumes_and_returns(tmp_path, monkeypatch,
                                                     capsys):
    if shutil.which('bash') is None or shutil.which('truncate') is None:
        pytest.skip('needs bash and coreutils')
    repo, calls = tmp_path / 'repo', tmp_path / 'calls'
    out, work = tmp_path / 'out', tmp_path / 'work'
    travelling_copy(repo)
    calls.mkdir()
    py = tmp_path / 'python3'
    py.write_text(STAND_IN.replace('CALLS', str(calls)))
    py.chmod(0o755)
    env = dict(os.environ, OUT=str(out), WORK=str(work), PY=str(py),
               OGBROOT=str(tmp_path / 'ogb_root'), DATA=str(tmp_path / 'd'),
               BUDGET='300', BENCH='1')
    proc = subprocess.run(['bash', 'experiments/gpu_session.sh'], cwd=repo,
                          env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]

    # What comes back: the archive and the summary, nothing else.
    assert sorted(os.listdir(out)) == ['results.tgz', 'summary.txt']
    summary = (out / 'summary.txt').read_text()
    for line in ('bench_lgnn rc=0', 'bench_ogb rc=0', 'preprocess rc=0',
                 'photo lgcn rc=0', 'photo lgat rc=0', 'photo lgin rc=0',
                 'ogb hyper-gin molhiv rc=0',
                 'ogb hyper-gin-virtual molbbbp rc=0', 'end '):
        assert line in summary, summary
    with tarfile.open(out / 'results.tgz') as tar:
        members = {m.name: m.size for m in tar.getmembers() if m.isfile()}
    assert members and max(members.values()) <= 8 << 20
    assert not any('/models/' in name for name in members)
    assert './logs/summary.txt' in members
    assert './bench/bench_lgnn_cuda.json' in members
    big = [n for n in members if n.endswith('standin/checkpoint.pt')]
    assert not big
    # Listed, not lost: one per results folder (the two OGB models of a
    # dataset share one).
    assert summary.count('standin/checkpoint.pt (9437184 bytes)') == 6
    # The recorded runs travel back inside the archive.
    assert './ogb/molbace/molbace-hyper-gin/results.json' in members
    assert './cit_lgat/photo/Photo-LGAT/results.json' in members

    recorded = [f.read_text().splitlines() for f in sorted(calls.iterdir())]
    benches = sorted(c[0] for c in recorded if c[0] != 'train')
    assert benches == ['benchmarks/bench_lgnn.py',
                       'benchmarks/bench_ogb_throughput.py']
    trains = [c for c in recorded if c[0] == 'train']
    assert len(trains) == 3 + 2 * 3  # Photo x 3 models; OGB 2 models x 3
    monkeypatch.chdir(ROOT)
    resumed = 0
    for call in trains:
        assert call[call.index('--device') + 1] == 'cuda', call
        rc = main([*call, '--dry-run'])
        printed, err = capsys.readouterr()
        assert rc == 0, f'`pyg-hyper {" ".join(call)}` fails:\n{err}'
        assert not [line for line in err.splitlines()
                    if 'given twice' in line], err
        # A run recorded in the repository is continued, not restarted.
        name = next(line.split(':', 1)[1].strip()
                    for line in printed.splitlines()
                    if line.startswith('name:'))
        folder = Path(call[call.index('--out') + 1]) / name
        if (folder / 'results.json').is_file():
            assert '# resumes' in printed, call
            resumed += 1
    # molbace, molbbbp (both models) and every Photo model are recorded.
    assert resumed >= 7
