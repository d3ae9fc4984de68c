#!/usr/bin/env bash
# SmolLM2-135M reference run (issue 15, item 2): E1 E3 E6 E7 E2 at |H| = |F| = N, one seed, then the
# spectrum data of `logitrank spectrum` at the same N. Needs `make smollm2`. Resumable (cache/).
#
#   results-reference/smollm2/run.sh                # the run (N = 32: ~70 min on the shared 2-core machine)
#   results-reference/smollm2/run.sh --show-config  # print the settings both commands would use; runs nothing
#
# LOGITRANK_REF_N=N changes N (default 32, the committed run). The sizes are `--set` overrides of the
# claims' "full" presets for a Hugging Face model: an unknown key or a bad value stops the run before any
# work (exit 2), and any failure stops the script (tests/test_recipes.py runs `--show-config`).
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${LOGITRANK_REF_N:-32}
OUT=results-reference/smollm2
LOGITRANK=.venv/bin/logitrank
# |H| = |F| = N (the checkpoint matrices too), the paper's lengths (50–200 characters) and top-50 columns;
# every other setting keeps its "full" value (`--show-config` prints them all)
SIZES=(--set "n=$N" --set "n_checkpoint=$N" --set min_chars=50 --set max_chars=200 --set k=50)
CHECK=("$LOGITRANK" check E1 E3 E6 E7 E2 --model smollm2 --scale full --seeds 1 --threads 2 "${SIZES[@]}")
SPECTRUM=("$LOGITRANK" spectrum --model smollm2 --corpus shakespeare --n "$N" --k 50 --lengths 50:200 --threads 2
          --out "$OUT/spectrum")

case "${1:-}" in
    "") ;;
    --show-config)
        # `check --show-config` opens the run store beside --json: point it at a scratch folder
        scratch=$(mktemp -d)
        trap 'rm -rf "$scratch"' EXIT
        "${CHECK[@]}" --json "$scratch/checks.json" --show-config
        "${SPECTRUM[@]}" --show-config
        exit 0 ;;
    *)
        echo "usage: $0 [--show-config]" >&2
        exit 2 ;;
esac

start=$(date +%s)
"${CHECK[@]}" --json "$OUT/checks.json"
mid=$(date +%s)
"${SPECTRUM[@]}"
end=$(date +%s)
echo "{\"N\": $N, \"checks seconds\": $((mid - start)), \"spectrum seconds\": $((end - mid))}" > "$OUT/wall_time.json"
