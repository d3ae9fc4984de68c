"""The spectrum of a model's extended logit matrix on a text (paper A, §3.1 and Appendix A.1.1), as a
frozen :class:`SpectrumConfig` and a function :func:`compute_spectrum` config → result.

Steps of :func:`compute_spectrum`:

1. cut |H| = |F| = N histories and futures from the corpus as in Appendix A.1.1
   (:func:`logitrank.verify.models.cut_histories_futures`; lengths in characters) and encode them
   with the model's tokenizer (futures trimmed to fit the model's context);
2. keep per future its top-K tokens after the future alone (§3.1);
3. compute L_{M,K}(H, F) (n, m·K) chunk by chunk of futures through the on-disk cache
   (``out/cache``: a killed run resumes at the first missing chunk), or on a Dask cluster in
   checkpointed slices, and accumulate G = L Lᵀ (n, n) in float64; snapshots of G's leading blocks
   give the downsized matrices L(H_i, F_i) of Appendix A.1.2 (i = 1, 2, 4, 8, 16; the first
   ⌊N/√i⌋ histories and futures);
4. σ = √eig(G) per size (:func:`logitrank.algorithms.gram_spectrum`), divided by √(entries) as the
   paper's figures do; α by the weighted fit of Appendix A.1.1 in the paper's and the original
   indexing (:func:`logitrank.algorithms.fit_power_law`), with R²; the spread of α over the
   downsized matrices is judged against E1's limit (:data:`logitrank.verify._paper.ALPHA_SPREAD`);
5. write ``out/spectra.csv`` (factor, i, σ, σ/√entries), ``out/sigma.npy`` (full-size σ),
   ``out/summary.json`` (settings, sizes, α, R², timings, versions) and ``out/spectrum.png``.

Sizes come from :data:`SPECTRUM_PRESETS` (quick, full, paper; ``full`` by default): ``n`` and
``lengths`` left as ``None`` follow the model's context (:func:`default_lengths`; N = 150, E1's size,
for a context below 350 positions). Errors that only the model or the corpus can reveal (K above V,
lengths that overflow the context, a corpus too short for N) are :class:`UsageError` of one line
naming the option as the ``logitrank spectrum`` command line spells it.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from logitrank._validation import UsageError

from .._presets import Presets

__all__ = ["FACTORS", "SPECTRUM_PRESETS", "SpectrumConfig", "SpectrumResult", "compute_spectrum", "default_lengths"]

#: The sizes of each scale: N histories and futures, top-K, lengths in characters (None: from the
#: model's context). ``paper`` is Appendix A.1.1's; ``full`` (the default) shrinks N to 150 for a
#: context below 350 positions unless N is given.
SPECTRUM_PRESETS = Presets({
    "quick": {"n": 150, "k": 50, "lengths": None},
    "full": {"n": None, "k": 50, "lengths": None},
    "paper": {"n": 10_000, "k": 50, "lengths": [50, 200]},
})
FACTORS = (1, 2, 4, 8, 16)
DTYPES = ("float32", "bfloat16", "float16", "float64")
BACKENDS = ("local", "dask")
#: context (positions) below which the defaults shrink: a 200-character history and a 150-character
#: future at one token per character (a byte-level tokenizer)
_FULL_CONTEXT = 350
_SHORT_CONTEXT_N = 150  # E1's |H| = |F| for the tiny model at quick scale
_FULL_N = 1000
#: positions per forward pass of a model on a GPU (a GPU wants bigger passes than a CPU; Dask workers too)
_GPU_POSITIONS = 65536
#: seconds between progress lines when stderr is not a terminal
PROGRESS_EVERY_S = 10.0
DEFAULT_OUT = Path("results") / "spectrum"


@dataclass(frozen=True)
class SpectrumConfig:
    """Everything one spectrum run depends on (validated on creation; ``ValueError`` naming the field).

    Build it from a scale with :meth:`from_preset` (``--scale`` and ``--set`` of the command line);
    ``n`` and ``lengths`` left ``None`` follow the model's context (module docstring).
    """

    model: str = "tiny"
    corpus: str = "shakespeare"
    n: int | None = None
    k: int = 50
    lengths: tuple[int, int] | None = None
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"
    out: Path | None = None
    threads: int | None = 1
    backend: str = "local"
    scheduler: str | None = None
    slices: int | None = None
    scale: str = "full"
    #: where ``lengths`` came from when given ("--lengths", "--scale paper", …), for the summary
    lengths_from: str = field(default="lengths", compare=False)

    def __post_init__(self):
        _validate(self)

    @classmethod
    def from_preset(cls, scale: str = "full", overrides=None, **given) -> SpectrumConfig:
        """The preset ``scale`` of :data:`SPECTRUM_PRESETS` with ``overrides`` (``--set``) applied,
        then the fields in ``given`` (explicit options win)."""
        if scale not in SPECTRUM_PRESETS.names:
            raise UsageError(f"--scale must be one of {', '.join(SPECTRUM_PRESETS.names)}; got {scale!r}")
        sizes = SPECTRUM_PRESETS.resolve(scale, overrides)
        lengths = sizes["lengths"]
        merged = {"n": sizes["n"], "k": sizes["k"], "lengths": None if lengths is None else tuple(lengths),
                  "lengths_from": f"--scale {scale}" if lengths is not None else "lengths", "scale": scale}
        if "lengths" in (overrides or {}):
            merged["lengths_from"] = "--set lengths"
        merged.update({k: v for k, v in given.items() if v is not None or k in ("out", "threads", "scheduler", "slices")})
        return cls(**merged)

    def show(self) -> dict:
        """The settings as plain JSON values (``--show-config``)."""
        d = asdict(self)
        d["out"] = None if self.out is None else str(self.out)
        d["lengths"] = None if self.lengths is None else list(self.lengths)
        return d


def _validate(c: SpectrumConfig) -> None:
    """One-line ``UsageError`` naming the option for a bad field (checked before any work)."""
    _check_sizes(c)
    _check_runtime(c)
    if not isinstance(c.model, str) or not c.model.strip():
        raise UsageError("--model must be a model name; got an empty string")
    if not isinstance(c.corpus, str) or not c.corpus:
        raise UsageError(f"--corpus must be a corpus name, file or folder; got {c.corpus!r}")
    if c.out is not None:
        object.__setattr__(c, "out", Path(c.out))


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_sizes(c: SpectrumConfig) -> None:
    if c.n is not None and (not _is_int(c.n) or c.n < 8):
        raise UsageError(f"--n must be an integer >= 8 (the α fit needs at least 5 singular values); got {c.n}")
    if not _is_int(c.k) or c.k < 1:
        raise UsageError(f"--k must be an integer >= 1; got {c.k}")
    if c.lengths is not None:
        lo_hi = tuple(c.lengths)
        if len(lo_hi) != 2 or not all(_is_int(x) for x in lo_hi) or not 1 <= lo_hi[0] <= lo_hi[1]:
            raise UsageError(f"--lengths must satisfy 1 <= MIN <= MAX; got {c.lengths!r}")
        object.__setattr__(c, "lengths", lo_hi)
    if not _is_int(c.seed) or c.seed < 0:
        raise UsageError(f"--seed must be >= 0; got {c.seed}")


def _check_runtime(c: SpectrumConfig) -> None:
    if c.dtype not in DTYPES:
        raise UsageError(f"--dtype must be one of {', '.join(DTYPES)}; got {c.dtype!r}")
    if c.threads is not None and (not _is_int(c.threads) or c.threads < 1):
        raise UsageError(f"--threads must be >= 1; got {c.threads}")
    if c.backend not in BACKENDS:
        raise UsageError(f"--backend must be one of {', '.join(BACKENDS)}; got {c.backend!r}")
    if c.backend == "dask" and not c.scheduler:
        raise UsageError("--backend dask needs --scheduler, the Dask scheduler's address (tcp://host:port)")
    if c.backend != "dask" and (c.scheduler is not None or c.slices is not None):
        given = "--scheduler" if c.scheduler is not None else "--slices"
        raise UsageError(f"{given} applies to --backend dask only; got --backend {c.backend} (add --backend dask, or "
                         f"drop {given})")
    if c.scheduler is not None:
        problem = scheduler_problem(c.scheduler)
        if problem:
            raise UsageError(problem)
    if c.slices is not None and (not _is_int(c.slices) or c.slices < 1):
        raise UsageError(f"--slices must be >= 1; got {c.slices}")
    _check_device(c.device)


#: address schemes of Dask's comms (distributed.comm.registry)
_DASK_SCHEMES = ("tcp", "tls", "inproc", "ucx", "ws", "wss")
#: a Dask handshake announces a few hundred bytes; a first frame above this is not Dask's
_HANDSHAKE_MAX = 2**20


def _host_port(address: str) -> tuple[str, str, str]:
    """(scheme, host, port) of a Dask address (``host:port`` alone means tcp; IPv6 hosts in brackets)."""
    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "tcp", address
    host, _, port = rest.rstrip("/").rpartition(":")
    return scheme, host.strip("[]"), port


def scheduler_problem(address) -> str | None:
    """Why ``address`` is not a Dask scheduler address (one line naming --scheduler), or None; nothing is
    contacted here (:func:`scheduler_answer_problem` does that)."""
    if not isinstance(address, str) or not address.strip():
        return f"--scheduler must be a Dask scheduler address such as tcp://127.0.0.1:8786; got {address!r}"
    scheme, host, port = _host_port(address)
    if scheme not in _DASK_SCHEMES:
        return (f"--scheduler {address!r}: {scheme}:// is not a Dask address scheme ({', '.join(_DASK_SCHEMES)}); "
                "a scheduler address is tcp://HOST:PORT, as `dask scheduler` prints it")
    if scheme == "inproc":
        return None
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        return f"--scheduler {address!r}: expected {scheme}://HOST:PORT with a port in 1 … 65535"
    return None


def scheduler_answer_problem(address: str, timeout: float = 5.0) -> str | None:
    """Why nothing at a tcp:// ``address`` is a Dask scheduler, or None: a scheduler sends its handshake
    (a frame of a few hundred bytes) as soon as a connection opens; an endpoint that sends nothing, or
    announces a frame no handshake has, is refused before the Dask client would try to read it (a web
    server's reply read as a Dask frame header asks for exabytes). Other schemes are not probed."""
    import socket
    import struct

    scheme, host, port = _host_port(address)
    if scheme != "tcp":
        return None
    try:
        sock = socket.create_connection((host, int(port)), timeout=timeout)
    except OSError as err:
        return f"--scheduler {address!r}: no Dask scheduler answered ({err.strerror or err})"
    with sock:
        head = b""
        try:
            while len(head) < 8:
                chunk = sock.recv(8 - len(head))
                if not chunk:
                    break
                head += chunk
        except OSError:
            pass
    if len(head) < 8:
        return (f"--scheduler {address!r}: the endpoint accepted a connection but sent no Dask handshake within "
                f"{timeout:g} s; it is not a Dask scheduler (`dask scheduler` prints the tcp:// address to use)")
    (size,) = struct.unpack("<Q", head)
    if not 0 < size <= _HANDSHAKE_MAX:
        return (f"--scheduler {address!r}: the endpoint is not a Dask scheduler (its first message announces {size} "
                "bytes; a Dask handshake has a few hundred)")
    return None


def _check_device(name: str) -> None:
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise UsageError(f"--device must be cpu or cuda[:i]; got {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise UsageError(f"--device must be cpu or cuda[:i]; got {name!r}")


def check_inputs(config: SpectrumConfig) -> None:
    """What can be checked without loading the model: its name, the corpus, the output folder
    (one-line ``UsageError``; nothing is computed)."""
    from ..models import model_problem
    from ..models._corpus_cut import CORPUS_NAMES, corpus_text

    problem = model_problem(config.model)
    if problem:
        raise UsageError(f"--{problem}")
    if config.corpus not in CORPUS_NAMES and not Path(config.corpus).exists():
        raise UsageError(f"--corpus must be one of {', '.join(CORPUS_NAMES)} or an existing file or folder; "
                         f"got {config.corpus!r}")
    try:
        corpus_text(config.corpus)
    except (ValueError, OSError) as err:
        raise UsageError(f"--corpus {config.corpus!r}: {str(err).splitlines()[0]}") from None
    problem = folder_problem("--out", config.out if config.out is not None else DEFAULT_OUT)
    if problem:
        raise UsageError(problem)
    if config.backend == "dask":
        problem = scheduler_answer_problem(config.scheduler)
        if problem:
            raise UsageError(problem)


def folder_problem(option: str, path: Path) -> str | None:
    """Why ``path`` cannot be (or become) a writable folder, or None."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        return f"{option} {str(path)!r} is a file, not a folder; name a folder (created when missing)"
    parent = path
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        return f"{option} {str(path)!r} lies under {str(parent)!r}, which is a file, not a folder"
    if parent.exists() and not os.access(parent, os.W_OK | os.X_OK):
        return f"{option} {str(path)!r}: folder {str(parent)!r} is not writable"
    return None


def default_lengths(max_length: int | None, n_start: int = 0) -> tuple[int, int]:
    """(ℓ_min, ℓ_max) in characters for a model whose context holds ``max_length`` positions
    (``n_start`` of them taken by a start token): the paper's (50, 200) when a 200-token history and
    a 150-token future fit at one token per character, else (⌊L/4⌋, ⌊3L/5⌋) with L = max_length.

    >>> default_lengths(None), default_lengths(2048, 1), default_lengths(64, 1)
    ((50, 200), (50, 200), (16, 38))
    """
    if max_length is None or max_length - n_start >= _FULL_CONTEXT:
        return (50, 200)
    return max(1, max_length // 4), max(1, max_length // 4, (3 * max_length) // 5)


@dataclass(frozen=True)
class SpectrumResult:
    """What :func:`compute_spectrum` measured.

    Attributes
    ----------
    config : SpectrumConfig
        The settings as given.
    summary : dict
        Everything written to ``summary.json`` (sizes, α and R² in both indexings, the downsizing
        spread against E1's limit, timings, versions).
    spectra : dict factor → (min(n_i, m_i·K),) array
        σ of each downsized matrix L(H_i, F_i), not normalised.
    sizes : dict factor → (n_i, m_i)
    out : Path
        The folder holding the files.
    """

    config: SpectrumConfig
    summary: dict
    spectra: dict
    sizes: dict
    out: Path

    @property
    def alpha(self) -> float | None:
        """α of the full matrix in the paper's indexing (Appendix A.1.1)."""
        return self.summary["alpha (paper indexing)"]


class _Progress:
    """Progress of the logit matrix on stderr: one tqdm bar on a terminal; otherwise one line per
    :data:`PROGRESS_EVERY_S` seconds (and one at the end), so a log gets a few whole lines."""

    def __init__(self, total: int, desc: str, enabled: bool):
        self.total, self.desc, self.done = total, desc, 0
        self.start = self.last = time.perf_counter()
        self.bar = None
        self.enabled = enabled
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="cell", unit_scale=True, file=sys.stderr, smoothing=0.1)

    def update(self, cells: int) -> None:
        self.done += cells
        if self.bar is not None:
            self.bar.update(cells)
            return
        now = time.perf_counter()
        if self.enabled and now - self.last >= PROGRESS_EVERY_S and self.done < self.total:
            self.last = now
            rate = self.done / max(now - self.start, 1e-9)
            eta = (self.total - self.done) / rate if rate > 0 else float("nan")
            sys.stderr.write(f"{self.desc}: {self.done}/{self.total} cells ({self.done / self.total:.0%}), "
                             f"{now - self.start:.0f} s, about {eta:.0f} s left\n")
            sys.stderr.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled:
            sys.stderr.write(f"{self.desc}: {self.done}/{self.total} cells in {time.perf_counter() - self.start:.0f} s\n")
            sys.stderr.flush()


def _load(config: SpectrumConfig):
    """The model, or UsageError naming --model with the loader's one-line reason."""
    import torch

    from ..models import load_model

    try:
        model = load_model(config.model, device=config.device, dtype=getattr(torch, config.dtype))
    except Exception as err:  # noqa: BLE001  (whatever the loader raises: one line naming the option)
        reason = (str(err).strip().splitlines() or [""])[0]
        raise UsageError(f"--model {config.model!r} could not be loaded: {type(err).__name__}: {reason}") from None
    if not callable(getattr(model, "encode", None)):
        raise UsageError(f"--model {config.model!r} has no tokenizer (encode), and the spectrum is read on text cut "
                         "from --corpus; use a text model: tiny, tiny@stepN, smollm2, a Hugging Face folder")
    return model


def _fit_to_model(config: SpectrumConfig, model) -> tuple[int, tuple[int, int], str]:
    """(n, (ℓ_min, ℓ_max), where the lengths come from), checked against the model; UsageError when they
    cannot fit (K above V is checked here too)."""
    if config.k > model.vocab_size:
        raise UsageError(f"--k must be <= the vocabulary size V = {model.vocab_size} of model {model.name}; "
                         f"got {config.k}")
    limit = getattr(model, "max_length", None)
    n_start = 0 if getattr(model, "bos_token_id", None) is None else 1
    n = _FULL_N if config.n is None else config.n
    if config.lengths is not None:
        return n, tuple(config.lengths), config.lengths_from
    lengths = default_lengths(limit, n_start)
    if limit is not None and limit - n_start < _FULL_CONTEXT:
        n = _SHORT_CONTEXT_N if config.n is None else config.n
        return n, lengths, f"default for a context of max_length={limit} positions"
    return n, lengths, "default (paper A)"


def _encode(model, Ht, Ft, lengths, source: str):
    """Token sets of the cut, or UsageError when a history leaves no room for a future in the context."""
    from ..models._corpus_cut import token_sets

    limit = getattr(model, "max_length", None)
    if limit is not None:
        n_start = 0 if getattr(model, "bos_token_id", None) is None else 1
        longest = max(len(model.encode(h)) for h in Ht)
        if n_start + longest >= limit:
            lo, hi = default_lengths(limit, n_start)
            raise UsageError(f"--lengths {lengths[0]}:{lengths[1]} ({source}): histories encode to up to {longest} "
                             f"tokens, which leaves no room for a future in model {model.name}'s context of "
                             f"max_length={limit} positions; use a smaller MAX, e.g. --lengths {lo}:{hi}")
    return token_sets(model, Ht, Ft)


def _cut(config: SpectrumConfig, model, n: int, lengths, source: str):
    """Step 1: the histories and futures as token tuples ((n,) and (m,) lists)."""
    from ..models._corpus_cut import cut_histories_futures

    try:
        Ht, Ft = cut_histories_futures(config.corpus, n, n, min_chars=lengths[0], max_chars=lengths[1], seed=config.seed)
    except ValueError as err:
        raise UsageError(f"--corpus {config.corpus!r} with --n {n} --lengths {lengths[0]}:{lengths[1]}: "
                         f"{str(err).splitlines()[0]}") from None
    return _encode(model, Ht, Ft, lengths, source)


def _chunks(m: int, n: int, stops) -> list[tuple[int, int]]:
    """Future ranges, split at every stop: about m/8 futures (progress) but at least 32 (the packed path
    needs whole packs of futures to be efficient) and, above that, at most 16384 cells each."""
    size = max(min(32, m), min(max(1, 16384 // n), math.ceil(m / 8)))
    bounds = sorted({0, m, *[s for s in stops if 0 < s < m], *range(0, m, size)})
    return list(itertools.pairwise(bounds))


def _local_gram(model, H, F, cols, sizes: dict, G, snaps: dict, out: Path, bar) -> None:
    """Step 3 in this process: chunks of futures through the verified cache, G += L Lᵀ in float64."""
    import torch

    from ._matrix_cache import cached_logit_matrix

    n, m = len(H), len(F)
    for s, e in _chunks(m, n, [mi for _, mi in sizes.values()]):
        part = cached_logit_matrix(model, H, F[s:e], columns=cols[s:e], cache_dir=out / "cache", chunk=e - s)  # (n, (e-s)*k)
        b64 = part.to(device=model.device, dtype=torch.float64)
        G.addmm_(b64, b64.T)  # (n, n)
        for i, (ni, mi) in sizes.items():
            if mi == e:
                snaps[i] = G[:ni, :ni].clone()
        bar.update(n * (e - s))


def _dask_gram(config: SpectrumConfig, H, F, cols, sizes: dict, G, snaps: dict, out: Path, bar, model=None) -> None:
    """Step 3 on a Dask cluster: each downsizing segment of the futures (between consecutive |F_i|) is one
    Gram sum of :func:`logitrank.verify.experiments._distributed_gram.distributed_grams` (the model loaded
    once per worker by name), checkpointed under ``out/dask``; running sums of the segments give the
    snapshots. The slices are the local path's chunks (:func:`_dask_jobs`), so the two paths compute the
    same logit rows and their Grams differ by float64 summation order only. ``model``: the driver's own
    (loaded from ``config.model``), so it is not loaded a second time."""
    try:
        import distributed
    except ImportError:
        raise UsageError("--backend dask needs the dask extra: pip install 'logitrank[dask]'") from None
    problem = scheduler_problem(config.scheduler) or scheduler_answer_problem(config.scheduler)
    if problem:
        raise UsageError(problem)
    try:
        client = distributed.Client(config.scheduler, timeout=10)
    except (OSError, TimeoutError, ValueError) as err:
        raise UsageError(f"--scheduler {config.scheduler!r}: no Dask scheduler answered ({err})") from None
    if model is not None:
        from ._distributed_gram import adopt_model

        adopt_model(config.model, config.device, config.dtype, model)
    with client:
        _dask_segments(config, client, H, F, cols, sizes, G, snaps, out, bar)


def _dask_jobs(config, H, F, cols, stops, out: Path) -> list:
    """One :class:`GramJob` per segment of futures between consecutive ``stops``, cut at the local path's
    chunks (:func:`_chunks`: the same logit rows, bit for bit), or into ``--slices`` near-equal slices."""
    from ._distributed_gram import GramJob, slice_cuts

    chunks = _chunks(len(F), len(H), stops)
    jobs, start = [], 0
    for stop in stops:
        if stop > start:
            bounds = ([s - start for s, _ in chunks if start <= s < stop] + [stop - start] if not config.slices
                      else slice_cuts(stop - start, config.slices))
            jobs.append(GramJob(F[start:stop], cols[start:stop].cpu().numpy(), bounds=bounds,
                                checkpoint=out / "dask" / f"futures-{start}-{stop}"))
        start = stop
    return jobs


def _dask_segments(config, client, H, F, cols, sizes, G, snaps, out, bar) -> None:
    """Every segment's :class:`GramJob` submitted at once; the segments' sums then added in order."""
    from ._distributed_gram import CheckpointError, distributed_grams

    stops = sorted({mi for _, mi in sizes.values()} | {len(F)})
    jobs = _dask_jobs(config, H, F, cols, stops, out)

    def progress(job: int, p: int, _done: int, _total: int) -> None:
        bar.update(len(H) * (jobs[job].bounds[p + 1] - jobs[job].bounds[p]))

    try:  # keyed: a rerun into the same --out with other sizes (another --k, …) resumes its own checkpoints
        parts = distributed_grams(  # one_block: each chunk is one model call, as in _local_gram
            config.model, H, jobs, client=client, device=config.device, dtype=config.dtype,
            threads=config.threads or 1, keyed=True, one_block=not config.slices, on_slice=progress,
            max_positions=_GPU_POSITIONS if config.device.startswith("cuda") else None)
    except CheckpointError as err:
        raise UsageError(f"--out {str(out)!r}: {err}") from None
    start, parts = 0, iter(zip(jobs, parts))
    for stop in stops:
        if stop > start:
            job, part = next(parts)
            G += part.accumulator.gram.to(G.device)
            resumed = [p for p in range(part.slices) if p not in part.computed]  # finished by an earlier run
            bar.update(len(H) * sum(job.bounds[p + 1] - job.bounds[p] for p in resumed))
        for i, (ni, mi) in sizes.items():
            if mi == stop:
                snaps[i] = G[:ni, :ni].clone()
        start = stop


def _fit(snaps: dict, sizes: dict, k: int):
    """Step 4: σ per size and the power-law fits in both indexings; (spectra, fits, fit of the full size)."""
    from logitrank.algorithms import fit_power_law, gram_spectrum

    spectra, fits, full_fit = {}, {}, None
    for i, (ni, mi) in sizes.items():
        sv = gram_spectrum(snaps[i], shape=(ni, mi * k)).singular_values.cpu().numpy()
        spectra[i], fits[i] = sv, {}
        pos = sv[sv > sv[0] * 1e-12] if sv[0] > 0 else sv[:0]
        for indexing in ("paper", "original"):
            try:
                f = fit_power_law(pos, indexing=indexing)
            except ValueError as err:
                fits[i][indexing] = {"error": str(err)}
                continue
            fits[i][indexing] = {"alpha": f.alpha, "r_squared": f.r_squared, "edge": f.edge, "values fitted": len(pos)}
            if i == 1 and indexing == "paper":
                full_fit = f
    return spectra, fits, full_fit


def versions() -> dict:
    """Versions of logitrank, torch and transformers (None when missing), recorded with every result."""
    from .._store import _dist_version

    return {pkg: _dist_version(pkg) for pkg in ("logitrank", "torch", "transformers")}


def _summary(config, model, H, F, sizes, fits, lengths, lengths_from, out, seconds) -> dict:
    """The summary of ``summary.json`` (settings, sizes, α, R², spread against E1's limit, timings)."""
    import numpy as np

    from .._paper import ALPHA_SPREAD

    n, m, k = len(H), len(F), config.k
    alphas = [fits[i]["paper"]["alpha"] for i in sizes if "alpha" in fits[i]["paper"]]
    spread = (max(alphas) - min(alphas)) if len(alphas) > 1 else None
    settings = {key: v for key, v in config.show().items() if key not in ("out", "lengths_from", "scale")}
    return {
        "out": str(out),
        "settings": {**settings, "scale": None if config.scale == "full" else config.scale, "n": n, "k": k,
                     "lengths": list(lengths), "lengths from": lengths_from},
        "model": model.name, "fingerprint": model.fingerprint() if hasattr(model, "fingerprint") else None,
        "max_length": getattr(model, "max_length", None), "vocab_size": model.vocab_size,
        "|H|": n, "|F|": m, "entries": n * m * k,
        "mean tokens |h|, |f|": [float(np.mean([len(h) for h in H])), float(np.mean([len(f) for f in F]))],
        "alpha (paper indexing)": fits[1]["paper"].get("alpha"),
        "R² (paper indexing)": fits[1]["paper"].get("r_squared"),
        "alpha (original indexing)": fits[1]["original"].get("alpha"),
        "R² (original indexing)": fits[1]["original"].get("r_squared"),
        "alpha spread over downsizing (paper indexing)": spread,
        "alpha spread limit (E1)": ALPHA_SPREAD,
        "alpha spread within the limit": None if spread is None else bool(spread <= ALPHA_SPREAD),
        "downsized": {str(i): {"|H_i|": sizes[i][0], "|F_i|": sizes[i][1], **{ix: fits[i][ix] for ix in fits[i]}}
                      for i in sizes},
        "seconds": seconds,
        "versions": versions(),
        "files": ["spectra.csv", "sigma.npy", "summary.json", "spectrum.png"],
    }


def _write(out: Path, spectra: dict, sizes: dict, k: int, summary: dict, fit) -> None:
    """Step 5: spectra.csv, sigma.npy, summary.json and the figure."""
    import numpy as np

    from ..figures import plot_spectrum_summary

    rows = ["factor,i,sigma,sigma_normalized"]
    for i, sv in spectra.items():
        ni, mi = sizes[i]
        norm = math.sqrt(ni * mi * k)
        rows += [f"{i},{j + 1},{v:.10g},{v / norm:.10g}" for j, v in enumerate(sv)]
    (out / "spectra.csv").write_text("\n".join(rows) + "\n")
    np.save(out / "sigma.npy", spectra[1])
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    plot_spectrum_summary(out / "spectrum.png", spectra, sizes, k, summary, fit)


def default_out(config: SpectrumConfig, n: int) -> Path:
    """results/spectrum/<model>-<corpus>-n<N>-k<K>, N the size actually used."""
    from ..models._corpus_cut import CORPUS_NAMES

    tag = config.corpus if config.corpus in CORPUS_NAMES else Path(config.corpus).stem
    return DEFAULT_OUT / f"{config.model.replace('/', '_')}-{tag}-n{n}-k{config.k}"


def compute_spectrum(config: SpectrumConfig, *, progress: bool = False) -> SpectrumResult:
    """Steps 1–5 of the module docstring for ``config``; the files go to ``config.out`` (default
    ``results/spectrum/<model>-<corpus>-n<N>-k<K>``).

    ``progress`` writes progress lines (a bar on a terminal) to stderr. Raises :class:`UsageError`
    (one line) when the model, lengths, K or N do not fit the model or the corpus.
    """
    import torch

    from logitrank.algorithms import top_k_columns

    if not isinstance(config, SpectrumConfig):
        raise TypeError(f"config must be a SpectrumConfig; got {type(config).__name__}")
    t0 = time.perf_counter()
    model = _load(config)
    n, lengths, lengths_from = _fit_to_model(config, model)
    out = config.out or default_out(config, n)
    if model.device.type == "cuda" and hasattr(model, "max_positions"):
        model.max_positions = max(model.max_positions, _GPU_POSITIONS)  # a GPU wants bigger passes than a CPU
    H, F = _cut(config, model, n, lengths, lengths_from)  # 1.
    out.mkdir(parents=True, exist_ok=True)
    cols = top_k_columns(model, F, config.k)  # 2. (m, k)
    sizes = {i: (int(len(H) / math.sqrt(i)), int(len(F) / math.sqrt(i))) for i in FACTORS}
    sizes = {i: s for i, s in sizes.items() if min(s) >= 8}
    G = torch.zeros(len(H), len(H), dtype=torch.float64, device=model.device)
    snaps: dict = {}
    bar = _Progress(len(H) * len(F), f"spectrum: L({model.name})", progress)
    t1 = time.perf_counter()
    if config.backend == "dask":  # 3.
        _dask_gram(config, H, F, cols, sizes, G, snaps, out, bar, model)
    else:
        _local_gram(model, H, F, cols, sizes, G, snaps, out, bar)
    bar.close()
    t_matrix = time.perf_counter() - t1
    spectra, fits, fit = _fit(snaps, sizes, config.k)  # 4.
    seconds = {"matrix": round(t_matrix, 2), "total": round(time.perf_counter() - t0, 2)}
    summary = _summary(config, model, H, F, sizes, fits, lengths, lengths_from, out, seconds)
    _write(out, spectra, sizes, config.k, summary, fit)  # 5.
    return SpectrumResult(config, summary, spectra, sizes, out)


def with_threads(config: SpectrumConfig):
    """Set torch's CPU threads to ``config.threads`` (when given); returns the config."""
    if config.threads:
        import torch

        torch.set_num_threads(config.threads)
    return config

