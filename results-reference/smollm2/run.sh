#!/usr/bin/env bash
# SmolLM2-135M reference run (issue 15, item 2): E1 E3 E6 E7 E2 at |H| = |F| = N, one seed, then the
# spectrum data of `logitrank spectrum` at the same N. Needs `make smollm2`. Resumable (cache/).
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${LOGITRANK_REF_N:-32}
OUT=results-reference/smollm2
export LOGITRANK_REF_N=$N
start=$(date +%s)
.venv/bin/logitrank check E1 E3 E6 E7 E2 --model smollm2 --scale full --seeds 1 --threads 2 \
    --plugin "$OUT/sizes.py" --json "$OUT/checks.json" || true
mid=$(date +%s)
.venv/bin/logitrank spectrum --model smollm2 --corpus shakespeare --n "$N" --k 50 --lengths 50:200 \
    --threads 2 --out "$OUT/spectrum"
end=$(date +%s)
echo "{\"N\": $N, \"checks seconds\": $((mid - start)), \"spectrum seconds\": $((end - mid))}" > "$OUT/wall_time.json"
