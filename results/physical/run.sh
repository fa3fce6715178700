#!/bin/sh
# What the physical (object-frame) rotation changes, beside the paper's coil-image rotation (issue 37):
# both small models, 8x, the first 24 boxes of the test set, angles -5..5 deg in 0.5 deg steps, bounds 0 and 5.
# Resumable: a finished table is skipped. Run from the project root: sh results/physical/run.sh
set -e
for model in varnet unet; do
  for cfg in "coils reference synthetic" "coils fourier synthetic" "object fourier synthetic" "object fourier espirit"; do
    set -- $cfg
    out=results/physical/$model-$1-$2-$3.csv
    [ -f "$out" ] && continue
    .venv/bin/advmri attack --model models/$model-small.pt --data data/synthetic/small/test --attack rotation \
      --acceleration 8 --max-targets 24 --max-angle 5 --angle-step 0.5 --bounds 0 5 --random-draws 2 \
      --interpolation $2 --frame $1 --maps $3 --precision fp32 --threads 1 --out "$out"
  done
done
