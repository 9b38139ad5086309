"""Learning-curve plots of a run (matplotlib, headless Agg backend)."""
import os
from typing import Any, Mapping

__all__ = ['plot_learning_curves']


def plot_learning_curves(results: Mapping[str, Any], path: str) -> None:
    """Plots training loss and every evaluated score against the epoch,
    one line per seed, with each seed's best-validation epoch marked.

    Written atomically (temporary file, then rename) like every result.
    """
    import matplotlib
    matplotlib.use('Agg', force=False)
    import matplotlib.pyplot as plt

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
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f'.tmp-{os.getpid()}-{os.path.basename(path)}')
    try:
        fig.savefig(tmp, dpi=110, format=os.path.splitext(path)[1][1:]
                    or 'png')
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)
