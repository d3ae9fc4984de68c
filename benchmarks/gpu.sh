#!/usr/bin/env bash
# Issue 14 on one GPU, within 8 minutes, into one JSON ($OUT/gpu.json, default results/gpu/):
#   1. the CUDA tests (every test whose name mentions cuda; ≤ 90 s);
#   2. ISAN logits at B = 64k in float32 and bfloat16 against that GPU's matmul peak, and the Gram
#      spectrum at |H| = |F| = 10^4 in float64 (benchmarks/gpu_bench.py; ≤ 240 s);
#   3. the real-model cached path in bfloat16 (benchmarks/bench_hf_cache.py --device cuda --dtype
#      bfloat16) when that script takes those options; otherwise recorded as skipped (≤ 120 s).
# Each step has its own timeout, so a slow step leaves the others' numbers in the JSON.
# Usage (repository root, venv in .venv):  benchmarks/gpu.sh
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-results/gpu}
mkdir -p "$OUT"
JSON="$OUT/gpu.json"
rm -f "$JSON"
start=$(date +%s)

if ! $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu.sh: no CUDA device visible to torch; nothing to do" >&2
    exit 2
fi
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv > "$OUT/nvidia-smi.csv" 2>&1 || true

# 1. CUDA tests
timeout 90 $PY -m pytest -q -p no:cacheprovider -k cuda tests > "$OUT/cuda-tests.txt" 2>&1
tests_rc=$?
echo "cuda tests: rc=$tests_rc ($(tail -n 1 "$OUT/cuda-tests.txt"))"

# 2. ISAN logits and Gram spectrum
timeout 240 $PY benchmarks/gpu_bench.py --out "$JSON" --parts logits,gram
bench_rc=$?

# 3. real-model path in bfloat16, if the benchmark supports it
hf_status="skipped: benchmarks/bench_hf_cache.py has no --device/--dtype options"
if $PY benchmarks/bench_hf_cache.py --help 2>/dev/null | grep -q -- "--device" \
   && $PY benchmarks/bench_hf_cache.py --help 2>/dev/null | grep -q -- "--dtype"; then
    if timeout 120 $PY benchmarks/bench_hf_cache.py --device cuda --dtype bfloat16 --out "$OUT/hf_cache.json" \
        > "$OUT/hf_cache.txt" 2>&1; then
        hf_status="ok"
    else
        hf_status="failed or timed out (rc=$?), see hf_cache.txt"
    fi
fi
echo "real-model path: $hf_status"

# 4. one JSON: the benchmark's parts plus the tests, the real-model result and the wall time
$PY - "$JSON" "$tests_rc" "$bench_rc" "$hf_status" "$OUT" "$start" <<'EOF'
import json, sys, time
from pathlib import Path
path, tests_rc, bench_rc, hf_status, out, start = sys.argv[1:]
result = json.loads(Path(path).read_text()) if Path(path).exists() else {}
tests = Path(out, "cuda-tests.txt").read_text().strip().splitlines()
result["cuda_tests"] = {"rc": int(tests_rc), "summary": tests[-1] if tests else ""}
result["gpu_bench_rc"] = int(bench_rc)
hf = Path(out, "hf_cache.json")
result["real_model_bf16"] = {"status": hf_status, **({"result": json.loads(hf.read_text())} if hf.exists() else {})}
result["wall_seconds"] = time.time() - int(start)
Path(path).write_text(json.dumps(result, indent=1))
print(f"wrote {path} ({result['wall_seconds']:.0f} s)")
EOF
