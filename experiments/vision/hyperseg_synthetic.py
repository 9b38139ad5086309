"""HyperSeg's patch-wise hypernetwork decoder on two synthetic segmentation
tasks, against a static decoder of about the same size that gets the same
backbone and context-head features.

* ``global``: 32x32 RGB images hold discs of three colours; a 2-pixel border
  says which colour is the foreground. One rule for the whole image, set by
  global context.
* ``patch``: each 8x8 patch (one signal pixel) has its own background tint,
  one of 6 hues, and grey 2x2 blocks of 4 grey levels; a block's class (1-4,
  0 is the background) is the grey level mapped through the tint's own
  permutation. The per-pixel rule differs from patch to patch, which is
  what patch-wise generated weights are for.

Three models, the same steps, batch, learning rate and seeds:

* the static decoder (``StaticSeg``): the signal map is projected,
  upsampled and concatenated at every level;
* HyperSeg as in the paper and the official code: bias-free,
  default-initialized ``signal2weights`` (with the official code's
  ``with_out_fc=True`` decoder variant, a patch-wise classifier after the
  last level);
* HyperSeg with ``static_base=True``: weights = a learned shared base +
  a zero-initialized generated part (not in the paper; the recipe of
  Conditioned SR), so it starts as a static decoder.

The backbone's stages are 2x2 convolutions at stride 2, so that signal pixel
(i, j) sees exactly patch (i, j), as the method assumes. (3x3, stride-2,
padding-1 stages centre it on the patch's top-left corner; in a diagnostic
run that hurt the static decoder more than HyperSeg, see the README, so this
choice favours the baseline.)

    python experiments/vision/hyperseg_synthetic.py [--global-steps 300] \
        [--patch-steps 500] [--seeds 0 1]

The paper-init ablation runs on the first seed only (CPU budget).
"""
import argparse
import itertools
import statistics
import time

import _common
import matplotlib
import torch
import torch.nn.functional as F

from pyg_hyper.vision import ContextHead, HyperSeg

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

SIZE, GRID = 32, 4
COLOURS = torch.tensor([[1.0, 0.2, 0.2], [0.2, 1.0, 0.2], [0.2, 0.2, 1.0]])
# The patch task: hues on a circle in the chroma plane (orthogonal to grey),
# grey levels for the content, and one fixed permutation per hue.
NUM_HUES, NUM_GREYS = 6, 4
GREYS = torch.linspace(0.3, 1.0, NUM_GREYS)
_ANGLES = torch.arange(NUM_HUES) * 2 * torch.pi / NUM_HUES
_E1 = torch.tensor([2.0, -1.0, -1.0]) / 6**0.5
_E2 = torch.tensor([0.0, 1.0, -1.0]) / 2**0.5
HUES = 0.15 + 0.25 * (_ANGLES.cos()[:, None] * _E1 +
                      _ANGLES.sin()[:, None] * _E2)
_PERMS = list(itertools.permutations(range(NUM_GREYS)))
TABLE = torch.tensor([  # distinct permutations, fixed for every seed
    _PERMS[i] for i in torch.randperm(
        len(_PERMS), generator=torch.Generator().manual_seed(0))[:NUM_HUES]
])


def global_images(n, gen):
    r = torch.arange(SIZE, dtype=torch.float)
    yy, xx = torch.meshgrid(r, r, indexing='ij')
    x = 0.1 * torch.rand(n, 3, SIZE, SIZE, generator=gen)
    y = torch.zeros(n, SIZE, SIZE, dtype=torch.long)
    for i in range(n):
        target = int(torch.randint(3, (), generator=gen))
        for _ in range(int(torch.randint(4, 8, (), generator=gen))):
            c = int(torch.randint(3, (), generator=gen))
            cy, cx = (4 + torch.rand(2, generator=gen) * (SIZE - 8)).tolist()
            rad = 2 + 2 * float(torch.rand((), generator=gen))
            disc = (yy - cy)**2 + (xx - cx)**2 <= rad * rad
            x[i][:, disc] = COLOURS[c][:, None]
            y[i][disc] = int(c == target)
        border = torch.ones(SIZE, SIZE, dtype=torch.bool)
        border[2:-2, 2:-2] = False
        x[i][:, border] = COLOURS[target][:, None]
        y[i][border] = 0
    return x, y


def patch_images(n, gen):
    def up(t, f):
        return t.repeat_interleave(f, 1).repeat_interleave(f, 2)

    hue = up(torch.randint(NUM_HUES, (n, GRID, GRID), generator=gen),
             SIZE // GRID)
    blocks = (n, SIZE // 2, SIZE // 2)
    occupied = up(torch.rand(blocks, generator=gen) < 0.3, 2)
    grey = up(torch.randint(NUM_GREYS, blocks, generator=gen), 2)
    x = torch.where(occupied[:, None], GREYS[grey][:, None].expand(-1, 3, -1,
                                                                   -1),
                    HUES[hue].permute(0, 3, 1, 2))
    x = x + 0.03 * torch.randn(x.shape, generator=gen)
    y = torch.where(occupied, 1 + TABLE[hue, grey], torch.zeros_like(grey))
    return x, y


TASKS = {  # name: (generator, classes, default steps, description)
    # The global rule is learnt in fewer steps; the budget is ~5 CPU minutes.
    'global': (global_images, 2, 300,
               'one rule per image, set by the border colour'),
    'patch': (patch_images, 1 + NUM_GREYS, 500,
              'a colour-to-class table per 8x8 patch, set by its tint'),
}


class Backbone(torch.nn.Module):
    """Three 2x2, stride-2 stages: features at 1/2, 1/4 and 1/8 resolution,
    each pixel seeing exactly its own 2x2, 4x4 or 8x8 block."""
    channels = [16, 32, 64]

    def __init__(self):
        super().__init__()
        chans = [3] + self.channels
        self.stages = torch.nn.ModuleList([
            torch.nn.Sequential(
                torch.nn.Conv2d(i, o, 2, stride=2, bias=False),
                torch.nn.BatchNorm2d(o), torch.nn.ReLU())
            for i, o in zip(chans[:-1], chans[1:])
        ])

    def forward(self, x):
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


class StaticSeg(torch.nn.Module):
    """Same backbone and context head; a regular decoder that concatenates
    the upsampled signal map at every level."""
    def __init__(self, num_classes, widths=(16, 12, 8), signal_width=16):
        super().__init__()
        self.backbone = Backbone()
        self.context_head = ContextHead(64, levels=2)
        self.signal_proj = torch.nn.Conv2d(64, signal_width, 1)
        skips = [32, 16, 3]
        self.levels = torch.nn.ModuleList()
        prev = 0
        for skip, w in zip(skips, widths):
            self.levels.append(torch.nn.Sequential(
                torch.nn.Conv2d(skip + prev + signal_width, w, 3, padding=1,
                                bias=False), torch.nn.BatchNorm2d(w),
                torch.nn.ReLU()))
            prev = w
        self.out = torch.nn.Conv2d(prev, num_classes, 1)

    def forward(self, x):
        f1, f2, f3 = self.backbone(x)
        signal = self.signal_proj(self.context_head(f3))
        p = None
        for skip, level in zip([f2, f1, x], self.levels):
            h = [skip, F.interpolate(signal, skip.shape[-2:], mode='nearest')]
            if p is not None:
                h.append(F.interpolate(p, skip.shape[-2:], mode='bilinear',
                                       align_corners=False))
            p = level(torch.cat(h, dim=1))
        return self.out(p)


def hyperseg(num_classes, static_base):
    # with_out_fc=True (a patch-wise 1x1 classifier after the last level,
    # with its own weight group) is the decoder the recorded runs used; the
    # official configs, and our default, let the last level output classes.
    return HyperSeg(Backbone(), Backbone.channels, in_channels=3,
                    num_classes=num_classes, level_channels=[16, 8, 8],
                    weight_groups=[8, 8, 4, 2], context_levels=2,
                    static_base=static_base, with_out_fc=True)


PAPER_INIT = 'HyperSeg (paper init)'  # the ablation, first seed only
MODELS = {  # name: constructor(num_classes)
    'Static decoder + same context': lambda c: StaticSeg(c),
    PAPER_INIT: lambda c: hyperseg(c, False),
    'HyperSeg (static base + zero-init generator)':
    lambda c: hyperseg(c, True),
}


def miou(logits, y, num_classes):
    pred = logits.argmax(1)
    ious = []
    for c in range(num_classes):
        inter = ((pred == c) & (y == c)).sum().item()
        union = ((pred == c) | (y == c)).sum().item()
        ious.append(inter / max(union, 1))
    return sum(ious) / num_classes


def run_task(task, seed, steps, names, args):
    make, classes = TASKS[task][:2]
    gen = torch.Generator().manual_seed(seed)
    x_tr, y_tr = make(2000, gen)
    x_te, y_te = make(400, gen)
    out = {}
    for name in names:
        build = MODELS[name]
        torch.manual_seed(seed)
        model = build(classes)
        torch.manual_seed(seed)  # the same batches for every model

        def loss_fn(model):
            idx = torch.randint(len(x_tr), (args.batch, ))
            return F.cross_entropy(model(x_tr[idx]), y_tr[idx])

        train_s = _common.fit(model, steps, loss_fn, lr=args.lr)
        model.eval()
        with torch.no_grad():
            logits = model(x_te)
        out[name] = {'params': _common.num_params(model), 'train_s': train_s,
                     'test_miou': miou(logits, y_te, classes),
                     'examples': logits[:2].argmax(1)}
        print(task, seed, name, {k: v for k, v in out[name].items()
                                 if k != 'examples'}, flush=True)
    return x_te[:2], y_te[:2], out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--global-steps', type=int,
                        default=TASKS['global'][2])
    parser.add_argument('--patch-steps', type=int, default=TASKS['patch'][2])
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--lr', type=float, default=5e-3)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    args = parser.parse_args()
    started = time.time()
    _common.setup(args.seeds[0])  # one thread; each model reseeds
    steps = {'global': args.global_steps, 'patch': args.patch_steps}
    results = {'tasks': {t: TASKS[t][3] for t in TASKS}, 'steps': steps,
               'lr': args.lr, 'batch': args.batch, 'seeds': args.seeds,
               'paper_init_seeds': args.seeds[:1]}
    pictures = {}
    for task in TASKS:
        per_seed = {}
        for seed in args.seeds:
            names = [n for n in MODELS
                     if n != PAPER_INIT or seed == args.seeds[0]]
            x, y, out = run_task(task, seed, steps[task], names, args)
            if seed == args.seeds[0]:
                pictures[task] = (x, y, {n: r.pop('examples')
                                         for n, r in out.items()})
            for r in out.values():
                r.pop('examples', None)
            per_seed[seed] = out
        results[task] = {}
        for name in MODELS:
            runs = [per_seed[s][name] for s in args.seeds
                    if name in per_seed[s]]
            results[task][name] = {
                'params': runs[0]['params'],
                'test_miou': [r['test_miou'] for r in runs],
                'mean_test_miou': statistics.mean(r['test_miou']
                                                  for r in runs),
                'train_s': [r['train_s'] for r in runs]}
    probe = hyperseg(2, True)
    results['signal_split'] = probe.decoder.signal_split
    results['weight_counts'] = probe.decoder.num_weights

    names = list(MODELS)
    rows = []
    for task in TASKS:
        for name in names:
            r = results[task][name]
            rows.append([f'{task} ({steps[task]} steps)', name, r['params'],
                         ' / '.join(f'{100 * v:.1f}' for v in r['test_miou']),
                         f"{100 * r['mean_test_miou']:.1f}"])

    def mean(task, i):
        return 100 * results[task][names[i]]['mean_test_miou']

    parts = []
    for task in TASKS:
        parts.append(f'{task} task: static {mean(task, 0):.1f}, HyperSeg '
                     f'paper init {mean(task, 1):.1f}, HyperSeg static base '
                     f'{mean(task, 2):.1f} mIoU')
    verdict = ('; '.join(parts) + f' (mean of seeds {args.seeds}; paper '
               f'init seed {args.seeds[0]} only). ')
    patch_gain = mean('patch', 2) - mean('patch', 0)
    global_gap = mean('global', 2) - mean('global', 0)
    if patch_gain > 0.5:
        verdict += ('Per-patch rule reproduced with a static base: at the '
                    'same steps, patch-wise generated weights beat a static '
                    f'decoder of about the same size given the same context '
                    f'(+{patch_gain:.1f} points). ')
    else:
        verdict += ('Per-patch rule NOT reproduced: even with a static base, '
                    'HyperSeg does not beat the static decoder '
                    f'({patch_gain:+.1f} points). ')
    verdict += ('On the global rule it matches the static decoder. '
                if global_gap >= -0.5 else
                f'On the global rule it stays {-global_gap:.1f} points below '
                f"the static decoder after {steps['global']} steps. ")
    paper_ok = all(mean(t, 1) >= mean(t, 0) - 0.5 for t in TASKS)
    verdict += ("With the paper's bias-free, default-initialized generator "
                'it matches the static decoder too.' if paper_ok else
                "With the paper's bias-free, default-initialized generator, "
                'trained from scratch, it does NOT match the static decoder '
                'on both tasks at this training length.')

    fig, axes = plt.subplots(4, 2 + len(names), figsize=(9, 7.6))
    for t, task in enumerate(TASKS):
        x, y, preds = pictures[task]
        classes = TASKS[task][1]
        for i in range(2):
            row = axes[2 * t + i]
            row[0].imshow(x[i].permute(1, 2, 0).clamp(0, 1))
            row[1].imshow(y[i], cmap='tab10', vmin=0, vmax=9,
                          interpolation='nearest')
            for j, name in enumerate(names):
                row[2 + j].imshow(preds[name][i], cmap='tab10', vmin=0,
                                  vmax=9, interpolation='nearest')
            row[0].set_ylabel(f'{task} ({classes} cl.)', fontsize=8)
    for j, title in enumerate(['image', 'truth', 'static', 'HyperSeg\n(paper '
                               'init)', 'HyperSeg\n(static base)']):
        axes[0, j].set_title(title, fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    _common.save(
        'hyperseg_synthetic', args.seeds, started, results,
        ['Task', 'Model', 'Params', 'Test mIoU per seed (%)', 'Mean (%)'],
        rows,
        'HyperSeg patch-wise meta-blocks, with weights generated per patch '
        'by the context head, segment images whose rule depends on context, '
        'including a rule that differs from patch to patch.', verdict, fig)


if __name__ == '__main__':
    main()
