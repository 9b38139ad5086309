"""Runner behaviour around model selection and resuming, beside
test_runner.py: patience and the forced last evaluation with ``eval_every``,
what ``selection=val_and_loss`` keeps, a resumed record carrying the new
config, version warnings only for sessions that ran seeds, and ``--fresh``
discarding an old ``evaluate`` result."""
import json
import warnings

from pyg_hyper.experiment import build_config, evaluate
from pyg_hyper.experiment import runner as runner_mod
from tests.experiment.test_runner import _train
from tests.experiment.toy_task import ToyTask


def _scripted(monkeypatch, scores):
    """ToyTask.evaluate returns the given scores, one dict per call."""
    it = iter(scores)
    monkeypatch.setattr(ToyTask, 'evaluate',
                        lambda self, model, data, cfg: dict(next(it)))


def test_patience_counts_epochs_not_evaluations(toy_config, tmp_path,
                                                monkeypatch):
    # Guards against patience counting evaluations instead of epochs when
    # eval_every > 1 (training would run eval_every times too long).
    _scripted(monkeypatch, [{'val': 0.5, 'test': 0.5}] * 20)
    cfg = build_config(toy_config, ['epochs=20', 'eval_every=2',
                                    'patience=4', 'seeds=1'])
    rec = _train(cfg, tmp_path / 'run')['seeds']['0']
    # Best at epoch 2; 4 epochs (two evaluations) later it stops.
    assert (rec['best_epoch'], rec['epochs_run']) == (2, 6)


def test_the_last_epoch_is_always_evaluated(toy_config, tmp_path):
    # Guards against skipping the final epoch's evaluation when epochs is
    # not a multiple of eval_every.
    cfg = build_config(toy_config, ['epochs=5', 'eval_every=2',
                                    'patience=0', 'seeds=1'])
    rec = _train(cfg, tmp_path / 'run')['seeds']['0']
    assert rec['history']['epoch'] == [2, 4, 5]


def test_val_and_loss_keeps_only_epochs_that_pass_both(
        toy_config, tmp_path, monkeypatch):
    # Guards against saving the best weights on every epoch that resets the
    # patience (better in either) instead of only on one better in both.
    _scripted(monkeypatch, [
        {'val': v, 'val_loss': loss, 'test': t} for v, loss, t in
        [(0.5, 1.0, 0.1), (0.6, 1.1, 0.2), (0.6, 0.9, 0.3),
         (0.55, 0.95, 0.4), (0.55, 0.8, 0.5)]])
    cfg = build_config(toy_config, ['epochs=5', 'patience=0', 'seeds=1',
                                    'selection=val_and_loss'])
    rec = _train(cfg, tmp_path / 'run')['seeds']['0']
    # Epochs 2 and 5 reset the patience but are not kept (GAT's rule).
    assert rec['best_epoch'] == 3 and rec['scores']['test'] == 0.3


def test_resumed_record_carries_the_new_config(toy_config, tmp_path):
    # Guards against a resumed run (more seeds) keeping the old config in
    # its record.
    _train(build_config(toy_config, ['seeds=1', 'epochs=3']), tmp_path / 'r')
    res = _train(build_config(toy_config, ['seeds=2', 'epochs=3']),
                 tmp_path / 'r')
    on_disk = json.loads((tmp_path / 'r' / 'results.json').read_text())
    assert res['config']['seeds'] == on_disk['config']['seeds'] == 2


def test_sessions_that_ran_no_seed_are_not_compared(toy_config, tmp_path,
                                                    monkeypatch):
    # Guards against a mixed-version warning caused by a session under other
    # code that was killed before it finished any seed.
    real = runner_mod.environment_record
    monkeypatch.setattr(runner_mod, 'environment_record',
                        lambda *a, **k: {**real(*a, **k),
                                         'git_commit': 'a' * 40})
    cfg = ['epochs=3']
    _train(build_config(toy_config, cfg + ['seeds=1']), tmp_path / 'r')
    path = tmp_path / 'r' / 'results.json'
    record = json.loads(path.read_text())
    record['sessions'].append({**record['sessions'][0],
                               'git_commit': 'c' * 40, 'seeds_run': []})
    path.write_text(json.dumps(record))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        res = _train(build_config(toy_config, cfg + ['seeds=2']),
                     tmp_path / 'r')
    assert sorted(res['seeds']) == ['0', '1']
    assert not [w for w in caught if 'other versions' in str(w.message)]


def test_fresh_discards_the_old_evaluation(toy_config, tmp_path):
    # Guards against --fresh keeping evaluation.json, which then described
    # models that no longer exist.
    cfg = build_config(toy_config, ['seeds=1', 'epochs=3'])
    _train(cfg, tmp_path / 'run')
    evaluate(str(tmp_path / 'run'), progress=False)
    assert (tmp_path / 'run' / 'evaluation.json').exists()
    _train(cfg, tmp_path / 'run', fresh=True)
    assert not (tmp_path / 'run' / 'evaluation.json').exists()
