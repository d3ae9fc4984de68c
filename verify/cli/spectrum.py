"""``logitrank spectrum``: the spectrum of the extended logit matrix of any model on any text (paper A, §3.1).

    logitrank spectrum [--model M] [--corpus PATH|NAME] [--scale quick|full|paper] [--set KEY=VALUE ...]
                       [--n N] [--k K] [--lengths MIN:MAX] [--seed S] [--device D] [--dtype T]
                       [--out DIR] [--threads N] [--backend local|dask --scheduler ADDR --slices S]
                       [--show-config]

The options fill one :class:`~logitrank.verify.experiments.SpectrumConfig` (the preset of ``--scale``,
``--set`` overrides of its sizes ``n``, ``k``, ``lengths``, then the explicit options), which
:func:`~logitrank.verify.experiments.compute_spectrum` runs; the steps are in
:mod:`logitrank.verify.experiments._spectrum`. ``--show-config`` prints the resolved config as JSON
and exits. One thread per process by default, like ``check`` (``--threads`` sets more). Exit status
0 on success, 2 for usage errors (one line on stderr). Progress goes to stderr: a bar on a
terminal, a line every 10 s otherwise.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from logitrank._validation import UsageError

from .._presets import parse_overrides
from ..experiments._spectrum import (
    DTYPES,
    SPECTRUM_PRESETS,
    SpectrumConfig,
    check_inputs,
    compute_spectrum,
    with_threads,
)
from ._spectrum_output import report_lines

__all__ = ["add_parser", "config_from_args", "run"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``spectrum`` on an ``argparse`` sub-parser collection."""
    p = subparsers.add_parser("spectrum", help="Gram spectrum, α and downsized spectra of a model's logit matrix on a text",
                              description=__doc__.splitlines()[0])
    p.add_argument("--model", default="tiny", metavar="M",
                   help="a model name: tiny, tiny@stepN, smollm2, gemma3, isan:V,T,d, a folder, … (default tiny)")
    p.add_argument("--corpus", default="shakespeare", metavar="PATH|NAME",
                   help="shakespeare (default), docstrings, a UTF-8 text file or a folder of *.txt")
    p.add_argument("--scale", default="full", metavar="|".join(SPECTRUM_PRESETS.names),
                   help="sizes preset: quick (N=150), full (default: N=1000, 150 for a context below 350 positions), "
                        "paper (N=10000, 50:200 characters, K=50); explicit options win")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help=f"override a setting of the preset ({', '.join(SPECTRUM_PRESETS.keys)}); repeatable")
    p.add_argument("--show-config", action="store_true", help="print the resolved config as JSON and exit")
    p.add_argument("--n", type=int, default=None, metavar="N", help="|H| = |F|")
    p.add_argument("--k", type=int, default=None, metavar="K", help="top-K tokens per future, at most V (default 50)")
    p.add_argument("--lengths", default=None, metavar="MIN:MAX",
                   help="ℓ_min:ℓ_max in characters (default 50:200, or what fits the model's context: 16:38 for tiny)")
    p.add_argument("--device", default="cpu", metavar="D", help="cpu (default), cuda, cuda:1, …")
    p.add_argument("--dtype", default="float32", metavar="T", help=f"weights dtype: one of {', '.join(DTYPES)}")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the cut (default 0)")
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="output folder (default results/spectrum/<model>-<corpus>-n<N>-k<K>)")
    p.add_argument("--threads", type=int, default=1, metavar="N", help="torch CPU threads (default 1, as for check)")
    p.add_argument("--backend", default="local", choices=["local", "dask"],
                   help="local (default), or dask: slices of the futures on a Dask cluster (needs --scheduler)")
    p.add_argument("--scheduler", default=None, metavar="ADDR", help="Dask scheduler address, tcp://host:port")
    p.add_argument("--slices", type=int, default=None, metavar="S",
                   help="with --backend dask: tasks per downsizing segment (default: the local path's chunks, "
                        "which give its logits bit for bit)")
    return p


def _lengths(raw: str | None) -> tuple[int, int] | None:
    if raw is None:
        return None
    try:
        lo, hi = (int(x) for x in raw.split(":"))
    except ValueError:
        raise UsageError(f"--lengths must be MIN:MAX in characters, e.g. 50:200; got {raw!r}") from None
    if not 1 <= lo <= hi:
        raise UsageError(f"--lengths must satisfy 1 <= MIN <= MAX; got {raw!r}")
    return lo, hi


def config_from_args(args) -> SpectrumConfig:
    """The :class:`SpectrumConfig` of parsed options (preset, ``--set``, explicit options); UsageError."""
    try:
        overrides = parse_overrides(args.set)
    except ValueError as err:
        raise UsageError(str(err)) from None
    explicit = {"model": args.model, "corpus": args.corpus, "n": args.n, "k": args.k, "lengths": _lengths(args.lengths),
                "seed": args.seed, "device": args.device, "dtype": args.dtype, "out": args.out,
                "threads": args.threads, "backend": args.backend, "scheduler": args.scheduler, "slices": args.slices}
    if explicit["lengths"] is not None:
        explicit["lengths_from"] = "--lengths"
    try:
        return SpectrumConfig.from_preset(args.scale, overrides, **explicit)
    except UsageError:
        raise
    except ValueError as err:  # an unknown or mistyped --set key, from Presets
        raise UsageError(f"--set: {err}") from None


def run(args) -> int:
    """Run ``logitrank spectrum`` from parsed options; 0 on success (usage errors raise UsageError)."""
    config = config_from_args(args)
    if args.show_config:
        print(json.dumps(config.show(), indent=2))
        return 0
    check_inputs(config)
    result = compute_spectrum(with_threads(config), progress=True)
    print("\n".join(report_lines(result.summary)))
    return 0
