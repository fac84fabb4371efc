#!/usr/bin/env bash
# One GPU session's check of issue 5, in one call of the device tool (timeout 600): the steps
# run in this order, most decisive first, and those the deadline reaches are cut:
#   1. train_speed at 180,000 inputs: reference loop, fit, the plain fp32 step (the quality
#      target's baseline: same seed, masks and order as fit), 4 slot threads, 4 and 8 runs
#      stacked as one model (core.stack), fit with multi-tensor AdamW (the old default), fit
#      compiled (earlier sessions also ran --variants SHORT: see bench/README.md)
#   2. T1 (12 runs at 32x32) end to end through the real queue and worker (--slots 6
#      --order largest-first)
#   3. the GPU tests
#   4. 4 seeds of the logbook's run as one stack through the worker (--stack 4)
#   5. where a step's GPU time goes (bench/profile_step.py)
#   6. K same-shape runs stacked as one grouped-convolution model, timed (bench/stack_probe.py)
#   7. packing through the worker: 4 slot threads against 4 slot processes
# STEPS, SPEED_ARGS, T1_SLOTS and T1_ORDER choose a subset. Each step has its own time limit, and all
# of them stop by DEADLINE_S (under the tool's 600 s).
# Results land under $OUT (8 files at most): summary.txt and one log per step, train_speed.json,
# gpu.db (the worker's database: open it with the dashboard). Run from the repository root:
#   mkdir -p .bench-data && cp -r ../shared/data/fashion-mnist .bench-data/   (here, once)
#   echo /.bench-data/ >> .git/info/exclude; sqlmodel's wheels in .whl (see bench/README.md)
#   device run: command "bash bench/gpu_check.sh", carry [".bench-data", ".whl"], timeout_s 600
# CPU smoke test of the script itself (every step but the CUDA-only ones, 6.5 minutes on 2 cores),
# on a tiny dataset made with the tests' IDX writer (the real 10,000 validation images take the
# 11-layer runs 42 s a pass on a CPU: the deadline cuts most steps):
#   PYTHONPATH=tests .venv/bin/python -c "from pathlib import Path; from conftest import write_idx;
#     write_idx(Path('/tmp/tiny/fashion-mnist'), train=512, test=256)"
#   DEVICE=cpu FULL=640 SHORT=320 T1_INPUTS=256 RESCONV_DATA=/tmp/tiny/fashion-mnist \
#     RESCONV_CACHE=/tmp/tiny/cache PYTHON=.venv/bin/python bash bench/gpu_check.sh
set -u
export PYTHONUNBUFFERED=1 # a step killed by its timeout still leaves its log
OUT=${OUT:-/tmp/gpu_check_out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
FULL=${FULL:-180000}
SHORT=${SHORT:-30000}
T1_INPUTS=${T1_INPUTS:-} # empty: the sweep file's own 180,000
DEADLINE_S=${DEADLINE_S:-530} # + up to 20 s of -k, the tables and the copies: under 600
STEPS=${STEPS:-"train_speed t1_worker gpu_tests stack_worker profile stack packing"} # the order is fixed
SPEED_ARGS=${SPEED_ARGS:-"--plain --slots 4 --stack 4 8 --foreach --compile"}
T1_SLOTS=${T1_SLOTS:-6}
T1_ORDER=${T1_ORDER:-largest-first} # 'queue' was the order of the first measurements (98 s)
STARTED=$(date +%s)
SUMMARY="$OUT/summary.txt"
export RESCONV_DATA=${RESCONV_DATA:-.bench-data/fashion-mnist}
export RESCONV_CACHE=${RESCONV_CACHE:-/tmp/resconv-cache}
DB=${GPU_CHECK_DB:-/tmp/gpu-check.db} # (the tests put it in their own folder)
rm -f "$DB" "$DB-wal" "$DB-shm"

log() { echo "$*" | tee -a "$SUMMARY"; }
wanted() { [[ " $STEPS " == *" $1 "* ]]; }

# time_for NAME: whether step NAME may still start (5 s or more before the deadline); if not,
# it says NAME is skipped. The worker steps ask before their set-up too: drop_leftovers and
# `queue` start Python (seconds each), which past the deadline ran before "skipped".
time_for() {
  if ((STARTED + DEADLINE_S - $(date +%s) < 5)); then
    log "== $1: skipped, no time left"
    return 1
  fi
}

# step NAME LIMIT_S COMMAND...: run with the smaller of its limit and the time left; log rc and
# time. Its output goes to $OUT/NAME.log, or to $OUT/$STEP_LOG.log ($OUT brings back 8 files).
step() {
  local name=$1 limit=$2 left log_name=${STEP_LOG:-$1}
  shift 2
  time_for "$name" || return 1
  left=$((STARTED + DEADLINE_S - $(date +%s)))
  ((left < limit)) && limit=$left
  log "== $name (limit ${limit} s)"
  local t0 rc
  t0=$(date +%s)
  timeout -k 20 "$limit" "$@" >>"$OUT/$log_name.log" 2>&1 # -k: a step that ignores its SIGTERM
  rc=$?
  log "   $name rc=$rc after $(($(date +%s) - t0)) s"
  # Slot processes run in their own process groups: a supervisor killed by -k leaves them.
  pkill -KILL -f -- "core.worker --db sqlite:///$DB" 2>/dev/null && log "   (killed its leftover slot processes)"
  return $rc
}

# A worker step cut short leaves runs queued: cancel them, so the next step's worker
# (--until-empty) trains only its own.
drop_leftovers() {
  $PY -c "
import sys
from core.queue import Repo, RunFilter, RunStatus
repo = Repo.open(sys.argv[1])
ids = [r.id for r in repo.list_runs(RunFilter(statuses=frozenset({RunStatus.QUEUED})))]
if ids:
    repo.request_cancel(ids)
    print(f'cancelled {len(ids)} leftover queued run(s) of an earlier step')
" "sqlite:///$DB" 2>&1 | tee -a "$SUMMARY"
}

save_db() { # a consistent copy, WAL included, for the dashboard back home
  $PY -c "import sqlite3,sys; s=sqlite3.connect(sys.argv[1]); d=sqlite3.connect(sys.argv[2]); s.backup(d); d.close()" \
    "$DB" "$OUT/gpu.db" 2>>"$SUMMARY"
}

# sqlmodel and its needs travel as wheels (the device image has torch, numpy, pyyaml, pytest).
if [ -d .whl ] && ! $PY -c "import sqlmodel" 2>/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl >>"$SUMMARY" 2>&1 && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH}

# The card on a line of its own: one that also imported the carried sqlmodel named none
# where the wheels had not installed. It ends the reply's tail too (see the tables).
CARD=$($PY -c "import sys, torch; print(sys.version.split()[0], 'torch', torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name())" 2>&1 | tail -1)
{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv 2>&1
  echo "$CARD"
  # torchvision too: every data load imports it; sqlmodel: the queue, from .whl.
  $PY -c "import torchvision, sqlmodel; print('torchvision', torchvision.__version__, 'sqlmodel', sqlmodel.__version__)"
  nproc
} >>"$SUMMARY" 2>&1
cat "$SUMMARY"

WORKER=($PY -m core.worker --db "sqlite:///$DB" --device "$DEVICE" --until-empty)
queue() { $PY -m resconv_tui.cli queue --db "sqlite:///$DB" "$@"; }

# 1. Speed and quality of one run (and of K packed runs), side by side in one process.
# shellcheck disable=SC2086 # SPEED_ARGS is a list of options
wanted train_speed && step train_speed 300 $PY bench/train_speed.py --device "$DEVICE" \
  --inputs "$FULL" $SPEED_ARGS --out "$OUT/train_speed.json"

# 2. T1 end to end: queue the sweep, the worker trains it with T1_SLOTS slot threads.
T1_SWEEP=experiments/t1-layers-32.yml
if [ -n "$T1_INPUTS" ]; then
  sed "s/^max_inputs:.*/max_inputs: $T1_INPUTS/" $T1_SWEEP >/tmp/t1-small.yml
  grep -q '^max_inputs:' /tmp/t1-small.yml || echo "max_inputs: $T1_INPUTS" >>/tmp/t1-small.yml
  T1_SWEEP=/tmp/t1-small.yml
fi
if wanted t1_worker && time_for t1_worker; then
  queue "$T1_SWEEP" >>"$OUT/t1_worker.log" 2>&1
  step t1_worker 150 "${WORKER[@]}" --slots "$T1_SLOTS" --order "$T1_ORDER"
  save_db
fi

# 3. The GPU tests (graph capture, parity with eager and plain, bf16 vs fp32, slot threads, compile).
# -v: each result is in the log as it comes, so a step cut short by its limit still says which passed.
wanted gpu_tests && step gpu_tests 180 $PY -m pytest tests/gpu -v -rA -p no:cacheprovider

# 4. Stacks through the real worker: 4 seeds of the logbook's run as one model (--stack 4).
if wanted stack_worker && time_for stack_worker; then
  cat >/tmp/stack.yml <<EOF
name: stack-worker
layers: 11
image_size: 28
max_inputs: $FULL
seeds: 4
EOF
  drop_leftovers
  queue /tmp/stack.yml >>"$OUT/packing.log" 2>&1
  STEP_LOG=packing step stack_worker 90 "${WORKER[@]}" --stack 4
  save_db
fi

# 5. Where one step's GPU time goes.
wanted profile && step profile 40 $PY bench/profile_step.py

# 6. Would K same-shape runs as one grouped-convolution model pay? (a probe, no training path)
# (Its log is profile.log's second half: $OUT brings back 8 files at most.)
wanted stack && STEP_LOG=profile step stack 40 $PY bench/stack_probe.py

# 7. Packing through the real worker: the same 4 runs as 4 threads, then as 4 processes.
if wanted packing && time_for packing; then
  cat >/tmp/pack.yml <<EOF
name: pack-threads
layers: 11
image_size: 28
max_inputs: $SHORT
matrix:
  seed: [0, 1, 2, 3]
EOF
  drop_leftovers
  queue /tmp/pack.yml >>"$OUT/packing.log" 2>&1
  step packing 60 "${WORKER[@]}" --slots 4 --slot-mode threads
  if time_for packing; then # the threads may have spent what was left
    sed -e 's/pack-threads/pack-processes/' -e 's/\[0, 1, 2, 3\]/[4, 5, 6, 7]/' /tmp/pack.yml >/tmp/pack2.yml
    queue /tmp/pack2.yml >>"$OUT/packing.log" 2>&1
    step packing 60 "${WORKER[@]}" --slots 4 --slot-mode processes
  fi
  save_db
fi

# The tables last, so that they end the reply's tail.
{
  if [ -f "$DB" ]; then
    echo "== worker results (gpu.db)"
    $PY bench/worker_speed.py --db "sqlite:///$DB" --runs 2>&1
  fi
  echo "== profile (and stack probe)"
  tail -28 "$OUT/profile.log" 2>/dev/null
  echo "== gpu tests"
  tail -3 "$OUT/gpu_tests.log" 2>/dev/null
  echo "== train_speed"
  tail -30 "$OUT/train_speed.log" 2>/dev/null
  echo "card: $CARD" # the figures above are this card's
  echo "total $(($(date +%s) - STARTED)) s"
} | tee -a "$SUMMARY"
