import json
import os

import pytest
from matplotlib.collections import PathCollection

from pyg_hyper.experiment import leaderboard, plot_leaderboard
from pyg_hyper.experiment import plots as plots_mod
from pyg_hyper.experiment.results import SCHEMA_VERSION


def _write_run(folder, name, dataset, scores, metric='accuracy',
               higher_is_better=True):
    """A minimal results.json: what the runner writes, with given test
    scores per seed (seed 1 deliberately listed first)."""
    seeds = {str(s): {'scores': {'test': v, 'val': v}, 'epoch_time_s': 0.1}
             for s, v in reversed(list(enumerate(scores)))}
    mean = sum(scores) / len(scores)
    std = (sum((v - mean) ** 2 for v in scores) / max(len(scores) - 1, 1)
           ) ** 0.5
    run = {
        'schema': SCHEMA_VERSION, 'name': name, 'metric': metric,
        'higher_is_better': higher_is_better,
        'config': {'name': name, 'data': {'name': dataset},
                   'model': {'name': name.split('-')[-1]}},
        'seeds': seeds, 'num_params': 10,
        'summary': {'test': {'mean': mean, 'std': std, 'n': len(scores)},
                    'epoch_time_s': {'mean': 0.1}},
    }
    path = folder / name
    path.mkdir(parents=True)
    (path / 'results.json').write_text(json.dumps(run))


@pytest.fixture
def board(tmp_path):
    _write_run(tmp_path, 'Cora-GCN', 'Cora', [0.80, 0.78, 0.79])
    _write_run(tmp_path, 'Cora-LGCN', 'Cora', [0.70, 0.90])
    _write_run(tmp_path, 'Photo-GCN', 'Photo', [0.81, 0.82, 0.83])
    return tmp_path


@pytest.fixture
def captured(monkeypatch):
    """Keeps the figure that would be saved, to inspect what was drawn."""
    figures = []
    real_save = plots_mod._save_atomically

    def save(fig, path, dpi=110):
        figures.append(fig)
        real_save(fig, path, dpi)

    monkeypatch.setattr(plots_mod, '_save_atomically', save)
    return figures


def test_leaderboard_cells_carry_seed_scores_in_seed_order(board):
    cells = {c['row']: c for c in leaderboard([str(board)])['cells']}
    assert cells['Cora-LGCN']['values'] == [0.70, 0.90]
    assert cells['Cora-GCN']['values'] == [0.80, 0.78, 0.79]
    assert cells['Photo-GCN']['config']['data']['name'] == 'Photo'


def test_plot_draws_every_seed_and_the_mean_per_panel(board, tmp_path,
                                                      captured):
    cells = leaderboard([str(board)])['cells']
    out = tmp_path / 'plots' / 'board.png'
    plot_leaderboard(cells, str(out), panels='data.name')
    assert out.stat().st_size > 1000
    assert not [f for f in os.listdir(out.parent) if f.startswith('.tmp')]

    fig, = captured
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ['Cora', 'Photo']
    cora = axes[0]
    # Rows top to bottom in the table's order.
    assert [t.get_text() for t in cora.get_yticklabels()] == [
        'Cora-LGCN', 'Cora-GCN']
    dots = sorted(round(float(x), 6) for coll in cora.collections
                  if isinstance(coll, PathCollection)  # the scatter
                  for x, _ in coll.get_offsets())
    assert dots == [70.0, 78.0, 79.0, 80.0, 90.0]  # percent, every seed
    means = sorted(round(float(line.get_xdata()[0]), 6)
                   for line in cora.lines if line.get_marker() == 'D')
    assert means == [79.0, 80.0]
    # The run with fewer seeds than the most in the plot is flagged.
    assert [t.get_text() for t in cora.texts] == ['2 seeds']
    assert cora.get_xlabel() == 'test accuracy (%), higher is better'


def test_error_bars_span_mean_plus_minus_std_in_plotted_units(
        board, tmp_path, captured):
    # The bar is mean ± std in the axis' units (percent for accuracy), the
    # std scaled like the mean and the dots.
    cells = leaderboard([str(board)])['cells']
    plot_leaderboard(cells, str(tmp_path / 'b.png'), panels='data.name')
    cora = captured[0].axes[0]
    spans = []
    for container in cora.containers:  # one ErrorbarContainer per run
        (segment, ), = [bars.get_segments() for bars in container[2]]
        spans.append(sorted(round(float(x), 6) for x, _ in segment))
    lgcn_std = 100 * (2 * 0.1 ** 2) ** 0.5  # seeds 70 and 90 (%)
    assert sorted(spans) == [[round(80.0 - lgcn_std, 6),
                              round(80.0 + lgcn_std, 6)], [78.0, 80.0]]


def test_plot_without_panels_groups_by_metric(tmp_path, captured):
    _write_run(tmp_path / 'r', 'a-MAE', 'QM9', [0.5, 0.6], metric='mae',
               higher_is_better=False)
    _write_run(tmp_path / 'r', 'b-ROC', 'hiv', [0.7, 0.8], metric='rocauc')
    plot_leaderboard(leaderboard([str(tmp_path / 'r')])['cells'],
                     str(tmp_path / 'b.svg'))
    assert (tmp_path / 'b.svg').read_text().lstrip().startswith('<?xml')
    titles = sorted(ax.get_title() for ax in captured[0].axes)
    assert titles == ['mae', 'rocauc']
    labels = {ax.get_title(): ax.get_xlabel() for ax in captured[0].axes}
    assert labels['mae'] == 'test mae, lower is better'


def test_bad_plot_input_is_named(board, tmp_path):
    cells = leaderboard([str(board)])['cells']
    with pytest.raises(ValueError, match='no runs to plot'):
        plot_leaderboard([], str(tmp_path / 'x.png'))
    # Panels by model name put Cora-GCN and Photo-GCN under 'GCN' with
    # distinct rows, but rows by model name collide there.
    for c in cells:
        c['row'] = c['config']['model']['name']
    with pytest.raises(ValueError, match="panel 'GCN' share a row label"):
        plot_leaderboard(cells, str(tmp_path / 'x.png'), panels='model.name')
    with pytest.raises(ValueError, match='unknown config key'):
        plot_leaderboard(cells, str(tmp_path / 'x.png'), panels='data.nme')
    with pytest.raises(ValueError, match='not supported'):
        plot_leaderboard(cells, str(tmp_path / 'x.notaformat'),
                         panels='data.name')
    assert os.listdir(tmp_path) == [p for p in os.listdir(tmp_path)
                                    if not p.startswith('.tmp')]
    assert not (tmp_path / 'x.png').exists()


def _add_summary(folder, name, split, stats):
    """Adds a summary entry (e.g. a loss) to a run written by _write_run."""
    path = folder / name / 'results.json'
    run = json.loads(path.read_text())
    run['summary'][split] = stats
    path.write_text(json.dumps(run))


def test_two_runs_in_one_cell_are_refused(tmp_path):
    # Guards against a grid silently keeping one of two runs that share a
    # (row, col) cell.
    _write_run(tmp_path / 'a', 'Cora-GCN', 'Cora', [0.8, 0.8])
    _write_run(tmp_path / 'b', 'Cora-GCN', 'Cora', [0.8, 0.8])
    with pytest.raises(ValueError, match=r'share a \(model.name, '
                       r'data.name\) cell'):
        leaderboard([str(tmp_path)], rows='model.name', cols='data.name')


def test_loss_cells_are_unscaled_in_a_grid(tmp_path):
    # Guards against grid cells scaling a loss split like an accuracy
    # (1.95 shown as 195).
    _write_run(tmp_path, 'Cora-GCN', 'Cora', [0.8, 0.8])
    _add_summary(tmp_path, 'Cora-GCN', 'val_loss',
                 {'mean': 1.95, 'std': 0.0707, 'n': 2})
    table = leaderboard([str(tmp_path)], rows='model.name',
                        cols='data.name', split='val_loss')['markdown']
    assert '1.950 ± 0.071' in table and '195' not in table


def test_val_column_only_when_every_run_has_it(tmp_path):
    # Guards against adding the val column when only some runs have a
    # validation score (the others' cells would fail or be blank).
    _write_run(tmp_path, 'Cora-GCN', 'Cora', [0.8, 0.8])
    _write_run(tmp_path, 'Cora-GAT', 'Cora', [0.8, 0.8])
    _add_summary(tmp_path, 'Cora-GAT', 'val',
                 {'mean': 0.7, 'std': 0.0, 'n': 2})
    header = leaderboard([str(tmp_path)])['markdown'].splitlines()[0]
    assert header == '| name | test | #params | epoch (ms) | seeds |'


def test_best_epoch_dot_sits_on_its_curve(tmp_path, captured):
    # Guards against drawing the best-epoch marker at the curve's last value
    # instead of its value at the best epoch.
    rec = {'best_epoch': 2, 'history': {'epoch': [1, 2, 3],
                                        'loss': [1.0, 0.5, 0.4],
                                        'val': [0.1, 0.9, 0.3]}}
    plots_mod.plot_learning_curves({'name': 'r', 'metric': 'acc',
                                    'seeds': {'0': rec}},
                                   str(tmp_path / 'c.png'))
    val_axis = captured[0].axes[1]
    dots = [line for line in val_axis.lines if line.get_marker() == 'o']
    assert [(float(d.get_xdata()[0]), float(d.get_ydata()[0]))
            for d in dots] == [(2.0, 0.9)]


def test_plot_panels_follow_the_table_columns(board, tmp_path, captured):
    # Guards against a grid's plot ignoring the table's columns (one panel
    # per column, as in the markdown table).
    cells = leaderboard([str(board)], rows='model.name',
                        cols='data.name')['cells']
    plot_leaderboard(cells, str(tmp_path / 'b.png'))
    assert [ax.get_title() for ax in captured[0].axes] == ['Cora', 'Photo']
