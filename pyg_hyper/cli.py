"""The ``pyg-hyper`` command: train, evaluate and aggregate experiments.

Examples::

    pyg-hyper train experiments/citation/models/*.yaml data.name=Cora \\
        --out experiments/citation/results/cora
    pyg-hyper evaluate experiments/citation/results/cora/Cora-LGCN
    pyg-hyper aggregate experiments/citation/results --rows model.name \\
        --cols data.name
"""
import argparse
import os
import sys
from typing import List, Optional, Sequence

from pyg_hyper.utils.malloc import add_malloc_option, apply_malloc_option

__all__ = ['build_parser', 'main']


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also rendered as the CLI reference in the
    docs)."""
    parser = argparse.ArgumentParser(
        prog='pyg-hyper',
        description='Run pyg_hyper experiments: multi-seed training with '
        'early stopping, re-evaluation of saved models, and leaderboards.')
    parser.add_argument('--version', action='version',
                        version=f'%(prog)s {_version()}')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')

    train = sub.add_parser(
        'train', help='train every seed of one or more configs',
        description='Train every seed of one or more YAML configs. Each run '
        'writes OUT/<name>/{results.json,results.md,curves.png}. Seeds '
        'already recorded there are skipped, so rerunning an interrupted '
        'command resumes it. With several configs, OUT/leaderboard.md '
        'summarizes them.')
    train.add_argument(
        'items', nargs='+', metavar='CONFIG|KEY=VALUE',
        help='YAML config files, and dotted overrides applied to each, e.g. '
        'data.name=CiteSeer optim.lr=0.01 seeds=3')
    _add_device(train)
    train.add_argument('--out', '-o', default='results',
                       help='results folder (default: %(default)s)')
    train.add_argument('--fresh', action='store_true',
                       help='discard recorded seeds, mid-seed checkpoints, '
                       'saved models and reports instead of resuming')
    train.add_argument('--dry-run', action='store_true',
                       help='print the resolved config(s), check that each can '
                       'continue the record already in --out (as train '
                       'would; skipped with --fresh), and exit')
    _add_progress(train)

    evaluate = sub.add_parser(
        'evaluate', help="re-evaluate a run's saved best models",
        description="Rebuild data and models from a run's recorded config, "
        "load each seed's best-validation weights and recompute all scores. "
        "Writes RUN/evaluation.json.")
    evaluate.add_argument('run', help='a run folder written by train')
    _add_device(evaluate)
    _add_progress(evaluate)

    aggregate = sub.add_parser(
        'aggregate', help='build a mean ± std table over runs',
        description='Collect results.json files and print a markdown table '
        'of mean ± std.')
    aggregate.add_argument('paths', nargs='+',
                           help='run folders, results.json files, or '
                           'folders searched recursively')
    aggregate.add_argument('--rows', default='name',
                           help='config key labelling rows '
                           '(default: %(default)s)')
    aggregate.add_argument('--cols', default=None,
                           help='config key labelling columns, e.g. '
                           'data.name (default: one column per property)')
    aggregate.add_argument('--split', default='test',
                           help='score to show (default: %(default)s)')
    aggregate.add_argument('--digits', type=_decimals, default=None,
                           help='decimals (default: two significant digits '
                           'of each std)')
    aggregate.add_argument('--output', default=None,
                           help='also write the table to this file')
    aggregate.add_argument('--plot', default=None, metavar='IMAGE',
                           help='also draw every seed and the mean ± std '
                                'of each run to this image (.png, .svg, '
                                '.pdf)')
    aggregate.add_argument('--panels', default=None, metavar='KEY',
                           help='config key that splits the plot into '
                                'panels, e.g. data.name (default: the '
                                'columns, else one panel per metric)')

    sub.add_parser('tasks', help='list the registered tasks',
                   description='List the registered tasks.')
    return parser


def _version() -> str:
    import pyg_hyper
    return pyg_hyper.__version__


def _add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument('--device', default='cpu',
                   help="'cpu', 'cuda' or 'cuda:<index>' "
                   '(default: %(default)s)')
    add_malloc_option(p)


def _add_progress(p: argparse.ArgumentParser) -> None:
    p.add_argument('--no-progress', action='store_true',
                   help='hide progress bars')


def _split_items(items: Sequence[str]):
    configs = [i for i in items if '=' not in i]
    overrides = [i for i in items if '=' in i]
    for item in configs:
        if not os.path.isfile(item) and not item.endswith(('.yaml', '.yml')):
            # 'data.name CiteSeer' (a space for '=') reads as two configs.
            raise ValueError(f"'{item}' is neither a config file nor a "
                             f"KEY=VALUE override (overrides are written "
                             f"without spaces, e.g. data.name=CiteSeer)")
    if not configs:
        raise ValueError('train needs at least one YAML config file (got only '
                         f'overrides: {overrides})')
    return configs, overrides


def _train(args: argparse.Namespace, argv: List[str]) -> None:
    import yaml

    from pyg_hyper.experiment import (
        build_config,
        leaderboard,
        plot_leaderboard,
        resumable_record,
        train,
    )
    from pyg_hyper.experiment.results import atomic_write_text

    if not args.out.strip():
        raise ValueError("--out is empty; give the results folder (default: "
                         "results)")
    configs, overrides = _split_items(args.items)
    cfgs = [build_config(path, overrides) for path in configs]
    names = [cfg['name'] for cfg in cfgs]
    for name in names:
        # The name becomes a folder under --out and must stay there.
        if not name or name in ('.', '..') or any(
                sep in name for sep in ('/', '\\', os.sep)):
            raise ValueError(f"run name {name!r} cannot be a folder name "
                             f"under --out; give a name without path "
                             f"separators (name=...)")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f'several configs resolve to the same run name '
                         f'{dupes}; give each a distinct name: key')
    if args.dry_run:
        for path, cfg in zip(configs, cfgs):
            print(f'# {path}')
            if not args.fresh:
                # Refuses (as train would) a record this config cannot
                # continue: a stale command fails here, not hours in.
                out_dir = os.path.join(args.out, cfg['name'])
                record = resumable_record(cfg, out_dir)
                if record is not None:
                    print(f"# resumes {len(record['seeds'])} recorded "
                          f"seeds in {out_dir}")
            print(yaml.safe_dump(cfg, sort_keys=False))
        return
    out_dirs = []
    for cfg in cfgs:
        out_dir = os.path.join(args.out, cfg['name'])
        results = train(cfg, out_dir, device=args.device,
                        progress=not args.no_progress, fresh=args.fresh,
                        argv=['pyg-hyper'] + argv)
        out_dirs.append(out_dir)
        summary = results.get('summary', {})
        print(f"{cfg['name']}: test "
              f"{_fmt(summary.get('test'), results['metric'])} "
              f"(val {_fmt(summary.get('val'), results['metric'])}) over "
              f"{len(results['seeds'])} seeds -> {out_dir}")
    if len(out_dirs) > 1:
        board = leaderboard(out_dirs)
        atomic_write_text(os.path.join(args.out, 'leaderboard.md'),
                          board['markdown'])
        plot_leaderboard(board['cells'],
                         os.path.join(args.out, 'leaderboard.png'))
        print(board['markdown'], end='')


def _fmt(stats, metric: str, split: str = 'test') -> str:
    from pyg_hyper.experiment.results import format_mean_std, score_scale
    return format_mean_std(stats or {}, score_scale(metric, split))


def _evaluate(args: argparse.Namespace) -> None:
    from pyg_hyper.experiment import evaluate
    out = evaluate(args.run, device=args.device,
                   progress=not args.no_progress)
    for key, stats in out['summary'].items():
        rec = out['recorded_summary'].get(key)
        print(f"{key}: {_fmt(stats, out['metric'], key)} "
              f"(recorded {_fmt(rec, out['metric'], key)})")


def _decimals(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a whole number of '
                                         f'decimals, 0 to 12 (got '
                                         f'{text!r})') from None
    if not 0 <= value <= 12:
        raise argparse.ArgumentTypeError(f'expected 0 to 12 decimals (got '
                                         f'{value})')
    return value


def _aggregate(args: argparse.Namespace) -> None:
    from pyg_hyper.experiment import leaderboard
    from pyg_hyper.experiment.results import atomic_write_text, check_writable
    # Before the work, like 'train': a table or plot that cannot be
    # written should not cost a traceback at the end.
    for flag, path in (('--plot', args.plot), ('--output', args.output)):
        if path:
            if os.path.isdir(path):
                raise ValueError(f"{flag} '{path}' is a folder; give a file "
                                 f"path")
            check_writable(os.path.dirname(os.path.abspath(path)),
                           fix=f'pass another path with {flag}')
    if args.panels and not args.plot:
        raise ValueError('--panels arranges the plot: it needs --plot')
    board = leaderboard(args.paths, rows=args.rows, cols=args.cols,
                        split=args.split, digits=args.digits)
    if args.plot:
        from pyg_hyper.experiment import plot_leaderboard
        plot_leaderboard(board['cells'], args.plot, split=args.split,
                         panels=args.panels)
    if args.output:
        atomic_write_text(args.output, board['markdown'])
    print(board['markdown'], end='')


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``pyg-hyper`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == 'train' and not any(
            item.startswith('-') for item in extra):
        # argparse stops collecting positionals at the first option, so
        # 'train c.yaml --out d lr=0.1' would refuse 'lr=0.1'.
        args.items += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command is None:
        parser.print_help()
        return 2
    if args.command in ('train', 'evaluate'):
        apply_malloc_option(args)
    try:
        if args.command == 'train':
            _train(args, argv)
        elif args.command == 'evaluate':
            _evaluate(args)
        elif args.command == 'aggregate':
            _aggregate(args)
        elif args.command == 'tasks':
            from pyg_hyper.experiment import available_tasks
            print('\n'.join(available_tasks()))
    except (ValueError, OSError) as e:
        # Bad input is the user's to fix: a clear message, no traceback.
        # OSError: missing raw files, a root that cannot be written, which
        # the loaders describe in their messages.
        print(f'pyg-hyper: error: {e}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('pyg-hyper: interrupted; finished seeds are saved, rerun the '
              'same command to resume', file=sys.stderr)
        return 130
    return 0


if __name__ == '__main__':
    sys.exit(main())
