"""Keeping the memory of freed large tensors in the process (glibc malloc).

PyTorch allocates CPU tensors with the C library's ``malloc``. glibc serves
a request above its mmap threshold (at most 32 MiB, adjusted at run time)
with freshly mapped pages and returns them to the kernel on ``free``. A
training step that creates and frees the same tens of megabytes of
temporaries every step (the outer products of the generated weights, the
per-edge activations of a molecule batch) therefore page-faults through all
of them again each step, with the kernel zeroing every page. On this
project's CPU benchmarks that made writing such a temporary 2.5x slower
than writing into reused memory, and a full Hyper-GIN training step 1.28x
slower.

:func:`reuse_freed_memory` raises glibc's thresholds so that freed blocks
stay in the heap and are reused, as PyTorch's CUDA caching allocator does
on a GPU. The ``pyg-hyper`` command and the benchmark scripts call it unless
``--system-malloc`` is given. Library code never calls it: it is a process
setting, the application's to choose.
"""
import argparse
import ctypes
import os
import platform
from typing import Optional

__all__ = ['reuse_freed_memory', 'malloc_setting', 'add_malloc_option',
           'apply_malloc_option']

# mallopt() parameters, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MAX_MALLOPT_VALUE = 2**31 - 1  # mallopt() takes a C int
# A user who tuned malloc through the environment keeps that tuning.
_USER_SETTINGS = ('MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_',
                  'MALLOC_TOP_PAD_')

_applied: Optional[int] = None


def _glibc_mallopt():
    if platform.system() != 'Linux' or platform.libc_ver()[0] != 'glibc':
        return None
    try:
        return ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return None


def _user_tuned() -> Optional[str]:
    for name in _USER_SETTINGS:
        if name in os.environ:
            return name
    if 'glibc.malloc.' in os.environ.get('GLIBC_TUNABLES', ''):
        return 'GLIBC_TUNABLES'
    return None


def reuse_freed_memory(max_bytes: int = 1 << 30) -> bool:
    r"""Lets glibc keep freed blocks of up to :obj:`max_bytes` in the heap
    for reuse, instead of unmapping them and page-faulting fresh memory in
    for the next tensor of the same size.

    The trade-off is that memory freed by the process is not handed back to
    the kernel, so its resident size stays near its peak (as with PyTorch's
    CUDA caching allocator); peak usage itself does not grow.

    Args:
        max_bytes (int, optional): The largest single allocation kept for
            reuse (glibc's ``M_MMAP_THRESHOLD``); larger ones are still
            mapped and unmapped. At most :math:`2^{31} - 1`.
            (default: :obj:`1 << 30`, 1 GiB)

    Returns:
        bool: :obj:`True` if the setting was applied; :obj:`False` where the
        C library is not glibc, or where the user already tuned malloc
        through ``MALLOC_*_`` or ``GLIBC_TUNABLES`` environment variables,
        which are then left in charge.
    """
    global _applied
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or \
            not 0 < max_bytes <= _MAX_MALLOPT_VALUE:
        raise ValueError(f"'max_bytes' must be an integer in [1, "
                         f"{_MAX_MALLOPT_VALUE}] (mallopt takes a C int); "
                         f"got {max_bytes!r}")
    mallopt = _glibc_mallopt()
    if mallopt is None or _user_tuned() is not None:
        return False
    # Setting either threshold turns off glibc's run-time adjustment of
    # both, so the trim threshold is only touched once the mmap threshold
    # was accepted (older glibc refuses values above 32 MiB): a refused
    # call leaves malloc as it was.
    if mallopt(_M_MMAP_THRESHOLD, max_bytes) != 1:
        return False
    # Without this, freed blocks at the top of the heap go back to the
    # kernel all the same.
    mallopt(_M_TRIM_THRESHOLD, _MAX_MALLOPT_VALUE)
    _applied = max_bytes
    return True


def malloc_setting() -> str:
    """How this process's CPU allocator is set up, for results records."""
    if _applied is not None:
        return (f'glibc, freed blocks up to {_applied} bytes reused '
                f'(pyg_hyper.utils.reuse_freed_memory)')
    user = _user_tuned()
    if user is not None:
        return f'set by the environment ({user})'
    return 'system default'


def add_malloc_option(parser: argparse.ArgumentParser) -> None:
    """Adds ``--system-malloc`` to a command line: the ``pyg-hyper`` command
    and the benchmark scripts reuse freed blocks unless it is given."""
    parser.add_argument(
        '--system-malloc', action='store_true',
        help="keep the C library's default allocator settings; by default "
        'glibc keeps freed blocks up to 1 GiB for reuse '
        '(pyg_hyper.utils.reuse_freed_memory), which makes CPU training '
        'steps with large temporaries faster')


def apply_malloc_option(args: argparse.Namespace) -> None:
    """Applies :func:`add_malloc_option`'s choice; results records name the
    setting in effect (:func:`malloc_setting`)."""
    if not args.system_malloc:
        reuse_freed_memory()
