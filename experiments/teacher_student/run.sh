#!/usr/bin/env bash
# The synthetic teacher-student experiment of docs/teacher_student.md, end to end on one CPU machine:
#   1. synthetic worlds: labeled indoor rooms with checker textures (the teacher's domain), and for the chosen
#      shift an unlabeled pool and a labeled test set from the shifted domain;
#   2. a teacher trained on the labeled domain only (shared by all shifts);
#   3. depthany pseudo-label over the pool;
#   4. three students (pseudo-labels only / + strong perturbations and CutMix / + feature alignment);
#   5. depthany eval of the four models on both test sets, and a markdown table with the times.
#
#   experiments/teacher_student/run.sh [WORKDIR]      (default runs/teacher_student; rerunning skips finished steps)
#   SHIFT=textures   indoor rooms with the other texture families (marble, bricks, noise, stripes)  [default]
#   SHIFT=outdoor    outdoor scenes (streets, landscapes) with all texture families
#   STEPS=600 COUNT=600 TEST=100 PARALLEL=1 ...       (PARALLEL=1: the first two students at the same time)
#   STUDENTS="perturb align"                          which students to train (default: plain perturb align)
set -euo pipefail
cd "$(dirname "$0")/../.."
W=${1:-runs/teacher_student}
PY=${PYTHON:-.venv/bin/python}
HERE=experiments/teacher_student
SHIFT=${SHIFT:-textures}
STEPS=${STEPS:-600}
COUNT=${COUNT:-600}
TEST=${TEST:-100}
WARMUP=$(( STEPS / 12 ))
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}   # one thread per process: on a shared 2-core box 2 threads ran 3-10x slower
case $SHIFT in
  textures) SHIFTED=(--kind indoor --textures marble,bricks,noise,stripes) ;;
  outdoor)  SHIFTED=(--kind outdoor --textures all) ;;
  *) echo "SHIFT must be textures or outdoor, got $SHIFT"; exit 2 ;;
esac
mkdir -p "$W/logs"
TIMES="$W/times.tsv"

# run NAME CMD...: once (skipped when $W/logs/NAME.done exists), logged, wall time appended to times.tsv
run() {
  local name=$1; shift
  if [[ -e "$W/logs/$name.done" ]]; then echo "skip $name (done)"; return; fi
  echo "run  $name: $*"
  local t0 t1
  t0=$(date +%s%N)
  "$@" > "$W/logs/$name.log" 2>&1 || { echo "FAILED $name, see $W/logs/$name.log"; tail -5 "$W/logs/$name.log"; exit 1; }
  t1=$(date +%s%N)
  local ms=$(( (t1 - t0) / 1000000 ))
  printf '%s\t%d.%03d\t%s\n' "$name" $((ms / 1000)) $((ms % 1000)) "$*" >> "$TIMES"
  touch "$W/logs/$name.done"
}

DA="$PY -m depthany"
D=$W/data
run synth-source      $DA synth --out $D/source       --count $COUNT --size 128 --kind indoor --textures checker --seed 1 --quiet
run synth-source-test $DA synth --out $D/source-test  --count $TEST  --size 128 --kind indoor --textures checker --seed 4 --quiet
run synth-pool-$SHIFT        $DA synth --out $D/pool-$SHIFT        --count $COUNT --size 128 "${SHIFTED[@]}" --seed 2 --quiet
run synth-target-test-$SHIFT $DA synth --out $D/target-test-$SHIFT --count $TEST  --size 128 "${SHIFTED[@]}" --seed 3 --quiet

run teacher $DA train $HERE/teacher.yaml --data $D/source --run-dir $W/teacher --set train.steps=$STEPS \
    --set optim.warmup_steps=$WARMUP
T=$W/teacher/final.safetensors

# the pool's depth is never read: only its rgb/ images are labelled
run pseudo-label-$SHIFT $DA pseudo-label $D/pool-$SHIFT/rgb --teacher $T --out $W/labels-$SHIFT --device cpu \
    --workers 1 --batch-size 16 --shard-size 100

COMMON=(--set data.sources.0.path=$D/source --set data.sources.1.path=$W/labels-$SHIFT --set train.steps=$STEPS
        --set optim.warmup_steps=$WARMUP)
PLAIN=(--set data.sources.1.options.perturb=none --set data.sources.1.options.cutmix.p=0)
declare -A STUDENT=(
  [plain]="${PLAIN[*]} --set loss.options.align.weight=0"
  [perturb]="--set loss.options.align.weight=0"
  [align]="--set loss.options.align.encoder=$T"
)
student() { run "student-$1-$SHIFT" $DA train $HERE/student.yaml --run-dir $W/student-$1-$SHIFT "${COMMON[@]}" ${STUDENT[$1]}; }
read -r -a CHOSEN <<< "${STUDENTS:-plain perturb align}"
if [[ "${PARALLEL:-0}" == 1 ]]; then  # two at a time
  for (( i = 0; i < ${#CHOSEN[@]}; i += 2 )); do
    student "${CHOSEN[i]}" &
    if (( i + 1 < ${#CHOSEN[@]} )); then student "${CHOSEN[i + 1]}" & fi
    wait
  done
else
  for s in "${CHOSEN[@]}"; do student "$s"; done
fi

MODELS=(teacher)
for s in "${CHOSEN[@]}"; do MODELS+=("student-$s-$SHIFT"); done
for m in "${MODELS[@]}"; do
  for t in target-test-$SHIFT source-test; do
    run eval-$m-$t $DA eval --dataset rgbd --root $D/$t --weights $W/$m/final.safetensors --device cpu \
        --out $W/eval/$m-$t --quiet
  done
done
for b in constant ground-plane; do
  run eval-baseline-$b-$SHIFT $DA eval --dataset rgbd --root $D/target-test-$SHIFT --baseline $b \
      --out $W/eval/baseline-$b-target-test-$SHIFT --quiet
done
$PY $HERE/summarize.py "$W" | tee "$W/results.md"
