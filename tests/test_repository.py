"""The repository itself: what a GPU session receives.

A lent GPU machine receives the tracked files (and the folders carried
beside them, about 5 MiB for ``experiments/gpu_session.sh``) only up to
64 MiB. Recorded results grow with every session; in session 14 the tree
had reached 64.2 MiB unnoticed, and a GPU call would have been refused.
This fails first, with the largest files named.
"""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: The device's limit less room for the carried wheels and data.
TRACKED_LIMIT_MIB = 58


def tracked_files():
    if shutil.which('git') is None or not (ROOT / '.git').exists():
        pytest.skip('not a git checkout')
    out = subprocess.run(['git', 'ls-files', '-z'], cwd=ROOT, check=True,
                         capture_output=True).stdout
    return [name for name in out.decode().split('\0') if name]


def test_tracked_files_fit_what_travels_to_a_gpu_session():
    sizes = {name: os.path.getsize(ROOT / name) for name in tracked_files()
             if (ROOT / name).is_file()}
    total = sum(sizes.values()) / 2**20
    largest = sorted(sizes, key=sizes.get, reverse=True)[:5]
    assert total <= TRACKED_LIMIT_MIB, (
        f'tracked files total {total:.1f} MiB, over {TRACKED_LIMIT_MIB} MiB '
        f'(a GPU session receives at most 64 MiB with its carried folders); '
        f'largest: ' + ', '.join(f'{n} ({sizes[n] / 2**20:.1f} MiB)'
                                 for n in largest))
