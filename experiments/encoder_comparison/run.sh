#!/usr/bin/env bash
# The encoder comparison of docs/segmentation.md, end to end on one CPU machine:
#   1. encoders: experiments/teacher_student/run.sh (SHIFT=outdoor) trains (a) a teacher (depth, teacher recipe)
#      and, from pseudo-labels of an outdoor pool, (b) a student with feature alignment to the teacher's frozen
#      encoder and (c) the same student without alignment; (d) is a random init;
#   2. fine-tuning worlds: depthany synth, mixed indoor/outdoor scenes with exact depth and semantic labels;
#   3. every encoder fine-tuned for segmentation (seg.yaml: linear BN head) and for depth (depth.yaml: DPT head),
#      same recipe, steps and data, seeds 0..SEEDS-1;
#   4. depthany eval --task semseg (mIoU) and depthany eval --dataset rgbd (AbsRel) on held-out worlds;
#      summarize.py prints the tables (paired over seeds) with the times.
#
#   experiments/encoder_comparison/run.sh [WORKDIR]   (default runs/encoder_comparison; reruns skip finished steps)
#   PRE_STEPS=400 PRE_COUNT=400 STEPS=200 COUNT=300 TEST=60 SEEDS=3 JOBS=2 ...
set -euo pipefail
cd "$(dirname "$0")/../.."
W=${1:-runs/encoder_comparison}
PY=${PYTHON:-.venv/bin/python}
HERE=experiments/encoder_comparison
PRE_STEPS=${PRE_STEPS:-400}
PRE_COUNT=${PRE_COUNT:-400}
STEPS=${STEPS:-200}
COUNT=${COUNT:-300}
TEST=${TEST:-60}
SEEDS=${SEEDS:-3}
JOBS=${JOBS:-2}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}   # one thread per process on a shared CPU
mkdir -p "$W/logs"
W=$(cd "$W" && pwd)
TIMES="$W/times.tsv"

# 1. the pretrained encoders (teacher; students with and without alignment), with their own evaluation
PYTHON=$PY SHIFT=outdoor STEPS=$PRE_STEPS COUNT=$PRE_COUNT TEST=50 PARALLEL=1 STUDENTS="perturb align" \
    experiments/teacher_student/run.sh "$W/pretrain"    # its steps and times: $W/pretrain/times.tsv
declare -A INIT=(
  [teacher]="$W/pretrain/teacher/final.safetensors"
  [align]="$W/pretrain/student-align-outdoor/final.safetensors"
  [noalign]="$W/pretrain/student-perturb-outdoor/final.safetensors"
  [random]=null
)
ENCODERS=(teacher align noalign random)

# run NAME CMD...: once (skipped when logs/NAME.done exists), logged, wall time appended to times.tsv
run() {
  local name=$1; shift
  if [[ -e "$W/logs/$name.done" ]]; then echo "skip $name (done)"; return; fi
  echo "run  $name: $*"
  local t0 t1
  t0=$(date +%s%N)
  "$@" > "$W/logs/$name.log" 2>&1 || { echo "FAILED $name, see $W/logs/$name.log"; tail -5 "$W/logs/$name.log"; return 1; }
  t1=$(date +%s%N)
  local ms=$(( (t1 - t0) / 1000000 ))
  printf '%s\t%d.%03d\t%s\n' "$name" $((ms / 1000)) $((ms % 1000)) "$*" >> "$TIMES"
  touch "$W/logs/$name.done"
}

DA="$PY -m depthany"
D=$W/data
run synth-train $DA synth --out $D/train --count $COUNT --size 128 --kind mixed --seed 11 --quiet
run synth-test  $DA synth --out $D/test  --count $TEST  --size 128 --kind mixed --seed 12 --quiet

# 3. fine-tuning, JOBS at a time
jobs_list=()
for task in seg depth; do
  for enc in "${ENCODERS[@]}"; do
    for (( seed = 0; seed < SEEDS; seed++ )); do
      jobs_list+=("$task $enc $seed")
    done
  done
done
finetune() {
  local task=$1 enc=$2 seed=$3
  run "$task-$enc-s$seed" $DA train $HERE/$task.yaml --run-dir $W/$task/$enc-s$seed \
      --set data.sources.0.path=$D/train --set model.encoder_init=${INIT[$enc]} --set seed=$seed \
      --set train.steps=$STEPS
}
failed=0
for job in "${jobs_list[@]}"; do
  while (( $(jobs -rp | wc -l) >= JOBS )); do wait -n || failed=1; done
  finetune $job &
done
while (( $(jobs -rp | wc -l) > 0 )); do wait -n || failed=1; done
(( failed == 0 )) || { echo "a fine-tuning run failed"; exit 1; }

# 4. evaluation on the held-out worlds
for enc in "${ENCODERS[@]}"; do
  for (( seed = 0; seed < SEEDS; seed++ )); do
    run eval-seg-$enc-s$seed $DA eval --task semseg --dataset synth --root $D/test \
        --weights $W/seg/$enc-s$seed/final.safetensors --out $W/eval/seg-$enc-s$seed --quiet
    run eval-depth-$enc-s$seed $DA eval --dataset rgbd --root $D/test \
        --weights $W/depth/$enc-s$seed/final.safetensors --out $W/eval/depth-$enc-s$seed --quiet
  done
done
$PY $HERE/summarize.py "$W" | tee "$W/results.md"
