#!/usr/bin/env bash
# One unattended GPU session: the campaign(s) on a rented or lent GPU, results into $OUT.
#
#   OUT=/tmp/out bash scripts/gpu_campaign.sh [BUDGET_MINUTES] [CAMPAIGN...] [-- --set K=V ...]
#
# Needs the packs in data/packs/ (make them where the data is, ~1 min each:
#   ekspresi data pack fer2013-folder:data/fer2013 -o data/packs/fer2013.ekpack
#   ekspresi data pack folders:data/ckplus48 -o data/packs/ckplus48.ekpack)
# and PyTorch with CUDA. Runs the campaigns in order inside one budget (default 8 minutes;
# default campaigns: default-model, then papers), tees the log into $OUT/campaign.log,
# and leaves in $OUT: campaign.log and, per campaign, the results archive parts (each
# holding its campaign.json; at most 8 files in all, <= 16 MiB each: what comes back).
# Extra arguments after `--` go to every `ekspresi campaign` call (a CPU dry run:
#   -- --set train.epochs=1 --set train.device=cpu).
set -uo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder whose files come back}"
BUDGET=${1:-8}
shift || true
CAMPAIGNS=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do CAMPAIGNS+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
EXTRA=("$@")
[ ${#CAMPAIGNS[@]} -eq 0 ] && CAMPAIGNS=(configs/campaign/default-model.yaml configs/campaign/papers.yaml)
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export EKSPRESI_CACHE="${EKSPRESI_CACHE:-$PWD/.cache/ekspresi}"
mkdir -p "$OUT"
LOG="$OUT/campaign.log"
START=$(date +%s)
{
  echo "== $(date -u +%FT%TZ) budget ${BUDGET} min: ${CAMPAIGNS[*]}"
  "$PY" - <<'EOF'
import platform, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "gpus", torch.cuda.device_count(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "(no GPU)",
      platform.processor() or platform.machine())
EOF
  ls -la data/packs 2>/dev/null
} 2>&1 | tee -a "$LOG"
# The later campaign's parts must not overwrite the earlier's: archives per campaign,
# 7 parts in all (the log is the 8th file), shared in order of priority.
PARTS_LEFT=7
N=${#CAMPAIGNS[@]}
for i in "${!CAMPAIGNS[@]}"; do
  C=${CAMPAIGNS[$i]}
  NAME=$(basename "$C" .yaml)
  NOW=$(date +%s)
  LEFT=$("$PY" -c "print(max(0.0, $BUDGET - ($NOW - $START) / 60.0))")
  if "$PY" -c "import sys; sys.exit(0 if $LEFT >= 0.5 else 1)"; then
    REMAINING=$((N - i - 1))
    PARTS=$((PARTS_LEFT - REMAINING)); [ $PARTS -lt 1 ] && PARTS=1
    echo "== $NAME: ${LEFT} min left, up to ${PARTS} archive parts" | tee -a "$LOG"
    "$PY" -m ekspresi campaign "$C" --budget-minutes "$LEFT" --out "runs/gpu/$NAME" \
      --archive-dir "$OUT/$NAME" --max-archives "$PARTS" "${EXTRA[@]}" 2>&1 | tee -a "$LOG"
    USED=$(ls "$OUT/$NAME" 2>/dev/null | wc -l)
    PARTS_LEFT=$((PARTS_LEFT - USED))
  else
    echo "== $NAME: skipped, budget spent" | tee -a "$LOG"
  fi
done
echo "== done in $(( $(date +%s) - START )) s" | tee -a "$LOG"
find "$OUT" -type f -printf '%s %p\n' | tee -a "$LOG"
