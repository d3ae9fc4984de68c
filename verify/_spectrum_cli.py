"""``logitrank spectrum``: the spectrum of the extended logit matrix of any model on any text (paper A, §3.1).

    logitrank spectrum --model M --corpus PATH|NAME --n N --k K --lengths 50:200 --device D --dtype T
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
   indexing (:func:`logitrank.algorithms.fit_power_law`), with R²;
5. write ``DIR/spectra.csv`` (factor, i, σ, σ/√entries), ``DIR/sigma.npy`` (full-size σ),
   ``DIR/summary.json`` (settings, sizes, α, R², timings, versions) and ``DIR/spectrum.png``.

``--scale paper`` presets the paper's sizes (N = 10^4, 50–200 characters, K = 50); options given
explicitly override the preset. Exit status 0 on success, 2 for usage errors (one line on stderr).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from pathlib import Path

__all__ = ["PAPER_SCALE", "add_parser", "run"]

#: The paper's sizes (Appendix A.1.1): N histories and futures, characters, top-K.
PAPER_SCALE = {"n": 10_000, "lengths": (50, 200), "k": 50}
_DEFAULTS = {"n": 1000, "lengths": (50, 200), "k": 50}
_DTYPES = ("float32", "bfloat16", "float16", "float64")
FACTORS = (1, 2, 4, 8, 16)


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
    p.add_argument("--n", type=int, default=None, metavar="N", help="|H| = |F| (default 1000; paper 10000)")
    p.add_argument("--k", type=int, default=None, metavar="K", help="top-K tokens per future (default 50)")
    p.add_argument("--lengths", default=None, metavar="MIN:MAX", help="ℓ_min:ℓ_max in characters (default 50:200)")
    p.add_argument("--device", default="cpu", metavar="D", help="cpu (default), cuda, cuda:1, …")
    p.add_argument("--dtype", default="float32", metavar="T", help=f"weights dtype: one of {', '.join(_DTYPES)}")
    p.add_argument("--scale", default=None, metavar="paper", help="paper: N=10000, 50:200, K=50 (explicit options win)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the cut (default 0)")
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="output folder (default results/spectrum/<model>-<corpus>-n<N>-k<K>)")
    p.add_argument("--threads", type=int, default=None, metavar="N", help="torch CPU threads (default: torch's)")
    return p


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
    from .corpus_cut import CORPUS_NAMES

    if args.corpus not in CORPUS_NAMES and not Path(args.corpus).exists():
        raise UsageError(f"--corpus must be one of {', '.join(CORPUS_NAMES)} or an existing file or folder; got {args.corpus!r}")
    corpus_tag = args.corpus if args.corpus in CORPUS_NAMES else Path(args.corpus).stem
    out = args.out or Path("results") / "spectrum" / f"{args.model.replace('/', '_')}-{corpus_tag}-n{n}-k{k}"
    return {"model": args.model, "corpus": args.corpus, "n": n, "k": k, "lengths": list(lengths),
            "device": str(device), "dtype": args.dtype, "scale": args.scale, "seed": args.seed, "out": Path(out),
            "threads": args.threads}


def _chunks(m: int, n: int, stops) -> list[tuple[int, int]]:
    """Future ranges, split at every stop: about m/8 futures (progress) but at least 32 (the packed path
    needs whole packs of futures to be efficient) and, above that, at most 16384 cells each."""
    size = max(min(32, m), min(max(1, 16384 // n), math.ceil(m / 8)))
    bounds = sorted({0, m, *[s for s in stops if 0 < s < m], *range(0, m, size)})
    return list(itertools.pairwise(bounds))


def compute(settings: dict, *, progress: bool = True) -> dict:
    """Steps 1–5 of the module docstring; returns the summary written to ``summary.json``."""
    import numpy as np
    import torch

    from logitrank.algorithms import fit_power_law, gram_spectrum, top_k_columns

    from ._cache import cached_logit_matrix
    from .checks._real_setup import token_sets
    from .corpus_cut import cut_histories_futures
    from .models import load_model

    t0 = time.perf_counter()
    out: Path = settings["out"]
    out.mkdir(parents=True, exist_ok=True)
    dtype = getattr(torch, settings["dtype"])
    model = load_model(settings["model"], device=settings["device"], dtype=dtype)
    if model.device.type == "cuda" and hasattr(model, "max_positions"):
        model.max_positions = max(model.max_positions, 65536)  # a GPU wants bigger passes than a CPU
    # 1. the cut, encoded.
    n, k = settings["n"], settings["k"]
    Ht, Ft = cut_histories_futures(settings["corpus"], n, n, min_chars=settings["lengths"][0],
                                   max_chars=settings["lengths"][1], seed=settings["seed"])
    H, F = token_sets(model, Ht, Ft)
    n, m = len(H), len(F)
    k = min(k, model.vocab_size)
    # 2. columns.
    cols = top_k_columns(model, F, k)  # (m, k)
    # 3. chunks of futures through the cache, Gram accumulated in float64 with downsizing snapshots.
    sizes = {i: (int(n / math.sqrt(i)), int(m / math.sqrt(i))) for i in FACTORS}
    sizes = {i: s for i, s in sizes.items() if min(s) >= 8}
    G = torch.zeros(n, n, dtype=torch.float64, device=model.device)
    snaps = {}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n * m, desc=f"L({model.name})", unit="cell", unit_scale=True, file=sys.stderr, smoothing=0.1)
    t1 = time.perf_counter()
    chunks = _chunks(m, n, [mi for _, mi in sizes.values()])
    for s, e in chunks:
        part = cached_logit_matrix(model, H, F[s:e], columns=cols[s:e], cache_dir=out / "cache", chunk=e - s,
                                   progress=progress and len(chunks) < 8, desc="chunk")  # (n, (e-s)*k); inner bar when chunks are few
        b64 = part.to(device=model.device, dtype=torch.float64)
        G.addmm_(b64, b64.T)  # (n, n)
        for i, (ni, mi) in sizes.items():
            if mi == e:
                snaps[i] = G[:ni, :ni].clone()
        if bar is not None:
            bar.update(n * (e - s))
    if bar is not None:
        bar.close()
    t_matrix = time.perf_counter() - t1
    # 4. spectra and fits.
    spectra, fits = {}, {}
    for i, (ni, mi) in sizes.items():
        sv = gram_spectrum(snaps[i], shape=(ni, mi * k)).singular_values.cpu().numpy()
        spectra[i] = sv
        fits[i] = {}
        pos = sv[sv > sv[0] * 1e-12] if sv[0] > 0 else sv[:0]
        for indexing in ("paper", "original"):
            try:
                f = fit_power_law(pos, indexing=indexing)
                fits[i][indexing] = {"alpha": f.alpha, "r_squared": f.r_squared, "edge": f.edge, "values fitted": len(pos)}
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
    alphas = [fits[i]["paper"].get("alpha") for i in sizes if "alpha" in fits[i]["paper"]]
    summary = {
        "settings": {**{k_: v for k_, v in settings.items() if k_ != "out"}, "k": k},
        "model": model.name, "fingerprint": model.fingerprint() if hasattr(model, "fingerprint") else None,
        "|H|": n, "|F|": m, "entries": n * m * k,
        "mean tokens |h|, |f|": [float(np.mean([len(h) for h in H])), float(np.mean([len(f) for f in F]))],
        "alpha (paper indexing)": fits[1]["paper"].get("alpha"),
        "R² (paper indexing)": fits[1]["paper"].get("r_squared"),
        "alpha (original indexing)": fits[1]["original"].get("alpha"),
        "R² (original indexing)": fits[1]["original"].get("r_squared"),
        "alpha spread over downsizing (paper indexing)": (max(alphas) - min(alphas)) if alphas else None,
        "downsized": {str(i): {"|H_i|": sizes[i][0], "|F_i|": sizes[i][1], **{ix: fits[i][ix] for ix in fits[i]}}
                      for i in sizes},
        "seconds": {"matrix": round(t_matrix, 2), "total": round(time.perf_counter() - t0, 2)},
        "versions": _versions(),
        "files": ["spectra.csv", "sigma.npy", "summary.json", "spectrum.png"],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    _figure(out / "spectrum.png", spectra, sizes, k, summary)
    return summary


def _versions() -> dict:
    from importlib import metadata

    v = {}
    for pkg in ("logitrank", "torch", "transformers"):
        try:
            v[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            v[pkg] = None
    return v


def _figure(path: Path, spectra: dict, sizes: dict, k: int, summary: dict) -> None:
    """``path`` (.png) and its .pdf twin, drawn in the paper style of :mod:`logitrank.verify._style`."""
    import numpy as np

    from ._figures import save_figure
    from ._style import finish, paper_figure, paper_style

    @paper_style
    def draw():
        fig, ax = paper_figure()
        for i, sv in spectra.items():
            ni, mi = sizes[i]
            ax.loglog(np.arange(1, len(sv) + 1), sv / math.sqrt(ni * mi * k), lw=1.2 if i == 1 else 0.8,
                      label=f"{ni}×{mi}·{k}" + (" (full)" if i == 1 else f" (÷{i})"))
        a, r2 = summary["alpha (paper indexing)"], summary["R² (paper indexing)"]
        title = rf"{summary['model']}: $\alpha$ = {a:.3f} ($R^2$ = {r2:.2f})" if a is not None else summary["model"]
        ax.set(xlabel=r"index $i$", ylabel=r"$\sigma_i\,/\,\sqrt{\mathrm{entries}}$", title=title)
        finish(ax)
        save_figure(fig, path.parent, path.stem)

    draw()


def run(args) -> int:
    """Run ``logitrank spectrum`` from parsed options; 0 on success, 2 on a usage error."""
    try:
        settings = _settings(args)
    except UsageError as err:
        print(f"logitrank spectrum: error: {err}", file=sys.stderr)
        return 2
    import torch

    if settings["threads"]:
        torch.set_num_threads(settings["threads"])
    try:
        summary = compute(settings)
    except (FileNotFoundError, ImportError) as err:
        print(f"logitrank spectrum: error: --model {settings['model']!r}: {err}", file=sys.stderr)
        return 2
    print(f"{summary['model']}: |H|={summary['|H|']} |F|={summary['|F|']} k={settings['k']}  "
          f"α = {summary['alpha (paper indexing)']:.3f} (R² {summary['R² (paper indexing)']:.3f}, paper indexing), "
          f"{summary['alpha (original indexing)']:.3f} (R² {summary['R² (original indexing)']:.3f}, original)  "
          f"in {summary['seconds']['total']:.0f} s → {settings['out']}")
    return 0
