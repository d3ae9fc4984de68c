"""vLLM's dialect against our server and client: one start-token (BOS) convention, every field the
server does not implement refused with a 400 naming it, ``GET /health``, and client errors naming vLLM's flags."""

import json
import urllib.error
import urllib.request

import pytest
import torch

pytest.importorskip("openai")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from logitrank.synth import random_isan
from logitrank.verify.models import APIModel, APISettings, RequestRefusedError, running_server, serve_app
from logitrank.verify.models.served._transport import _refusal_hint, resolve_bos

V, T, D = 5, 6, 3
#: no request but the reading's: no probe, no spot checks, no fingerprint (no disk cache), no logprob_token_ids probe
NO_PROBE = {"check_server": False, "spot_check_rate": 0.0, "cache_dir": None, "method": "exact"}


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "EMPTY")


@pytest.fixture(scope="module")
def isan():
    return random_isan(V, T, D, generator=0)


def _http(address: str, body: dict | None = None) -> tuple[int, dict | None]:
    """(status, JSON body or None) of a GET, or of a POST of ``body`` (the standard library's client)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(address, data=data, headers={"Content-Type": "application/json"},
                                     method="GET" if body is None else "POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        status, text = err.code, err.read().decode()
    return status, json.loads(text) if text else None


class _WithStart:
    """The ISAN with a start-token id on it, as the causal LMs of logitrank.verify.models carry."""

    def __init__(self, model, bos_token_id):
        self.model, self.bos_token_id = model, bos_token_id
        self.vocab_size, self.horizon = model.vocab_size, model.horizon

    def logits(self, prefixes):
        return self.model.logits(prefixes)


def _recording(app) -> list[dict]:
    """Every completion body the server received (engine.complete is looked up per request)."""
    engine, bodies = app.state.engine, []
    complete = engine.complete

    def record(body):
        bodies.append(body)
        return complete(body)

    engine.complete = record
    return bodies


def _rows(bodies: list[dict]) -> list[tuple]:
    """Every prompt sent, one per row (a batched request sends a list of prompts)."""
    rows = []
    for b in bodies:
        p = b["prompt"]
        rows += [tuple(r) for r in p] if p and isinstance(p[0], list) else [tuple(p)]
    return rows


def _vllm_card(app, *, extra=None) -> None:
    """Make the server's model card say nothing about BOS (as vLLM's), or say ``extra``."""
    engine = app.state.engine
    card = engine.card

    def bare(name=None):
        out = {k: v for k, v in card(name).items() if k not in ("adds_bos", "bos_token_id", "top_logprobs_limit")}
        return {**out, **(extra or {})}

    engine.card = bare


@pytest.fixture
def ours(isan):
    app = serve_app(isan, name="isan")
    with running_server(app) as url:
        yield app, url


@pytest.fixture
def vllm_like(isan):
    app = serve_app(isan, name="isan", top_logprobs_limit=3)
    _vllm_card(app)
    with running_server(app) as url:
        yield app, url


# -- 1. one BOS convention ---------------------------------------------------------------------------
def test_the_card_advertises_the_start_token_and_that_the_server_adds_it(isan):
    for model, bos in ((isan, None), (_WithStart(isan, 4), 4)):
        with running_server(serve_app(model, name="m")) as url:
            card = _http(f"{url}/models/m")[1]
            listed = _http(f"{url}/models")[1]["data"][0]
        assert (card["bos_token_id"], card["adds_bos"]) == (bos, True)
        assert (listed["bos_token_id"], listed["adds_bos"]) == (bos, True)


def test_the_default_against_our_server_sends_prompts_as_they_are(ours, isan):
    app, url = ours
    bodies = _recording(app)
    P = torch.tensor([[1, 2], [3, 0]])
    with APIModel(url, "isan", k=3, **NO_PROBE) as m:
        got = m.logits(P)
    assert set(_rows(bodies)) == {(1, 2), (3, 0)}
    assert len(bodies) == 2 and all(len(b["prompt"]) == 2 for b in bodies)  # ⌈4/2⌉ requests, both prompts in each
    want = isan.logits(P).double()
    assert torch.allclose(got - got.mean(-1, keepdim=True), want - want.mean(-1, keepdim=True), atol=1e-4)


def test_the_default_against_a_card_without_adds_bos_raises_the_bos_error(vllm_like):
    _, url = vllm_like
    with pytest.raises(ValueError, match=r"bos='server'.*says nothing about a start token.*vLLM adds no start token "
                                         r"\(BOS\) to token-id prompts.*bos=<start token id> \(SmolLM2: 0\).*bos=None"):
        APIModel(url, "isan", k=3, vocab_size=V)


@pytest.mark.parametrize("bos", [0, 2, 4])
def test_bos_id_makes_the_client_prepend_it(vllm_like, isan, bos):
    app, url = vllm_like
    bodies = _recording(app)
    P = torch.tensor([[1, 2], [3, 0], [4, 4]])
    with APIModel(url, "isan", k=3, bos=bos, check_server=True) as m:
        got = m.logits(P)
        assert m._transport.max_prompt == T - 2  # the start token takes one place
    assert bodies and all(row[0] == bos for row in _rows(bodies))  # the probes' too
    assert set(_rows(bodies)) >= {(bos, 1, 2), (bos, 3, 0), (bos, 4, 4)}
    want = isan.logits(torch.cat([torch.full((3, 1), bos), P], dim=1)).double()
    assert torch.allclose(got - got.mean(-1, keepdim=True), want - want.mean(-1, keepdim=True), atol=1e-4)


def test_bos_none_sends_prompts_as_they_are(vllm_like):
    app, url = vllm_like
    bodies = _recording(app)
    with APIModel(url, "isan", k=3, bos=None, **NO_PROBE) as m:
        m.logits(torch.tensor([[1, 2]]))
    assert bodies and set(_rows(bodies)) == {(1, 2)}


def test_bos_id_against_a_server_that_adds_one_is_refused_not_doubled(ours):
    _, url = ours
    with pytest.raises(ValueError, match=r"bos=0 asks the client to prepend a start token, but the model card .* says "
                                         r"adds_bos=true .*would be doubled; pass bos='server'"):
        APIModel(url, "isan", k=3, bos=0)


def test_a_card_that_says_adds_bos_false_is_not_trusted(isan):
    app = serve_app(isan, name="isan")
    _vllm_card(app, extra={"adds_bos": False, "bos_token_id": 0})
    with running_server(app) as url:
        with pytest.raises(ValueError, match=r"says adds_bos=false"):
            APIModel(url, "isan", k=3, vocab_size=V)
        with APIModel(url, "isan", k=3, bos=0, **NO_PROBE) as m:
            assert m._transport.bos == 0


@pytest.mark.parametrize("bos", [-1, 1.5, True, "client", "", [0]])
def test_bad_bos_values_are_refused(bos):
    with pytest.raises(ValueError, match=rf"bos must be 'server' .*, a start-token id \(an int >= 0.*or None .*; got "
                                         rf"{__import__('re').escape(repr(bos))}"):
        APISettings(base_url="http://127.0.0.1:1/v1", model="m", bos=bos)


def test_resolve_bos_without_a_card():
    assert resolve_bos(7, None, "u") == (7, None)
    bos, error = resolve_bos("server", None, "u", "GET u/models gave HTTP 404")
    assert bos is None and "has no model card (GET u/models gave HTTP 404)" in error


# -- 2. the server speaks vLLM's dialect or refuses ------------------------------------------------------
REFUSED = [("temperature", 0.7), ("seed", 0), ("top_p", 0.9), ("presence_penalty", 0.5), ("frequency_penalty", -1),
           ("repetition_penalty", 1.2), ("prompt_logprobs", 1), ("logprob_token_ids", list(range(129))),
           ("logprob_token_ids", [9]), ("logprob_token_ids", "1"), ("logprob_token_ids", [True]), ("stream", True),
           ("echo", True), ("n", 2), ("best_of", 2), ("max_tokens", 2), ("stop", ["\n"]), ("suffix", "x"),
           ("return_tokens_as_token_ids", False), ("guided_json", {}), ("frobnicate", 1)]
NEUTRAL = [("temperature", 0), ("temperature", 0.0), ("temperature", None), ("top_p", 1), ("top_p", 1.0),
           ("seed", None), ("presence_penalty", 0), ("frequency_penalty", 0.0), ("repetition_penalty", 1.0),
           ("n", 1), ("best_of", 1), ("stream", False), ("echo", False), ("stop", None), ("stop", []),
           ("return_tokens_as_token_ids", True), ("user", "me"), ("max_tokens", 1), ("prompt_logprobs", None),
           ("logprob_token_ids", None), ("logprob_token_ids", []), ("logprob_token_ids", [1]),
           ("logprob_token_ids", [4, 0, 4])]


def _post(url, **fields):
    body = {"model": "isan", "prompt": [1, 2], "max_tokens": 1, "logprobs": 2, **fields}
    return _http(f"{url}/completions", body)


@pytest.mark.parametrize("field, value", REFUSED)
def test_every_field_not_implemented_is_refused_naming_it(ours, field, value):
    status, answer = _post(ours[1], **{field: value})
    assert status == 400, answer
    error = answer["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == field and field in error["message"]


@pytest.mark.parametrize("field, value", NEUTRAL)
def test_neutral_values_are_accepted(ours, field, value):
    status, answer = _post(ours[1], **{field: value})
    assert status == 200, answer


def test_what_the_openai_client_sends_is_accepted(ours):
    import openai

    client = openai.OpenAI(api_key="EMPTY", base_url=ours[1], max_retries=0)
    plain = client.completions.create(model="isan", prompt=[1, 2])
    ours_too = client.completions.create(model="isan", prompt=[1, 2], max_tokens=1, logprobs=2, temperature=0,
                                         logit_bias={"1": 3.0}, extra_body={"return_tokens_as_token_ids": True})
    assert plain.choices and ours_too.choices[0].logprobs.top_logprobs


def test_health_is_200_without_a_key(isan):
    with running_server(serve_app(isan, name="isan", api_key="sesame")) as url:
        root = url[: -len("/v1")]
        assert _http(f"{root}/health") == (200, None)
        assert _http(f"{url}/models")[0] == 401


# -- 3. client errors naming vLLM's flags ---------------------------------------------------------------
def test_the_client_asks_for_token_ids_in_every_request(ours):
    app, url = ours
    bodies = _recording(app)
    with APIModel(url, "isan", k=3) as m:
        m.logits(torch.tensor([[1]]))
    assert bodies and all(b.get("return_tokens_as_token_ids") is True for b in bodies)


def test_logprobs_above_the_server_limit_name_the_vllm_flag(vllm_like):
    _, url = vllm_like
    with pytest.raises(RequestRefusedError, match=r"logprobs must be <= 3 .*; pass k<=3 or start vLLM with "
                                                  r"--max-logprobs 5"):
        APIModel(url, "isan", k=5, bos=None)


def test_the_hint_reads_vllms_words():
    vllm = "Requested sample logprobs of 21, which is greater than max allowed: 20 (parameter=logprobs, value=21)"
    assert _refusal_hint(vllm, 21) == "; pass k<=20 or start vLLM with --max-logprobs 21"
    assert _refusal_hint("prompt too long", 21) == ""
