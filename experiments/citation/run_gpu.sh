#!/usr/bin/env bash
# The citation runs that need a GPU: LGCN, LGAT and LGIN on Amazon Photo
# (a per-edge 245,812 x 745 localized product per forward pass; about 2.7 s
# per epoch with evaluation on this project's CPU, so 10 seeds take hours).
#
#   experiments/citation/run_gpu.sh RAW_SOURCE OUT [overrides...]
#
# RAW_SOURCE: a folder in PyG's layout holding Amazon/Photo/raw (the
# workspace's ../shared/data, or a copy carried to the device). OUT: where
# results go (a device session's $OUT). The runs resume from the seeds and
# checkpoints already in experiments/citation/results/photo/Photo-<MODEL>,
# which are copied to OUT/photo first; copy OUT/photo back afterwards. Each model runs
# at most TIME_LIMIT seconds (default 180) so that one short session makes
# progress on all three; finished seeds are kept, and checkpoint_every=25
# lets an interrupted seed continue next time.
# Environment: MODELS (default "lgcn lgat lgin"), DEVICE (default cuda),
# TIME_LIMIT.
set -eu
RAW=${1:?"usage: $0 RAW_SOURCE OUT [overrides...]"}
OUT=${2:?"usage: $0 RAW_SOURCE OUT [overrides...]"}
shift 2
HERE=$(dirname "$0")
mkdir -p "$OUT/photo"
status=0
for M in ${MODELS:-lgcn lgat lgin}; do
  # only this model's recorded seeds and checkpoints (Photo-LGCN, ...)
  if [ -d "$HERE/results/photo/Photo-${M^^}" ]; then
    cp -r "$HERE/results/photo/Photo-${M^^}" "$OUT/photo/"
  fi
  timeout "${TIME_LIMIT:-180}" ${PYG_HYPER:-pyg-hyper} train \
    "$HERE/models/$M.yaml" data.name=Photo data.root="$OUT/data" \
    data.raw_source="$RAW" checkpoint_every=25 "$@" \
    --device "${DEVICE:-cuda}" --out "$OUT/photo" --no-progress \
    || { rc=$?; [ "$rc" -eq 124 ] || status=$rc; }
done
rm -rf "$OUT/data"  # the processed copy; not a result
exit $status
