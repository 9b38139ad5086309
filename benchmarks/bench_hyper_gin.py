"""HyperGINConv cost at ogbg-molhiv-like sizes, measured side by side.

Compares one forward+backward pass of

* HyperGINConv, factorized (the default path),
* HyperGINConv, materialized (per-node weight tensors, the reference path),
* PyG's GINConv with an MLP of the same widths,
* PyG's NNConv (per-edge generated weights),

and the raw factorized product against a plain ``torch.matmul`` with the same
FLOP count. Prints ratios and writes a JSON record.

    python benchmarks/bench_hyper_gin.py                 # widths 64 and 300
    python benchmarks/bench_hyper_gin.py --quick         # small, for smoke runs
"""
import argparse
import os

import torch
from torch_geometric.nn import MLP, GINConv, NNConv

from pyg_hyper.nn import hyper_linear
from pyg_hyper.nn.conv import HyperGINConv
from pyg_hyper.experiment.results import atomic_write_json
from pyg_hyper.utils.benchmark import (
    benchmark_device,
    environment,
    matmul_step,
    peak_memory,
    time_round_robin,
)
from pyg_hyper.utils.malloc import (
    add_malloc_option,
    apply_malloc_option,
)


def molecule_batch(num_graphs: int, nodes_per_graph: int, edge_dim: int,
                   width: int, device: torch.device, seed: int = 0):
    """A batch shaped like ogbg-molhiv: chains with a ring closure every few
    atoms, i.e. about 1.1 bonds per atom, stored in both directions."""
    gen = torch.Generator().manual_seed(seed)
    rows, cols = [], []
    for g in range(num_graphs):
        off = g * nodes_per_graph
        for i in range(1, nodes_per_graph):
            j = int(torch.randint(max(0, i - 3), i, (1, ), generator=gen))
            rows.append(off + i)
            cols.append(off + j)
        for i in range(5, nodes_per_graph, 8):
            rows.append(off + i)
            cols.append(off + i - 5)
    edge_index = torch.tensor([rows + cols, cols + rows])
    num_nodes = num_graphs * nodes_per_graph
    x = torch.randn(num_nodes, width, generator=gen)
    edge_attr = torch.randn(edge_index.size(1), edge_dim, generator=gen)
    return x.to(device), edge_index.to(device), edge_attr.to(device)


def train_step(module, *inputs):
    # Gradients are zeroed in place, not dropped: each step then starts from
    # the same live memory (weights, gradients) on CPU and CUDA alike, and
    # the peak is what the step itself adds.
    def step():
        module.zero_grad(set_to_none=False)
        module(*inputs).square().mean().backward()
    return step


def factorized_product_step(num_rows: int, width: int, hyper: int,
                            device: torch.device):
    """The bare factorized product (forward + backward): 6 N (r+1)(F+1) F
    FLOPs, the same as :func:`matmul_step` on ``[N, (r+1)(F+1)] @ [., F]``."""
    x = torch.randn(num_rows, width, device=device, requires_grad=True)
    z = torch.randn(num_rows, hyper, device=device, requires_grad=True)
    w = torch.randn(width, (hyper + 1) * (width + 1), device=device,
                    requires_grad=True)
    out_grad = torch.ones(num_rows, width, device=device)

    def step():
        hyper_linear(x, z, w).backward(out_grad)

    return step


def bench_width(width: int, args, device: torch.device):
    x, edge_index, edge_attr = molecule_batch(args.graphs, args.nodes,
                                              args.edge_dim, width, device)
    num_nodes, num_edges = x.size(0), edge_index.size(1)
    kwargs = dict(hyper_channels=args.hyper_channels, edge_dim=args.edge_dim)
    modules = {
        'hyper_factorized': HyperGINConv(width, width, **kwargs),
        'hyper_chunked': HyperGINConv(width, width,
                                      chunk_size=args.chunk_size, **kwargs),
        'hyper_materialized': HyperGINConv(width, width, materialize=True,
                                           **kwargs),
        'gin': GINConv(MLP([width, width, width], act='tanh', norm=None)),
        'nnconv': NNConv(width, width,
                         torch.nn.Linear(args.edge_dim, width * width),
                         aggr='add'),
    }
    inputs = {name: (x, edge_index, edge_attr) for name in modules}
    inputs['gin'] = (x, edge_index)  # GIN takes no edge features
    k = (args.hyper_channels + 1) * (width + 1)
    steps = {name: train_step(module.to(device), *inputs[name])
             for name, module in modules.items()}
    steps['factorized_product'] = factorized_product_step(
        num_nodes, width, args.hyper_channels, device)
    steps['matmul'] = matmul_step(num_nodes, k, width, device)
    # Round-robin timing: every variant sees the same machine load.
    seconds = time_round_robin(steps, device, repeat=args.repeat)

    result = {'width': width, 'num_nodes': num_nodes, 'num_edges': num_edges}
    for name in modules:
        peak = peak_memory(steps[name], device)
        result[name] = {'seconds': seconds[name], 'peak_bytes': peak}
        print(f'  {name:<20} {seconds[name] * 1e3:9.2f} ms  '
              f'{peak / 2**20:9.1f} MiB', flush=True)

    fac, mat = result['hyper_factorized'], result['hyper_materialized']
    result['speedup_vs_materialized'] = mat['seconds'] / fac['seconds']
    result['memory_ratio_vs_materialized'] = (mat['peak_bytes'] /
                                              fac['peak_bytes'])
    chunked = result['hyper_chunked']
    result['chunked_speedup_vs_materialized'] = (mat['seconds'] /
                                                 chunked['seconds'])
    result['chunked_memory_ratio_vs_materialized'] = (
        mat['peak_bytes'] / chunked['peak_bytes'])
    result['time_ratio_vs_gin'] = fac['seconds'] / result['gin']['seconds']
    result['time_ratio_vs_nnconv'] = (fac['seconds'] /
                                      result['nnconv']['seconds'])

    flops = 6.0 * num_nodes * k * width
    result['factorized_gflops'] = flops / seconds['factorized_product'] / 1e9
    result['matmul_gflops'] = flops / seconds['matmul'] / 1e9
    result['flop_rate_fraction'] = (seconds['matmul'] /
                                    seconds['factorized_product'])
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--widths', type=int, nargs='+', default=[64, 300])
    parser.add_argument('--graphs', type=int, default=32)
    parser.add_argument('--nodes', type=int, default=25,
                        help='atoms per molecule (molhiv mean: 25.5)')
    parser.add_argument('--edge-dim', type=int, default=3)
    parser.add_argument('--hyper-channels', type=int, default=64)
    parser.add_argument('--chunk-size', type=int, default=200,
                        help='rows per chunk for the chunked variant')
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--device', type=benchmark_device, default='cpu')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads; 1 gives stable timings on '
                        'a shared machine (default: torch\'s choice)')
    parser.add_argument('--quick', action='store_true',
                        help='widths 16 and 32, 8 graphs: a smoke run')
    parser.add_argument('--out', default=os.path.join(
        os.path.dirname(__file__), 'results', 'bench_hyper_gin.json'))
    add_malloc_option(parser)
    args = parser.parse_args(argv)
    apply_malloc_option(args)
    if args.quick:
        args.widths, args.graphs, args.repeat = [16, 32], 8, 2
    device = torch.device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    record = {
        'environment': environment(device),
        'config': {k: v for k, v in vars(args).items() if k != 'out'},
        'results': [],
    }
    for width in args.widths:
        print(f'width {width}:', flush=True)
        record['results'].append(bench_width(width, args, device))

    print('\nratios (measured side by side in this run):')
    print('(speedup and memory: materialized / factorized; "chunked" uses '
          f'chunk_size={args.chunk_size})')
    print(f'{"width":>6} {"speedup":>9} {"memory":>8} {"chunked":>16} '
          f'{"vs GIN":>8} {"vs NNConv":>10} {"FLOP/s vs matmul":>17}')
    for r in record['results']:
        print(f'{r["width"]:>6} {r["speedup_vs_materialized"]:>8.2f}x '
              f'{r["memory_ratio_vs_materialized"]:>7.2f}x '
              f'{r["chunked_speedup_vs_materialized"]:>7.2f}x/'
              f'{r["chunked_memory_ratio_vs_materialized"]:>6.2f}x '
              f'{r["time_ratio_vs_gin"]:>7.2f}x '
              f'{r["time_ratio_vs_nnconv"]:>9.2f}x '
              f'{100 * r["flop_rate_fraction"]:>16.1f}%')
    # The targets at width 300.
    for r in record['results']:
        if r['width'] == 300:
            record['targets'] = {
                'speedup_vs_materialized>=5': r['speedup_vs_materialized'] >= 5,
                'memory_ratio_vs_materialized>=10':
                r['memory_ratio_vs_materialized'] >= 10,
                'flop_rate_fraction>=0.6': r['flop_rate_fraction'] >= 0.6,
            }
            print('\ntargets at width 300:', record['targets'])
    if not args.quick:
        atomic_write_json(args.out, record)
        print(f'\nwrote {args.out}')
    return record


if __name__ == '__main__':
    main()
