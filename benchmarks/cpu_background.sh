#!/usr/bin/env bash
# The two long CPU jobs of issue 11, one thread each (on a 2-core machine two one-thread runs side
# by side beat one two-thread run; docs/baselines.md), in the background and resumable: rerun this
# script after a stop (a new session, a reboot) and each continues from its last checkpoint.
#   1. the CPU continuation round of every learned method (scenarios/train_small_cpu.yaml), then
#      `semsim ship ~/.cache/semsim/train/small-cpu` once all six have finished (it refuses regressions);
#   2. the recipe ablation at the shipped weights' budget (92,800 crops of 128 px per arm): old recipe
#      against the new one, GenSC then Deep JSCC (benchmarks/ablation.py --ends).
# Checkpoints and logs live in $SEMSIM_CACHE_DIR (default ~/.cache/semsim), outside the work tree.
#   bash benchmarks/cpu_background.sh          # start (or resume) both; a job already running is left alone
#   tail ~/.cache/semsim/logs/*.err            # progress; curves in .../train/small-cpu/*/curve.csv
set -u
CACHE=${SEMSIM_CACHE_DIR:-$HOME/.cache/semsim}
PY=${PY:-python3}
mkdir -p "$CACHE/logs"
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1

start() {  # start NAME COMMAND...: unless a process with NAME in its command line is running
    local name=$1; shift
    if pgrep -f -- "$name" >/dev/null; then echo "$name: already running"; return; fi
    nohup "$@" >"$CACHE/logs/$name.out" 2>"$CACHE/logs/$name.err" </dev/null &
    echo "$name: started (pid $!)"
}

start train_small_cpu.yaml $PY -m semsim train scenarios/train_small_cpu.yaml --quiet
start ablation_full bash -c "for m in semantic deepjscc; do $PY benchmarks/ablation.py --methods \$m --ends \
--steps 11600 --batch 8 --crop 128 --warmup 100 --method-lr semantic=1e-3 deepjscc=5e-4 --val-every 1450 \
--quiet --json $CACHE/logs/ablation_full_\$m.json || exit 1; done # ablation_full"
