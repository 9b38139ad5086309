"""Next-frame prediction on moving digits built from scikit-learn's digits.

Two binarized 16x16 digits move on a 32x32 canvas with integer velocities:
with ``--motion independent`` (the default, as DFN's Moving MNIST) each digit
has its own velocity and bounces off the walls; with ``--motion shared``
both move with one velocity per sequence and stay inside the canvas, the
global motion that one filter per sample (DFN dynamic convolution, Klein's
layer) can represent. Three frames predict the next; at test time predictions are fed back for a
3-step rollout. Models of about the same size (~30k parameters):

* Static baseline: the DFN filter-generating network with its filter layer
  replaced by a 1x1 conv (81 -> 1), as the DFN paper's baseline;
* DFN dynamic local filtering (one 9x9 filter per pixel, softmax);
* DFN dynamic convolution (one 9x9 filter per sample, softmax);
* Klein et al.'s DynamicConv2d (one separable 9+9 filter per sample).

Test sets: sequences of unseen digits, and out-of-distribution hollow
rectangles. Metric: binary cross-entropy summed over a 32x32 frame.

    python experiments/vision/moving_digits.py [--motion independent|shared]
        [--steps 600] [--batch 16] [--seed 0]

Results go to results/moving_digits.* (independent) and
results/moving_digits_shared.* (shared).
"""
import argparse
import time

import _common
import matplotlib
import torch
import torch.nn.functional as F

from pyg_hyper.vision import (
    DynamicConv2d,
    DynamicFilterNetwork,
    FilterGenerator,
)

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

SIZE, GLYPH, T_IN, T_OUT = 32, 16, 3, 3
MOTIONS = ('independent', 'shared')
EPS = 1e-5


def glyphs_from_digits(lo, hi):
    x, _ = _common.load_digits_tensor(size=GLYPH)
    return (x[lo:hi, 0] > 0.4).float()


def rectangles(n, gen):
    out = torch.zeros(n, GLYPH, GLYPH)
    for i in range(n):
        h, w = torch.randint(6, GLYPH, (2, ), generator=gen).tolist()
        t = (GLYPH - h) // 2
        left = (GLYPH - w) // 2
        out[i, t:t + h, left:left + w] = 1
        out[i, t + 2:t + h - 2, left + 2:left + w - 2] = 0
    return out


def _velocity(gen):
    vel = torch.randint(-2, 3, (2, ), generator=gen)
    if int(vel.abs().sum()) == 0:
        vel[0] = 1
    return vel


def _start_without_bounce(vel, gen):
    # A start from which T_IN + T_OUT - 1 steps of `vel` stay on the canvas.
    travel = (T_IN + T_OUT - 1) * vel
    lo = (-travel).clamp(min=0)
    hi = (SIZE - GLYPH) - travel.clamp(min=0)
    u = torch.rand(2, generator=gen)
    return lo + (u * (hi - lo + 1).float()).long().clamp(max=hi - lo)


def sequences(glyphs, n, gen, num_objects=2, motion='independent'):
    frames = torch.zeros(n, T_IN + T_OUT, SIZE, SIZE)
    span = SIZE - GLYPH
    for i in range(n):
        shared = _velocity(gen) if motion == 'shared' else None
        for _ in range(num_objects):
            g = glyphs[torch.randint(len(glyphs), (1, ), generator=gen)][0]
            if shared is None:
                pos = torch.randint(0, span + 1, (2, ), generator=gen)
                vel = _velocity(gen)
            else:
                vel = shared.clone()
                pos = _start_without_bounce(vel, gen)
            for t in range(T_IN + T_OUT):
                y, x = pos.tolist()
                frames[i, t, y:y + GLYPH, x:x + GLYPH] = torch.maximum(
                    frames[i, t, y:y + GLYPH, x:x + GLYPH], g)
                pos = pos + vel
                for d in range(2):  # bounce off the walls
                    if pos[d] < 0 or pos[d] > span:
                        vel[d] = -vel[d]
                        pos[d] = pos[d] + 2 * vel[d]
    return frames


class StaticBaseline(torch.nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.generator = FilterGenerator(T_IN, 9, hidden, local=True)
        self.out = torch.nn.Conv2d(81, 1, 1)

    def forward(self, x):
        return torch.sigmoid(self.out(self.generator(x)))


def make_models():
    return {
        'Static baseline (1x1 conv)': StaticBaseline(24),
        'DFN local filtering': DynamicFilterNetwork(T_IN, 9, 24, local=True),
        'DFN dynamic conv': DynamicFilterNetwork(T_IN, 9, 30, local=False),
        'Klein DynamicConv2d': DynamicConv2d(T_IN, 9, hidden_channels=40),
    }


def bce(pred, target):
    pred = pred.clamp(EPS, 1 - EPS)
    return F.binary_cross_entropy(pred, target, reduction='sum') / len(pred)


@torch.no_grad()
def rollout(model, seq):
    frames = seq[:, :T_IN]
    preds = []
    for _ in range(T_OUT):
        p = model(frames)
        preds.append(p)
        frames = torch.cat([frames[:, 1:], p], dim=1)
    return torch.cat(preds, dim=1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--steps', type=int, default=600)
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--train', type=int, default=2000)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--motion', choices=MOTIONS, default='independent')
    args = parser.parse_args()
    started = time.time()
    _common.setup(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    motion = dict(motion=args.motion)
    train = sequences(glyphs_from_digits(0, 1200), args.train, gen, **motion)
    tests = {
        'digits': sequences(glyphs_from_digits(1200, 1797), 300, gen,
                            **motion),
        'rectangles (OOD)': sequences(rectangles(64, gen), 300, gen,
                                      **motion),
    }
    results = {}
    preds_for_plot = {}
    for name, model in make_models().items():
        torch.manual_seed(args.seed)
        def loss_fn(model):
            idx = torch.randint(len(train), (args.batch, ))
            t = int(torch.randint(0, T_OUT, ()))
            x = train[idx, t:t + T_IN]
            return bce(model(x), train[idx, t + T_IN:t + T_IN + 1])

        res = {'train_s': _common.fit(model, args.steps, loss_fn),
               'params': _common.num_params(model)}
        model.eval()
        for test_name, seq in tests.items():
            pred = rollout(model, seq)
            res[test_name] = [bce(pred[:, k:k + 1], seq[:, T_IN + k:T_IN + k +
                                                         1]).item()
                              for k in range(T_OUT)]
        preds_for_plot[name] = rollout(model, tests['digits'][:1])[0]
        results[name] = res
        print(name, res, flush=True)
    copy = {n: bce(seq[:, T_IN - 1:T_IN], seq[:, T_IN:T_IN + 1]).item()
            for n, seq in tests.items()}
    results['Copy last frame'] = copy

    rows = []
    for name, r in results.items():
        if name == 'Copy last frame':
            rows.append([name, 0, r['digits'], '-', r['rectangles (OOD)'],
                         '-'])
            continue
        rows.append([name, r['params'], r['digits'][0], r['digits'][2],
                     r['rectangles (OOD)'][0], r['rectangles (OOD)'][2]])

    base = results['Static baseline (1x1 conv)']['digits']
    verdicts = []
    for name in list(results)[1:4]:
        d = results[name]['digits']
        verdicts.append(
            f"{name}: t+1 {d[0]:.1f} vs baseline {base[0]:.1f}, t+3 "
            f"{d[2]:.1f} vs {base[2]:.1f} (gap {base[0] - d[0]:+.1f} -> "
            f"{base[2] - d[2]:+.1f})")
    gaps = {n: (base[0] - results[n]['digits'][0],
                base[2] - results[n]['digits'][2]) for n in list(results)[1:4]}
    local = gaps['DFN local filtering']
    better = [n for n, g in gaps.items() if g[0] > 0]
    grows = [n for n, g in gaps.items() if g[1] > max(g[0], 0)]
    if len(better) == len(gaps) and len(grows) == len(gaps):
        summary = ('Reproduced for all 3 dynamic models (better at t+1, '
                   'gap grows by t+3). ')
    elif 0 < local[0] < local[1]:
        summary = ('Reproduced for per-pixel filters (better at t+1, gap '
                   'grows by t+3). ')
    else:
        summary = 'Not reproduced for per-pixel filters. '
    summary += (f'Better at t+1: {len(better)} of 3 dynamic models; the gap '
                f'grows over the rollout for {len(grows)} of 3; ')
    verdict = (summary + '; '.join(verdicts) +
               '. Positive gaps favour the dynamic model.')

    fig, axes = plt.subplots(1 + len(preds_for_plot), T_IN + T_OUT,
                             figsize=(9, 1.6 * (1 + len(preds_for_plot))))
    seq = tests['digits'][0]
    for t in range(T_IN + T_OUT):
        axes[0, t].imshow(seq[t], cmap='gray', vmin=0, vmax=1)
        axes[0, t].set_title('input' if t < T_IN else f't+{t - T_IN + 1}')
    axes[0, 0].set_ylabel('truth', fontsize=8)
    for row, (name, pred) in enumerate(preds_for_plot.items(), start=1):
        for t in range(T_OUT):
            axes[row, T_IN + t].imshow(pred[t], cmap='gray', vmin=0, vmax=1)
        axes[row, T_IN].set_ylabel(name.replace(' (1x1 conv)', ''),
                                   fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        if not ax.images:
            ax.axis('off')
    claim = ('Dynamic filtering predicts the next frame better than a '
             'static conv of the same size, and the gap grows over a 3-step '
             'rollout (DFN Moving MNIST: BCE 282.3 vs 434.8).')
    if args.motion == 'shared':
        claim += (' Here both digits share one velocity per sequence, the '
                  'global motion of Klein et al.\'s setting.')
    _common.save(
        'moving_digits' + ('_shared' if args.motion == 'shared' else ''),
        args.seed, started, results,
        ['Model', 'Params', 'Digits BCE t+1', 'Digits BCE t+3',
         'OOD BCE t+1', 'OOD BCE t+3'], rows, claim, verdict, fig)


if __name__ == '__main__':
    main()
