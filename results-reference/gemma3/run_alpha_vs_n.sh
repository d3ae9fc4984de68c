#!/usr/bin/env bash
# Gemma-3-270M (issue 32, item 4): α against N, two corpus cuts, through `logitrank spectrum` (float32,
# paper lengths 50–200 characters, top-50 columns), the smallest N first. Needs `make gemma3`.
# Resumable after kill -9: each run keeps its verified matrix chunks in <out>/cache (not committed), and a
# finished run (summary.json present) is skipped.
#
#   results-reference/gemma3/run_alpha_vs_n.sh                 # N = 32 64 128 (both cuts)
#   LOGITRANK_REF_NS="256 512" results-reference/gemma3/run_alpha_vs_n.sh
#   results-reference/gemma3/run_alpha_vs_n.sh --show-config   # the configs; runs nothing
set -euo pipefail
cd "$(dirname "$0")/../.."
NS=${LOGITRANK_REF_NS:-"32 64 128"}
OUT=results-reference/gemma3
LOGITRANK=.venv/bin/logitrank
show=""
case "${1:-}" in
    "") ;;
    --show-config) show="--show-config" ;;
    *) echo "usage: $0 [--show-config]" >&2; exit 2 ;;
esac
for n in $NS; do
    for seed in 0 1; do
        dir="$OUT/spectrum-n$n"
        [ "$seed" = 0 ] || dir="$OUT/seed$seed/spectrum-n$n"
        if [ -z "$show" ] && [ -f "$dir/summary.json" ]; then
            echo "done already: $dir"
            continue
        fi
        "$LOGITRANK" spectrum --model gemma3 --corpus shakespeare --n "$n" --k 50 --lengths 50:200 --seed "$seed" \
            --threads 1 --out "$dir" $show
    done
done
