#!/usr/bin/env bash
# The metric fine-tuning experiment of docs/metric_finetuning.md ("ZoeDepth head vs V2 head, DA init vs random"),
# end to end on one CPU machine:
#   1. synthetic worlds: indoor rooms (depth labelled to 10 m, as NYUv2) with four texture families for training
#      and an in-domain test set; zero-shot test sets of indoor rooms with the three other texture families and
#      of outdoor scenes (scored on pixels up to 10 m, the models' range);
#   2. for each head (zoedepth: configs/zoedepth-mini-synth.yaml; v2: configs/metric-mini-synth.yaml), each
#      initialisation (da: the bundled relative da2-mini; random) and each seed: one fine-tuning run on whole
#      56 x 84 frames at a 56 x 84 network size, 200 steps of 4 images;
#   3. depthany eval --protocol zoedepth_metric of every run on the three test sets, a constant baseline;
#   4. summarize.py: means over seeds and paired differences (DA - random, same seed), with standard errors.
#
#   experiments/metric_finetuning/run.sh [WORKDIR]     (default runs/metric_finetuning; reruns skip finished steps)
#   SEEDS="0 1 2" STEPS=200 COUNT=600 TEST=100 PARALLEL=2
set -euo pipefail
cd "$(dirname "$0")/../.."
W=${1:-runs/metric_finetuning}
PY=${PYTHON:-.venv/bin/python}
HERE=experiments/metric_finetuning
SEEDS=${SEEDS:-0 1 2}
STEPS=${STEPS:-200}
COUNT=${COUNT:-600}
TEST=${TEST:-100}
PARALLEL=${PARALLEL:-2}
export OMP_NUM_THREADS=1   # one thread per process: the machine is shared
mkdir -p "$W/logs"
TIMES="$W/times.tsv"

# run NAME CMD...: once (skipped when $W/logs/NAME.done exists), logged, wall time appended to times.tsv
run() {
  local name=$1; shift
  if [[ -e "$W/logs/$name.done" ]]; then echo "skip $name (done)"; return; fi
  echo "run  $name"
  local t0 t1
  t0=$(date +%s%N)
  "$@" > "$W/logs/$name.log" 2>&1 || { echo "FAILED $name, see $W/logs/$name.log"; tail -5 "$W/logs/$name.log"; return 1; }
  t1=$(date +%s%N)
  local ms=$(( (t1 - t0) / 1000000 ))
  printf '%s\t%d.%03d\t%s\n' "$name" $((ms / 1000)) $((ms % 1000)) "$*" >> "$TIMES"
  touch "$W/logs/$name.done"
}

DA="nice -n 5 $PY -m depthany"
D=$W/data
SIZE=56x84
SEEN=plain,gradient,checker,bricks
UNSEEN=noise,stripes,marble
run synth-train       $DA synth --out $D/indoor-train --count $COUNT --size $SIZE --kind indoor --max-depth 10 --textures $SEEN --seed 21 --quiet
run synth-indoor-test $DA synth --out $D/indoor-test  --count $TEST --size $SIZE --kind indoor --max-depth 10 --textures $SEEN --seed 22 --quiet
run synth-indoor-zs   $DA synth --out $D/indoor-zs    --count $TEST --size $SIZE --kind indoor --max-depth 10 --textures $UNSEEN --seed 23 --quiet
run synth-outdoor-zs  $DA synth --out $D/outdoor-zs   --count $TEST --size $SIZE --kind outdoor --max-depth 80 --seed 24 --quiet

COMMON=(--data $D/indoor-train --set device=cpu --set train.steps=$STEPS --set train.ckpt_every=50
        --set train.log_every=10 --set data.num_workers=0)
declare -A RECIPE=([zoedepth]=configs/zoedepth-mini-synth.yaml [v2]=configs/metric-mini-synth.yaml)
# the V2 head on the same whole frames, network size and batch as the ZoeDepth head (56 x 84), 10 m like NYUv2
V2SIZE=(--set model.max_depth=10 --set model.input_size=56 --set data.crop_hw=[56,84] --set data.val.input_size=null
        --set train.batch_size=4)
declare -A INIT=(
  [zoedepth-da]="--set model.init=da2-mini" [zoedepth-random]="--set model.init=null"
  [v2-da]="--set model.encoder_init=da2-mini" [v2-random]="--set model.encoder_init=null"
)
job() {  # job HEAD INIT SEED
  local head=$1 init=$2 seed=$3 extra=()
  [[ $head == v2 ]] && extra=("${V2SIZE[@]}")
  run "train-$head-$init-s$seed" $DA train ${RECIPE[$head]} --run-dir $W/train/$head-$init-s$seed "${COMMON[@]}" \
      "${extra[@]}" ${INIT[$head-$init]} --set seed=$seed --set name=$head-$init-s$seed
}
jobs_list=()
for seed in $SEEDS; do for head in zoedepth v2; do for init in da random; do jobs_list+=("$head $init $seed"); done; done; done
failed=0
for j in "${jobs_list[@]}"; do
  while (( $(jobs -rp | wc -l) >= PARALLEL )); do wait -n || failed=1; done
  job $j &
done
while (( $(jobs -rp | wc -l) > 0 )); do wait -n || failed=1; done
(( failed == 0 )) || { echo "some training runs failed"; exit 1; }

EVAL=(--dataset rgbd --device cpu --protocol zoedepth_metric --min-depth 0.001 --max-depth 10 --quiet)
for j in "${jobs_list[@]}"; do
  set -- $j
  m=$1-$2-s$3
  for t in indoor-test indoor-zs outdoor-zs; do
    run eval-$m-$t $DA eval "${EVAL[@]}" --root $D/$t --weights $W/train/$m/final.safetensors --out $W/eval/$m-$t
  done
done
MEDIAN=$($PY -c "
import numpy as np, sys
from depthany.data.rgbd import RGBDFolder
f = RGBDFolder('$D/indoor-train')
print(f'{np.median(np.concatenate([f[i].depth[f[i].valid] for i in range(len(f))])):.3f}')")
echo "median training depth: $MEDIAN m" | tee "$W/median_depth.txt"
for t in indoor-test indoor-zs outdoor-zs; do
  run eval-constant-$t $DA eval "${EVAL[@]}" --root $D/$t --baseline constant --baseline-value $MEDIAN \
      --out $W/eval/constant-$t
done
$PY $HERE/summarize.py "$W" | tee "$W/results.md"
