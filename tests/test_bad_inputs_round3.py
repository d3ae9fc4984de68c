"""Issue 34, third round of bad calls: the served-model client and server, the Dask spectrum, the stores, and
vacuous settings.

Same contract as ``tests/test_bad_inputs.py``: every call in :data:`BAD` raises an exception of the stated type
whose one-line message names the argument, the value and what was expected. CLI usage errors (exit 2) are
re-raised as :class:`UsageError` carrying the last stderr line; a server's answer in the OpenAI error form
(``{"error": {"message", "type", ...}}``) is re-raised as :class:`Refused` ("<status> <type>: <message>"),
any other error body as :class:`NotOpenAIForm`. :data:`GOOD` holds valid calls on the same paths.

The cases that were *silent* (a wrong result, exit 0) before issue 34 are marked ``# silent before`` in the
table, and each also has a test below that says what the old code did; those tests fail on the code before
the change (the old client cached and answered another model's logits, the old server read ``"1_0"`` as
token 10, the old Dask checkpoint resumed from an edited record, …).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import http.server as web
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

openai = pytest.importorskip("openai")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
distributed = pytest.importorskip("distributed", reason="the dask extra (also in the test extra) is not installed")

from logitrank import synth
from logitrank.verify.claims._check_api import CheckConfig
from logitrank.verify.claims._registry import run_check
from logitrank.verify.cli import main
from logitrank.verify.experiments._distributed_gram import CheckpointError, distributed_gram
from logitrank.verify.experiments.sweep._store import SweepStoreError, load, open_store, row_digest
from logitrank.verify.models.served import (
    APICacheError,
    APIModel,
    InconsistentServerError,
    RequestRefusedError,
    running_server,
    serve_app,
)

TMP = Path(tempfile.mkdtemp(prefix="logitrank-bad-3-"))
_STACK = contextlib.ExitStack()
atexit.register(_STACK.close)
os.environ.setdefault("OPENAI_API_KEY", "EMPTY")


class UsageError(Exception):
    """A CLI usage error (exit 2) with its one-line message."""


class Refused(Exception):
    """A server's refusal in the OpenAI error form: "<status> <type>: <message>"."""


class NotOpenAIForm(Exception):
    """A server's error whose body is not the OpenAI error object (e.g. FastAPI's {"detail": ...})."""


def cli(*argv: str):
    """Run the CLI; exit 2 becomes UsageError(last stderr line); else the exit status."""
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


def _fresh(name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=TMP))


# -- servers, started once per process ---------------------------------------------------------------
class _ExactOnlyOnProbe:
    """An ISAN whose logits carry fresh N(0, noise²) errors on every prompt but the probe's (0,): a server
    exact only where the client's start-up probe looks (issue 34: off by 0.095 against a bound of 4e-5)."""

    def __init__(self, model, noise: float = 0.1):
        self.model, self.noise, self.vocab_size, self.horizon = model, noise, model.vocab_size, model.horizon
        self.rng = np.random.default_rng(0)

    def logits(self, prefixes):
        out = self.model.logits(prefixes)
        if tuple(torch.as_tensor(prefixes)[0].tolist()) == (0,):
            return out
        return out + torch.from_numpy(self.rng.normal(0.0, self.noise, size=tuple(out.shape)))


def _text_400_app():
    """A server whose completions answer HTTP 400 with a text body (not JSON)."""
    from fastapi import FastAPI
    from fastapi.responses import PlainTextResponse

    app = FastAPI()

    @app.get("/v1/models")
    def models() -> dict:
        return {"object": "list", "data": [{"id": "m", "object": "model", "vocab_size": 5, "horizon": 6}]}

    @app.post("/v1/completions")
    def completions():
        return PlainTextResponse("prompt too long for this deployment", status_code=400)

    return app


@functools.cache
def url(kind: str) -> str:
    """The base URL (…/v1) of a server of ``kind``, started once and stopped at exit."""
    if kind == "isan":  # V = 10, T = 4 (prompts up to 3 tokens), and small limits
        app = serve_app(synth.random_isan(10, 4, 2, generator=0), name="isan", top_logprobs_limit=5,
                        **({"max_body_bytes": 4096, "max_prompts": 4, "max_prompt_tokens": 2} if _limits() else {}))
    elif kind.startswith("seed"):  # two different ISANs served under one name
        app = serve_app(synth.random_isan(5, 6, 3, generator=int(kind[4:])), name="isan")
    elif kind == "exact-only-on-probe":
        app = serve_app(_ExactOnlyOnProbe(synth.random_isan(5, 6, 3, generator=0)), name="isan", cache_size=0)
    else:
        app = _text_400_app()
    return _STACK.enter_context(running_server(app))


def _limits() -> bool:
    import inspect

    return "max_prompts" in inspect.signature(serve_app).parameters


def http(address: str, *, content: bytes | None = None, headers=None, method: str = "POST") -> tuple[int, str]:
    """(status, body text) of one request (the standard library's client: nothing added to the body)."""
    request = urllib.request.Request(address, data=content, headers=dict(headers or {}), method=method)
    try:
        with urllib.request.urlopen(request, timeout=120) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


def post(path: str = "/completions", *, body=None, content=None, headers=None, kind: str = "isan", base=None):
    """POST to the server; 200 → its JSON; an OpenAI-form error → Refused; any other error → NotOpenAIForm."""
    if body is not None:
        content, headers = json.dumps(body).encode(), {"content-type": "application/json", **(headers or {})}
    status, text = http((base or url(kind)) + path, content=content if content is not None else b"", headers=headers)
    if status == 200:
        return json.loads(text)
    try:
        error = json.loads(text)["error"]
        message, kind_ = error["message"], error["type"]
    except (ValueError, KeyError, TypeError):
        raise NotOpenAIForm(f"{status} {text[:200]}") from None
    raise Refused(f"{status} {kind_}: {message}")


def completion(**change):
    return post(body={"model": "isan", "prompt": [1, 2], "max_tokens": 1, "logprobs": 3, **change})


def _raw_bias(text: str):
    """A completion whose logit_bias is written as raw JSON text (to repeat a key)."""
    body = '{"model": "isan", "prompt": [1], "max_tokens": 1, "logprobs": 3, "logit_bias": ' + text + "}"
    return post(content=body.encode(), headers={"content-type": "application/json"})


def _deep_json():  # 200 kB: within the default body limit of the seed0 server
    return post(content=b"[" * 100_000 + b"]" * 100_000, headers={"content-type": "application/json"}, kind="seed0")


# -- the API client ---------------------------------------------------------------------------------
def stale_cache():
    """Issue 34: one cache_dir, a server restarted with another ISAN under the same name → the old logits."""
    folder, P = _fresh("stale"), torch.randint(0, 5, (6, 3), generator=torch.Generator().manual_seed(0))
    with APIModel(url("seed0"), "isan", k=3, cache_dir=folder, cache_scope="isan@8000") as first:
        first.logits(P)
    with APIModel(url("seed1"), "isan", k=3, cache_dir=folder, cache_scope="isan@8000") as again:
        return again.logits(P)  # silently the first model's before issue 34


def exact_only_on_probe():
    """Issue 34: a server exact only on the probe prompt; 625 distinct prompts at the default spot-check rate."""
    P = synth.all_sequences(5, 4)  # (625, 4)
    with APIModel(url("exact-only-on-probe"), "isan", k=3, max_workers=1) as api:
        return api.logits(P)


def damaged_fingerprint():
    folder = _fresh("fingerprint")
    with APIModel(url("seed0"), "isan", k=3, cache_dir=folder) as api:
        api.logits([[1]])
    (path,) = folder.glob("*.fingerprint")
    path.write_text(path.read_text().replace('"answers"', '"answerz"'))
    return APIModel(url("seed0"), "isan", k=3, cache_dir=folder)


# -- the Dask spectrum and its checkpoints ------------------------------------------------------------
@functools.cache
def _client():
    cluster = _STACK.enter_context(distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                                            dashboard_address=None))
    return _STACK.enter_context(distributed.Client(cluster))


def _gram_setting():
    m = synth.random_isan(4, 6, 2, generator=1)
    g = torch.Generator().manual_seed(0)
    H = [tuple(torch.randint(4, (1 + i % 3,), generator=g).tolist()) for i in range(12)]
    F = [tuple(torch.randint(4, (1 + i % 2,), generator=g).tolist()) for i in range(8)]
    return m, H, F


def _half_done_checkpoint(name: str) -> tuple[Path, dict]:
    """A checkpoint folder of 2 of 4 slices; (folder, its record)."""
    m, H, F = _gram_setting()
    ck = _fresh(name) / "ck"
    distributed_gram(m, H, F, client=_client(), slices=4, checkpoint=ck, max_slices=2)
    return ck, json.loads((ck / "record.json").read_text())


def edited_done_list():
    """Issue 34: the record's `done` list edited to claim a slice never added → a sum missing that slice."""
    ck, record = _half_done_checkpoint("edited-done")
    missing = next(p for p in range(4) if p not in record["done"])
    record["done"] = sorted(record["done"] + [missing])
    (ck / "record.json").write_text(json.dumps(record))
    m, H, F = _gram_setting()
    return distributed_gram(m, H, F, client=_client(), slices=4, checkpoint=ck)


def data_outside_the_folder() -> tuple[Path, object]:
    """Issue 34: the record's `data` names a file outside the checkpoint folder (a copy of the real sum, so
    that it verifies); before, it was read and then deleted. Returns (that file, the call)."""
    ck, record = _half_done_checkpoint("outside")
    victim = ck.parent / "victim.npy"
    shutil.copy(ck / record["data"], victim)
    record["data"] = "../victim.npy"
    (ck / "record.json").write_text(json.dumps(record))
    m, H, F = _gram_setting()
    return victim, lambda: distributed_gram(m, H, F, client=_client(), slices=4, checkpoint=ck)


def _outside():
    victim, call = data_outside_the_folder()
    try:
        return call()
    finally:
        assert victim.exists(), "the file the record named outside the checkpoint folder was deleted"


_SPECTRUM = ("spectrum", "--n", "24", "--k", "8", "--threads", "1", "--backend", "dask", "--slices", "2")


@functools.cache
def _spectrum_out() -> Path:
    """A finished Dask spectrum run (tiny model, N = 24, K = 8) with its checkpoints."""
    out = _fresh("dask-spectrum") / "out"
    assert cli(*_SPECTRUM, "--scheduler", _client().scheduler.address, "--out", str(out)) == 0
    return out


def _spectrum_again(damage, *extra: str):
    """The same run again into a copy of the finished run's folder, after ``damage(copy)``."""
    copy = _fresh("dask-again") / "out"
    shutil.copytree(_spectrum_out(), copy)
    damage(copy)
    return cli(*_SPECTRUM, "--scheduler", _client().scheduler.address, "--out", str(copy), *extra)


def _truncate_record(out: Path) -> None:
    record = min(out.rglob("record.json"))
    record.write_bytes(record.read_bytes()[: len(record.read_bytes()) // 2])


def _flip_data_byte(out: Path) -> None:
    data = min(out.rglob("gram-*.npy"))
    raw = bytearray(data.read_bytes())
    raw[-5] ^= 0x10
    data.write_bytes(bytes(raw))


class _Silent(web.BaseHTTPRequestHandler):
    """A web server on a TCP port: it waits for a request and never sends a Dask handshake."""

    def do_GET(self):
        self.send_response(400)
        self.end_headers()

    def log_message(self, *args):
        pass


@functools.cache
def _web_port() -> int:
    server = web.ThreadingHTTPServer(("127.0.0.1", 0), _Silent)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _STACK.callback(server.shutdown)
    return server.server_address[1]


# -- the sweep store ------------------------------------------------------------------------------------
def _sweep_store(path: Path, rows: int = 32) -> Path:
    conn = open_store(path)
    with conn:
        conn.execute("INSERT INTO sweeps VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (*(values := ("sw", "learn", '{"name": "sw"}', 0.0, 0.0, "{}")), row_digest(values)))
        for i in range(rows):
            values = ("sw", f"{i:032x}", 0, i, json.dumps({"n": i}), json.dumps({"tv": 1e-3 * i}), "done", None, None,
                      float(i), 1.0, None, "{}")
            conn.execute("INSERT INTO sweep_rows VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (*values, row_digest(values)))
    conn.close()
    return path


def index_damaged_store() -> Path:
    """Issue 34: one byte in the key of sweep_rows's index, found by search, such that SQLite's page-level
    quick_check passes and a read through the index misses one of the 32 rows (what `sweep show` showed)."""
    path = _sweep_store(_fresh("index") / "store.sqlite")
    with sqlite3.connect(path) as conn:
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'sqlite_autoindex_sweep_rows_1'").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    good = path.read_bytes()
    for at in range((root - 1) * size + size - 1, (root - 1) * size + 100, -1):  # cell content sits at the page's end
        data = bytearray(good)
        data[at] ^= 0x01
        path.write_bytes(bytes(data))
        with contextlib.closing(sqlite3.connect(path)) as conn:
            try:
                quick = conn.execute("PRAGMA quick_check").fetchone()[0]
                seen = conn.execute("SELECT count(*) FROM sweep_rows WHERE sweep = 'sw'").fetchone()[0]
                stored = conn.execute("SELECT count(*) FROM sweep_rows NOT INDEXED").fetchone()[0]
            except sqlite3.DatabaseError:
                continue
        if quick == "ok" and seen == stored - 1:
            return path
    raise AssertionError("no single-bit flip of the index hides exactly one row")


@contextlib.contextmanager
def read_only(path: Path):
    """SQLite opens ``path`` as it opens a file this user may not write (the tests may run as root, whom chmod
    does not stop): every connection to it is read-only."""
    real = sqlite3.connect

    def connect(database, *args, **kwargs):
        if str(database) == str(path):
            kwargs.pop("uri", None)
            return real(f"file:{path}?mode=ro", *args, uri=True, **kwargs)
        return real(database, *args, **kwargs)

    sqlite3.connect = connect
    try:
        yield path
    finally:
        sqlite3.connect = real


def _read_only_store() -> Path:
    """A store in rollback-journal mode: opened read-only, SQLite refuses to switch it to WAL (as it refuses
    a WAL file whose -shm it may not create), the error the old code took for damage."""
    path = _sweep_store(_fresh("read-only") / "store.sqlite", rows=3)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode = DELETE")
    return path


def sweep_spec(name: str, grid: str) -> str:
    path = _fresh("spec") / f"{name}.toml"
    path.write_text(f'name = "{name}"\ntask = "claim:T3"\ngrid = {{ {grid} }}\n')
    return str(path)


def _spec_text(name: str, body: str) -> str:
    path = _fresh("spec") / f"{name}.toml"
    path.write_text(f'name = "{name}"\n{body}\n')
    return str(path)


def _dry_run_runs_nothing():
    """`--dry-run --allow-import-task` of a spec whose task is subprocess:call executes nothing."""
    marker = _fresh("dry-import") / "RAN"
    spec = _spec_text("imp", f'task = "subprocess:call"\ngrid = {{ args = ["touch {marker}"] }}\nfixed = {{ shell = true }}')
    assert cli("sweep", "run", spec, "--dry-run", "--allow-import-task", "--store", str(marker.parent / "s.sqlite")) == 0
    assert not marker.exists(), "the dry run executed the imported task"


def _run_into_read_only():
    store = _read_only_store()
    with read_only(store):
        return cli("sweep", "run", sweep_spec("ro", "draws = [1]"), "--store", str(store))


def _show_read_only():
    store = _read_only_store()
    with read_only(store):
        return cli("sweep", "show", "sw", "--store", str(store))


BAD = [
    # ---- logitrank serve: one line, exit 2, before the model is built ---------------------------------
    ("serve port 70000", lambda: cli("serve", "--model", "isan:3,4,2", "--port", "70000"), UsageError, r"^logitrank serve: error: --port must be <= 65535 \(a TCP port is 0 … 65535\); got 70000$"),
    ("serve bias limit inf", lambda: cli("serve", "--model", "isan:3,4,2", "--bias-limit", "inf"), UsageError, r"--bias-limit must be a finite number > 0; got inf"),
    ("serve bias limit nan", lambda: cli("serve", "--model", "isan:3,4,2", "--bias-limit", "nan"), UsageError, r"--bias-limit must be a finite number > 0; got nan"),
    ("serve isan over the size budget", lambda: cli("serve", "--model", "isan:100000,100,100", "--port", "0"), UsageError, r"--model isan:100000,100,100: model 'isan:100000,100,100': an ISAN of T·V·d·\(d\+1\) = 1.01e\+11 float64 parameters needs 753 GiB, more than the 4 GiB budget of isan: names; use a smaller V, T or d"),
    ("serve isan V 1", lambda: cli("serve", "--model", "isan:1,4,2", "--port", "0"), UsageError, r"isan:V,T,d\[,seed\] needs V in \[2, 10\^6\] and T, d in \[1, 10\^6\]; got V=1, T=4, d=2"),
    ("serve isan seed 10^23", lambda: cli("serve", "--model", "isan:3,4,2," + "1" + "0" * 23, "--port", "0"), UsageError, r"the seed must be below 2\^63 = 9223372036854775808 \(a torch seed\); got 1" + "0" * 23),
    ("serve model /etc/passwd", lambda: cli("serve", "--model", "/etc/passwd", "--port", "0"), UsageError, r"--model /etc/passwd: model '/etc/passwd' is not a model folder \(no config.json in it\)"),
    pytest.param("serve device cuda without CUDA", lambda: cli("serve", "--model", "isan:3,4,2", "--device", "cuda", "--port", "0"), UsageError, r"--device='cuda' needs CUDA, which is not available here",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")),
    ("serve device gpu", lambda: cli("serve", "--model", "isan:3,4,2", "--device", "gpu", "--port", "0"), UsageError, r"--device must name a torch device such as 'cpu', 'cuda' or 'cuda:0'; got 'gpu'"),
    ("serve bad host", lambda: cli("serve", "--model", "isan:3,4,2", "--host", "no-such-host.invalid", "--port", "0"), UsageError, r"--host 'no-such-host.invalid' does not resolve to an address \(.*\); give an address such as 127.0.0.1"),
    ("serve host of another machine", lambda: cli("serve", "--model", "isan:3,4,2", "--host", "192.0.2.1", "--port", "0"), UsageError, r"--host 192.0.2.1 --port 0: cannot listen there \(Cannot assign requested address\)"),
    ("serve max prompts 0", lambda: cli("serve", "--model", "isan:3,4,2", "--max-prompts", "0"), UsageError, r"--max-prompts must be >= 1; got 0"),
    # ---- the server: the OpenAI error object for every refusal, limits, decimal logit_bias keys --------
    ("server empty body", lambda: post(content=b"", headers={"content-type": "application/json"}), Refused, r"^400 invalid_request_error: request body is empty; send a JSON object"),
    ("server text/plain JSON", lambda: post(content=b'{"model": "isan", "prompt": [1]}', headers={"content-type": "text/plain"}), Refused, r"^400 invalid_request_error: Content-Type must be application/json; got 'text/plain'"),
    ("server non-UTF-8 body", lambda: post(content=b'{"model": "\xff\xfe"}', headers={"content-type": "application/json"}), Refused, r"^400 invalid_request_error: request body is not UTF-8 \(undecodable byte at offset 11\)"),
    ("server 100k-deep JSON", _deep_json, Refused, r"^400 invalid_request_error: request body nests JSON deeper than this server reads; send a flat completion request$"),
    ("server invalid JSON", lambda: post(content=b'{"model": ', headers={"content-type": "application/json"}), Refused, r"^400 invalid_request_error: request body is not valid JSON: Expecting value: line 1 column 11"),
    ("server chat completions route", lambda: post("/chat/completions", body={"model": "isan"}), Refused, r"^404 invalid_request_error: Invalid URL \(POST /v1/chat/completions\): this server serves GET /v1/models, GET /v1/models/\{model\} and POST /v1/completions"),
    ("server POST to the models route", lambda: post("/models", body={}), Refused, r"^405 invalid_request_error: Method not allowed \(POST /v1/models\): this server serves"),
    ("server body over the limit", lambda: completion(prompt=[[1]] * 3, user="x" * 5000), Refused, r"^413 invalid_request_error: request body of \d+ bytes is larger than this server's limit of 4096 bytes \(max_body_bytes\)"),
    ("server too many prompts", lambda: completion(prompt=[[1]] * 5), Refused, r"^400 invalid_request_error: prompt holds 5 prompts; this server takes at most 4 per request \(max_prompts\): split the batch"),
    ("server prompt over max_prompt_tokens", lambda: completion(prompt=[1, 2, 3]), Refused, r"^400 invalid_request_error: prompt has 3 tokens; this server takes prompts of at most 2 tokens \(max_prompt_tokens\)"),
    ("server logit_bias key 0_7", lambda: completion(logit_bias={"0_7": 5}), Refused, r"^400 invalid_request_error: logit_bias keys must be decimal token ids such as \"7\"; got '0_7'"),  # silent before (biased token 7)
    ("server logit_bias keys 7 and 07", lambda: completion(logit_bias={"7": 5, "07": -5}), Refused, r"^400 invalid_request_error: logit_bias names token id 7 twice \('7' and '07'\); name each token once"),  # silent before
    ("server logit_bias key +3", lambda: completion(logit_bias={"+3": 5}), Refused, r"logit_bias keys must be decimal token ids such as \"7\"; got '\+3'"),  # silent before
    ("server logit_bias key with spaces", lambda: completion(logit_bias={" 3": 5}), Refused, r"logit_bias keys must be decimal token ids such as \"7\"; got ' 3'"),  # silent before
    ("server logit_bias key repeated in JSON", lambda: _raw_bias('{"3": 5, "3": -5}'), Refused, r"^400 invalid_request_error: request body names the key '3' twice in one object; name each key once"),  # silent before
    # ---- the API client ------------------------------------------------------------------------------
    ("api base url without /v1", lambda: APIModel(url("isan")[: -len("/v1")], "isan", k=3), ValueError, r"the server has no model card: GET http://127.0.0.1:\d+/models gave HTTP 404 \(Invalid URL \(GET /models\).*\); is base_url missing /v1 \(e.g. http://127.0.0.1:\d+/v1\)\? Otherwise pass vocab_size="),
    ("api 400 with a text body", lambda: APIModel(url("text-400"), "m", k=2), RequestRefusedError, r"refused the completion request \(prompt of 1 tokens, logprobs=2, 0 biased tokens\) with HTTP 400: body 'prompt too long for this deployment'"),
    ("api stale cache of another model", stale_cache, APICacheError, r"answer cache '.*stale-[^/]*' \(scope 'isan@8000'\) holds answers of another served model: after the prompt \[0\] .*; the server now serves another model under this URL and name. Use another cache_dir or cache_scope"),  # silent before
    ("api server exact only on the probe prompt", exact_only_on_probe, InconsistentServerError, r"failed a spot check \(one in 100 paid answers is asked again\): the request (repeated|re-biased \(1 token moved\)) \(prompt \[.*\], logprobs=\d\) answered .* away from the first answer, more than"),  # silent before
    ("api damaged fingerprint file", damaged_fingerprint, APICacheError, r"its fingerprint file served-model-[0-9a-f]{16}.fingerprint is damaged \(not a fingerprint of this scope\)"),
    ("api spot_check_rate 2", lambda: APIModel("http://127.0.0.1:1/v1", "m", spot_check_rate=2.0), ValueError, r"spot_check_rate must lie in \[0.0, 1.0\]; got 2.0"),
    # ---- logitrank spectrum on Dask -----------------------------------------------------------------------
    ("spectrum scheduler junk", lambda: cli("spectrum", "--backend", "dask", "--scheduler", "junk"), UsageError, r"--scheduler 'junk': expected tcp://HOST:PORT with a port in 1 … 65535"),
    ("spectrum scheduler http", lambda: cli("spectrum", "--backend", "dask", "--scheduler", "http://127.0.0.1:8786"), UsageError, r"--scheduler 'http://127.0.0.1:8786': http:// is not a Dask address scheme \(tcp, tls, inproc, ucx, ws, wss\)"),
    ("spectrum scheduler junk endpoint", lambda: cli("spectrum", "--backend", "dask", "--scheduler", f"tcp://127.0.0.1:{_web_port()}", "--out", str(_fresh("junk-endpoint"))), UsageError, r"--scheduler 'tcp://127.0.0.1:\d+': the endpoint accepted a connection but sent no Dask handshake within 5 s; it is not a Dask scheduler"),
    ("spectrum scheduler without dask", lambda: cli("spectrum", "--scheduler", "tcp://127.0.0.1:8786"), UsageError, r"--scheduler applies to --backend dask only; got --backend local"),
    ("spectrum isan model", lambda: cli("spectrum", "--model", "isan:5,6,3", "--scale", "quick", "--out", str(_fresh("isan-spectrum"))), UsageError, r"--model 'isan:5,6,3' has no tokenizer \(encode\), and the spectrum is read on text cut from --corpus"),
    ("spectrum truncated checkpoint record", lambda: _spectrum_again(_truncate_record), UsageError, r"--out '.*': checkpoint record .*record.json (is not readable JSON|does not verify).*; delete the folder"),
    ("spectrum flipped checkpoint byte", lambda: _spectrum_again(_flip_data_byte), UsageError, r"--out '.*': checkpoint data .*gram-\d+.npy (does not verify|is not readable).*; delete the folder"),
    ("distributed_gram edited done list", edited_done_list, CheckpointError, r"checkpoint record .*record.json does not verify \(its content does not match its record_sha256: edited, truncated or written by an older version\)"),  # silent before
    ("distributed_gram data outside the folder", _outside, CheckpointError, r"checkpoint record .*record.json does not verify"),  # silent before (and the file deleted)
    # ---- the stores ------------------------------------------------------------------------------------
    ("sweep store one byte of the index", lambda: load(index_damaged_store(), "sw"), SweepStoreError, r"the results database '.*store.sqlite' is damaged: SQLite's integrity check reports '.*'.* Move it aside and rerun into a fresh --store"),  # silent before
    ("sweep show one byte of the index", lambda: cli("sweep", "show", "sw", "--store", str(index_damaged_store())), UsageError, r"is damaged: SQLite's integrity check reports"),  # silent before
    ("sweep run store in an unwritable folder", lambda: cli("sweep", "run", sweep_spec("proc", "draws = [1]"), "--store", "/proc/logitrank-round3.sqlite"), UsageError, r"the results database '/proc/logitrank-round3.sqlite' cannot be created or opened for writing \(unable to open database file\): the folder '/proc' is not writable here"),
    ("sweep run store under a file", lambda: cli("sweep", "run", sweep_spec("under", "draws = [1]"), "--store", str(Path(sweep_spec("file", "draws = [1]")) / "store.sqlite")), UsageError, r"cannot be created: it lies under '.*file.toml', which is a file, not a folder"),
    ("sweep run into a read-only store", _run_into_read_only, UsageError, r"the results database '.*store.sqlite' is read-only here \(sqlite: attempt to write a readonly database\): it can be shown but not written"),
    # ---- vacuous settings: refused before any work -------------------------------------------------------
    ("check T3 draws 0", lambda: cli("check", "T3", "--set", "draws=0", "--json", str(TMP / "c" / "checks.json")), UsageError, r"claim T3: setting draws must be >= 1; got 0"),  # silent before
    ("check T3 draws -5", lambda: cli("check", "T3", "--set", "draws=-5", "--json", str(TMP / "c" / "checks.json")), UsageError, r"claim T3: setting draws must be >= 1; got -5"),  # silent before
    ("check T1 sizes []", lambda: cli("check", "T1", "--set", "sizes=[]", "--json", str(TMP / "c" / "checks.json")), UsageError, r"claim T1: setting sizes must hold at least 1 item; got \[\]"),
    ("check T1 sizes [[2,6]]", lambda: cli("check", "T1", "--set", "sizes=[[2,6]]", "--json", str(TMP / "c" / "checks.json")), UsageError, r"claim T1: setting sizes must be a list of records of 3 values each, like \[\[2, 6, 3\], \[3, 5, 4\]\]; got \[\[2, 6\]\]"),
    ("check T13 pairs 0", lambda: cli("check", "T13", "--set", "pairs=0", "--json", str(TMP / "c" / "checks.json")), UsageError, r"claim T13: setting pairs must be >= 1; got 0"),
    ("check T12 F_sizes [0]", lambda: cli("check", "T12", "--set", "F_sizes=[0, 10]", "--json", str(TMP / "c" / "checks.json")), UsageError, r"claim T12: setting F_sizes must be >= 1 \(every number in it\); got \[0, 10\]"),
    ("check E1 n 0", lambda: cli("check", "E1", "--set", "n=0", "--json", str(TMP / "c" / "checks.json")), UsageError, r"claim E1: setting n must be >= 1; got 0"),
    ("sweep claim:T3 draws [0]", lambda: cli("sweep", "run", sweep_spec("t3-zero", "draws = [0]"), "--store", str(_fresh("t3-zero") / "s.sqlite")), UsageError, r"setting draws must be >= 1; got 0"),  # silent before
    ("sweep dry-run claim:E1 n [-1, 32]", lambda: cli("sweep", "run", _spec_text("dry", 'task = "claim:E1"\ngrid = { n = [-1, 32] }'), "--dry-run", "--store", str(_fresh("dry") / "s.sqlite")), UsageError, r"sweep 'dry', cell 1 of 2 \(n=-1\): setting n must be >= 1; got -1"),  # silent before
]


def _name(row) -> str:
    return row.values[0] if hasattr(row, "values") else row[0]


def test_table_is_unique_and_covers_the_issue():
    names = [_name(b) for b in BAD]
    assert len(set(names)) == len(names) == 56


@pytest.mark.parametrize(("name", "call", "exc", "match"), BAD, ids=[_name(b) for b in BAD])
def test_bad_call_raises_a_clear_error(name, call, exc, match):
    with pytest.raises(exc, match=match) as info:
        call()
    assert "\n" not in str(info.value), "one line"


GOOD = [
    ("server 256 prompts at the default limit", lambda: _default_limits_batch(256)),
    ("server logit_bias 07 alone", lambda: completion(logit_bias={"07": 5})),
    ("spectrum rerun into the same out with another k", lambda: _spectrum_again(lambda out: None, "--k", "6") == 0 or 1 / 0),
    ("spectrum rerun into the same out resumes", lambda: _spectrum_again(lambda out: None) == 0 or 1 / 0),
    ("sweep show a read-only store", lambda: _show_read_only() == 0 or 1 / 0),
    ("sweep open a 10^5-row store", lambda: _large_store_opens()),
    ("sweep dry-run of an imported task runs nothing", _dry_run_runs_nothing),
]


def _default_limits_batch(n: int):
    app = serve_app(synth.random_isan(5, 6, 3, generator=0), name="isan")
    with running_server(app) as base:
        answer = post(body={"model": "isan", "prompt": [[1]] * n, "max_tokens": 1}, base=base)
    assert len(answer["choices"]) == n


def _large_store_opens():
    """A 10^5-row store opens in well under a second, its integrity check included (~0.2 s measured)."""
    path = _sweep_store(_fresh("large") / "store.sqlite", rows=100_000)
    start = time.perf_counter()
    open_store(path, create=False).close()
    assert time.perf_counter() - start < 5.0


@pytest.mark.parametrize(("name", "call"), GOOD, ids=[g[0] for g in GOOD])
def test_valid_calls_are_accepted(name, call):
    call()


# -- the silent cases: what each did before issue 34, and that it cannot happen now -------------------------
def test_a_stale_cache_of_another_served_model_is_refused_not_answered():
    """Before: the second client returned the first ISAN's logits from the cache (TV 0.54 to what is served)
    with 0 paid calls. Now the fingerprint of what is served is compared and the cache refused."""
    with pytest.raises(APICacheError, match="holds answers of another served model"):
        stale_cache()
    # and a cache of the same model is still used: nothing paid for the answers again
    folder = _fresh("same-model")
    P = torch.randint(0, 5, (6, 3), generator=torch.Generator().manual_seed(1))
    with APIModel(url("seed0"), "isan", k=3, cache_dir=folder) as first:
        want = first.logits(P)
    with APIModel(url("seed0"), "isan", k=3, cache_dir=folder) as again:  # exact: the cached answers are read back
        assert torch.equal(again.logits(P), want) and again.calls == again.probe_calls


def test_a_server_exact_only_on_the_probe_prompt_is_caught_by_spot_checks():
    """Before: the probe passed and 625 prompts came back off by ~0.1 against a bound of 4e-5, silently."""
    truth = synth.random_isan(5, 6, 3, generator=0)
    with APIModel(url("exact-only-on-probe"), "isan", k=3, spot_check_rate=0.0) as blind:
        got = blind.logits([[1, 2]])  # with the spot checks off: the old behaviour, a silent error
        assert (got - truth.logits([[1, 2]])).abs().max() > 1e3 * blind.error_bound()
    with pytest.raises(InconsistentServerError, match="failed a spot check"):
        exact_only_on_probe()
    with APIModel(url("seed0"), "isan", k=3, spot_check_rate=1.0) as honest:  # an honest server passes every check
        assert (honest.logits([[1, 2], [3, 4]]) - truth.logits([[1, 2], [3, 4]])).abs().max() <= honest.error_bound()
        assert honest.spot_checks == honest.calls - honest.probe_calls > 0


def test_logit_bias_keys_are_decimal_and_named_once():
    """Before: "0_7" biased token 7 (Python's int accepts underscores; the issue's "1_0" biased token 10) and of
    "7" and "07" the last won."""
    plain = completion(logprobs=5)["choices"][0]["logprobs"]["top_logprobs"][0]
    with pytest.raises(Refused, match="decimal token ids"):
        completion(logprobs=5, logit_bias={"0_7": 5})
    with pytest.raises(Refused, match="twice"):
        completion(logprobs=5, logit_bias={"7": 5, "07": -5})
    assert completion(logprobs=5, logit_bias={"7": 0})["choices"][0]["logprobs"]["top_logprobs"][0] == plain


def test_an_edited_dask_record_is_refused_and_nothing_outside_is_deleted():
    """Before: an edited `done` list resumed to a sum missing a slice (σ off by 7.3% in the issue), and a
    `data` entry naming a file outside the folder was read and then deleted."""
    with pytest.raises(CheckpointError, match="does not verify"):
        edited_done_list()
    victim, call = data_outside_the_folder()
    with pytest.raises(CheckpointError):
        call()
    assert victim.exists()


def test_one_byte_in_the_sweep_index_is_refused():
    """Before: SQLite's quick_check passed and `sweep show` listed 31 of 32 rows."""
    path = index_damaged_store()
    with pytest.raises(SweepStoreError, match="is damaged: SQLite's integrity check reports"):
        load(path, "sw")


def test_vacuous_settings_are_refused_and_a_check_that_judged_nothing_is_not_judged(tmp_path):
    """Before: `--set draws=0` gave T3 *holds* with max TV 0 over no models; a grid whose every size T3 skips
    (V**T > 2**16) did too. Now the first is refused before work and the second is *not-run*, 'not judged'."""
    with pytest.raises(UsageError, match="draws must be >= 1"):
        cli("check", "T3", "--set", "draws=0", "--json", str(tmp_path / "checks.json"))
    result = run_check("T3", CheckConfig(out_dir=str(tmp_path), overrides={"sizes": [(9, 9, 2)]}))
    assert result.verdict == "not-run" and result.reason.startswith("not judged: the check judged no instances")


_KILLED_RUN = """
import os, sys
from logitrank.verify.claims._check_api import CheckConfig
from logitrank.verify.claims._claim_store import ClaimStore
store = ClaimStore(sys.argv[1])
store.start_run(CheckConfig(), ["T3"])
os._exit(0)  # as kill -9 leaves it: the run record never finished
"""


def test_a_run_whose_process_is_gone_is_shown_interrupted(tmp_path):
    """Before: `runs` showed a run killed with kill -9 as "running" forever."""
    from logitrank.verify.claims._claim_store import ClaimStore

    path = str(tmp_path / "logitrank.sqlite")
    subprocess.run([sys.executable, "-c", _KILLED_RUN, path], check=True, timeout=120)
    store = ClaimStore(path)
    try:
        assert [r["status"] for r in store.runs()] == ["interrupted"]  # shown so at once
        (row,) = store.conn.execute("SELECT status FROM claim_runs").fetchall()
        assert row[0] == "running"  # … and recorded so by the next run:
        store.start_run(CheckConfig(out_dir=str(tmp_path)), ["T3"])
        assert [r["status"] for r in store.runs()] == ["interrupted", "running"]  # this process is alive
        assert store.damaged() == []  # the marked record carries a fresh digest
    finally:
        store.close()


def test_one_huge_request_does_not_starve_the_others():
    """The model is taken one prompt at a time, first come first served: a request of one prompt sent while
    a 256-prompt request runs is answered long before the big one ends. (A guard, not a silent case: the
    old per-prompt lock happened to let it through too; what held the old server was a 3,000-prompt batch,
    now refused above max_prompts, and a 60 MB body parsed whole, now refused above max_body_bytes.)"""

    class Slow:
        vocab_size, horizon = 5, 6

        def __init__(self):
            self.model = synth.random_isan(5, 6, 3, generator=0)

        def logits(self, prefixes):
            end = time.perf_counter() + 0.01
            while time.perf_counter() < end:  # 10 ms of work holding the GIL, as a forward pass may
                pass
            return self.model.logits(prefixes)

    prompts = [list(p) for p in synth.all_sequences(5, 4)[:256].tolist()]
    with running_server(serve_app(Slow(), name="slow", cache_size=0)) as base:
        done = {}

        def big():
            post(body={"model": "slow", "prompt": prompts, "max_tokens": 1}, base=base)
            done["big"] = time.perf_counter()

        thread = threading.Thread(target=big)
        thread.start()
        time.sleep(0.3)  # the big request holds the model by now
        post(body={"model": "slow", "prompt": [1], "max_tokens": 1}, base=base)
        small = time.perf_counter()
        thread.join()
    assert small < done["big"] - 1.0, (small, done["big"])  # 256 × 10 ms: about 2 s after the small one
