#!/usr/bin/env bash
# The real-model ledger at N = 256 for one model (issue 32, item 3). Rules and sizes: LEDGER_RULES.md,
# fixed before the numbers. Needs `make smollm2` or `make gemma3`. Resumable after kill -9: finished claims
# are skipped (--resume), matrices resume from verified chunks under <out>/cache.
#
#   results-reference/run_ledger.sh smollm2                # hours per model on 2 cores
#   results-reference/run_ledger.sh gemma3 --show-config   # the resolved settings; runs nothing
#
# LOGITRANK_LEDGER_THREADS (default 1) sets torch threads. For tests only: MODEL tiny runs the same command
# at toy size (N = 16, 8–24 characters) into LOGITRANK_LEDGER_OUT, with LOGITRANK_LEDGER_CLAIMS choosing claims.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-}
MODE=${2:-}
LOGITRANK=.venv/bin/logitrank
THREADS=${LOGITRANK_LEDGER_THREADS:-1}
case "$MODEL" in
    smollm2|gemma3)
        N=256
        SIZES=(--set "n=$N" --set "n_checkpoint=$N" --set min_chars=50 --set max_chars=200 --set k=50
               --set lingen_histories=80 --set lingen_futures=30 --set targets=3 --set samples=2 --set new_tokens=10)
        OUT=results-reference/$MODEL/ledger-n$N ;;
    tiny)
        N=16
        SIZES=(--set "n=$N" --set "n_checkpoint=$N" --set min_chars=8 --set max_chars=24 --set k=20
               --set lingen_histories=24 --set lingen_futures=12 --set targets=2 --set samples=1 --set new_tokens=3)
        OUT=${LOGITRANK_LEDGER_OUT:?tiny runs only into a scratch LOGITRANK_LEDGER_OUT} ;;
    *)
        echo "usage: $0 smollm2|gemma3 [--show-config]" >&2
        exit 2 ;;
esac
read -r -a CLAIMS <<< "${LOGITRANK_LEDGER_CLAIMS:-E6 E9 E1 E3 E7 E5 E2 X5 E8 E11 E10}"
CHECK=("$LOGITRANK" check "${CLAIMS[@]}" --model "$MODEL" --dtype bfloat16 --scale full --seeds 2 --threads "$THREADS"
       "${SIZES[@]}")
GAUSSIAN=("$LOGITRANK" check E12 --scale full --seeds 2 --set "n=$N" --set k=50)

case "$MODE" in
    "") ;;
    --show-config)
        scratch=$(mktemp -d)
        trap 'rm -rf "$scratch"' EXIT
        "${CHECK[@]}" --json "$scratch/checks.json" --show-config
        "${GAUSSIAN[@]}" --json "$scratch/e12/checks.json" --show-config
        exit 0 ;;
    *)
        echo "usage: $0 smollm2|gemma3 [--show-config]" >&2
        exit 2 ;;
esac

mkdir -p "$OUT"
start=$(date +%s)
"${CHECK[@]}" --json "$OUT/checks.json" --resume --resume-any-code
"${GAUSSIAN[@]}" --json "$OUT/e12/checks.json" --resume --resume-any-code
end=$(date +%s)
echo "{\"model\": \"$MODEL\", \"N\": $N, \"seconds (this invocation)\": $((end - start))}" > "$OUT/wall_time.json"
echo "ledger complete: $OUT"
