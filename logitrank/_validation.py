"""Argument checks shared by every public function of logitrank.

Public functions validate here; inner code trusts its inputs. Every message names the argument,
the value received and what was expected (DEVELOPERS.md, "Bad input gets a clear error").
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "UsageError",
    "as_generator",
    "as_rng",
    "check_device",
    "check_enumeration",
    "check_int",
    "check_memory",
    "check_model",
    "check_real",
    "check_tensor",
    "check_tokens",
    "resolve_dtype",
]


class UsageError(ValueError):
    """A bad option or setting given by a user: one line naming the option, the value and what was
    expected. Every ``logitrank`` command reports it on stderr and exits with status 2."""


def check_int(name: str, value, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as an int, or raise naming ``name`` and the accepted range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer; got {value!r} of type {type(value).__name__}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}; got {value}")
    return value


def check_real(
    name: str,
    value,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as a finite float inside the stated interval, or raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {value!r} of type {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite; got {value}")
    lo = "(" if low_open else "["
    hi = ")" if high_open else "]"
    interval = f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must lie in {interval}; got {value}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must lie in {interval}; got {value}")
    return value


def resolve_dtype(name: str, dtype) -> torch.dtype:
    """Accept a floating torch dtype (or None for float64)."""
    if dtype is None:
        return torch.float64
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating torch dtype such as torch.float64; got {dtype!r}")
    return dtype


def check_tensor(
    name: str,
    value,
    *,
    shape: Sequence[int | str | None],
    dims: dict[str, int] | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Check a floating parameter tensor: its shape (symbolic names bind to sizes), finiteness,
    and device. ``dims`` collects the sizes bound to symbolic names so that several tensors can be
    checked for consistency; pass the same dict to every call.

    Returns the tensor cast to ``dtype`` when one is given.
    """
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor; got {type(value).__name__}")
    if not value.dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating tensor; got dtype {value.dtype}")
    symbolic = "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
    if value.ndim != len(shape):
        raise ValueError(
            f"{name} must have shape {symbolic} ({len(shape)} dims); got shape {tuple(value.shape)}"
        )
    dims = {} if dims is None else dims
    for axis, (want, got) in enumerate(zip(shape, value.shape)):
        if want is None:
            continue
        if isinstance(want, str):
            bound = dims.setdefault(want, got)
            if bound != got:
                raise ValueError(
                    f"{name} must have shape {symbolic} with {want}={bound} (set by an earlier "
                    f"argument); got shape {tuple(value.shape)}"
                )
        elif want != got:
            raise ValueError(f"{name} must have shape {symbolic}; got shape {tuple(value.shape)}")
    if device is not None and value.device != device:
        raise ValueError(f"{name} is on device {value.device}, expected {device} like the other arguments")
    if not torch.isfinite(value).all():
        bad = int((~torch.isfinite(value)).sum())
        raise ValueError(f"{name} must be finite; got {bad} non-finite entries (nan or inf)")
    return value if dtype is None else value.to(dtype)


def check_tokens(
    name: str,
    value,
    *,
    vocab_size: int,
    device: torch.device,
    max_length: int | None = None,
    exact_length: int | None = None,
    max_length_reason: str = "",
) -> torch.Tensor:
    """Return token ids as a (B, t) LongTensor on ``device``.

    Accepts an integer tensor, numpy array or nested list. Raises TypeError for non-integer data and
    ValueError for the wrong number of dimensions, ids outside [0, vocab_size) or bad lengths.
    """
    if isinstance(value, torch.Tensor):
        tensor = value
    elif isinstance(value, (np.ndarray, list, tuple)):
        try:
            array = np.asarray(value)
        except ValueError as err:  # ragged lists
            raise ValueError(f"{name} must be a rectangular (B, t) array of token ids; {err}") from None
        if array.dtype == object:
            raise ValueError(f"{name} must be a rectangular (B, t) array of int token ids; got ragged rows or "
                             "entries that are not numbers")
        if array.dtype.kind in "US":
            first = array.reshape(-1)[0].item() if array.size else ""
            raise TypeError(f"{name} must hold integer token ids, not text; got {first!r} (encode text to token ids "
                            "first, e.g. with the model's encode())")
        if array.dtype.kind not in "biufc":
            raise TypeError(f"{name} must hold integer token ids (torch.long); got numpy dtype {array.dtype}")
        if array.size == 0 and array.dtype.kind == "f":
            array = array.astype(np.int64)
        tensor = torch.from_numpy(array)
    else:
        raise TypeError(f"{name} must be a LongTensor of token ids; got {type(value).__name__}")
    if tensor.dtype.is_floating_point or tensor.dtype.is_complex or tensor.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer token ids (torch.long); got dtype {tensor.dtype}")
    if tensor.ndim != 2:
        raise ValueError(f"{name} must have shape (B, t); got shape {tuple(tensor.shape)}")
    length = tensor.shape[1]
    if exact_length is not None and length != exact_length:
        raise ValueError(f"{name} must have length {exact_length}; got length {length}")
    if max_length is not None and length > max_length:
        raise ValueError(f"{name} must have length <= {max_length}{max_length_reason}; got length {length}")
    if tensor.numel():
        lo, hi = int(tensor.min()), int(tensor.max())
        if lo < 0 or hi >= vocab_size:
            bad = lo if lo < 0 else hi
            raise ValueError(f"{name} must hold token ids in [0, {vocab_size}); got id {bad}")
    return tensor.to(device=device, dtype=torch.long)


def as_generator(generator, device: torch.device) -> torch.Generator:
    """Normalise ``generator`` (a torch.Generator or an int seed) to a generator on ``device``."""
    if isinstance(generator, torch.Generator):
        if generator.device.type != torch.device(device).type:
            raise ValueError(
                f"generator is on device {generator.device}, but the model is on {device}; "
                f"pass torch.Generator(device='{torch.device(device).type}') or an int seed"
            )
        return generator
    if isinstance(generator, numbers.Integral) and not isinstance(generator, bool):
        return torch.Generator(device=device).manual_seed(int(generator))
    raise TypeError(
        f"generator must be a torch.Generator or an int seed; got {type(generator).__name__}. "
        "Randomness is always passed in: e.g. generator=torch.Generator().manual_seed(0)"
    )


def check_model(name: str, model, *, needs: Sequence[str] = ("vocab_size", "logits")) -> None:
    """Raise TypeError unless ``model`` looks like a LanguageModel (has every attribute in ``needs``).

    Catches ``model=None`` or a tensor passed by mistake before an AttributeError deep inside.
    """
    missing = [a for a in needs if not hasattr(model, a)]
    if missing:
        raise TypeError(f"{name} must be a language model (with {', '.join(needs)}; see "
                        f"logitrank.synth.LanguageModel); got {type(model).__name__} without {', '.join(missing)}")


def as_rng(rng) -> np.random.Generator:
    """Normalise ``rng`` (a numpy Generator or a non-negative int seed) to a numpy Generator, or raise."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, bool) or not isinstance(rng, numbers.Integral) or rng < 0:
        raise TypeError(f"rng must be a numpy Generator or a non-negative int seed; got {rng!r}")
    return np.random.default_rng(int(rng))


def check_device(name: str, device) -> torch.device | None:
    """Return ``device`` as a torch.device (None stays None), or raise naming ``name``: an unknown
    name (e.g. 'gpu') is a ValueError, and so is 'cuda' on a machine or build without CUDA."""
    if device is None:
        return None
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"{name} must be a torch.device or a string such as 'cpu' or 'cuda'; got {type(device).__name__}")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"{name} must name a torch device such as 'cpu', 'cuda' or 'cuda:0'; got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{name}={device!r} needs CUDA, which is not available here (torch.cuda.is_available() "
                         "is False); use device='cpu'")
    return dev


def available_bytes(device) -> int:
    """Total memory of ``device``: physical RAM for the CPU, the GPU's memory for CUDA."""
    dev = torch.device("cpu" if device is None else device)
    if dev.type == "cuda":
        return int(torch.cuda.get_device_properties(dev).total_memory)
    import os

    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def check_enumeration(what: str, vocab_size: int, length: int, max_sequences, *, bytes_per_sequence: int, device,
                      way_out: str) -> int:
    """Refuse an enumeration of all V**length sequences before allocating anything.

    ``max_sequences`` is checked as an int >= 1; then V**length must be at most ``max_sequences``
    (ValueError naming both and ``way_out``), and V**length · ``bytes_per_sequence`` must fit the
    device's memory (MemoryError through :func:`check_memory`). Returns ``max_sequences`` as an int.

    >>> check_enumeration("distribution()", 2, 3, 100, bytes_per_sequence=64, device="cpu", way_out="sample")
    100
    """
    max_sequences = check_int("max_sequences", max_sequences, minimum=1)
    count = vocab_size**length
    if count > max_sequences:
        raise ValueError(f"{what} enumerates V**T = {vocab_size}**{length} = {count} sequences, more than "
                         f"max_sequences={max_sequences}; {way_out} or raise max_sequences")
    check_memory(f"{what} over V**T = {vocab_size}**{length} = {count} sequences", count * bytes_per_sequence,
                 device, way_out)
    return max_sequences


def check_memory(what: str, nbytes: int, device, way_out: str) -> None:
    """Refuse before allocating: raise MemoryError when ``nbytes`` exceed the device's total memory,
    with the number and ``way_out`` (what to pass instead)."""
    limit = available_bytes(device)
    if nbytes > limit:
        raise MemoryError(f"{what} needs about {nbytes / 2**30:.3g} GiB, more than the "
                          f"{limit / 2**30:.3g} GiB of {torch.device('cpu' if device is None else device)}; {way_out}")
