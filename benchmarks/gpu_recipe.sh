#!/usr/bin/env bash
# One GPU job (at most 9 minutes of device time) that continues the shipped weights' training:
#   0. install the carried wheels and point $SEMSIM_SHARED at the carried data
#      (benchmarks/pack_device_carry.sh builds device_carry/; name it in the device call's carry);
#   1. time one bf16 training step of every learned method (benchmarks/train_throughput.py) and
#      fix the recipe's `steps` so that training all of them takes about TRAIN_SECONDS;
#   2. train them in turn from the shipped weights (scenarios/train_small_gpu.yaml: `init: shipped`,
#      a fresh optimiser with a short warm-up; identical data, steps, SNR range, seed);
#   3. `semsim ship` the round: every candidate is scored against the weights it would replace on
#      the fixed validation set (BSDS500 test, CamVid val; 1/7/13 dB) and the round ships whole
#      only if none regresses (exit 2 and nothing written otherwise);
#   4. time the fig5 sweep (scenarios/fig5.yaml) on the GPU with whatever weights are now shipped.
# The log, the weights and a tarball of the curves, manifest and fig5 results go to $OUT.
#
#   bash benchmarks/pack_device_carry.sh        # here, once: device_carry/ (wheels, data)
#   device run, carry [device_carry]:
#     OUT=$OUT bash benchmarks/gpu_recipe.sh 2>&1 | tee $OUT/log.txt
#
# On a machine where semsim is not pip-installed (PYTHONPATH=repo root), `baselines/` is made
# importable as `semsim.baselines` by a symbolic link.
set -u
OUT=${OUT:-results/gpu}
TRAIN_SECONDS=${TRAIN_SECONDS:-270}   # optimiser-step time for all methods together
FIG5_SECONDS=${FIG5_SECONDS:-90}      # the fig5 sweep is cut off after this (finished points are kept)
TRAIN_OUT=${TRAIN_OUT:-results/train/small-gpu}
if [ -d device_carry ]; then
    export SEMSIM_SHARED=${SEMSIM_SHARED:-$PWD/device_carry}
    ls device_carry/wheels/*.whl >/dev/null 2>&1 && ${PY:-python3} -m pip install -q --no-deps device_carry/wheels/*.whl
fi
DEVICE=${DEVICE:-cuda}
RUN_DEVICE=${RUN_DEVICE:-cuda}
PRECISION=${PRECISION:-bf16}
BATCH=${BATCH:-64}
MIN_STEPS=${MIN_STEPS:-200}
REPEATS=${REPEATS:-8}
RECIPE=scenarios/train_small_gpu.yaml
PROBE=results/throughput_gpu.json
PY=${PY:-python3}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT" results
log() { echo "[$(date -u +%T) +${SECONDS}s] $*"; }

$PY -c "import semsim.baselines" 2>/dev/null || ln -sfn ../baselines semsim/baselines
log "environment"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
$PY -c "import torch, timm, sionna, diffusers; print('torch', torch.__version__, 'timm', timm.__version__, \
'diffusers', diffusers.__version__, 'cuda', torch.cuda.is_available())" || exit 1

probe() {
    $PY benchmarks/train_throughput.py --device "$DEVICE" --precision "$1" --batch "$BATCH" --crop 128 \
        --warmup 3 --repeats "$REPEATS" --json "$PROBE"
}
log "1. throughput probe ($PRECISION, batch $BATCH, 128 px)"
if ! probe "$PRECISION"; then
    PRECISION=fp32
    log "bf16 failed; probing fp32"
    probe fp32 || exit 1
fi
STEPS=$($PY -c "
import json
per_step = sum(r['s_per_step'] for r in json.load(open('$PROBE'))) * 1.15  # data, logging, validation
print(max($MIN_STEPS, min(20000, int($TRAIN_SECONDS / per_step) // 50 * 50)))")
log "steps per method: $STEPS (precision $PRECISION)"
sed -i -e "s/^steps: .*/steps: $STEPS/" -e "s/^batch_size: .*/batch_size: $BATCH/" \
    -e "s/^precision: .*/precision: $PRECISION/" "$RECIPE"

log "2. training (continuing the shipped weights)"
MAX_MIN=$($PY -c "print(round($TRAIN_SECONDS * 1.4 / 60, 2))")
$PY -m semsim train "$RECIPE" --device "$DEVICE" --quiet --max-minutes "$MAX_MIN" --output "$TRAIN_OUT"
log "training exit $?"
for f in "$TRAIN_OUT"/*/validation.csv; do echo "== $f"; tail -n 3 "$f"; done

log "3. ship (refused, and nothing written, if any method regresses on the fixed validation set)"
$PY -m semsim ship "$TRAIN_OUT" --device "$RUN_DEVICE"
log "ship exit $? (0: shipped; 2: refused)"

if [ -d "${SEMSIM_SHARED:-../shared}/data/kodak" ]; then
    log "4. fig5 sweep on $RUN_DEVICE (cut off after ${FIG5_SECONDS}s)"
    T0=$SECONDS
    timeout "$FIG5_SECONDS" $PY -m semsim run scenarios/fig5.yaml --device "$RUN_DEVICE" --quiet --fresh
    log "fig5 exit $? after $((SECONDS - T0)) s"
else
    log "4. no Kodak under \$SEMSIM_SHARED (pack with KODAK=1 if it fits): fig5 timing skipped"
fi

cp semsim/pretrained/*.safetensors "$OUT"/ 2>/dev/null
tar czf "$OUT/results.tgz" semsim/pretrained/manifest.json "$RECIPE" "$PROBE" "$TRAIN_OUT"/*/*.csv \
    "$TRAIN_OUT"/*/*.png "$TRAIN_OUT"/curves.png results/fig5 2>/dev/null
ls -la "$OUT"
log "done"
