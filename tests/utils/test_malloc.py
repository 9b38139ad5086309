import os
import platform
import subprocess
import sys

import pytest

from pyg_hyper.utils import malloc
from pyg_hyper.utils.malloc import malloc_setting, reuse_freed_memory

GLIBC = platform.system() == 'Linux' and platform.libc_ver()[0] == 'glibc'


class FakeMallopt:
    """Records mallopt calls; refuses the mmap threshold if told to."""
    def __init__(self, refuse_mmap=False):
        self.calls = []
        self.refuse_mmap = refuse_mmap

    def __call__(self, param, value):
        self.calls.append((param, value))
        return 0 if (param == -3 and self.refuse_mmap) else 1


@pytest.fixture
def fake(monkeypatch):
    for name in ('MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_',
                 'MALLOC_TOP_PAD_', 'GLIBC_TUNABLES'):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(malloc, '_applied', None)

    def install(**kwargs):
        mallopt = FakeMallopt(**kwargs)
        monkeypatch.setattr(malloc, '_glibc_mallopt', lambda: mallopt)
        return mallopt
    return install


def test_sets_mmap_then_trim_threshold(fake):
    mallopt = fake()
    assert malloc_setting() == 'system default'
    assert reuse_freed_memory(1 << 28)
    assert mallopt.calls == [(-3, 1 << 28), (-1, 2**31 - 1)]
    assert str(1 << 28) in malloc_setting()


def test_refused_threshold_leaves_malloc_alone(fake):
    # Setting the trim threshold alone would freeze glibc's adaptive mmap
    # threshold at its 128 KiB start: worse than not tuning at all.
    mallopt = fake(refuse_mmap=True)
    assert not reuse_freed_memory()
    assert mallopt.calls == [(-3, 1 << 30)]
    assert malloc_setting() == 'system default'


@pytest.mark.parametrize('env', [('MALLOC_MMAP_THRESHOLD_', '65536'),
                                 ('GLIBC_TUNABLES',
                                  'glibc.malloc.trim_threshold=0')])
def test_users_environment_stays_in_charge(fake, monkeypatch, env):
    mallopt = fake()
    monkeypatch.setenv(*env)
    assert not reuse_freed_memory()
    assert mallopt.calls == []
    assert malloc_setting() == f'set by the environment ({env[0]})'


def test_other_c_libraries_are_left_alone(fake, monkeypatch):
    monkeypatch.setattr(malloc, '_glibc_mallopt', lambda: None)
    assert not reuse_freed_memory()
    assert malloc_setting() == 'system default'


@pytest.mark.parametrize('value', [0, -1, 2**31, 1.5, True, '1024'])
def test_bad_max_bytes(fake, value):
    mallopt = fake()
    with pytest.raises(ValueError, match=r"'max_bytes' must be an integer "
                       r"in \[1, 2147483647\]"):
        reuse_freed_memory(value)
    assert mallopt.calls == []


@pytest.mark.skipif(not GLIBC, reason='needs glibc')
def test_real_glibc_accepts_the_setting():
    # In a child process: the setting lasts for the process.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith('MALLOC_') and k != 'GLIBC_TUNABLES'}
    code = ('from pyg_hyper.utils import reuse_freed_memory, malloc_setting;'
            'print(reuse_freed_memory(), malloc_setting())')
    out = subprocess.run([sys.executable, '-c', code], env=env, check=True,
                         capture_output=True, text=True).stdout
    assert out.startswith('True glibc, freed blocks up to 1073741824 bytes')


@pytest.mark.parametrize('argv, applied', [([], True),
                                           (['--system-malloc'], False)])
def test_command_line_option(fake, argv, applied):
    import argparse
    from pyg_hyper.utils.malloc import add_malloc_option, apply_malloc_option
    mallopt = fake()
    parser = argparse.ArgumentParser()
    add_malloc_option(parser)
    apply_malloc_option(parser.parse_args(argv))
    assert bool(mallopt.calls) is applied
    assert (malloc_setting() != 'system default') is applied
