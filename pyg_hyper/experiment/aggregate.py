"""Leaderboards across runs: one table from many ``results.json`` files."""
import glob
import os
from typing import Any, Dict, List, Optional, Sequence

from pyg_hyper.experiment.config import get_key
from pyg_hyper.experiment.results import (
    score_scale,
    format_mean_std,
    load_results,
)

__all__ = ['find_results', 'leaderboard']

#: Summary keys that are not scores of a split.
NOT_SCORES = frozenset({'best_epoch', 'epoch_time_s'})


def find_results(paths: Sequence[str]) -> List[str]:
    """Expands run folders, ``results.json`` files and folders of runs
    (searched recursively) into a sorted list of ``results.json`` paths. A
    single path may be given as it is."""
    if isinstance(paths, (str, bytes, os.PathLike)):
        # A lone path would be iterated character by character: '/' first,
        # and a recursive search of the whole file system.
        paths = [paths]
    found: Dict[str, str] = {}  # real path -> as given
    for path in map(os.fspath, paths):
        if os.path.isfile(path):
            matches = [path]
        elif os.path.isfile(os.path.join(path, 'results.json')):
            matches = [os.path.join(path, 'results.json')]
        elif os.path.isdir(path):
            matches = glob.glob(os.path.join(path, '**', 'results.json'),
                                recursive=True)
            if not matches:
                # Beside other folders it would be left out of the table
                # without a word.
                raise ValueError(f"no results.json found under '{path}'")
        else:
            raise ValueError(f"'{path}' is neither a results file nor a "
                             f"folder")
        for match in matches:  # one run given twice is one run
            found.setdefault(os.path.realpath(match), match)
    if not found:
        raise ValueError(f"no results.json found under {list(paths)}")
    return sorted(found.values())


def leaderboard(paths: Sequence[str], rows: str = 'name',
                cols: Optional[str] = None, split: str = 'test',
                digits: Optional[int] = None) -> Dict[str, Any]:
    """Builds a mean ± std table of :obj:`split` over runs.

    Args:
        paths: Run folders, ``results.json`` files, or folders of runs.
        rows: Dotted config key whose value labels a row (e.g.
            ``'model.name'``), or ``'name'``.
        cols: Dotted config key whose value labels a column (e.g.
            ``'data.name'``). Without it, there is one column per run
            property (score, the validation score beside it when every run
            has one, #params, epoch time, seeds).
        split: Which score to show (``'test'``, ``'val'``, ...).
        digits: Decimals shown; :obj:`None` shows two significant digits
            of each cell's std (see
            :func:`~pyg_hyper.experiment.results.format_mean_std`).

    Returns:
        A dict with ``'markdown'`` (the table) and ``'cells'`` (the numbers,
        each run's per-seed scores among them, which
        :func:`~pyg_hyper.experiment.plot_leaderboard` draws).
    """
    if split in NOT_SCORES:
        raise ValueError(f"'{split}' is not a score; pick a split such as "
                         f"'test' or 'val'")
    files = find_results(paths)
    runs = [load_results(p) for p in files]
    metrics = sorted({run['metric'] for run in runs})
    if cols is not None and len(metrics) > 1:
        raise ValueError(f"the runs mix metrics {metrics}, which one table "
                         f"of cells cannot tell apart; aggregate one metric "
                         f"per table (or drop --cols to get a metric "
                         f"column)")
    cells: List[Dict[str, Any]] = []
    for run in runs:
        stats = run.get('summary', {}).get(split)
        if stats is None:
            scores = sorted(set(run.get('summary', {})) - NOT_SCORES)
            raise ValueError(f"run '{run['name']}' has no '{split}' score; "
                             f"recorded: {scores}")
        cells.append({
            'row': str(get_key(run['config'], rows)),
            'col': str(get_key(run['config'], cols)) if cols else None,
            'metric': run['metric'],
            'split': split,
            'stats': stats,
            'num_params': run.get('num_params'),
            'epoch_time_s': run['summary']['epoch_time_s']['mean'],
            'seeds': len(run['seeds']),
            'values': [rec['scores'][split] for _, rec in
                       sorted(run['seeds'].items(), key=lambda kv: int(kv[0]))
                       if split in rec.get('scores', {})],
            'higher_is_better': run.get('higher_is_better', True),
            'config': run['config'],
        })
    if cols is None:
        _tell_apart(cells, files)
    row_names = list(dict.fromkeys(c['row'] for c in cells))
    if cols is None:
        # The validation score beside the test score, as OGB's rules ask,
        # in the same unit ('test_mev' -> 'val_mev').
        val_split = split.replace('test', 'val', 1)
        beside = split.startswith('test') and all(
            val_split in run.get('summary', {}) for run in runs)
        extra = f' {val_split} |' if beside else ''
        # Mixed metrics (accuracy in %, ROC-AUC, MAE) are named per row.
        mixed = len(metrics) > 1
        lines = [f'| {rows} |' + (' metric |' if mixed else '')
                 + f' {split} |{extra} #params | epoch (ms) | seeds |',
                 '|---|---|' + ('---|' if mixed else '')
                 + ('---|' if beside else '') + '---|---|---|']
        for c, run in zip(cells, runs):
            scale = score_scale(c['metric'], split)
            val = ''
            if beside:
                stats = run['summary'][val_split]
                val_scale = score_scale(c['metric'], val_split)
                val = f" {format_mean_std(stats, val_scale, digits)} |"
            lines.append(f"| {c['row']} | "
                         + (f"{c['metric']} | " if mixed else '') +
                         f"{format_mean_std(c['stats'], scale, digits)} |"
                         f"{val} {c['num_params']} | "
                         f"{c['epoch_time_s'] * 1000:.1f} | {c['seeds']} |")
    else:
        col_names = list(dict.fromkeys(c['col'] for c in cells))
        table = {(c['row'], c['col']): c for c in cells}
        dupes = len(table) != len(cells)
        if dupes:
            raise ValueError(f"several runs share a ({rows}, {cols}) cell; "
                             f"pick keys that tell the runs apart")
        lines = ['| ' + ' | '.join([rows] + col_names) + ' |',
                 '|' + '---|' * (len(col_names) + 1)]
        for r in row_names:
            vals = []
            for col in col_names:
                c = table.get((r, col))
                vals.append('–' if c is None else format_mean_std(
                    c['stats'], score_scale(c['metric'], split), digits))
            lines.append('| ' + ' | '.join([r] + vals) + ' |')
    return {'markdown': '\n'.join(lines) + '\n', 'cells': cells}


def _tell_apart(cells: List[Dict[str, Any]], files: Sequence[str]) -> None:
    """Rows that share a label (the same run name in two result folders)
    get the folder that holds each run appended, so no table row stands
    for two runs."""
    groups: Dict[str, List[int]] = {}
    for i, c in enumerate(cells):
        groups.setdefault(c['row'], []).append(i)
    for members in groups.values():
        if len(members) < 2:
            continue
        # The results folder of each run, named by the part of its path
        # the duplicates do not share ('first' and 'second', or
        # 'a/cpu-budget' and 'b/cpu-budget').
        folders = [os.path.dirname(os.path.dirname(os.path.abspath(
            files[i]))) for i in members]
        common = os.path.commonpath(folders)
        for i, folder in zip(members, folders):
            cells[i]['row'] += f' ({os.path.relpath(folder, common)})'
