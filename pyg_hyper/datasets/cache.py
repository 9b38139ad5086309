"""Processed caches that cannot be read are rebuilt, not reported bare.

PyG writes a dataset's ``processed/`` files in place: a run killed while
writing, a full disk or two processes processing one root leave a file cut
short, and every later load then fails with ``PytorchStreamReader failed
reading zip archive`` (or ``EOFError``) naming no file. The files are torch
archives (zip), so a damaged one is found by the archive's own checksums,
without unpickling anything.
"""
import os
import warnings
import zipfile
from typing import Callable, List, Optional, Sequence, TypeVar

__all__ = ['discard_unreadable_cache', 'load_rebuilding_damaged_cache']

T = TypeVar('T')


def discard_unreadable_cache(processed_dir: str, what: str,
                             names: Optional[Sequence[str]] = None
                             ) -> List[str]:
    r"""Deletes the ``.pt`` files in :obj:`processed_dir` (only
    :obj:`names`, if given) that are not whole torch archives, with a warning
    naming them, so that the dataset class rebuilds them from the raw files.
    Returns the deleted file names.

    Args:
        processed_dir (str): The dataset's processed folder (may not exist).
        what (str): The dataset, as the warning names it.
        names (List[str], optional): The files to check. (default: every
            ``.pt`` file there)
    """
    if not os.path.isdir(processed_dir):
        return []
    if names is None:
        names = sorted(n for n in os.listdir(processed_dir)
                       if n.endswith('.pt'))
    bad = []
    for name in names:
        path = os.path.join(processed_dir, name)
        if not os.path.isfile(path):
            continue
        try:
            with zipfile.ZipFile(path) as archive:
                damaged = archive.testzip() is not None
        except (OSError, EOFError, zipfile.BadZipFile):
            damaged = True
        if damaged:
            os.remove(path)
            bad.append(name)
    if bad:
        warnings.warn(f"{what}: the processed files {bad} in "
                      f"'{processed_dir}' cannot be read (cut short or "
                      f"damaged, e.g. by an interrupted write); rebuilding "
                      f"them from the raw files", stacklevel=3)
    return bad


def load_rebuilding_damaged_cache(load: Callable[[], T], processed_dir: str,
                                  what: str) -> T:
    r"""Calls :obj:`load`; only if it fails are the processed files checked
    (a healthy cache is not read twice), the damaged ones deleted and
    :obj:`load` called once more. A failure with an intact cache is
    re-raised as it was.

    Args:
        load (callable): Builds the dataset (processing what is missing).
        processed_dir (str): Its processed folder.
        what (str): The dataset, as the warning names it.
    """
    try:
        return load()
    except Exception:
        if not discard_unreadable_cache(processed_dir, what):
            raise
    return load()
