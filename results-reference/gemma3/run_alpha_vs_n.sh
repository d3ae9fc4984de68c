#!/usr/bin/env bash
# Gemma-3-270M (issue 32, item 4): α against N, two corpus cuts, through `logitrank spectrum` (float32,
# paper lengths 50–200 characters, top-50 columns), the smallest N first. Needs `make gemma3`.
# Resumable after kill -9: each run keeps its verified matrix chunks in <out>/cache (not committed), and a
# finished run (summary.json present) is skipped.
#
#   results-reference/gemma3/run_alpha_vs_n.sh                 # N = 32 64 128 (both cuts)
#   LOGITRANK_REF_NS="256 512" results-reference/gemma3/run_alpha_vs_n.sh
#   LOGITRANK_REF_DTYPE=bfloat16 LOGITRANK_REF_CUTS=0 LOGITRANK_REF_NS="64 128" results-reference/gemma3/run_alpha_vs_n.sh
#   results-reference/gemma3/run_alpha_vs_n.sh --show-config   # the configs; runs nothing
#
# LOGITRANK_REF_DTYPE=bfloat16 writes to spectrum-n<N>-bf16 (E1_TREND_RULE.md, clause 2: bfloat16 may supply
# N = 256 and 512 once its error at N = 64 and 128 is measured); LOGITRANK_REF_CUTS picks the cuts (default "0 1").
set -euo pipefail
cd "$(dirname "$0")/../.."
NS=${LOGITRANK_REF_NS:-"32 64 128"}
CUTS=${LOGITRANK_REF_CUTS:-"0 1"}
DTYPE=${LOGITRANK_REF_DTYPE:-float32}
case "$DTYPE" in
    float32) suffix="" ;;
    bfloat16) suffix="-bf16" ;;
    *) echo "LOGITRANK_REF_DTYPE must be float32 or bfloat16; got '$DTYPE'" >&2; exit 2 ;;
esac
MODEL=${LOGITRANK_REF_MODEL:-gemma3}
OUT=${LOGITRANK_REF_OUT:-results-reference/gemma3}
LENGTHS=${LOGITRANK_REF_LENGTHS:-50:200}
LOGITRANK=.venv/bin/logitrank
show=""
case "${1:-}" in
    "") ;;
    --show-config) show="--show-config" ;;
    *) echo "usage: $0 [--show-config]" >&2; exit 2 ;;
esac
for n in $NS; do
    for seed in $CUTS; do
        dir="$OUT/spectrum-n$n$suffix"
        [ "$seed" = 0 ] || dir="$OUT/seed$seed/spectrum-n$n$suffix"
        if [ -z "$show" ] && [ -f "$dir/summary.json" ]; then
            echo "done already: $dir"
            continue
        fi
        "$LOGITRANK" spectrum --model "$MODEL" --corpus shakespeare --n "$n" --k 50 --lengths "$LENGTHS" --seed "$seed" \
            --dtype "$DTYPE" --threads 1 --out "$dir" $show
    done
done
