"""HyperSeg's patch-wise hypernetwork decoder on synthetic segmentation.

32x32 RGB images hold discs of three colours; a 2-pixel border says which
colour is the foreground, so the decoder must use global context. HyperSeg
(backbone -> context head -> signal map on a 4x4 patch grid -> three
patch-wise inverted-residual meta-blocks with weights from the signal) is
compared with a static decoder of about the same size that receives the same
backbone and context-head features (signal upsampled and concatenated) but
has ordinary, shared weights.

    python experiments/vision/hyperseg_synthetic.py [--steps 500] [--batch 16] [--seed 0]
"""
import argparse
import time

import _common
import matplotlib
import torch
import torch.nn.functional as F

from pyg_hyper.vision import ContextHead, HyperSeg

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

SIZE = 32
COLOURS = torch.tensor([[1.0, 0.2, 0.2], [0.2, 1.0, 0.2], [0.2, 0.2, 1.0]])


def images(n, gen):
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


class Backbone(torch.nn.Module):
    """Three stride-2 stages: features at 1/2, 1/4 and 1/8 resolution."""
    channels = [16, 32, 64]

    def __init__(self):
        super().__init__()
        chans = [3] + self.channels
        self.stages = torch.nn.ModuleList([
            torch.nn.Sequential(
                torch.nn.Conv2d(i, o, 3, stride=2, padding=1, bias=False),
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
    def __init__(self, widths=(16, 12, 8), signal_width=16):
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
        self.out = torch.nn.Conv2d(prev, 2, 1)

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


def miou(logits, y):
    pred = logits.argmax(1)
    ious = []
    for c in range(2):
        inter = ((pred == c) & (y == c)).sum().item()
        union = ((pred == c) | (y == c)).sum().item()
        ious.append(inter / max(union, 1))
    return sum(ious) / 2


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--steps', type=int, default=500)
    parser.add_argument('--batch', type=int, default=16)
    # The generated decoder learns slower than a static one: at 2e-3 it was
    # still far from converged after 500 steps (79.5 vs 99.4 mIoU).
    parser.add_argument('--lr', type=float, default=5e-3)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    started = time.time()
    _common.setup(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    x_tr, y_tr = images(2000, gen)
    x_te, y_te = images(400, gen)
    models = {
        'HyperSeg (patch-wise dynamic decoder)': HyperSeg(
            Backbone(), Backbone.channels, in_channels=3, num_classes=2,
            level_channels=[16, 8, 8], weight_groups=[8, 8, 4, 2],
            context_levels=2),
        'Static decoder + same context': StaticSeg(),
    }
    results, preds = {}, {}
    for name, model in models.items():
        torch.manual_seed(args.seed)
        def loss_fn(model):
            idx = torch.randint(len(x_tr), (args.batch, ))
            return F.cross_entropy(model(x_tr[idx]), y_tr[idx])

        train_s = _common.fit(model, args.steps, loss_fn, lr=args.lr)
        model.eval()
        with torch.no_grad():
            out = model(x_te)
        results[name] = {'params': _common.num_params(model),
                         'train_s': train_s, 'test_miou': miou(out, y_te)}
        preds[name] = out[:3].argmax(1)
        print(name, results[name], flush=True)
    hs = models['HyperSeg (patch-wise dynamic decoder)']
    results['HyperSeg (patch-wise dynamic decoder)']['signal_split'] = \
        hs.decoder.signal_split
    rows = [[n, r['params'], f"{100 * r['test_miou']:.1f}"]
            for n, r in results.items()]
    a, b = (results[n]['test_miou'] for n in models)
    verdict = (f'HyperSeg {100 * a:.1f} vs static {100 * b:.1f} mIoU at '
               f"{results[list(models)[0]]['params']:,} vs "
               f"{results[list(models)[1]]['params']:,} parameters; signal "
               f'split {hs.decoder.signal_split} for weight counts '
               f'{hs.decoder.num_weights}. ')
    verdict += ('The patch-wise dynamic decoder matches or beats the static '
                'one here.' if a >= b - 0.005 else
                'The patch-wise dynamic decoder does NOT beat a static decoder '
                'that gets the same context; this toy task does not show the '
                "paper's accuracy/speed claim, only that the blocks train.")
    fig, axes = plt.subplots(3, 4, figsize=(7, 5.4))
    for i in range(3):
        axes[i, 0].imshow(x_te[i].permute(1, 2, 0).clamp(0, 1))
        axes[i, 1].imshow(y_te[i], cmap='gray')
        for j, name in enumerate(models):
            axes[i, 2 + j].imshow(preds[name][i], cmap='gray')
    for j, title in enumerate(['image', 'truth', 'HyperSeg', 'static']):
        axes[0, j].set_title(title, fontsize=9)
    for ax in axes.flat:
        ax.axis('off')
    _common.save(
        'hyperseg_synthetic', args.seed, started, results,
        ['Model', 'Params', 'Test mIoU (%)'], rows,
        'HyperSeg patch-wise meta-blocks, with weights generated per patch by '
        'the context head, segment images whose rule depends on global '
        'context.', verdict, fig)


if __name__ == '__main__':
    main()
