"""``logitrank spectrum``: the spectrum of the extended logit matrix of any model on any text (paper A, §3.1).

    logitrank spectrum --model M --corpus PATH|NAME --n N --k K --lengths MIN:MAX --device D --dtype T
                       [--scale paper] [--seed S] [--out DIR] [--threads N]

Steps:

1. cut |H| = |F| = N histories and futures from the corpus as in Appendix A.1.1
   (:func:`logitrank.verify.corpus_cut.cut_histories_futures`; lengths in characters) and encode
   them with the model's tokenizer (futures trimmed to fit the model's context);
2. keep per future its top-K tokens after the future alone (§3.1);
3. compute L_{M,K}(H, F) chunk by chunk of futures through the on-disk cache (``DIR/cache``: a
   killed run resumes at the first missing chunk) and accumulate G = L Lᵀ in float64; snapshots
   of G's leading blocks give the downsized matrices L(H_i, F_i) of Appendix A.1.2 (i = 1, 2, 4,
   8, 16; the first ⌊N/√i⌋ histories and futures);
4. σ = √eig(G) per size (:func:`logitrank.algorithms.gram_spectrum`), divided by √(entries) as the
   paper's figures do; α by the weighted fit of Appendix A.1.1 in the paper's and the original
   indexing (:func:`logitrank.algorithms.fit_power_law`), with R²; the spread of α over the
   downsized matrices is judged against E1's limit (:data:`~logitrank.verify.checks._real_claims.ALPHA_SPREAD`);
5. write ``DIR/spectra.csv`` (factor, i, σ, σ/√entries), ``DIR/sigma.npy`` (full-size σ),
   ``DIR/summary.json`` (settings, sizes, α, R², timings, versions) and ``DIR/spectrum.png``
   (the spectra, the fitted power law, α = ½ and paper A's band of trained models).

Defaults fit the model: ``--lengths`` defaults to the paper's 50:200 characters when the model's
context holds them at one token per character, and otherwise to ⌊L/4⌋:⌊3L/5⌋ for a context of L
positions (16:38 for the 64-position ``tiny``, as claim E1 uses); ``--n`` defaults to 1000, or 150
(E1's size) for a context below 350 positions. ``--scale paper`` presets the paper's sizes
(N = 10^4, 50–200 characters, K = 50); options given explicitly override the preset. Lengths or a
K that the model cannot take are usage errors. Exit status 0 on success, 2 for usage errors (one
line on stderr). Progress goes to stderr: a bar on a terminal, a line every 10 s otherwise.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
import time
from pathlib import Path

from ._spectrum_output import _figure, _paper_alphas, _versions, r_squared_text, report_lines  # noqa: F401

__all__ = ["PAPER_SCALE", "add_parser", "default_lengths", "run"]

#: The paper's sizes (Appendix A.1.1): N histories and futures, characters, top-K.
PAPER_SCALE = {"n": 10_000, "lengths": (50, 200), "k": 50}
_DEFAULTS = {"n": 1000, "lengths": None, "k": 50}  # lengths None: from the model's context (default_lengths)
#: context (positions) below which the defaults shrink: a 200-character history and a 150-character
#: future at one token per character (a byte-level tokenizer)
_FULL_CONTEXT = 350
_SHORT_CONTEXT_N = 150  # E1's |H| = |F| for the tiny model at quick scale
_DTYPES = ("float32", "bfloat16", "float16", "float64")
FACTORS = (1, 2, 4, 8, 16)
#: seconds between progress lines when stderr is not a terminal
PROGRESS_EVERY_S = 10.0
_DEFAULT_OUT = Path("results") / "spectrum"


class UsageError(ValueError):
    """A bad option: reported as one line, exit status 2."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``spectrum`` on an ``argparse`` sub-parser collection."""
    p = subparsers.add_parser("spectrum", help="Gram spectrum, α and downsized spectra of a model's logit matrix on a text",
                              description=__doc__.splitlines()[0])
    p.add_argument("--model", default="tiny", metavar="M",
                   help="tiny, tiny@stepN, smollm2, or a Hugging Face name / local folder (default tiny)")
    p.add_argument("--corpus", default="shakespeare", metavar="PATH|NAME",
                   help="shakespeare (default), docstrings, a UTF-8 text file or a folder of *.txt")
    p.add_argument("--n", type=int, default=None, metavar="N",
                   help=f"|H| = |F| (default 1000, {_SHORT_CONTEXT_N} for a context below {_FULL_CONTEXT} positions; paper 10000)")
    p.add_argument("--k", type=int, default=None, metavar="K", help="top-K tokens per future, at most V (default 50)")
    p.add_argument("--lengths", default=None, metavar="MIN:MAX",
                   help="ℓ_min:ℓ_max in characters (default 50:200, or what fits the model's context: 16:38 for tiny)")
    p.add_argument("--device", default="cpu", metavar="D", help="cpu (default), cuda, cuda:1, …")
    p.add_argument("--dtype", default="float32", metavar="T", help=f"weights dtype: one of {', '.join(_DTYPES)}")
    p.add_argument("--scale", default=None, metavar="paper", help="paper: N=10000, 50:200, K=50 (explicit options win)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the cut (default 0)")
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="output folder (default results/spectrum/<model>-<corpus>-n<N>-k<K>)")
    p.add_argument("--threads", type=int, default=None, metavar="N", help="torch CPU threads (default: torch's)")
    p.add_argument("--backend", default="local", choices=["local", "dask"],
                   help="local (default), or dask: slices of the futures on a Dask cluster (needs --scheduler)")
    p.add_argument("--scheduler", default=None, metavar="ADDR", help="Dask scheduler address, tcp://host:port")
    p.add_argument("--slices", type=int, default=None, metavar="S",
                   help="with --backend dask: tasks per downsizing segment (default 2 per worker)")
    return p


def _folder_problem(option: str, path: Path) -> str | None:
    """Why ``path`` cannot be (or become) a writable folder, or None."""
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


def _settings(args) -> dict:
    """Validated settings from parsed options; raises UsageError with one line."""
    if args.scale not in (None, "paper"):
        raise UsageError(f"--scale must be 'paper'; got {args.scale!r}")
    base = PAPER_SCALE if args.scale == "paper" else _DEFAULTS
    n = base["n"] if args.n is None else args.n
    k = base["k"] if args.k is None else args.k
    if n < 8:
        raise UsageError(f"--n must be an integer >= 8 (the α fit needs at least 5 singular values); got {n}")
    if k < 1:
        raise UsageError(f"--k must be an integer >= 1; got {k}")
    lengths = base["lengths"]
    if args.lengths is not None:
        parts = args.lengths.split(":")
        try:
            lo, hi = (int(x) for x in parts)
        except ValueError:
            raise UsageError(f"--lengths must be MIN:MAX in characters, e.g. 50:200; got {args.lengths!r}") from None
        if not 1 <= lo <= hi:
            raise UsageError(f"--lengths must satisfy 1 <= MIN <= MAX; got {args.lengths!r}")
        lengths = (lo, hi)
    if args.dtype not in _DTYPES:
        raise UsageError(f"--dtype must be one of {', '.join(_DTYPES)}; got {args.dtype!r}")
    if args.seed < 0:
        raise UsageError(f"--seed must be >= 0; got {args.seed}")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be >= 1; got {args.threads}")
    import torch

    try:
        device = torch.device(args.device)
    except (RuntimeError, ValueError):
        raise UsageError(f"--device must be cpu or cuda[:i]; got {args.device!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {args.device}: CUDA is not available on this machine; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise UsageError(f"--device must be cpu or cuda[:i]; got {args.device!r}")
    from ._check_cli import model_problem

    problem = model_problem(args.model)
    if problem:
        raise UsageError(problem)
    from .corpus_cut import CORPUS_NAMES, corpus_text

    if args.corpus not in CORPUS_NAMES and not Path(args.corpus).exists():
        raise UsageError(f"--corpus must be one of {', '.join(CORPUS_NAMES)} or an existing file or folder; got {args.corpus!r}")
    try:
        corpus_text(args.corpus)
    except (ValueError, OSError) as err:
        raise UsageError(f"--corpus {args.corpus!r}: {str(err).splitlines()[0]}") from None
    problem = _folder_problem("--out", Path(args.out) if args.out is not None else _DEFAULT_OUT)
    if problem:
        raise UsageError(problem)
    backend = getattr(args, "backend", "local")
    if backend == "dask" and not getattr(args, "scheduler", None):
        raise UsageError("--backend dask needs --scheduler, the Dask scheduler's address (tcp://host:port)")
    if getattr(args, "slices", None) is not None and args.slices < 1:
        raise UsageError(f"--slices must be >= 1; got {args.slices}")
    return {"backend": backend, "scheduler": getattr(args, "scheduler", None), "slices": getattr(args, "slices", None),
            "model": args.model, "corpus": args.corpus, "n": n, "n given": args.n is not None or args.scale == "paper",
            "k": k, "lengths": None if lengths is None else list(lengths),
            "lengths from": "--lengths" if args.lengths is not None else "--scale paper",
            "device": str(device), "dtype": args.dtype,
            "scale": args.scale, "seed": args.seed, "out": None if args.out is None else Path(args.out),
            "threads": args.threads}


def _default_out(settings: dict, n: int) -> Path:
    """results/spectrum/<model>-<corpus>-n<N>-k<K>, N the size actually used."""
    from .corpus_cut import CORPUS_NAMES

    corpus = settings["corpus"]
    tag = corpus if corpus in CORPUS_NAMES else Path(corpus).stem
    return _DEFAULT_OUT / f"{settings['model'].replace('/', '_')}-{tag}-n{n}-k{settings['k']}"


def default_lengths(max_length: int | None, n_start: int = 0) -> tuple[int, int]:
    """(ℓ_min, ℓ_max) in characters for a model whose context holds ``max_length`` positions
    (``n_start`` of them taken by a start token): the paper's (50, 200) when a 200-token history and
    a 150-token future fit at one token per character, else (⌊L/4⌋, ⌊3L/5⌋) with L = max_length.

    >>> default_lengths(None), default_lengths(2048, 1), default_lengths(64, 1)
    ((50, 200), (50, 200), (16, 38))
    """
    if max_length is None or max_length - n_start >= _FULL_CONTEXT:
        return PAPER_SCALE["lengths"]
    return max(1, max_length // 4), max(1, max_length // 4, (3 * max_length) // 5)


def _chunks(m: int, n: int, stops) -> list[tuple[int, int]]:
    """Future ranges, split at every stop: about m/8 futures (progress) but at least 32 (the packed path
    needs whole packs of futures to be efficient) and, above that, at most 16384 cells each."""
    size = max(min(32, m), min(max(1, 16384 // n), math.ceil(m / 8)))
    bounds = sorted({0, m, *[s for s in stops if 0 < s < m], *range(0, m, size)})
    return list(itertools.pairwise(bounds))


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
            print(f"{self.desc}: {self.done}/{self.total} cells ({self.done / self.total:.0%}), "
                  f"{now - self.start:.0f} s, about {eta:.0f} s left", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled:
            print(f"{self.desc}: {self.done}/{self.total} cells in {time.perf_counter() - self.start:.0f} s",
                  file=sys.stderr, flush=True)


def _load(settings: dict):
    """The model, or UsageError naming --model with the loader's one-line reason."""
    import torch

    from .models import load_model

    try:
        return load_model(settings["model"], device=settings["device"], dtype=getattr(torch, settings["dtype"]))
    except Exception as err:  # noqa: BLE001  (whatever the loader raises: one line naming the option)
        reason = (str(err).strip().splitlines() or [""])[0]
        raise UsageError(f"--model {settings['model']!r} could not be loaded: {type(err).__name__}: {reason}") from None


def _fit_to_model(settings: dict, model) -> tuple[int, tuple[int, int], str]:
    """(n, (ℓ_min, ℓ_max), where the lengths come from), checked against the model; UsageError when they
    cannot fit (K above V is checked here too)."""
    if settings["k"] > model.vocab_size:
        raise UsageError(f"--k must be <= the vocabulary size V = {model.vocab_size} of model {model.name}; "
                         f"got {settings['k']}")
    limit = getattr(model, "max_length", None)
    n_start = 0 if getattr(model, "bos_token_id", None) is None else 1
    n = settings["n"]
    if settings["lengths"] is not None:
        return n, tuple(settings["lengths"]), settings["lengths from"]
    lengths = default_lengths(limit, n_start)
    if limit is not None and limit - n_start < _FULL_CONTEXT:
        n = n if settings["n given"] else _SHORT_CONTEXT_N
        return n, lengths, f"default for a context of max_length={limit} positions"
    return n, lengths, "default (paper A)"


def _encode(model, Ht, Ft, lengths, source: str):
    """Token sets of the cut, or UsageError when a history leaves no room for a future in the context."""
    from .checks._real_setup import token_sets

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


def compute(settings: dict, *, progress: bool = True) -> dict:
    """Steps 1–5 of the module docstring; returns the summary written to ``summary.json``.

    Raises UsageError when the model, lengths, K or N do not fit the model or the corpus."""
    import numpy as np
    import torch

    from logitrank.algorithms import fit_power_law, gram_spectrum, top_k_columns

    from ._cache import cached_logit_matrix
    from .checks._real_claims import ALPHA_SPREAD
    from .corpus_cut import cut_histories_futures

    t0 = time.perf_counter()
    model = _load(settings)
    n, lengths, lengths_from = _fit_to_model(settings, model)
    out: Path = settings["out"] or _default_out(settings, n)
    if model.device.type == "cuda" and hasattr(model, "max_positions"):
        model.max_positions = max(model.max_positions, 65536)  # a GPU wants bigger passes than a CPU
    # 1. the cut, encoded.
    k = settings["k"]
    try:
        Ht, Ft = cut_histories_futures(settings["corpus"], n, n, min_chars=lengths[0], max_chars=lengths[1],
                                       seed=settings["seed"])
    except ValueError as err:
        raise UsageError(f"--corpus {settings['corpus']!r} with --n {n} --lengths {lengths[0]}:{lengths[1]}: "
                         f"{str(err).splitlines()[0]}") from None
    H, F = _encode(model, Ht, Ft, lengths, lengths_from)
    n, m = len(H), len(F)
    out.mkdir(parents=True, exist_ok=True)
    # 2. columns.
    cols = top_k_columns(model, F, k)  # (m, k)
    # 3. chunks of futures through the cache, Gram accumulated in float64 with downsizing snapshots.
    sizes = {i: (int(n / math.sqrt(i)), int(m / math.sqrt(i))) for i in FACTORS}
    sizes = {i: s for i, s in sizes.items() if min(s) >= 8}
    G = torch.zeros(n, n, dtype=torch.float64, device=model.device)
    snaps = {}
    bar = _Progress(n * m, f"spectrum: L({model.name})", progress)
    t1 = time.perf_counter()
    if settings.get("backend") == "dask":
        _dask_gram(settings, model, H, F, cols, sizes, G, snaps, out, bar)
    for s, e in ([] if settings.get("backend") == "dask" else _chunks(m, n, [mi for _, mi in sizes.values()])):
        part = cached_logit_matrix(model, H, F[s:e], columns=cols[s:e], cache_dir=out / "cache", chunk=e - s)  # (n, (e-s)*k)
        b64 = part.to(device=model.device, dtype=torch.float64)
        G.addmm_(b64, b64.T)  # (n, n)
        for i, (ni, mi) in sizes.items():
            if mi == e:
                snaps[i] = G[:ni, :ni].clone()
        bar.update(n * (e - s))
    bar.close()
    t_matrix = time.perf_counter() - t1
    # 4. spectra and fits.
    spectra, fits, curves = {}, {}, {}
    for i, (ni, mi) in sizes.items():
        sv = gram_spectrum(snaps[i], shape=(ni, mi * k)).singular_values.cpu().numpy()
        spectra[i] = sv
        fits[i] = {}
        pos = sv[sv > sv[0] * 1e-12] if sv[0] > 0 else sv[:0]
        for indexing in ("paper", "original"):
            try:
                f = fit_power_law(pos, indexing=indexing)
                fits[i][indexing] = {"alpha": f.alpha, "r_squared": f.r_squared, "edge": f.edge, "values fitted": len(pos)}
                if i == 1 and indexing == "paper":
                    curves["fit"] = f
            except ValueError as err:
                fits[i][indexing] = {"error": str(err)}
    # 5. files.
    rows = ["factor,i,sigma,sigma_normalized"]
    for i, sv in spectra.items():
        ni, mi = sizes[i]
        norm = math.sqrt(ni * mi * k)
        rows += [f"{i},{j + 1},{v:.10g},{v / norm:.10g}" for j, v in enumerate(sv)]
    (out / "spectra.csv").write_text("\n".join(rows) + "\n")
    np.save(out / "sigma.npy", spectra[1])
    alphas = [fits[i]["paper"]["alpha"] for i in sizes if "alpha" in fits[i]["paper"]]
    spread = (max(alphas) - min(alphas)) if len(alphas) > 1 else None
    summary = {
        "out": str(out),
        "settings": {**{k_: v for k_, v in settings.items() if k_ not in ("out", "n given", "lengths from")}, "n": n, "k": k,
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
        "seconds": {"matrix": round(t_matrix, 2), "total": round(time.perf_counter() - t0, 2)},
        "versions": _versions(),
        "files": ["spectra.csv", "sigma.npy", "summary.json", "spectrum.png"],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    _figure(out / "spectrum.png", spectra, sizes, k, summary, curves.get("fit"))
    return summary


def _dask_gram(settings: dict, model, H, F, cols, sizes: dict, G, snaps: dict, out: Path, bar) -> None:
    """Step 3 on a Dask cluster: each downsizing segment of the futures (between consecutive |F_i|) is summed
    by :func:`logitrank.verify._distributed_gram.distributed_gram` in slices (the model loaded once per
    worker by name), checkpointed under ``out/dask``; running sums of the segments give the snapshots."""
    try:
        import distributed
    except ImportError:
        raise UsageError("--backend dask needs the dask extra: pip install 'logitrank[dask]'") from None
    from ._distributed_gram import distributed_gram

    try:
        client = distributed.Client(settings["scheduler"], timeout=10)
    except (OSError, TimeoutError) as err:
        raise UsageError(f"--scheduler {settings['scheduler']!r}: no Dask scheduler answered ({err})") from None
    with client:
        workers = max(1, len(client.scheduler_info().get("workers", {})))
        stops = sorted({mi for _, mi in sizes.values()} | {len(F)})
        start = 0
        for stop in stops:
            if stop > start:
                part = distributed_gram(
                    settings["model"], H, F[start:stop], columns=cols[start:stop].cpu().numpy(), client=client,
                    slices=settings.get("slices") or 2 * workers, checkpoint=out / "dask" / f"futures-{start}-{stop}",
                    device=settings["device"], dtype=settings["dtype"], threads=settings.get("threads") or 1)
                G += part.accumulator.gram.to(G.device)
                bar.update(len(H) * (stop - start))
            for i, (ni, mi) in sizes.items():
                if mi == stop:
                    snaps[i] = G[:ni, :ni].clone()
            start = stop


def run(args) -> int:
    """Run ``logitrank spectrum`` from parsed options; 0 on success, 2 on a usage error."""
    try:
        settings = _settings(args)
        import torch

        if settings["threads"]:
            torch.set_num_threads(settings["threads"])
        summary = compute(settings)
    except UsageError as err:
        print(f"logitrank spectrum: error: {err}", file=sys.stderr)
        return 2
    print("\n".join(report_lines(summary)))
    return 0
