#!/usr/bin/env bash
# One GPU session's check of issue 5 (about 5 minutes): GPU tests, train_speed at the full
# 180,000 inputs (reference loop, fit, plain fp32 fit, fit compiled, 4 slots) and the T1 table.
# The step timeouts add up to 570 s, under the device tool's 600 s per command.
# Everything lands under $OUT (at most 8 files). Run from the repository root, see bench/README.md:
#   mkdir -p .bench-data && cp -r ../shared/data/fashion-mnist .bench-data/   (here, once)
#   echo /.bench-data/ >> .git/info/exclude
#   device run: command "bash bench/gpu_check.sh", carry [".bench-data"], timeout_s 600
set -u
export PYTHONUNBUFFERED=1  # a step killed by its timeout still leaves its log
OUT=${OUT:-/tmp/gpu_check_out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH}
export RESCONV_DATA=${RESCONV_DATA:-.bench-data/fashion-mnist}
export RESCONV_CACHE=${RESCONV_CACHE:-/tmp/resconv-cache}

{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
  $PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
  ls -l "$RESCONV_DATA"
} >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

echo "== GPU tests"
timeout 150 $PY -m pytest tests/gpu -q -rA -p no:cacheprovider >"$OUT/gpu_tests.log" 2>&1
echo "gpu tests rc=$?"; tail -5 "$OUT/gpu_tests.log"

echo "== train_speed: 11 layers 28x28 32 ch, 180,000 inputs, reference vs fit (+plain fp32, compile, 4 slots)"
timeout 250 $PY bench/train_speed.py --inputs 180000 --plain --compile --slots 4 \
  --out "$OUT/train_speed.json" >"$OUT/train_speed.log" 2>&1
echo "train_speed rc=$?"

echo "== T1: 12 runs at 32x32"
timeout 170 $PY bench/seed_tables.py experiments/t1-layers-32.yml \
  --out "$OUT/t1.json" >"$OUT/t1.log" 2>&1
echo "t1 rc=$?"

# The tables last, so they end up in the reply's tail.
tail -12 "$OUT/train_speed.log"
tail -15 "$OUT/t1.log"
