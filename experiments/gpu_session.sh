#!/usr/bin/env bash
# The leaderboard runs that need a GPU, packed for one short GPU session:
# the Photo LGNN seeds (citation) and the full Hyper-GIN cpu-budget rows
# (OGB), side by side on one card, each resuming from the seeds recorded in
# experiments/*/results and stopped before a deadline so that nothing is
# lost. Optionally the two speed benchmarks first, alone on the card.
#
#   OUT=/path/to/out [BUDGET=500] [BENCH=1] experiments/gpu_session.sh
#
# Reads DATA (default .devdata), a folder holding Amazon/Photo/raw and
# OGB/ogbg_<name> in the layouts of ../shared/data. Writes everything to
# $OUT/results.tgz (results folders as under experiments/, logs,
# benchmark records) and $OUT/summary.txt; unpack it and copy
# cit_<model>/photo/* into experiments/citation/results/photo and
# ogb/<dataset>/* into experiments/ogb/results/cpu-budget/<dataset>.
#
# On this project's lent GPU machines: run it from the repository root with
# carry [".whl", ".devdata"] and OUT=$OUT. What travels (tracked files and
# carried folders) must stay under 64 MiB: `git ls-files -z | xargs -0 stat
# -c %s | awk '{s+=$1} END {print s/2^20}'` (54 MiB in session 14).
# Environment: WORK (the working folder, default /tmp/gpu_session_work),
# BUDGET (seconds for the whole script, default 500), BENCH
# (1: run bench_lgnn and bench_ogb_throughput first), PHOTO_MODELS (default
# "lgcn lgat lgin"), OGB_MODELS (default "hyper-gin hyper-gin-virtual"),
# OGB_SETS (dataset:seeds:epochs, the cpu-budget protocol; default
# "molbace:10:10 molbbbp:10:10 molhiv:3:2"), DEVICE (default cuda), PY
# (default python3), OGBROOT (the shared processed OGB root, default
# /tmp/ogb_shared). A .whl folder of wheels (ogb and its missing needs) is
# installed to /tmp/site first when ogb is not importable.
set -u
: "${OUT:?set OUT to the folder that receives results.tgz}"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
PY=${PY:-python3}
DATA=${DATA:-.devdata}
DEV=${DEVICE:-cuda}
T0=$(date +%s); DEADLINE=$((T0 + ${BUDGET:-500}))
left() { echo $((DEADLINE - $(date +%s))); }
since() { echo "$(( $(date +%s) - T0 ))s"; }
if [ -d .whl ] && ! $PY -c "import ogb" 2>/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=$PWD:/tmp/site
else
  export PYTHONPATH=$PWD
fi
export PYG_HYPER="$PY -m pyg_hyper.cli"
# Work outside $OUT: the device returns at most 8 files from $OUT, so it
# holds only the archive and the summary.
R=${WORK:-/tmp/gpu_session_work}; L=$R/logs; mkdir -p "$L" "$OUT"
{ nvidia-smi; $PY -c 'import torch, torch_geometric, ogb
print(torch.__version__, torch_geometric.__version__, ogb.__version__)'; } \
  > "$L/env.txt" 2>&1

pack() {  # the tool returns few files (each at most 16 MiB): one archive,
  # one summary. Saved models and any file over 8 MiB (a mid-seed
  # checkpoint of the full Hyper-GIN holds 58M weights and their Adam
  # state, about 700 MB) stay behind and are listed in the summary, so
  # that the archive always comes back.
  rm -rf "$R"/cit_*/data
  (cd "$R" && find . -type f -size +8M -printf 'left out: %p (%s bytes)\n') \
    >> "$L/summary.txt"
  (cd "$R" && find . -type f -size -8193k ! -path '*/models/*' -print0 \
    | tar czf "$OUT/results.tgz" --null -T -)
  cp "$L/summary.txt" "$OUT/" 2>/dev/null
}
trap pack EXIT
echo "start $(date)" > "$L/summary.txt"

# The OGB sets are processed once, into one root that every run shares.
OGBROOT=${OGBROOT:-/tmp/ogb_shared}; mkdir -p "$OGBROOT"
SETS=${OGB_SETS:-molbace:10:10 molbbbp:10:10 molhiv:3:2}
$PY - "$DATA/OGB" $OGBROOT ${SETS} > "$L/preprocess.log" 2>&1 <<'PYEOF' &
import os, shutil, sys
from pyg_hyper.datasets import OGBGraphDataset
source, root = sys.argv[1:3]
for entry in sys.argv[3:]:
    name = entry.split(':')[0]
    folder = os.path.join(root, 'ogbg_' + name)
    if not os.path.isdir(folder):
        shutil.copytree(os.path.join(source, 'ogbg_' + name), folder)
    print(OGBGraphDataset(root, 'ogbg-' + name, download=False), flush=True)
PYEOF
PRE=$!
if [ "${BENCH:-0}" = 1 ]; then
  timeout 80 $PY benchmarks/bench_lgnn.py --device $DEV --root /tmp/cora \
    --out "$R/bench/bench_lgnn_cuda.json" > "$L/bench_lgnn.log" 2>&1
  echo "bench_lgnn rc=$? at $(since)" >> "$L/summary.txt"
  wait $PRE
  timeout 100 $PY benchmarks/bench_ogb_throughput.py --device $DEV \
    --steps 30 --root $OGBROOT --source "$DATA/OGB" \
    --out "$R/bench/bench_ogb_throughput_cuda.json" > "$L/bench_ogb.log" 2>&1
  echo "bench_ogb rc=$? at $(since)" >> "$L/summary.txt"
fi
wait $PRE; echo "preprocess rc=$? at $(since)" >> "$L/summary.txt"

TL=$(( $(left) - 25 ))
for M in ${PHOTO_MODELS-lgcn lgat lgin}; do
  ( MODELS=$M TIME_LIMIT=$TL DEVICE=$DEV bash experiments/citation/run_gpu.sh \
      "$DATA" "$R/cit_$M" > "$L/photo_$M.log" 2>&1
    echo "photo $M rc=$? at $(since)" >> "$L/summary.txt" ) &
done
for C in ${OGB_MODELS-hyper-gin hyper-gin-virtual}; do
  ( for D in $SETS; do
      IFS=: read -r NAME SEEDS EPOCHS <<< "$D"
      RUN=$NAME-$C
      mkdir -p "$R/ogb/$NAME"
      # resume from the seeds recorded in the repository
      [ -d "experiments/ogb/results/cpu-budget/$NAME/$RUN" ] && [ ! -d "$R/ogb/$NAME/$RUN" ] \
        && cp -r "experiments/ogb/results/cpu-budget/$NAME/$RUN" "$R/ogb/$NAME/"
      LEFT=$(( $(left) - 25 )); [ $LEFT -gt 10 ] || break
      timeout $LEFT $PY -m pyg_hyper.cli train \
        experiments/ogb/configs/cpu-budget/$C.yaml data.name=ogbg-$NAME \
        data.root=$OGBROOT data.source="$DATA/OGB" epochs=$EPOCHS \
        seeds=$SEEDS save_models=false --device $DEV --no-progress \
        --out "$R/ogb/$NAME" > "$L/ogb_${C}_$NAME.log" 2>&1
      echo "ogb $C $NAME rc=$? at $(since)" >> "$L/summary.txt"
    done ) &
done
wait
echo "end $(date)" >> "$L/summary.txt"
