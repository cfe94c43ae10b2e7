#!/usr/bin/env bash
# The CPU half of a GPU campaign: unpack what came back, then export, evaluate and
# benchmark the candidates for the default and `accurate` models (issue 13 section 3).
#
#   bash scripts/after_gpu_campaign.sh ARCHIVE_DIR [RUNS_DIR]
#
# ARCHIVE_DIR holds results.tar.xz or its parts (results.tar.xz.000, .001, ...) as written
# by `ekspresi campaign` / scripts/gpu_campaign.sh; RUNS_DIR (default runs/gpu-results)
# receives the runs. Needs data/fer2013, data/ckplus48, data/ferplus (README, Data).
# Writes, per student/teacher: RUN/export-int8 (7-bit int8 bundle, drop measured on
# PrivateTest), reports/<run>/ (FER2013 PrivateTest, CK+48, FER+ test), the teachers'
# flip-averaged ensemble out/accurate (+ its int8 export and report), and
# benchmarks/results/candidates.json (classifier ms per face, shipped model beside them).
set -euo pipefail
cd "$(dirname "$0")/.."
ARCH=${1:?give the folder with results.tar.xz or its parts}
RUNS=${2:-runs/gpu-results}
EK=("${PYTHON:-python3}" -m ekspresi)
[ -x .venv/bin/python ] && EK=(.venv/bin/python -m ekspresi)
mkdir -p "$RUNS" reports out
cat "$ARCH"/results.tar.xz* | tar -xJ -C "$RUNS"
echo "unpacked into $RUNS:"; cat "$RUNS/archives.json"
DATA=(--data fer2013-folder:data/fer2013 --data folders:data/ckplus48 --data ferplus:data/ferplus)
CANDIDATES=()
for run in "$RUNS"/*/; do
  run=${run%/}; name=$(basename "$run")
  [ -f "$run/bundle/model.onnx" ] || { echo "$name: no bundle came back; skipped"; continue; }
  "${EK[@]}" export "$run" --int8 --data fer2013-folder:data/fer2013 -o "$run/export-int8"
  "${EK[@]}" evaluate "$run/export-int8" "${DATA[@]}" --out "reports/$name"
  CANDIDATES+=("$run/export-int8")
done
TEACHERS=()
for t in "$RUNS"/teacher-*/bundle; do [ -f "$t/model.onnx" ] && TEACHERS+=("$t"); done
if [ ${#TEACHERS[@]} -gt 0 ]; then
  "${EK[@]}" ensemble "${TEACHERS[@]}" --tta flip -o out/accurate --name accurate
  "${EK[@]}" export out/accurate --int8 --data fer2013-folder:data/fer2013 -o out/accurate-int8
  "${EK[@]}" evaluate out/accurate-int8 "${DATA[@]}" --out reports/accurate
  CANDIDATES+=(out/accurate-int8)
fi
COMPARE=()
for c in "${CANDIDATES[@]}"; do COMPARE+=(--compare "$c"); done
"${EK[@]}" benchmark "${COMPARE[@]}" -o benchmarks/results/candidates.json
echo "next: compare reports/*/metrics.json; ship with"
echo "  ekspresi export RUN/export-int8 -o src/ekspresi/assets/models/default --evaluation reports/RUN"
