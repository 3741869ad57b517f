#!/usr/bin/env bash
# Golden runs: the same tiny AE, alignment, two GANs, informativity classifiers and an
# evaluation, trained on any version of the workbook, to compare before/after a refactor
# with benchmarks/golden_compare.py (weights tensor by tensor, metrics figure by figure).
#   bash benchmarks/golden_runs.sh REPO OUT
# REPO: a checkout with its own .venv (bash workbook setup); OUT: a folder to (re)create.
set -euo pipefail
REPO=$(cd "$1" && pwd); OUT=$(mkdir -p "$2" && cd "$2" && pwd)
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE  # one thread: bit-reproducible on a CPU
S2I="$REPO/.venv/bin/python -m s2ilib"
rm -rf "${OUT:?}"/*
cd "$REPO"
small="--steps 6 --limit-per-class 6 --batch-size 8 --log-every 2 --sample-every 3"
small="$small --checkpoint-every 3 --val-samples 16 --threads 1 --no-progress --device cpu"
$S2I train-ae --preset tiny $small --run-dir "$OUT/ae" > "$OUT/ae.log" 2>&1
$S2I train-align --ae-run "$OUT/ae" --recipe aligned $small --set 'image_channels=[8,16]' \
    --run-dir "$OUT/align" > "$OUT/align.log" 2>&1
$S2I train-gan --ae-run "$OUT/align" --recipe aligned $small --run-dir "$OUT/gan" \
    > "$OUT/gan.log" 2>&1
$S2I train-gan --ae-run "$OUT/ae" --recipe paper $small --set loss=moving_average \
    --run-dir "$OUT/gan_ma" > "$OUT/gan_ma.log" 2>&1
$S2I train-informativity --data data/avdigits --image-size 32 --epochs 3 \
    --limit-per-class 20 --run-dir "$OUT/inf" --device cpu > "$OUT/inf.log" 2>&1
$S2I evaluate --gan "$OUT/gan" --informativity "$OUT/inf" --data data/avdigits \
    --out "$OUT/eval" --samples 3 --bootstrap 50 --device cpu > "$OUT/eval.log" 2>&1
echo "golden runs in $OUT"
