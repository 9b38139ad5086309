"""Results files: atomic JSON, per-seed records, summaries and tables.

One run writes one folder::

    <out>/results.json     # config, environment, per-seed records, summary
    <out>/results.md       # mean ± std table + per-seed rows
    <out>/curves.png       # learning curves (see plots.py)
    <out>/models/seed_<s>.pt        # best-validation weights per seed
    <out>/checkpoints/seed_<s>.pt   # mid-seed state, removed when done

``results.json`` is rewritten atomically after every finished seed, so a
killed run loses at most the seed in flight.
"""
import datetime
import importlib.metadata
import io
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from typing import (IO, Any, Callable, Dict, Iterable, List, Mapping,
                    Optional, Sequence)

import torch

__all__ = [
    'atomic_write_stream',
    'atomic_write_bytes',
    'atomic_write_text',
    'atomic_write_json',
    'atomic_torch_save',
    'check_writable',
    'environment_record',
    'mean_std',
    'format_mean_std',
    'summarize',
    'markdown_report',
    'load_results',
    'score_scale',
]

SCHEMA_VERSION = 1


def default_file_mode() -> int:
    """The permissions of a new file the user writes: 0o666 minus the
    umask (:func:`tempfile.mkstemp` makes its files owner-only)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_stream(path: str, write: Callable[[IO[bytes]], None]
                        ) -> None:
    """Calls :obj:`write` on a temporary file of its own in the same
    folder, then renames it over :obj:`path` (atomic on POSIX and Windows),
    so readers never see a half-written file and two writers never share
    one temporary file."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.tmp-', dir=folder)
    try:
        if hasattr(os, 'fchmod'):
            os.fchmod(fd, default_file_mode())
        with os.fdopen(fd, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Atomically writes :obj:`data` (see :func:`atomic_write_stream`)."""
    atomic_write_stream(path, lambda f: f.write(data))


def atomic_write_text(path: str, text: str) -> None:
    """Atomically writes :obj:`text` (UTF-8)."""
    atomic_write_bytes(path, text.encode('utf-8'))


def atomic_write_json(path: str, obj: Any) -> None:
    """Atomically writes :obj:`obj` as indented JSON
    (:func:`~pyg_hyper.experiment.results.dumps_json`)."""
    atomic_write_text(path, dumps_json(obj) + '\n')


def dumps_json(obj: Any, indent: int = 1) -> str:
    """:func:`json.dumps` with :obj:`indent`, except that a list holding no
    list or dict stays on one line.

    Why: a record's learning curves (a number per epoch, seed and split)
    made up most of its size at one number per line, and the repository's
    records travel to GPU sessions under a size limit. Keys and values are
    written as :func:`json.dumps` writes them, so loading gives the same
    object."""
    def dump(value: Any, depth: int) -> str:
        pad = '\n' + ' ' * (indent * (depth + 1))
        end = '\n' + ' ' * (indent * depth)
        if isinstance(value, dict) and value:
            return '{' + ','.join(
                pad + json.dumps(k if isinstance(k, str) else json.dumps(k))
                + ': ' + dump(v, depth + 1)
                for k, v in value.items()) + end + '}'
        if isinstance(value, (list, tuple)) and any(
                isinstance(v, (list, tuple, dict)) for v in value):
            return '[' + ','.join(pad + dump(v, depth + 1)
                                  for v in value) + end + ']'
        return json.dumps(value)
    return dump(obj, 0)


def atomic_torch_save(path: str, obj: Any) -> None:
    """Atomically writes :obj:`obj` with :func:`torch.save`."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def check_writable(folder: str,
                   fix: str = 'pass a writable folder with --out') -> None:
    """Creates :obj:`folder` if needed and checks that files can be written
    there, raising :class:`ValueError` with the reason otherwise (ending
    with :obj:`fix`, what the user can do about it).

    Runs before any training so that a long run does not fail at its end.
    """
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix='.write-test-', dir=folder)
        os.close(fd)
        os.remove(tmp)
    except OSError as e:
        raise ValueError(f"results folder '{folder}' is not writable "
                         f"({e.strerror or e}); {fix}") from None


def _git_commit() -> Optional[str]:
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=here,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _cpu_name() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment_record(device: str = 'cpu',
                       argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """What is needed to reproduce a number: command, versions, hardware."""
    import torch_geometric

    import pyg_hyper
    from pyg_hyper.utils.malloc import malloc_setting

    argv = list(sys.argv if argv is None else argv)
    if argv and argv[0].endswith(('pyg-hyper', 'cli.py', '__main__.py')):
        argv[0] = 'pyg-hyper'
    record: Dict[str, Any] = {
        'command': shlex.join(argv),
        'cwd': os.getcwd(),
        'time': datetime.datetime.now().astimezone().isoformat(
            timespec='seconds'),
        'python': platform.python_version(),
        'torch': torch.__version__,
        'torch_geometric': torch_geometric.__version__,
        'pyg_hyper': pyg_hyper.__version__,
        'git_commit': _git_commit(),
        'platform': platform.platform(),
        'cpu': _cpu_name(),
        'cpu_count': os.cpu_count(),
        'torch_threads': torch.get_num_threads(),
        # Epoch times depend on it (pyg_hyper.utils.malloc explains).
        'malloc': malloc_setting(),
        'device': str(device),
    }
    # Packages that change numbers when present: ogb's feature sizes (and
    # so #params), RDKit's molecule parsing, qm9pack's data.
    for package in ('ogb', 'rdkit', 'qm9pack'):
        try:
            record[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    if str(device).startswith('cuda') and torch.cuda.is_available():
        record['gpu'] = torch.cuda.get_device_name(torch.device(device))
        record['cuda'] = torch.version.cuda
    return record


def mean_std(values: Iterable[float]) -> Dict[str, float]:
    """Mean and unbiased standard deviation (as ``torch.std``, which the
    OGB leaderboard asks for); std is 0 for a single value."""
    vals = [float(v) for v in values]
    n = len(vals)
    if n == 0:
        return {'mean': math.nan, 'std': math.nan, 'n': 0}
    mean = sum(vals) / n
    var = sum((v - mean)**2 for v in vals) / (n - 1) if n > 1 else 0.0
    return {'mean': mean, 'std': math.sqrt(var), 'n': n}


def format_mean_std(stats: Mapping[str, float], scale: float = 1.0,
                    digits: Optional[int] = 2) -> str:
    """``'83.02 ± 0.81'`` (values multiplied by :obj:`scale`). With
    :obj:`digits=None`, as many decimals as show two significant digits of
    the std, at least one: ROC-AUCs get ``0.654 ± 0.014`` and accuracies
    in percent ``78.5 ± 1.9``. A single seed has no std: ``'0.2160 (1
    seed)'`` (four significant digits with :obj:`digits=None`)."""
    if not stats or stats.get('n', 0) == 0:
        return '–'
    mean, std = stats['mean'] * scale, stats['std'] * scale
    if stats.get('n') == 1:
        # One seed has no spread: '± 0.00' would claim one.
        if digits is None:
            digits = (1 if mean == 0 or not math.isfinite(mean) else
                      max(1, 3 - math.floor(math.log10(abs(mean)))))
        return f"{mean:.{digits}f} (1 seed)"
    if digits is None:
        ref = abs(std) or abs(mean)
        digits = (1 if ref == 0 or not math.isfinite(ref) else
                  max(1, 1 - math.floor(math.log10(ref))))
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def summarize(seed_records: Mapping[str, Mapping[str, Any]]) -> Dict:
    """Mean ± std over seeds of every score at the best-validation epoch,
    plus epoch time."""
    records = list(seed_records.values())
    keys: List[str] = []
    for rec in records:
        for key in rec['scores']:
            if key not in keys:
                keys.append(key)
    summary = {
        key: mean_std(r['scores'][key] for r in records if key in r['scores'])
        for key in keys
    }
    summary['epoch_time_s'] = mean_std(r['epoch_time_s'] for r in records)
    summary['best_epoch'] = mean_std(r['best_epoch'] for r in records)
    return summary


def score_scale(metric: str, split: Optional[str] = None) -> float:
    """The factor a score of :obj:`split` is shown at: accuracy-like metrics
    are stored as fractions and shown in percent; losses (``'val_loss'``)
    are shown as they are, whatever the metric."""
    if split is not None and split.endswith('loss'):
        return 1.0
    return 100.0 if metric in ('accuracy', 'acc', 'micro_f1',
                               'macro_f1') else 1.0


def markdown_report(results: Mapping[str, Any]) -> str:
    """The ``results.md`` of one run: provenance, mean ± std, per seed."""
    metric = results['metric']
    scale = score_scale(metric)
    unit = ' (%)' if scale == 100.0 else ''
    env = results['environment']
    summary = results['summary']
    seeds = results['seeds']
    lines = [
        f"# {results['name']}",
        '',
        f"- task: `{results['task']}`, metric: {metric}{unit} "
        f"({'higher' if results['higher_is_better'] else 'lower'} is "
        f"better), reported at the best-validation epoch",
        f"- command: `{env['command']}`",
        f"- versions: python {env['python']}, torch {env['torch']}, "
        f"torch_geometric {env['torch_geometric']}, pyg_hyper "
        f"{env['pyg_hyper']} (git {env.get('git_commit') or 'unknown'})"
        + ''.join(f", {p} {env[p]}" for p in ('ogb', 'rdkit', 'qm9pack')
                  if env.get(p)),
        f"- hardware: {env['cpu']} ({env['cpu_count']} cores, "
        f"{env['torch_threads']} torch threads), device {env['device']}"
        + (f" ({env['gpu']})" if env.get('gpu') else ''),
        f"- seeds: {', '.join(sorted(seeds, key=int))} "
        f"({len(seeds)} finished)",
        f"- parameters: {results.get('num_params', '–'):,}"
        if isinstance(results.get('num_params'), int) else
        '- parameters: –',
        '',
        '| split | mean ± std |',
        '|---|---|',
    ]
    for key, stats in summary.items():
        if key in ('epoch_time_s', 'best_epoch'):
            continue
        s = score_scale(metric, key)
        # Two significant digits of the std: 0.7096 ± 0.0223 for a
        # ROC-AUC (OGB's four decimals), 81.4 ± 2.7 for an accuracy in %.
        lines.append(f'| {key} | {format_mean_std(stats, s, None)} |')
    lines.append(f"| epoch time (ms) | "
                 f"{format_mean_std(summary['epoch_time_s'], 1000.0)} |")
    lines.append(f"| best epoch | "
                 f"{format_mean_std(summary['best_epoch'], 1.0, 1)} |")
    lines += ['', '| seed | best epoch | epochs run | val | test | '
              'epoch time (ms) |', '|---|---|---|---|---|---|']
    score = '.2f' if scale == 100.0 else '.4f'
    for key in sorted(seeds, key=int):
        rec = seeds[key]
        sc = rec['scores']
        lines.append(f"| {rec['seed']} | {rec['best_epoch']} | "
                     f"{rec['epochs_run']} | {sc['val'] * scale:{score}} | "
                     f"{sc['test'] * scale:{score}} | "
                     f"{rec['epoch_time_s'] * 1000:.2f} |")
    lines += _sessions_table(session_history(results))
    return '\n'.join(lines) + '\n'


def session_history(results: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """The record's sessions, oldest first. A record written before
    sessions kept their environment has one only at its top level, and that
    is its latest session's: the latest session gets it."""
    sessions = [dict(s) for s in results.get('sessions', [])]
    if sessions and 'git_commit' not in sessions[-1]:
        sessions[-1] = {**results.get('environment', {}), **sessions[-1]}
    return sessions


def _sessions_table(sessions: Sequence[Mapping[str, Any]]) -> List[str]:
    """Which seeds ran where, when more than one session ran seeds (the
    header's provenance is the latest session's). Sessions recorded before
    environments were kept per session show their command only."""
    ran = [s for s in sessions if s.get('seeds_run')]
    if len(ran) < 2:
        return []
    lines = ['', '| session | seeds | device | torch | pyg_hyper (git) |',
             '|---|---|---|---|---|']
    for s in ran:
        if 'device' in s:
            device = s['device'] + (f" ({s['gpu']})" if s.get('gpu') else '')
        else:  # a legacy session: its command's --device (default cpu)
            words = shlex.split(s.get('command', ''))
            device = (words[words.index('--device') + 1]
                      if '--device' in words[:-1] else 'cpu') + \
                ' (from the command)'

        commit = (s.get('git_commit') or '')[:7]
        version = (f"{s['pyg_hyper']} ({commit or 'unknown'})"
                   if s.get('pyg_hyper') else '–')
        lines.append(f"| {s.get('time', '–')} | "
                     f"{', '.join(map(str, s['seeds_run']))} | {device} | "
                     f"{s.get('torch', '–')} | {version} |")
    return lines


def load_results(path: str) -> Dict[str, Any]:
    """Loads a ``results.json`` (or the one inside a run folder)."""
    if os.path.isdir(path):
        path = os.path.join(path, 'results.json')
    if not os.path.isfile(path):
        raise ValueError(f"no results file at '{path}'; pass a run folder "
                         f"written by 'pyg-hyper train' or its results.json")
    with open(path, encoding='utf-8') as f:
        try:
            results = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"results file '{path}' is not valid JSON "
                             f"({e})") from None
    if not isinstance(results, dict):
        raise ValueError(f"results file '{path}' holds a "
                         f"{type(results).__name__}, not a run record (an "
                         f"object with {list(_RECORD_KEYS)})")
    if results.get('schema') != SCHEMA_VERSION:
        raise ValueError(f"results file '{path}' has schema "
                         f"{results.get('schema')!r}; this version reads "
                         f"schema {SCHEMA_VERSION}")
    for key, kind in _RECORD_KEYS.items():
        # 'summary' comes with the first seed (a --fresh record has none).
        if key == 'summary' and key not in results:
            continue
        if not isinstance(results.get(key), kind):
            raise ValueError(f"results file '{path}' is not a complete run "
                             f"record: '{key}' should be a {kind.__name__} "
                             f"(got {type(results.get(key)).__name__})")
    return results


#: What every run record holds, and of which type.
_RECORD_KEYS = {'name': str, 'metric': str, 'config': dict,
                'seeds': dict, 'summary': dict}
