"""Collects results/*.json into the summary tables of the README and the docs
tutorial, and copies the pictures into docs/source/_static/vision/.

    python experiments/vision/summarize.py
"""
import json
import re
import shutil

import _common

from pyg_hyper.experiment.results import atomic_write_text

ORDER = ['dfn_steerable', 'moving_digits', 'moving_digits_shared',
         'klein_blobs',
         'static_hypernet_digits', 'hyperconv_noise', 'hyperseg_synthetic',
         'conditioned_sr']
STATIC = _common.ROOT / 'docs' / 'source' / '_static' / 'vision'
README = _common.RESULTS.parent / 'README.md'
BEGIN, END = '<!-- results:begin -->', '<!-- results:end -->'


def main():
    records = []
    for name in ORDER:
        path = _common.RESULTS / f'{name}.json'
        if path.exists():
            records.append(json.loads(path.read_text()))
    md = ['| Reproduction | Claim | Result | Runtime (s) |', '|---|---|---|---|']
    rst = ['.. list-table::', '   :header-rows: 1', '   :widths: 18 35 47',
           '', '   * - Reproduction', '     - Claim', '     - Result']
    for r in records:
        md.append(f"| [{r['name']}](results/{r['name']}.md) | {r['claim']} "
                  f"| {r['verdict']} | {r['runtime_s']} |")
        rst += [f"   * - ``{r['name']}``", f"     - {r['claim']}",
                f"     - {r['verdict']}"]
    atomic_write_text(str(_common.RESULTS / 'summary.rst'),
                      '\n'.join(rst) + '\n')
    text = README.read_text()
    block = BEGIN + '\n' + '\n'.join(md) + '\n' + END
    text = re.sub(re.escape(BEGIN) + '.*?' + re.escape(END), block, text,
                  flags=re.S)
    atomic_write_text(str(README), text)
    STATIC.mkdir(parents=True, exist_ok=True)
    for r in records:
        png = _common.RESULTS / f"{r['name']}.png"
        if png.exists():
            shutil.copyfile(png, STATIC / png.name)
    print('\n'.join(md))


if __name__ == '__main__':
    main()
