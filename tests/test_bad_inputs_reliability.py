"""Issues 23 and 24, second round of bad calls: spectrum, report, the claims store, and the library cases.

Same contract as ``tests/test_bad_inputs.py``: every call below raises an exception of the stated type
whose one-line message names the argument, the value and what was expected. CLI usage errors (exit 2)
are re-raised as :class:`UsageError` carrying the last stderr line.
"""

from __future__ import annotations

import contextlib
import io
import resource
import sqlite3
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from logitrank import algorithms as alg
from logitrank import synth
from logitrank import verify as ver
from logitrank._validation import check_enumeration
from logitrank.verify.claims._check_api import CheckConfig, ClaimResult
from logitrank.verify.claims._claim_store import ClaimStore, StoreDamagedError
from logitrank.verify.cli import main
from logitrank.verify.models import load_model

M = synth.random_isan(3, 4, 2, generator=0)  # V = 3, T = 4, d = 2
TMP = Path(tempfile.mkdtemp(prefix="logitrank-bad-2-"))
FILE = TMP / "a-file"
FILE.write_text("not a folder")
EMPTY = TMP / "empty.txt"
EMPTY.write_text("")
BLANK = TMP / "blank.txt"
BLANK.write_text("  \n\t \n")
BINARY = TMP / "binary.txt"
BINARY.write_bytes(bytes(range(256)) * 4)
NO_TXT = TMP / "no-txt"
NO_TXT.mkdir()
(NO_TXT / "notes.md").write_text("not picked up: only *.txt files are read")
SHORT = TMP / "short.txt"
SHORT.write_text("It is a truth universally acknowledged. " * 20)  # 800 characters


class UsageError(Exception):
    """A CLI usage error (exit 2) with its one-line message."""


def cli(*argv: str):
    """Run the CLI; exit 2 (returned or raised) becomes UsageError(last stderr line); else the exit status."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(list(argv))
        except SystemExit as stop:
            code = stop.code
    if code == 2:
        lines = err.getvalue().strip().splitlines()
        raise UsageError(lines[-1] if lines else "")
    return code


def spectrum(*argv: str):
    return cli("spectrum", "--out", str(TMP / "spectrum-out"), *argv)


def results_file(name: str, content: bytes) -> str:
    path = TMP / name
    path.write_bytes(content)
    return str(path)


def _store_with_t3(name: str) -> Path:
    """A new claims store holding one run with T3's result, its connection closed (WAL folded into the file)."""
    path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=TMP)) / "logitrank.sqlite"
    store = ClaimStore(str(path))
    config = CheckConfig(out_dir=str(path.parent))
    run = store.start_run(config, ["T3"])
    store.record(run, config, ClaimResult(id="T3", verdict="holds", figures={"max TV": 2.16e-16, "per model": [1] * 900}))
    store.finish_run(run, "completed", 0.5)
    store.close()
    return path


def flipped_digit_store() -> Path:
    """T3's stored max TV 2.16e-16 → 9.16e-16: one digit in the file, invisible to SQLite's integrity check."""
    path = _store_with_t3("flipped")
    data = bytearray(path.read_bytes())
    at = data.find(b"2.16e-16")
    data[at] = ord("9")
    path.write_bytes(bytes(data))
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    return path


def damaged_page_store() -> Path:
    """An overflow page of T3's (long) result row points nowhere: SQLite reads the file but not that row."""
    path = _store_with_t3("damaged-page")
    with sqlite3.connect(path) as conn:
        page = conn.execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(path.read_bytes())
    first = data.find(b'"per model"') // page  # a page of the row's payload
    data[first * page : first * page + 4] = (10**6).to_bytes(4, "big")  # its next-overflow-page pointer
    path.write_bytes(bytes(data))
    return path


def check_on(store: Path, *extra: str):
    return cli("check", "T3", "--json", str(store.parent / "checks.json"), "--store", str(store), *extra)


def _isan_distribution_huge():
    """V = 4, T = 20: 4**20 ≈ 1.1e12 sequences, more memory than any machine (issue case: T = 15, 40 GiB
    here); must be refused before the allocator. Run under an address-space limit so that an
    implementation that does allocate fails fast instead of taking the machine down."""
    model = synth.random_isan(4, 20, 2, generator=0)
    with _address_space_below(gib=4):
        return model.distribution(max_sequences=2**41)


@contextlib.contextmanager
def _address_space_below(*, gib: int):
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    status = Path("/proc/self/status").read_text() if Path("/proc/self/status").exists() else ""
    used = next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmSize:")), 2**34)
    limit = used + gib * 2**30
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


BAD = [
    # ---- spectrum (issue 23): one line, exit 2, before any work where the model is not needed ----------
    ("spectrum model nosuchmodel", lambda: spectrum("--model", "nosuchmodel"), UsageError, r"--model 'nosuchmodel' is not tiny, tiny@stepN, tiny-b, smollm2, gemma3, isan:V,T,d\[,seed\], api:URL#name, a local model folder or a Hugging Face model in the local cache"),
    ("spectrum model tiny bad step", lambda: spectrum("--model", "tiny@step7"), UsageError, r"--model tiny@step7: tiny has no checkpoint at step 7"),
    ("spectrum corpus empty file", lambda: spectrum("--corpus", str(EMPTY)), UsageError, r"--corpus '.*empty.txt': corpus file '.*empty.txt' holds no text \(empty\)"),
    ("spectrum corpus whitespace file", lambda: spectrum("--corpus", str(BLANK)), UsageError, r"--corpus '.*blank.txt': corpus file .* holds no text \(only whitespace\)"),
    ("spectrum corpus binary file", lambda: spectrum("--corpus", str(BINARY)), UsageError, r"--corpus .*binary.txt' is not text \(it holds NUL bytes\)"),
    ("spectrum corpus folder without txt", lambda: spectrum("--corpus", str(NO_TXT)), UsageError, r"--corpus '.*no-txt': corpus folder '.*no-txt' holds no \*.txt files"),
    ("spectrum corpus missing", lambda: spectrum("--corpus", str(TMP / "nope.txt")), UsageError, r"--corpus must be one of shakespeare, docstrings or an existing file or folder; got '.*nope.txt'"),
    ("spectrum out is a file", lambda: cli("spectrum", "--out", str(FILE)), UsageError, r"--out '.*a-file' is a file, not a folder; name a folder \(created when missing\)"),
    ("spectrum out under a file", lambda: cli("spectrum", "--out", str(FILE / "sub")), UsageError, r"--out '.*a-file/sub' lies under '.*a-file', which is a file, not a folder"),
    ("spectrum k above vocabulary", lambda: spectrum("--k", "100000"), UsageError, r"--k must be <= the vocabulary size V = 256 of model tiny@step\d+; got 100000"),
    ("spectrum lengths overflow context", lambda: spectrum("--lengths", "50:200"), UsageError, r"--lengths 50:200 \(--lengths\): histories encode to up to \d+ tokens, which leaves no room for a future in model tiny@step\d+'s context of max_length=64 positions; use a smaller MAX, e.g. --lengths 16:38"),
    ("spectrum n too large for corpus", lambda: spectrum("--corpus", str(SHORT), "--n", "5000"), UsageError, r"--corpus '.*short.txt' with --n 5000 --lengths 16:38: corpus .* has 800 characters: too short for 10000 distinct windows"),
    # ---- report (issue 23) ----------------------------------------------------------------------------
    ("report results 5", lambda: cli("report", "--results", results_file("five.json", b'{"results": 5}')), UsageError, r"results file '.*five.json': 'results' must be a list of claim results; got int 5"),
    ("report run not a mapping", lambda: cli("report", "--results", results_file("run.json", b'{"results": [], "run": 3}')), UsageError, r"results file '.*run.json': 'run' must be a mapping of run fields; got int"),
    ("report results a number", lambda: cli("report", "--results", results_file("seven.json", b"7")), UsageError, r"results file '.*seven.json' must hold a list of results or a mapping with 'results'; got int"),
    ("report binary checks.json", lambda: cli("report", "--results", results_file("binary.json", bytes(range(128, 256)))), UsageError, r"results file '.*binary.json' is not UTF-8 text \(undecodable byte at offset 0\): --results must name the checks.json written by `logitrank check`"),
    # ---- check (issues 23, 24) ------------------------------------------------------------------------
    ("check t3 lower case", lambda: cli("check", "t3", "--json", str(TMP / "c" / "checks.json")), UsageError, r"unknown claim id\(s\) t3 \(IDs are upper case: did you mean T3\?\); known: T1, "),
    ("check store row flipped digit", lambda: check_on(flipped_digit_store(), "--resume"), UsageError, r"--store '.*flipped-[^/]*/logitrank.sqlite': the claim_results row of run 1, claim T3 fails its checksum \(stored values changed after they were written, e.g. a flipped bit\); run `logitrank check T3 --recompute` to drop it and compute it again"),
    ("check store damaged page", lambda: check_on(damaged_page_store(), "--resume"), UsageError, r"--store '.*damaged-page-[^/]*/logitrank.sqlite' cannot be used: claims store '.*' is damaged \(sqlite: database disk image is malformed\): move it aside \(mv .*\) and rerun, which starts a new store, or recover what is readable with `sqlite3 .* .recover`"),
    ("runs store row flipped digit", lambda: cli("runs", "--store", str(flipped_digit_store())), UsageError, r"the claim_results row of run 1, claim T3 fails its checksum"),
    ("store latest flipped digit", lambda: ClaimStore(str(flipped_digit_store())).latest(), StoreDamagedError, r"claims store '.*flipped-[^/]*/logitrank.sqlite': the claim_results row of run 1, claim T3 fails its checksum .* run `logitrank check T3 --recompute`"),
    ("store finished damaged page", lambda: ClaimStore(str(damaged_page_store())).finished(CheckConfig()), StoreDamagedError, r"claims store '.*damaged-page-[^/]*/logitrank.sqlite' is damaged \(sqlite: database disk image is malformed\): move it aside"),
    # ---- library (issue 23) ---------------------------------------------------------------------------
    ("logits text tokens", lambda: M.logits([["a", "b"]]), TypeError, r"prefixes must hold integer token ids, not text; got 'a' \(encode text to token ids first"),
    ("logits bytes tokens", lambda: M.logits(np.array([[b"a"]])), TypeError, r"prefixes must hold integer token ids, not text; got b'a'"),
    ("logits object tokens", lambda: M.logits([[None]]), ValueError, r"prefixes must be a rectangular \(B, t\) array of int token ids; got ragged rows or entries that are not numbers"),
    ("log_prob text tokens", lambda: M.log_prob([["a", "b", "c", "d"]]), TypeError, r"sequences must hold integer token ids, not text; got 'a'"),
    ("copying strength overflows float32", lambda: synth.copying(3, 1e39, dtype=torch.float32), ValueError, r"strength=1e\+39 overflows dtype torch.float32 \(largest finite value 3.4e\+38\): the readout B holds C and C/2; use dtype=torch.float64 or a smaller strength"),
    ("copying strength overflows float16", lambda: synth.copying(2, 1e5, dtype=torch.float16), ValueError, r"strength=100000 overflows dtype torch.float16 \(largest finite value 6.55e\+04\)"),
    ("learn_approx bogus solver option", lambda: alg.learn_approx(M, rank=2, epsilon=0.1, generator=0, solver_options={"bogus_option": 1}), ValueError, r"solver_options\['bogus_option'\] = 1 is not a valid HiGHS option \(unknown name or bad value; see the HiGHS option list\)"),
    ("learn_approx bad solver option value", lambda: alg.learn_approx(M, rank=2, epsilon=0.1, generator=0, solver_options={"time_limit": "soon"}), ValueError, r"solver_options\['time_limit'\] = 'soon' is not a valid HiGHS option"),
    ("learn_approx cvxpy bogus option", lambda: alg.learn_approx(M, rank=2, epsilon=0.1, generator=0, solver="cvxpy", solver_options={"bogus_option": 1}), ValueError, r"solver_options\['bogus_option'\] = 1 is not a valid HiGHS option"),
    ("enumeration over max_sequences", lambda: check_enumeration("distribution()", 4, 15, 2**20, bytes_per_sequence=40, device="cpu", way_out="use sampling"), ValueError, r"distribution\(\) enumerates V\*\*T = 4\*\*15 = 1073741824 sequences, more than max_sequences=1048576; use sampling or raise max_sequences"),
    ("enumeration over memory", lambda: check_enumeration("distribution()", 4, 20, 2**41, bytes_per_sequence=40, device="cpu", way_out="use sampling"), MemoryError, r"distribution\(\) over V\*\*T = 4\*\*20 = 1099511627776 sequences needs about 4.1e\+04 GiB, more than the .* GiB of cpu; use sampling"),
    ("enumeration max_sequences float", lambda: check_enumeration("distribution()", 2, 3, 1e6, bytes_per_sequence=8, device="cpu", way_out="x"), TypeError, r"max_sequences must be an integer; got 1000000.0"),
    ("distribution 4**20 sequences", _isan_distribution_huge, MemoryError, r"distribution\(\) over V\*\*T = 4\*\*20 = 1099511627776 sequences needs about .* GiB, more than"),
    ("load_model unknown name", lambda: load_model("nosuchmodel"), FileNotFoundError, r"model 'nosuchmodel' is not tiny, tiny@stepN, tiny-b, smollm2, gemma3, isan:V,T,d\[,seed\], api:URL#name, a local model folder or a Hugging Face model in the local cache \(logitrank never downloads\)"),
    ("tv_monte_carlo model None", lambda: ver.tv_monte_carlo(None, M, 10, generator=0), TypeError, r"p_model must be a language model \(with vocab_size, horizon, sample, log_prob; .*\); got NoneType"),
    ("tv_monte_carlo n float", lambda: ver.tv_monte_carlo(M, M, 10.0, generator=0), ValueError, r"n must be a positive int; got 10.0"),
    ("tv_estimate pilot 1", lambda: ver.tv_estimate(M, M, generator=0, pilot=np.int64(1)), ValueError, r"pilot must be an int >= 2; got 1"),
]


def _name(row) -> str:
    return row.values[0] if hasattr(row, "values") else row[0]


def test_table_is_unique_and_covers_the_issue():
    names = [_name(b) for b in BAD]
    assert len(set(names)) == len(names) and len(names) >= 35


@pytest.mark.parametrize(("name", "call", "exc", "match"), BAD, ids=[_name(b) for b in BAD])
def test_bad_call_raises_a_clear_error(name, call, exc, match):
    with pytest.raises(exc, match=match) as info:
        call()
    assert "\n" not in str(info.value), "one line"


GOOD = [
    ("tv_monte_carlo np.int64 n", lambda: ver.tv_monte_carlo(M, M, n=np.int64(10), generator=0)),
    ("tv_monte_carlo np.float32 confidence", lambda: ver.tv_monte_carlo(M, M, 10, generator=0, confidence=np.float32(0.9))),
    ("tv_estimate np.int64 sizes", lambda: ver.tv_estimate(M, M, half_width=0.5, generator=0, pilot=np.int64(16), batch=np.int64(64), max_samples=np.int64(128))),
    ("tv_distance np.float32 atol", lambda: ver.tv_distance(torch.tensor([0.5, 0.5]), torch.tensor([0.5, 0.5]), atol=np.float32(1e-6))),
    ("learn_approx valid solver option", lambda: alg.learn_approx(M, rank=2, epsilon=0.1, generator=0, solver_options={"time_limit": 60.0})),
]


@pytest.mark.parametrize(("name", "call"), GOOD, ids=[g[0] for g in GOOD])
def test_valid_values_are_accepted(name, call):
    call()
