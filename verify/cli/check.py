"""``logitrank check``: validate the options, run claims, keep run records, export ``checks.json``.

Everything is validated before any work (exit 2, one line on stderr): the results path, the store,
``--threads``, ``--seed``/``--seeds``, the model name, plugins and claim IDs. Each run gets a record
in the SQLite store (:mod:`._claim_store`); each finished claim is committed at once, so a run killed
at any point keeps every finished claim, and ``--resume`` skips claims already finished with the same
settings. ``checks.json`` is rewritten atomically after each claim as an export of the newest result of
every claim in the store (a run of T3 then one of T10 keeps both).

Every stored row carries a checksum, and the whole store is verified before any work: a damaged row
is a usage error naming the row and ``--recompute``, which drops the damaged rows so that the run
computes those claims again; a file SQLite cannot read is named with what to do.

Exit status: 0 when the run completed (whatever the verdicts; the demo's contract), 1 with
``--strict`` when any requested claim does not hold or when the store is found damaged mid-run, 2 for
usage errors, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

from logitrank._io import atomic_write_text
from logitrank._validation import UsageError

from .._presets import parse_overrides
from ..claims._check_api import _MAX_SEED, CheckConfig, ClaimResult
from ..claims._registry import load_plugin, registered, run_check
from ..claims._report import headline
from ._progress import Ticker, duration, is_terminal, log_to_stderr, quiet_bars

__all__ = ["DEFAULT_JSON", "add_check_arguments", "add_parser", "cmd_check", "run"]

DEFAULT_JSON = Path("results") / "checks.json"
STORE_NAME = "logitrank.sqlite"
#: seconds between progress lines when stderr is not a terminal
PROGRESS_EVERY_S = 20.0
MAX_THREADS = max(256, os.cpu_count() or 1)


def _usage(message: str):
    raise UsageError(message)


def _writable_file(option: str, raw: str) -> Path:
    """``raw`` as a path where a file can be written, or raise ValueError (one line)."""
    if not raw or not raw.strip():
        raise ValueError(f"{option} must name a file; got an empty path")
    path = Path(raw)
    if path.is_dir():
        raise ValueError(f"{option} must name a file, not the folder {raw!r}")
    parent = path.parent
    while not parent.exists():
        if parent == parent.parent:
            break
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise ValueError(f"{option} {raw!r} lies under {str(parent)!r}, which is a file, not a folder")
    if parent.exists() and not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {raw!r}: folder {str(parent)!r} is not writable")
    return path


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--progress-every must be a number of seconds > 0; got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"--progress-every must be a number of seconds > 0; got {text}")
    return value


def _int_option(option: str, low: int, high: int):
    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{option} must be an integer in [{low}, {high}]; got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{option} must be an integer in [{low}, {high}]; got {text}")
        return value

    return parse


def add_check_arguments(check: argparse.ArgumentParser) -> None:
    """The options of ``logitrank check``."""
    check.add_argument("ids", nargs="*", metavar="ID", help="claim IDs (default: every registered check)")
    check.add_argument("--scale", choices=["quick", "full"], default="quick", help="problem sizes (default quick)")
    check.add_argument("--seed", type=_int_option("--seed", 0, _MAX_SEED - 64), default=0,
                       help="base seed (default 0); seeded checks use seed, seed+1, …")
    check.add_argument("--seeds", type=_int_option("--seeds", 1, 64), default=None, metavar="N",
                       help="seeds per seeded check (default 3 at quick scale, 5 at full)")
    check.add_argument("--json", default=str(DEFAULT_JSON), metavar="PATH",
                       help=f"results export (default {DEFAULT_JSON}); figures and cache go beside it")
    check.add_argument("--store", default=None, metavar="PATH",
                       help=f"SQLite store of run records and results (default {STORE_NAME} beside --json)")
    check.add_argument("--resume", action="store_true",
                       help="skip claims already finished (holds/fails/mixed) with the same scale, seed(s), model, "
                            "--set overrides and code version (git SHA)")
    check.add_argument("--recompute", action="store_true",
                       help="drop the stored rows that fail their checksum (named in the error that suggests this "
                            "option) before running, so those claims are computed again")
    check.add_argument("--strict", action="store_true",
                       help="exit 1 unless every requested claim holds (CI); without it a completed run exits 0")
    check.add_argument("--threads", type=_int_option("--threads", 1, MAX_THREADS), default=1, metavar="N",
                       help="torch CPU threads (default 1: checks run many small ops, which extra threads slow down)")
    check.add_argument("--model", default="tiny", metavar="NAME",
                       help="language model of the real-model checks E1–E11: tiny (default), tiny@stepN, tiny-b, "
                            "smollm2, or a local folder / Hugging Face name already in the local cache")
    check.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"),
                       help="weights' dtype of the --model in the real-model checks (default float32; bfloat16 runs "
                            "about 2x faster on CPUs with bf16 units; comparison models stay float32)")
    check.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                       help="override one setting of the claims' presets (repeatable; e.g. --set n=256 --set k=200); "
                            "unknown keys are refused before anything runs")
    check.add_argument("--show-config", action="store_true",
                       help="print each claim's resolved settings (preset of --scale with --set applied) and exit")
    check.add_argument("--resume-any-code", action="store_true",
                       help="with --resume: also reuse results computed by another code version (git SHA)")
    check.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                       help="import MODULE (dotted name or .py file) first, so its @register claims can be run; "
                            "repeatable")
    check.add_argument("--progress-every", type=_positive_seconds, default=PROGRESS_EVERY_S, metavar="SECONDS",
                       help="seconds between progress lines when stderr is not a terminal (default "
                            f"{PROGRESS_EVERY_S:g}; on a terminal a bar)")


def model_problem(spec: str) -> str | None:
    """Why ``--model spec`` cannot name a model (one line naming the option), or None; never touches the network."""
    from ..models import model_problem as problem

    if not spec or not spec.strip():
        return "--model must be a model name; got an empty string"
    found = problem(spec)
    return None if found is None else f"--{found}"


def _check_store(path: Path, *, recompute: bool = False) -> list:
    """Open the store and verify every row's checksum; raise ValueError (one line) when it cannot be used or
    holds damaged rows, unless ``recompute``: then the damaged rows are dropped and returned."""
    from ..claims._claim_store import ClaimStore

    try:
        store = ClaimStore(str(path))
    except Exception as err:  # noqa: BLE001  (one line, whatever sqlite says)
        raise ValueError(f"--store {str(path)!r} cannot be used: {(str(err).splitlines() or [''])[0]}") from None
    try:
        if recompute:
            return store.drop_damaged()
        damaged = store.damaged()
    except Exception as err:  # noqa: BLE001  (StoreDamagedError for an unreadable file: its one line)
        raise ValueError(f"--store {str(path)!r} cannot be used: {(str(err).splitlines() or [''])[0]}") from None
    finally:
        store.close()
    if damaged:
        claims = sorted({c for _, _, c in damaged if c})
        first = damaged[0][1] + (f" and {len(damaged) - 1} more" if len(damaged) > 1 else "")
        redo = f"logitrank check {' '.join(claims)} --recompute" if claims else "logitrank check --recompute"
        one = len(damaged) == 1
        raise ValueError(f"--store {str(path)!r}: the {first} fail{'s its' if one else ' their'} checksum (stored "
                         f"values changed after they were written, e.g. a flipped bit); run `{redo}` to drop "
                         f"{'it' if one else 'them'} and compute {'it' if one else 'them'} again")
    return []


def _headline(result: ClaimResult, width: int = 70) -> str:
    """The report's headline of a result (main figure, median [min, max] over seeds), or the first line
    of its reason when it has no figure, shortened to one table cell."""
    text = headline(asdict(result))
    if text == "—" and result.reason:
        text = result.reason.splitlines()[0]
    return text if len(text) <= width else text[: width - 1] + "…"


def export_json(path: Path, store) -> None:
    """Rewrite ``path`` atomically with the newest result of every claim in the store (every row verified
    against its digest on the way: a damaged row raises StoreDamagedError instead of being exported)."""
    atomic_write_text(path, json.dumps(store.latest(), indent=2, default=str))


def cmd_check(args, argv: list[str] | None = None) -> int:
    """Run ``logitrank check`` (module docstring)."""
    from ..claims._ledger import LEDGER

    try:
        for spec in args.plugin:
            load_plugin(spec)
        json_path = _writable_file("--json", args.json)
        store_path = _writable_file("--store", args.store) if args.store is not None else json_path.parent / STORE_NAME
    except ValueError as err:
        _usage(str(err))
    have = registered()
    unknown = [i for i in args.ids if i not in LEDGER]
    if unknown:
        cased = {i: i.upper() for i in unknown if i.upper() in LEDGER}
        hint = (f" (IDs are upper case: did you mean {' '.join(cased.values())}?)" if cased else "")
        _usage(f"unknown claim id(s) {', '.join(unknown)}{hint}; known: {', '.join(LEDGER)}")
    problem = model_problem(args.model)
    if problem:
        _usage(problem)
    try:
        dropped = _check_store(store_path, recompute=args.recompute)
    except ValueError as err:
        _usage(str(err))
    if dropped:
        print(f"--recompute: dropped {len(dropped)} damaged row(s) from {store_path}: "
              f"{'; '.join(d for _, d, _ in dropped)}", file=sys.stderr)
    ids = list(dict.fromkeys(args.ids)) or have
    try:
        overrides = parse_overrides(args.overrides)
        config = CheckConfig(scale=args.scale, seed=args.seed, out_dir=str(json_path.parent), model=args.model,
                             seeds=args.seeds, overrides=overrides, dtype=args.dtype)
        resolved = {cid: _resolved_settings(cid, config) for cid in ids}  # every override checked up front
    except ValueError as err:
        _usage(str(err))
    if args.show_config:
        for cid, settings in resolved.items():
            preset = _check_table()[cid].presets.name_for(config) if settings is not None else config.scale
            print(f"{cid} ({preset}{', with --set' if overrides else ''}):")
            for key, value in (settings or {}).items():
                print(f"  {key} = {json.dumps(value, default=list)}")
            if settings is None:
                print("  (this claim declares no settings)")
        return 0
    import torch

    from ..claims._claim_store import ClaimStore, StoreDamagedError

    torch.set_num_threads(args.threads)
    store = ClaimStore(str(store_path))
    try:
        return _run_claims(args, store, store_path, json_path, config, ids, argv)
    except StoreDamagedError as err:  # damage found mid-run (checked at the start too): one line, exit 1
        print(f"logitrank check: error: {err}", file=sys.stderr)
        return 1
    finally:
        store.close()


def _resolved_settings(claim_id: str, config: CheckConfig) -> dict | None:
    """The settings ``claim_id`` would run with (preset of ``config.scale`` plus its overrides), or None when
    the claim declares none; ValueError naming the claim for an override it does not have."""
    entry = _check_table().get(claim_id)
    if entry is None or entry.presets is None:
        if config.overrides:
            raise ValueError(f"claim {claim_id} declares no settings to override; got --set "
                             f"{', '.join(k for k, _ in config.overrides)}")
        return None
    names = entry.presets.names
    name = entry.presets.name_for(config)  # the table's own rule (real-model tables pick by model kind)
    if name not in names:
        raise ValueError(f"claim {claim_id} has no preset {name!r}; its presets: {', '.join(names)}")
    try:
        return entry.presets.resolve(name, dict(config.overrides))
    except ValueError as err:
        raise ValueError(f"claim {claim_id}: {err}") from None


def _check_table() -> dict:
    from ..claims import _check_api

    registered()  # loads the checks
    return _check_api._CHECKS


def _run_claims(args, store, store_path: Path, json_path: Path, config: CheckConfig, ids: list[str], argv) -> int:
    """Run ``ids`` (reusing finished claims with ``--resume``), record each, export, print the table."""
    done = store.finished(config, any_code=args.resume_any_code) if args.resume else {}
    run_id = store.start_run(config, ids, argv)
    start = time.perf_counter()
    results: list[tuple[ClaimResult, int | None]] = []
    progress = _ClaimProgress(ids, every=getattr(args, "progress_every", PROGRESS_EVERY_S))
    try:
        with quiet_bars():
            for cid in ids:
                progress.begin(cid)
                if cid in done:
                    from_run, result = done[cid]
                    store.record(run_id, config, result, reused_from=from_run)
                else:
                    seeds = store.finished_seeds(config, cid, any_code=args.resume_any_code) if args.resume else None
                    result, from_run = run_check(cid, config, finished_seeds=seeds, on_seed=functools.partial(
                        store.record_seed, run_id, config, cid)), None
                    store.record(run_id, config, result)
                results.append((result, from_run))
                progress.end(result)
                export_json(json_path, store)
    except KeyboardInterrupt:
        progress.close()
        store.finish_run(run_id, "interrupted", time.perf_counter() - start)
        print(f"\ninterrupted; {len(results)} finished claim(s) kept in {store_path} (run {run_id}); "
              f"rerun with --resume to continue", file=sys.stderr)
        return 130
    progress.close()
    store.finish_run(run_id, "completed", time.perf_counter() - start)
    export_json(json_path, store)
    print(f"{'ID':<5} {'verdict':<8} {'time':>7}  figures")
    for r, from_run in results:
        when = f"run {from_run}" if from_run is not None else f"{r.seconds:>6.1f}s"
        print(f"{r.id:<5} {r.verdict:<8} {when:>7}  {_headline(r)}")
        if r.verdict != "holds" and r.reason:
            print(f"      reason: {r.reason.splitlines()[0]}")
    counts = {v: sum(r.verdict == v for r, _ in results) for v in ("holds", "fails", "mixed", "not-run", "error")}
    summary = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    reused = sum(f is not None for _, f in results)
    print(f"run {run_id} completed: {summary}" + (f" ({reused} reused by --resume)" if reused else ""))
    print(f"run record in {store_path}")
    print(f"results written to {json_path}")
    if args.strict and any(r.verdict != "holds" for r, _ in results):
        return 1
    return 0


class _ClaimProgress:
    """Progress of a check run: a tqdm bar over the claims on a terminal; in a log one line through logging every
    ``every`` seconds (claims done, the last verdict, the claim running and for how long, elapsed)."""

    def __init__(self, ids: list[str], *, every: float):
        self.ids, self.done, self.current, self.since, self.last = ids, 0, None, time.monotonic(), ""
        self.t0 = time.monotonic()
        self.bar = self.ticker = None
        if is_terminal():
            from tqdm import tqdm

            self.bar = tqdm(total=len(ids), desc="checks", unit="claim", file=sys.stderr, disable=False)
        else:
            log_to_stderr()
            self.ticker = Ticker(self.line, every).start()

    def line(self) -> str:
        running = f"; running {self.current} for {duration(time.monotonic() - self.since)}" if self.current else ""
        return (f"checks: {self.done}/{len(self.ids)} claims done{self.last}{running}; "
                f"elapsed {duration(time.monotonic() - self.t0)}")

    def begin(self, cid: str) -> None:
        self.current, self.since = cid, time.monotonic()
        if self.bar is not None:
            self.bar.set_postfix_str(cid)

    def end(self, result: ClaimResult) -> None:
        self.done += 1
        self.last = f" (last: {result.id} {result.verdict})"
        if self.bar is not None:
            self.bar.update(1)
        self.current = None

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.ticker is not None:
            self.ticker.stop(last=False)


def add_parser(sub) -> argparse.ArgumentParser:
    """Register ``check`` on an argparse subparsers object."""
    check = sub.add_parser("check", help="run claim checks, keep run records, export JSON results")
    add_check_arguments(check)
    return check


def run(args) -> int:
    """``logitrank check`` from parsed options (the command line as typed is in ``args.argv``)."""
    return cmd_check(args, getattr(args, "argv", None))


def add_runs_parser(sub) -> argparse.ArgumentParser:
    """``logitrank runs``: the run records of the store, newest last."""
    p = sub.add_parser("runs", help="list the claim runs recorded in the store (settings, versions, wall time)")
    p.add_argument("--store", default=str(DEFAULT_JSON.parent / STORE_NAME), metavar="PATH",
                   help=f"the SQLite store (default {DEFAULT_JSON.parent / STORE_NAME})")
    p.add_argument("--last", type=_int_option("--last", 1, 10**9), default=20, metavar="N",
                   help="show the last N runs (default 20)")
    return p


def cmd_runs(args) -> int:
    """Print one line per run record: id, status, start, settings, git SHA, wall time, claims and verdicts."""
    path = Path(args.store)
    if not path.is_file():
        _usage(f"--store {args.store!r} is not a file; `logitrank check` creates it")
    try:
        _check_store(path)
    except ValueError as err:
        _usage(str(err))
    from ..claims._claim_store import ClaimStore

    store = ClaimStore(str(path))
    try:
        runs = store.runs()[-args.last:]
    finally:
        store.close()
    print(f"{'run':>4} {'status':<11} {'started':<25} {'scale':<5} {'seed':>4} {'seeds':>5} {'model':<10} "
          f"{'git':<10} {'wall':>8}  claims")
    for r in runs:
        cfg, prov = r["config"], r["provenance"]
        sha = (prov.get("git_sha") or "-")[:10]
        wall = f"{r['wall_s']:.1f}s" if r["wall_s"] is not None else "-"
        claims = " ".join(f"{c}:{r['verdicts'].get(c, '…')}" for c in r["claims"])
        print(f"{r['run_id']:>4} {r['status']:<11} {r['started']:<25} {cfg['scale']:<5} {cfg['seed']:>4} "
              f"{cfg['seeds']:>5} {cfg['model'][:10]:<10} {sha:<10} {wall:>8}  {claims}")
    return 0
