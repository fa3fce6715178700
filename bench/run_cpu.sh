#!/usr/bin/env bash
# The CPU benchmark table in bench/RESULTS.md (2-core machine, ~25 min). Paper-size models and the
# fastmri preset use fewer boxes/angles/steps on CPU (the GPU run uses the full cases); at the fastmri
# preset one small-VarNet forward+backward takes 5.2 GB, so no float64 copy (the default chunk there is 1 item per pass).
set -uo pipefail  # one failed case does not stop the others
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-bench/RESULTS.md}
$PY bench/bench_attacks.py --out "$OUT" --model varnet --model-config small --preset small --profile --scan-chunks 1 2 4 8 16
$PY bench/bench_attacks.py --out "$OUT" --model unet --model-config small --preset small --scan-chunks 1 4 16
$PY bench/bench_attacks.py --out "$OUT" --model varnet --model-config small --preset fastmri --boxes 1 --eps 0.01 0.025 --steps 1 --angles 9 --repeats 1 --check-items 0
$PY bench/bench_attacks.py --out "$OUT" --model varnet --model-config paper --preset small --boxes 2 --eps 0.01 0.025 --steps 1 --angles 9 --repeats 1
$PY bench/bench_attacks.py --out "$OUT" --model unet --model-config paper --preset small --boxes 2 --eps 0.01 0.025 --steps 1 --angles 9 --repeats 1
