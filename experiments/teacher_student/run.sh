#!/usr/bin/env bash
# The synthetic teacher-student experiment of docs/teacher_student.md, end to end on one CPU machine:
#   1. synthetic worlds: labeled indoor rooms with checker textures (the teacher's domain), an unlabeled pool and
#      a labeled test set of indoor rooms with the other texture families (the shifted domain);
#   2. a teacher trained on the labeled domain only;
#   3. depthany pseudo-label over the pool;
#   4. three students (pseudo-labels only / + strong perturbations and CutMix / + feature alignment);
#   5. depthany eval of all four models on both test sets, and a markdown table with the times.
#
#   experiments/teacher_student/run.sh [WORKDIR]        (default runs/teacher_student; rerunning resumes)
#   STEPS=600 COUNT=600 PARALLEL=1 experiments/teacher_student/run.sh   (PARALLEL=1: two students at a time)
set -euo pipefail
cd "$(dirname "$0")/../.."
W=${1:-runs/teacher_student}
PY=${PYTHON:-.venv/bin/python}
HERE=experiments/teacher_student
STEPS=${STEPS:-600}
COUNT=${COUNT:-600}
TEST=${TEST:-100}
WARMUP=$(( STEPS / 12 ))
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}   # one thread per process: on a shared 2-core box 2 threads ran 3-10x slower
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
TEXTURES_SHIFTED=marble,bricks,noise,stripes
run synth-source      $DA synth --out $D/source       --count $COUNT --size 128 --kind indoor --textures checker --seed 1 --quiet
run synth-source-test $DA synth --out $D/source-test  --count $TEST  --size 128 --kind indoor --textures checker --seed 4 --quiet
run synth-pool        $DA synth --out $D/pool         --count $COUNT --size 128 --kind indoor --textures $TEXTURES_SHIFTED --seed 2 --quiet
run synth-target-test $DA synth --out $D/target-test  --count $TEST  --size 128 --kind indoor --textures $TEXTURES_SHIFTED --seed 3 --quiet

run teacher $DA train $HERE/teacher.yaml --data $D/source --run-dir $W/teacher --set train.steps=$STEPS \
    --set optim.warmup_steps=$WARMUP
T=$W/teacher/final.safetensors

# the pool's depth is never read: only its rgb/ images are labelled
run pseudo-label $DA pseudo-label $D/pool/rgb --teacher $T --out $W/labels --device cpu --workers 1 \
    --batch-size 16 --shard-size 100

COMMON=(--set data.sources.0.path=$D/source --set data.sources.1.path=$W/labels --set train.steps=$STEPS
        --set optim.warmup_steps=$WARMUP)
PLAIN=(--set data.sources.1.options.perturb=none --set data.sources.1.options.cutmix.p=0)
declare -A STUDENT=(
  [student-plain]="${PLAIN[*]} --set loss.options.align.weight=0"
  [student-perturb]="--set loss.options.align.weight=0"
  [student-align]="--set loss.options.align.encoder=$T"
)
student() { run "$1" $DA train $HERE/student.yaml --run-dir $W/$1 "${COMMON[@]}" ${STUDENT[$1]}; }
if [[ "${PARALLEL:-0}" == 1 ]]; then
  student student-plain & student student-perturb & wait
  student student-align
else
  for s in student-plain student-perturb student-align; do student $s; done
fi

for m in teacher student-plain student-perturb student-align; do
  for t in target-test source-test; do
    run eval-$m-$t $DA eval --dataset rgbd --root $D/$t --weights $W/$m/final.safetensors --device cpu \
        --out $W/eval/$m-$t --quiet
  done
done
$PY $HERE/summarize.py "$W" | tee "$W/results.md"
