"""Plots of runs (matplotlib, headless Agg backend): the learning curves
of one run and a leaderboard across runs."""
import io
import math
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence

__all__ = ['plot_learning_curves', 'plot_leaderboard']


def _pyplot():
    import matplotlib
    matplotlib.use('Agg', force=False)
    import matplotlib.pyplot as plt
    return plt


def _save_atomically(fig, path: str, dpi: int = 110) -> None:
    # Rendered in memory, then written by the results' atomic writer: a
    # killed run never leaves a truncated image behind.
    from pyg_hyper.experiment.results import atomic_write_bytes
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, dpi=dpi,
                    format=os.path.splitext(path)[1][1:] or 'png')
    finally:
        _pyplot().close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def plot_learning_curves(results: Mapping[str, Any], path: str) -> None:
    """Plots training loss and every evaluated score against the epoch,
    one line per seed, with each seed's best-validation epoch marked.

    Written atomically (temporary file, then rename) like every result.
    """
    plt = _pyplot()
    seeds = results['seeds']
    keys = ['loss']
    for rec in seeds.values():
        for key in rec['history']:
            if key not in keys and key != 'epoch':
                keys.append(key)
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2),
                             squeeze=False)
    for ax, key in zip(axes[0], keys):
        for s in sorted(seeds, key=int):
            rec = seeds[s]
            hist = rec['history']
            if key not in hist:
                continue
            line, = ax.plot(hist['epoch'], hist[key], lw=0.8,
                            label=f'seed {s}')
            if key != 'loss' and rec['best_epoch'] in hist['epoch']:
                i = hist['epoch'].index(rec['best_epoch'])
                ax.plot([rec['best_epoch']], [hist[key][i]], 'o', ms=3,
                        color=line.get_color())
        ax.set_title(key if key == 'loss' else f"{key} {results['metric']}")
        ax.set_xlabel('epoch')
        ax.grid(alpha=0.3)
    if len(seeds) <= 10:
        axes[0][-1].legend(fontsize=6, loc='best')
    fig.suptitle(f"{results['name']} (dots: best-validation epoch)",
                 fontsize=9)
    fig.tight_layout()
    _save_atomically(fig, path)


def plot_leaderboard(cells: Sequence[Mapping[str, Any]], path: str,
                     split: str = 'test', panels: Optional[str] = None,
                     title: Optional[str] = None) -> None:
    """Plots the runs of a leaderboard (the ``'cells'`` of
    :func:`~pyg_hyper.experiment.leaderboard`): every seed's score as a dot
    and the mean ± std as a diamond and bar, one line per run. Runs with
    fewer seeds than the most in the plot are marked with their count.

    Seeds are shown because a mean ± std hides what matters most in small
    leaderboards: a bimodal run, or one outlier seed.

    Args:
        cells: The runs, as :func:`~pyg_hyper.experiment.leaderboard`
            returns them.
        path: Image to write (its extension picks the format); written
            atomically.
        split: Which score the cells hold, for the axis label.
            (default: :obj:`'test'`)
        panels: Dotted config key that splits the runs into side-by-side
            panels (e.g. ``'data.name'``); :obj:`None` uses the table's
            columns if it has any, otherwise one panel per metric.
            (default: :obj:`None`)
        title: Figure title. (default: a legend of the marks)
    """
    from pyg_hyper.experiment.config import get_key
    from pyg_hyper.experiment.results import score_scale

    if not cells:
        raise ValueError('no runs to plot')
    groups: Dict[str, List[Mapping[str, Any]]] = {}
    for c in cells:
        if panels is not None:
            key = str(get_key(c['config'], panels))
        elif c.get('col') is not None:
            key = c['col']
        else:
            key = c['metric']
        groups.setdefault(key, []).append(c)
    height = max(len({c['row'] for c in g}) for g in groups.values())
    most_seeds = max(c['seeds'] for c in cells)
    # At most three panels side by side; four make a 2 x 2 grid.
    n = len(groups)
    ncols = n if n <= 3 else math.ceil(n / math.ceil(n / 3))
    nrows = math.ceil(n / ncols)
    plt = _pyplot()
    fig, axes = plt.subplots(nrows, ncols,
                             figsize=(4.4 * ncols,
                                      nrows * (0.9 + 0.3 * height) + 0.3),
                             squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax, (key, group) in zip(axes.flat, groups.items()):
        rows = list(dict.fromkeys(c['row'] for c in group))
        if len(rows) != len(group):
            raise ValueError(f"several runs of panel '{key}' share a row "
                             f"label; pick row and panel keys that tell "
                             f"the runs apart")
        metrics = sorted({c['metric'] for c in group})
        for c in group:
            # Top-aligned, so panels with fewer runs leave space below.
            y = height - 1 - rows.index(c['row'])
            scale = score_scale(c['metric'], c.get('split'))
            values = [v * scale for v in c['values']]
            # Deterministic jitter: the same table gives the same image.
            jitter = [((i * 7) % 11 - 5) / 40 for i in range(len(values))]
            ax.scatter(values, [y + d for d in jitter], s=9, alpha=0.5,
                       color='tab:blue', linewidths=0)
            mean = c['stats']['mean'] * scale
            std = c['stats'].get('std', 0.0) * scale
            ax.errorbar([mean], [y], xerr=[std], fmt='D', ms=4,
                        color='black', capsize=3, lw=1)
            if c['seeds'] < most_seeds:
                ax.annotate(f"{c['seeds']} seeds", (mean, y),
                            xytext=(0, 5), textcoords='offset points',
                            fontsize=6, ha='center', color='tab:red')
        ax.set_yticks(range(height - len(rows), height))
        ax.set_yticklabels(list(reversed(rows)), fontsize=7)
        ax.set_ylim(-0.7, height - 0.3)
        unit = ' (%)' if all(score_scale(c['metric'], c.get('split')) == 100.0
                             for c in group) else ''
        directions = {c['higher_is_better'] for c in group}
        better = ('' if len(directions) != 1 else
                  ', higher is better' if directions.pop() else
                  ', lower is better')
        ax.set_xlabel(f"{split} {'/'.join(metrics)}{unit}{better}",
                      fontsize=8)
        ax.set_title(key, fontsize=9)
        ax.grid(axis='x', alpha=0.3)
    fig.suptitle(title or 'dots: seeds; diamond and bar: mean ± std',
                 fontsize=9)
    fig.tight_layout()
    _save_atomically(fig, path)
