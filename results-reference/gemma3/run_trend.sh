#!/usr/bin/env bash
# Gemma-3-270M: the whole α-against-N curve of E1_TREND_RULE.md, in the rule's order (issue 32, item 4).
# Needs `make gemma3`. Every step resumes after kill -9 (run_alpha_vs_n.sh skips finished runs and the
# spectrum resumes from its verified chunks), so rerun it until it prints "curve complete".
#
#   results-reference/gemma3/run_trend.sh
#
# LOGITRANK_TREND_FLOAT32_NS, LOGITRANK_TREND_CHECK_NS and LOGITRANK_TREND_LATE_NS replace the three lists of N
# below, and LOGITRANK_REF_MODEL / LOGITRANK_REF_OUT pass through to run_alpha_vs_n.sh: tests/test_recipes.py
# runs the whole recipe on the tiny model at N = 8 … 24 that way.
#
# 1. float32 N = 32, 64, 128 at both cuts (committed already);
# 2. the dtype check of clause 2.1: bfloat16 N = 64 and 128 at cut 0;
# 3. e_dtype = largest |α_bf16 − α_fp32| over those runs and both indexings; clause 2.2/2.3 picks the dtype;
# 4. N = 256 at both cuts, then N = 512 at both cuts, in that dtype.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN=results-reference/gemma3/run_alpha_vs_n.sh
OUT=${LOGITRANK_REF_OUT:-results-reference/gemma3}
PY=.venv/bin/python
FLOAT32_NS=${LOGITRANK_TREND_FLOAT32_NS:-"32 64 128"}
CHECK_NS=${LOGITRANK_TREND_CHECK_NS:-"64 128"}
LATE_NS=${LOGITRANK_TREND_LATE_NS:-"256 512"}

LOGITRANK_REF_NS="$FLOAT32_NS" "$RUN"
LOGITRANK_REF_DTYPE=bfloat16 LOGITRANK_REF_CUTS=0 LOGITRANK_REF_NS="$CHECK_NS" "$RUN"
dtype=$("$PY" - "$OUT" $CHECK_NS <<'PYEOF'
import sys
from pathlib import Path
from logitrank.verify import trend_point
here = Path(sys.argv[1])
errors = []
for n in map(int, sys.argv[2:]):
    a, b = trend_point(here / f"spectrum-n{n}"), trend_point(here / f"spectrum-n{n}-bf16")
    errors += [abs(a.alpha - b.alpha), abs(a.alpha_original - b.alpha_original)]
e = max(errors)
print(f"e_dtype = {e:.4f} (limit 0.01)", file=sys.stderr)
print("bfloat16" if e <= 0.01 else "float32")
PYEOF
)
echo "N = $LATE_NS run in $dtype (E1_TREND_RULE.md, clause 2)"
LOGITRANK_REF_DTYPE=$dtype LOGITRANK_REF_NS="$LATE_NS" "$RUN"
echo "curve complete"
