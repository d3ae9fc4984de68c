#!/usr/bin/env bash
# Start vLLM's OpenAI server (from the .venv-vllm of tools/vllm_env.sh) on a Hugging Face folder, wait for
# GET /health, and leave it running (issue 33, item 1).
#
#   tools/vllm_serve.sh MODEL_DIR NAME PORT [more vLLM flags ...]
#
# Prints one line "PID URL SECONDS" (the server's process id, its /v1 root, the start-up time) and exits 0
# once /health answers 200; stop the server with `kill PID` (it stops its engine processes; the server
# leads its own process group, so `kill -- -PID` stops whatever is left). Exits 1, after stopping the server, when it
# dies or has not answered within VLLM_START_TIMEOUT seconds (default 900); its log is in
# VLLM_LOG (default build/vllm-PORT.log). Flags given after PORT are appended, so they override the
# defaults below (argparse keeps the last value): the tiny model needs --max-model-len 128.
# The server binds to 127.0.0.1 and runs on one CPU thread by default (OMP_NUM_THREADS=1,
# VLLM_CPU_OMP_THREADS_BIND=nobind, VLLM_CPU_KVCACHE_SPACE=1 GiB): the machine's cores are shared.
set -euo pipefail

if [ "$#" -lt 3 ]; then
    echo "usage: $0 MODEL_DIR NAME PORT [more vLLM flags ...]" >&2
    exit 2
fi
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MODEL_DIR="$1"
NAME="$2"
PORT="$3"
shift 3
VENV="${VLLM_VENV:-$ROOT/.venv-vllm}"
TIMEOUT="${VLLM_START_TIMEOUT:-900}"
LOG="${VLLM_LOG:-$ROOT/build/vllm-$PORT.log}"
mkdir -p "$(dirname "$LOG")"
if [ ! -x "$VENV/bin/python" ]; then
    echo "no vLLM environment at $VENV: run tools/vllm_env.sh first" >&2
    exit 1
fi

export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
export VLLM_CPU_OMP_THREADS_BIND="${VLLM_CPU_OMP_THREADS_BIND:-nobind}"
export VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-1}"
export HF_HUB_OFFLINE=1
export VLLM_NO_USAGE_STATS=1
export DO_NOT_TRACK=1

start=$(date +%s.%N)
setsid "$VENV/bin/python" -m vllm.entrypoints.openai.api_server --model "$MODEL_DIR" --served-model-name "$NAME" \
    --dtype float32 --max-logprobs 20 --logprobs-mode processed_logprobs --return-tokens-as-token-ids \
    --enforce-eager --max-model-len 1024 --port "$PORT" --host 127.0.0.1 "$@" >"$LOG" 2>&1 &
pid=$!
trap 'kill "$pid"; exit 130' INT TERM

deadline=$(( $(date +%s) + TIMEOUT ))
while true; do
    if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid" || status=$?
        echo "vLLM exited (status ${status:-0}) before answering /health; last lines of $LOG:" >&2
        tail -n 30 "$LOG" >&2
        exit 1
    fi
    if curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/health" 2>/dev/null; then
        break
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
        kill "$pid"
        echo "vLLM did not answer /health within $TIMEOUT s; stopped it; last lines of $LOG:" >&2
        tail -n 30 "$LOG" >&2
        exit 1
    fi
    sleep 1
done
trap - INT TERM
echo "$pid http://127.0.0.1:$PORT/v1 $(echo "$(date +%s.%N) - $start" | bc)"
