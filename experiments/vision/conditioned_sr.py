"""Riegler et al.'s conditioned regression for non-blind super-resolution.

Low-resolution images are l = downsample_3(k * h) with an 11x11 anisotropic
Gaussian blur kernel k known per image (sigmas in [0.6, 3], random angle).
Models work on the bicubic upsampling (SRCNN 9-1-5, 32/16 channels, residual
on the bicubic input):

* ConditionedSR: ONE model for all kernels, first layer
  W1(k) = W1_0 + FC(z(k)) (generator initialized at zero), with the kernel
  encoded to z(k) = tanh(E k) of width ``--hyper-channels`` (default 4, the
  size of the four specialists together; 0 feeds k itself, 321k
  parameters);
* a kernel-agnostic SRCNN trained on all kernels;
* one SRCNN PER test kernel, each trained on its kernel only (4 models).

The training budget is the same for every arm: each specialist gets
``--steps`` steps, and the two one-model arms get as many as the four
specialists together (``--one-model-steps``, default 4 x ``--steps``), so
every arm has seen the same number of training batches in total.

Data: the two photos that ship with scikit-learn (grayscale), left 60% for
training, right 40% for testing. PSNR on the centre of 33x33 patches, for
four fixed test kernels. Patches are
textured ones (standard deviation >= 0.05).

    python experiments/vision/conditioned_sr.py [--steps 800] \
        [--one-model-steps 3200] [--hyper-channels 4] [--seeds 0 1]

PSNR columns are means over the seeds; the last column gives each seed's.
"""
import argparse
import math
import time

import _common
import matplotlib
import numpy as np
import torch
import torch.nn.functional as F

from pyg_hyper.vision import ConditionedSR

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

S, SCALE, PATCH, BORDER, BATCH = 11, 3, 33, 6, 12
TEST_KERNELS = {  # (sigma_1, sigma_2, angle in degrees)
    'iso 0.8': (0.8, 0.8, 0.0),
    'aniso 2.0/0.8, 0 deg': (2.0, 0.8, 0.0),
    'aniso 2.5/1.2, 45 deg': (2.5, 1.2, 45.0),
    'iso 2.8': (2.8, 2.8, 0.0),
}


def gaussian_kernel(s1, s2, angle):
    r = torch.arange(S, dtype=torch.float) - S // 2
    yy, xx = torch.meshgrid(r, r, indexing='ij')
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    u, v = c * xx + s * yy, -s * xx + c * yy
    k = torch.exp(-(u**2 / (2 * s1**2) + v**2 / (2 * s2**2)))
    return k / k.sum()


def random_kernels(n, gen):
    p = torch.rand(n, 3, generator=gen)
    return torch.stack([
        gaussian_kernel(0.6 + 2.4 * float(a), 0.6 + 2.4 * float(b),
                        180 * float(t)) for a, b, t in p
    ])


def photos():
    from sklearn.datasets import load_sample_images
    imgs = torch.tensor(np.stack(load_sample_images().images),
                        dtype=torch.float)
    gray = (imgs / 255.0) @ torch.tensor([0.299, 0.587, 0.114])
    w = gray.shape[-1]
    return gray[:, :, :int(0.6 * w)], gray[:, :, int(0.6 * w):]


def crops(images, n, gen, min_std=0.05):
    # Textured patches only: flat sky says nothing about deblurring.
    out = torch.empty(n, 1, PATCH, PATCH)
    i = 0
    while i < n:
        img = images[int(torch.randint(len(images), (), generator=gen))]
        y = int(torch.randint(img.shape[0] - PATCH, (), generator=gen))
        x = int(torch.randint(img.shape[1] - PATCH, (), generator=gen))
        patch = img[y:y + PATCH, x:x + PATCH]
        if float(patch.std()) >= min_std:
            out[i, 0] = patch
            i += 1
    return out


def degrade(hr, kernels):
    """Blur each patch with its kernel, subsample x3, bicubic back up."""
    b = hr.size(0)
    blurred = F.conv2d(F.pad(hr, (S // 2, ) * 4, mode='reflect').transpose(
        0, 1), kernels.unsqueeze(1), groups=b).transpose(0, 1)
    lr = blurred[..., 1::SCALE, 1::SCALE]
    return F.interpolate(lr, scale_factor=SCALE, mode='bicubic',
                         align_corners=False)


def psnr(pred, hr):
    c = slice(BORDER, -BORDER)
    mse = (pred[..., c, c].clamp(0, 1) - hr[..., c, c]).square().mean(
        dim=(1, 2, 3))
    return (10 * torch.log10(1.0 / mse)).mean().item()


class SRCNN(torch.nn.Module):
    """The same network without conditioning."""
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 32, 9, padding=4)
        self.conv2 = torch.nn.Conv2d(32, 16, 1)
        self.conv3 = torch.nn.Conv2d(16, 1, 5, padding=2)
        torch.nn.init.zeros_(self.conv3.weight)
        torch.nn.init.zeros_(self.conv3.bias)

    def forward(self, x, kernel=None):
        h = F.relu(self.conv2(F.relu(self.conv1(x))))
        return x + self.conv3(h)


def train(model, train_imgs, steps, gen, fixed_kernel=None):
    def loss_fn(model):
        hr = crops(train_imgs, BATCH, gen)
        k = (random_kernels(BATCH, gen) if fixed_kernel is None else
             fixed_kernel.expand(BATCH, S, S))
        return F.mse_loss(model(degrade(hr, k), k), hr)

    _common.fit(model, steps, loss_fn)
    return model


def run_seed(seed, args, train_imgs, tests, kernels, test_hr):
    """Trains every arm for one seed. Each arm starts from the same global
    seed (model initialization) and its own batch generator seeded alike,
    so the conditioned and the agnostic model see the same batches, and no
    arm's result depends on how many random numbers another arm drew."""
    one_model_steps = args.one_model_steps or len(kernels) * args.steps

    def evaluate(model, only=None):
        out = {}
        with torch.no_grad():
            for n, lr in tests.items():
                if only is None or n == only:
                    k = kernels[n].expand(len(lr), S, S)
                    out[n] = psnr(model(lr, k), test_hr)
        return out

    def arm(make, steps, fixed_kernel=None):
        torch.manual_seed(seed)
        model = make()
        gen = torch.Generator().manual_seed(seed)
        t0 = time.time()
        train(model, train_imgs, steps, gen, fixed_kernel=fixed_kernel)
        return model, round(time.time() - t0)

    results = {'Bicubic': {'params': 0,
                           **{n: psnr(lr, test_hr) for n, lr in tests.items()}}}
    cond, secs = arm(lambda: ConditionedSR(
        S, hidden_channels=(32, 16),
        hyper_channels=args.hyper_channels or None),
        one_model_steps)
    results['ConditionedSR (one model)'] = {
        'params': _common.num_params(cond), 'train_s': secs, **evaluate(cond)}
    agn, secs = arm(SRCNN, one_model_steps)
    results['SRCNN, kernel-agnostic (one model)'] = {
        'params': _common.num_params(agn), 'train_s': secs, **evaluate(agn)}
    per = {'params': 0, 'train_s': 0}
    for n, k in kernels.items():
        m, secs = arm(SRCNN, args.steps, fixed_kernel=k)
        per['params'] += _common.num_params(m)
        per['train_s'] += secs
        per.update(evaluate(m, only=n))
    results[f'SRCNN per kernel ({len(kernels)} models)'] = per
    for name, r in results.items():
        r['mean'] = sum(r[n] for n in kernels) / len(kernels)
        print(seed, name, r, flush=True)
    return results, cond, agn


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--steps', type=int, default=800,
                        help='training steps of each per-kernel specialist')
    parser.add_argument('--one-model-steps', type=int, default=None,
                        help='steps of the conditioned and the agnostic '
                        'model (default: as many as all specialists '
                        'together)')
    # 4: one model of the size of the four specialists together (14.5k vs
    # 14.2k parameters); 0: the generator reads the kernel directly, W1(k) =
    # W1_0 + FC(k), 321k parameters (see README.md).
    parser.add_argument('--hyper-channels', type=int, default=4)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    args = parser.parse_args()
    started = time.time()
    _common.setup(args.seeds[0])
    train_imgs, test_imgs = photos()
    test_hr = crops(test_imgs, 200, torch.Generator().manual_seed(1234))
    kernels = {n: gaussian_kernel(*p) for n, p in TEST_KERNELS.items()}
    one_model_steps = args.one_model_steps or len(kernels) * args.steps
    tests = {n: degrade(test_hr, k.expand(len(test_hr), S, S))
             for n, k in kernels.items()}
    per_seed = {}
    for seed in args.seeds:
        per_seed[seed], cond, agn = run_seed(seed, args, train_imgs, tests,
                                             kernels, test_hr)
    arms = list(per_seed[args.seeds[0]])
    results = {}  # means over seeds, and every seed's numbers
    for name in arms:
        runs = [per_seed[s][name] for s in args.seeds]
        results[name] = {key: sum(r[key] for r in runs) / len(runs)
                         for key in runs[0]}
        results[name]['params'] = runs[0]['params']
        results[name]['mean_per_seed'] = [r['mean'] for r in runs]
    results['seeds'] = args.seeds
    results['steps'] = {'per_kernel_specialist': args.steps,
                        'one_model': one_model_steps}

    rows = [[name, r['params']] + [f'{r[n]:.2f}' for n in kernels] +
            [f"{r['mean']:.2f}",
             ' / '.join(f'{m:.2f}' for m in r['mean_per_seed'])]
            for name, r in results.items() if name in arms]
    b = results['Bicubic']['mean']
    c, a, p = (results[n]['mean'] for n in arms[1:4])
    # Per seed, so that one lucky seed cannot carry the verdict.
    ahead = [per_seed[s][arms[1]]['mean'] - per_seed[s][arms[3]]['mean']
             for s in args.seeds]
    verdict = (f'Mean PSNR over seeds {args.seeds}: conditioned {c:.2f} dB, '
               f'agnostic {a:.2f} dB, per-kernel specialists {p:.2f} dB, '
               f'bicubic {b:.2f} dB ({one_model_steps} steps for each '
               f'one-model arm, {args.steps} for each of the {len(kernels)} '
               f'specialists); conditioned minus specialists per seed: '
               + ', '.join(f'{d:+.2f}' for d in ahead) + ' dB. ')
    if c <= b:
        verdict += 'NOT reproduced: the conditioned model does not beat bicubic.'
    elif c > a and min(ahead) >= -0.1:
        verdict += ('Reproduced: one conditioned model beats the agnostic '
                    'one and matches the per-kernel models (within 0.1 dB '
                    'or better on every seed).')
    elif c > a:
        verdict += ('Partly reproduced: the conditioned model beats the '
                    'agnostic one but stays below the per-kernel specialists.')
    else:
        verdict += 'NOT reproduced: conditioning did not help in this run.'

    fig, axes = plt.subplots(1, 5, figsize=(12, 2.8))
    n = 'aniso 2.5/1.2, 45 deg'
    k = kernels[n].expand(1, S, S)
    with torch.no_grad():
        panels = [(k[0], 'blur kernel'), (test_hr[0, 0], 'HR'),
                  (tests[n][0, 0], 'bicubic'),
                  (agn(tests[n][:1])[0, 0], 'agnostic SRCNN'),
                  (cond(tests[n][:1], k)[0, 0], 'ConditionedSR')]
    for ax, (img, title) in zip(axes, panels):
        ax.imshow(img.clamp(0, 1) if title != 'blur kernel' else img,
                  cmap='gray')
        ax.set_title(title, fontsize=9)
        ax.axis('off')
    _common.save(
        'conditioned_sr', args.seeds, started, results,
        ['Model', 'Params'] + [f'PSNR {n}' for n in kernels] +
        ['Mean', 'Mean per seed'], rows,
        'One kernel-conditioned model serves many blur kernels about as well '
        'as one model per kernel, and better than an agnostic model.',
        verdict, fig)


if __name__ == '__main__':
    main()
