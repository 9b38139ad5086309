"""Builds the TU leaderboard (both protocols, anchors beside) from run
folders written by ``pyg-hyper train``.

    python experiments/tu/summarize.py RUNS_DIR [--out experiments/tu/results]
"""
import argparse
import glob
import itertools
import json
import os

from pyg_hyper.experiment.results import atomic_write_json, atomic_write_text
from pyg_hyper.experiment.tu_task import protocol_summary

#: Published accuracies (%) under the GIN protocol (GIN: Xu et al. 2019,
#: Table 1; IGN: Maron et al. 2019, as quoted in the issue).
ANCHORS = {
    'gin': {'MUTAG': '89.4 ± 5.6', 'PTC': '64.6 ± 7.0',
            'PROTEINS': '76.2 ± 2.8', 'NCI1': '82.7 ± 1.7',
            'IMDBBINARY': '75.1 ± 5.1', 'IMDBMULTI': '52.3 ± 2.8'},
    'ign': {'MUTAG': '83.9 ± 13.0', 'PTC': '58.5 ± 6.9',
            'PROTEINS': '76.6 ± 5.5', 'NCI1': '74.3 ± 2.7'},
}
ORDER = ['gin', 'hyper_gin', 'ign', 'hyper_ign']
TWINS = [('gin', 'hyper_gin'), ('ign', 'hyper_ign')]


def restrict(results, seeds):
    """The results of a run restricted to the given folds (seeds)."""
    return dict(results, seeds={s: results['seeds'][s] for s in seeds})


def fmt(p):
    return f"{100 * p['mean']:.1f} ± {100 * p['std']:.1f}"


def inner_val_score(score):
    """The inner-validation score, or a dash for a run without one (the GIN
    protocol as published holds out no inner split)."""
    return fmt(score) if score else '–'


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('runs', help='folder holding <model>-<dataset>/ runs')
    ap.add_argument('--out', default=os.path.join(os.path.dirname(
        os.path.abspath(__file__)), 'results'))
    args = ap.parse_args()
    rows, runs = [], {}
    for path in sorted(glob.glob(os.path.join(args.runs, '*',
                                              'results.json'))):
        with open(path) as f:
            res = json.load(f)
        cfg = res['config']
        # The run name (TUTask.describe) also tells a non-default
        # hypernetwork width, e.g. hyper_gin-r8-MUTAG.
        label = res['name'][:-len(cfg['data']['name']) - 1]
        # A model can have several runs (hypernetwork width, generator
        # init), each compared with its twin.
        runs.setdefault((cfg['model']['name'], cfg['data']['name']),
                        []).append((res, label))
        summ = protocol_summary(res)
        seeds = res['seeds'].values()
        rows.append({
            'model': cfg['model']['name'], 'label': label,
            'dataset': cfg['data']['name'],
            'folds': summ['folds'], 'epochs': cfg['epochs'],
            'gin_protocol': summ['gin'],
            'inner_val_protocol': summ.get('inner_val'),
            'num_params': res.get('num_params'),
            'epoch_time_s': sum(s['epoch_time_s'] for s in seeds)
            / max(len(seeds), 1),
            'command': res['environment']['command'],
            'environment': res['environment'],
            'config': cfg,
        })
    rows.sort(key=lambda r: (r['dataset'], ORDER.index(r['model'])
                             if r['model'] in ORDER else 99))
    lines = ['| dataset | model | folds | epochs | GIN protocol (%) | '
             'inner-val protocol (%) | published (GIN protocol) | params | '
             's/epoch |', '|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        anchor = ANCHORS.get(r['model'], {}).get(r['dataset'], '–')
        lines.append(f"| {r['dataset']} | {r['label']} | {r['folds']} | "
                     f"{r['epochs']} | {fmt(r['gin_protocol'])} "
                     f"(epoch {r['gin_protocol']['epoch']}) | "
                     f"{inner_val_score(r['inner_val_protocol'])} | "
                     f"{anchor} | {r['num_params']} | "
                     f"{r['epoch_time_s']:.2f} |")
    # Twins on the folds both finished, so that a comparison is paired.
    paired = []
    lines += ['', '| dataset | plain vs hyper | common folds | GIN protocol '
              'plain / hyper (%) | inner-val protocol plain / hyper (%) |',
              '|---|---|---|---|---|']
    for plain, hyper in TWINS:
        for ds in sorted({d for (_, d) in runs}):
            for (a, plain_label), (b, hyper_label) in itertools.product(
                    runs.get((plain, ds), []), runs.get((hyper, ds), [])):
                common = sorted(set(a['seeds']) & set(b['seeds']), key=int)
                if not common:
                    continue
                sa, sb = (protocol_summary(restrict(r, common))
                          for r in (a, b))
                paired.append({'dataset': ds, 'plain': plain_label,
                               'hyper': hyper_label,
                               'folds': [int(s) for s in common],
                               'plain_summary': sa, 'hyper_summary': sb})
                lines.append(
                    f"| {ds} | {plain_label} vs {hyper_label} | "
                    f"{len(common)} | {fmt(sa['gin'])} / {fmt(sb['gin'])} | "
                    f"{inner_val_score(sa.get('inner_val'))} / "
                    f"{inner_val_score(sb.get('inner_val'))} |")
    os.makedirs(args.out, exist_ok=True)
    atomic_write_json(os.path.join(args.out, 'leaderboard.json'),
                      {'runs': rows, 'paired': paired})
    atomic_write_text(os.path.join(args.out, 'leaderboard.md'),
                      '\n'.join(lines) + '\n')
    print('\n'.join(lines))


if __name__ == '__main__':
    main()
