"""Ma, Dalca & Sabuncu's hyper-convolutions on a synthetic segmentation task,
with robustness to noise.

Images (32x32) hold filled ellipses (the foreground) among thin line
distractors. A small U-Net (two levels, two convs per level, BatchNorm,
ReLU) is built with regular 3x3 / 7x7 convolutions or with HyperConv2d 3x3 /
7x7, trained on clean images with BCE + soft Dice, and tested (Dice) on clean
images, under additive Gaussian noise (sigma 0.15) and under 10%
salt-and-pepper noise. A hyper-convolution layer has 388 + 5 C_in C_out
parameters (plus its bias) whatever its kernel size.

    python experiments/vision/hyperconv_noise.py [--epochs 20] [--seed 0]
"""
import argparse
import math
import time

import _common
import matplotlib
import torch
import torch.nn.functional as F

from pyg_hyper.vision import HyperConv2d

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

SIZE = 32


def images(n, gen):
    r = torch.arange(SIZE, dtype=torch.float)
    yy, xx = torch.meshgrid(r, r, indexing='ij')
    x = torch.zeros(n, 1, SIZE, SIZE)
    y = torch.zeros(n, 1, SIZE, SIZE)
    for i in range(n):
        for _ in range(int(torch.randint(1, 4, (), generator=gen))):
            cy, cx = (4 + torch.rand(2, generator=gen) * (SIZE - 8)).tolist()
            a, b = (2.5 + torch.rand(2, generator=gen) * 4).tolist()
            t = float(torch.rand((), generator=gen)) * math.pi
            u = (xx - cx) * math.cos(t) + (yy - cy) * math.sin(t)
            v = -(xx - cx) * math.sin(t) + (yy - cy) * math.cos(t)
            mask = (u / a)**2 + (v / b)**2 <= 1
            y[i, 0][mask] = 1
            x[i, 0][mask] = 0.6 + 0.4 * float(torch.rand((), generator=gen))
        for _ in range(int(torch.randint(2, 5, (), generator=gen))):
            # A thin line: |distance to a random line| < 0.7 px.
            t = float(torch.rand((), generator=gen)) * math.pi
            c = float(torch.rand((), generator=gen)) * SIZE
            d = (xx - SIZE / 2) * math.sin(t) - (yy - SIZE / 2) * \
                math.cos(t) + c - SIZE / 2
            line = d.abs() < 0.7
            x[i, 0][line] = torch.maximum(
                x[i, 0][line],
                torch.tensor(0.6 + 0.4 * float(torch.rand((), generator=gen))))
    return x, y


def gaussian(x, gen, sigma=0.15):
    return x + sigma * torch.randn(x.shape, generator=gen)


def salt_and_pepper(x, gen, p=0.1):
    u = torch.rand(x.shape, generator=gen)
    x = x.clone()
    x[u < p / 2] = 0.0
    x[(u >= p / 2) & (u < p)] = 1.0
    return x


class UNet(torch.nn.Module):
    def __init__(self, conv):
        super().__init__()

        def block(i, o):
            return torch.nn.Sequential(conv(i, o), torch.nn.BatchNorm2d(o),
                                       torch.nn.ReLU(), conv(o, o),
                                       torch.nn.BatchNorm2d(o),
                                       torch.nn.ReLU())

        self.enc1, self.enc2 = block(1, 8), block(8, 16)
        self.dec = block(24, 8)
        self.out = torch.nn.Conv2d(8, 1, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        up = F.interpolate(e2, scale_factor=2, mode='nearest')
        return self.out(self.dec(torch.cat([e1, up], dim=1)))


def make(kind, k):
    if kind == 'hyper':
        return lambda i, o: HyperConv2d(i, o, k)
    return lambda i, o: torch.nn.Conv2d(i, o, k, padding=k // 2)


def dice(logits, y):
    p = (logits > 0).float()
    return ((2 * (p * y).sum((1, 2, 3)) + 1e-6) /
            (p.sum((1, 2, 3)) + y.sum((1, 2, 3)) + 1e-6)).mean().item()


def loss_fn(logits, y):
    p = torch.sigmoid(logits)
    soft_dice = (2 * (p * y).sum((1, 2, 3)) + 1) / (p.sum(
        (1, 2, 3)) + y.sum((1, 2, 3)) + 1)
    return F.binary_cross_entropy_with_logits(logits, y) + \
        (1 - soft_dice).mean()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--epochs', type=int, default=20)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    started = time.time()
    _common.setup(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    x_tr, y_tr = images(1000, gen)
    x_te, y_te = images(300, gen)
    tests = {'clean': x_te, 'gaussian 0.15': gaussian(x_te, gen),
             'gaussian 0.3': gaussian(x_te, gen, 0.3),
             'salt-and-pepper 10%': salt_and_pepper(x_te, gen),
             'salt-and-pepper 20%': salt_and_pepper(x_te, gen, 0.2)}
    configs = [('Regular 3x3', 'regular', 3), ('Regular 7x7', 'regular', 7),
               ('Hyper 3x3', 'hyper', 3), ('Hyper 7x7', 'hyper', 7)]
    results, preds = {}, {}
    for name, kind, k in configs:
        torch.manual_seed(args.seed)
        model = UNet(make(kind, k))
        opt = torch.optim.Adam(model.parameters(), lr=2e-3)
        t0 = time.time()
        for _ in range(args.epochs):
            perm = torch.randperm(len(x_tr))
            for s in range(0, len(perm), 16):
                idx = perm[s:s + 16]
                loss = loss_fn(model(x_tr[idx]), y_tr[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        model.eval()
        res = {'params': _common.num_params(model),
               'train_s': round(time.time() - t0)}
        with torch.no_grad():
            for tn, xt in tests.items():
                res[tn] = dice(model(xt), y_te)
            preds[name] = model(tests['gaussian 0.15'][:1])[0, 0] > 0
        results[name] = res
        print(name, res, flush=True)
    rows = [[n, r['params']] + [r[t] for t in tests]
            for n, r in results.items()]
    h7, r3, r7 = (results[n] for n in ('Hyper 7x7', 'Regular 3x3',
                                       'Regular 7x7'))
    noisy = [t for t in tests if t != 'clean']
    for r in results.values():  # Dice lost to noise, relative to clean
        r['relative_drop'] = {t: 1 - r[t] / r['clean'] for t in noisy}
    best_abs = [t for t in noisy if h7[t] > max(r3[t], r7[t])]
    best_drop = [t for t in noisy if h7['relative_drop'][t] < min(
        r3['relative_drop'][t], r7['relative_drop'][t])]
    verdict = (
        f"Hyper 7x7 has {h7['params']:,} parameters vs {r7['params']:,} for "
        f"regular 7x7 (the same count as Hyper 3x3: "
        f"{results['Hyper 3x3']['params']:,}): reproduced. Clean Dice: hyper "
        f"7x7 {h7['clean']:.3f} vs regular 3x3/7x7 {r3['clean']:.3f}/"
        f"{r7['clean']:.3f}. Hyper 7x7 has the highest noisy Dice on "
        f"{len(best_abs)} of {len(noisy)} noise settings and the smallest "
        f"relative loss to noise on {len(best_drop)} of {len(noisy)}; ")
    verdict += ('robustness reproduced.' if len(best_abs) == len(noisy) else
                'robustness only partly reproduced (see the table).'
                if best_abs or best_drop else
                'robustness NOT reproduced.')
    fig, axes = plt.subplots(1, 2 + len(preds), figsize=(12, 2.4))
    axes[0].imshow(tests['gaussian 0.15'][0, 0], cmap='gray')
    axes[0].set_title('input (gaussian 0.15)', fontsize=8)
    axes[1].imshow(y_te[0, 0], cmap='gray')
    axes[1].set_title('truth', fontsize=8)
    for ax, (name, p) in zip(axes[2:], preds.items()):
        ax.imshow(p, cmap='gray')
        ax.set_title(name, fontsize=8)
    for ax in axes:
        ax.axis('off')
    _common.save(
        'hyperconv_noise', args.seed, started, results,
        ['Model', 'Params'] + [f'Dice {t}' for t in tests], rows,
        'Hyper-convolutions give large kernels at a parameter count '
        'independent of the kernel size and are more robust to noise than '
        'regular 3x3 and 7x7 convolutions.', verdict, fig)


if __name__ == '__main__':
    main()
