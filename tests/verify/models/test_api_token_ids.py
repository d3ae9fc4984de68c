"""Issue 33, items 4 and 5: vLLM's ``logprob_token_ids`` on our server and in the client, prompts batched into
one request, and the answer cache on by default (under a temporary results folder here, never the repository)."""

import math
import re

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

openai = pytest.importorskip("openai")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from logitrank.synth import random_isan
from logitrank.verify.models import (
    APICacheError,
    APIModel,
    InconsistentServerError,
    RecoveryError,
    RequestRefusedError,
    ServerFaults,
    running_server,
    serve_app,
)
from logitrank.verify.models.served._cache import CACHE_ENV
from logitrank.verify.models.served._recover import token_id_chunks, token_id_logprobs

V, T, D = 5, 6, 3
EXACT = 1e-12  # the local server computes in float64: logprob_error for the ISANs
QUIET = {"check_server": False, "spot_check_rate": 0.0, "cache_dir": None}  # no request but the reading's


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "EMPTY")


@pytest.fixture(scope="module")
def isan():
    return random_isan(V, T, D, generator=0)


@pytest.fixture(scope="module")
def served(isan):
    app = serve_app(isan, name="isan", top_logprobs_limit=3)
    with running_server(app) as url:
        yield app, url, openai.OpenAI(api_key="EMPTY", base_url=url, max_retries=0)


@pytest.fixture(scope="module")
def wide():
    """An ISAN with V = 300 (three token-id requests at 128 per request)."""
    return random_isan(300, 5, 4, generator=3)


@pytest.fixture(scope="module")
def wide_url(wide):
    with running_server(serve_app(wide, name="wide")) as url:
        yield url


def _ids(top: dict) -> dict[int, float]:
    return {int(name.split(":")[1]): lp for name, lp in top.items()}


def _centred(x: torch.Tensor) -> torch.Tensor:
    x = x.double()
    return x - x.mean(dim=-1, keepdim=True)


# -- the server answers logprob_token_ids as vLLM 0.32 does ---------------------------------------------
def test_the_completions_token_comes_first_then_the_ids_named_in_order(served, isan):
    _, _, client = served
    prompt, bias = [0, 3], {2: 4.0}
    r = client.completions.create(model="isan", prompt=prompt, max_tokens=1, logprobs=1, logit_bias={"2": 4.0},
                                  extra_body={"logprob_token_ids": [4, 0, 4, 1]})
    shifted = isan.logits(torch.tensor([prompt]))[0].double()
    shifted[2] += bias[2]
    want = torch.log_softmax(shifted, dim=0)  # after the bias, as vLLM's processed_logprobs
    top = _ids(r.choices[0].logprobs.top_logprobs[0])
    chosen = int(want.argmax())
    assert list(top) == list(dict.fromkeys([chosen, 4, 0, 1]))  # a repeated id once
    assert max(abs(lp - want[t].item()) for t, lp in top.items()) < 1e-12
    assert r.choices[0].text == f"token_id:{chosen}" and r.usage.total_tokens == len(prompt) + 1


def test_logprobs_must_be_set_but_is_not_bounded_by_the_top_k_limit(served):
    """vLLM replaces the top-k by the ids named: ``logprobs`` must be given (any value), its limit does not apply."""
    _, _, client = served
    r = client.completions.create(model="isan", prompt=[1], max_tokens=1, logprobs=7,
                                  extra_body={"logprob_token_ids": [0, 1, 2, 3, 4]})
    assert set(_ids(r.choices[0].logprobs.top_logprobs[0])) == {0, 1, 2, 3, 4}
    with pytest.raises(openai.BadRequestError, match=r"logprobs must be <= 3 \(this server's top_logprobs_limit\); "
                                                     r"got 7"):
        client.completions.create(model="isan", prompt=[1], max_tokens=1, logprobs=7)
    with pytest.raises(openai.BadRequestError, match=r"when using `logprob_token_ids`, `logprobs` must be set"):
        client.completions.create(model="isan", prompt=[1], max_tokens=1, extra_body={"logprob_token_ids": [1]})


def test_more_than_128_ids_are_refused_with_vllms_words(served, isan):
    """The 400 names the field, the length asked and the limit (vLLM: 'Requested logprob_token_ids of length
    129, which is greater than max allowed: 128'); 128 ids are accepted."""
    _, _, client = served
    big = random_isan(200, 3, 2, generator=1)
    with running_server(serve_app(big, name="big")) as big_url:
        c = openai.OpenAI(api_key="EMPTY", base_url=big_url, max_retries=0)
        ok = c.completions.create(model="big", prompt=[1], max_tokens=1, logprobs=1,
                                  extra_body={"logprob_token_ids": list(range(128))})
        assert set(range(128)) <= set(_ids(ok.choices[0].logprobs.top_logprobs[0]))
        with pytest.raises(openai.BadRequestError) as err:
            c.completions.create(model="big", prompt=[1], max_tokens=1, logprobs=1,
                                 extra_body={"logprob_token_ids": list(range(129))})
    error = err.value.body if isinstance(err.value.body, dict) and "message" in err.value.body else err.value.body["error"]
    assert error["param"] == "logprob_token_ids" and error["code"] == "too_many_token_ids"
    assert error["message"].startswith("Requested logprob_token_ids of length 129, which is greater than max "
                                       "allowed: 128")
    with pytest.raises(openai.BadRequestError, match=r"token_id\(s\) \[5, 9\] in logprob_token_ids contain "
                                                     r"out-of-vocab token ids. Vocabulary size: 5"):
        client.completions.create(model="isan", prompt=[1], max_tokens=1, logprobs=1,
                                  extra_body={"logprob_token_ids": [0, 5, 9]})
    assert client.models.retrieve("isan").model_dump()["logprob_token_ids_limit"] == 128


def test_a_batch_is_answered_in_index_order_each_as_alone(served):
    _, _, client = served
    prompts = [[1, 2], [], [4, 4, 4], [0]]
    for extra in ({}, {"logprob_token_ids": [3, 1]}):
        batch = client.completions.create(model="isan", prompt=prompts, max_tokens=1, logprobs=2, logit_bias={"3": 2},
                                          extra_body=extra)
        assert [c.index for c in batch.choices] == [0, 1, 2, 3]
        assert batch.usage.prompt_tokens == 6 and batch.usage.completion_tokens == 4
        for choice, prompt in zip(batch.choices, prompts):
            alone = client.completions.create(model="isan", prompt=prompt, max_tokens=1, logprobs=2,
                                              logit_bias={"3": 2}, extra_body=extra)
            assert choice.logprobs.top_logprobs == alone.choices[0].logprobs.top_logprobs


# -- the client reads by token ids: the same logits as the exact method, in fewer calls -------------------
def test_token_id_chunks_and_their_reading():
    assert token_id_chunks(range(300), 128) == [tuple(range(128)), tuple(range(128, 256)), tuple(range(256, 300))]
    with pytest.raises(RecoveryError, match=r"token 9 was asked in logprob_token_ids but did not come back "
                                            r"\(prompt \[1, 2\]; 1 of 2 ids missing\)"):
        token_id_logprobs([3, 9], [(3, 9)], [{3: -1.0}], prompt=(1, 2))
    with pytest.raises(RecoveryError, match=r"token 3 came back with log-probability -9999 .*stand-in for -inf"):
        token_id_logprobs([3, 9], [(3, 9)], [{3: -9999.0, 9: -1.0}])


@given(rows=st.lists(st.lists(st.integers(0, 299), min_size=0, max_size=4), min_size=1, max_size=6),
       m=st.integers(1, 300), size=st.integers(1, 128), batch=st.integers(1, 8), seed=st.integers(0, 2**16))
def test_token_ids_read_what_the_exact_method_reads(wide_url, wide, rows, m, size, batch, seed):
    """Property: on random prompts (any lengths, repeats), columns, chunk sizes and batch sizes, the token-id
    reading equals the exact one and the model within their bounds (2δ and 4δ)."""
    cols = np.random.default_rng(seed).permutation(300)[:m].tolist()
    by_length = {}
    for row in rows:
        by_length.setdefault(len(row), []).append(row)
    with APIModel(wide_url, "wide", k=20, logprob_error=EXACT, token_ids_limit=size, batch_prompts=batch,
                  **QUIET) as fast, APIModel(wide_url, "wide", k=20, logprob_error=EXACT, method="exact",
                                            **QUIET) as slow:
        for group in by_length.values():
            got, ref = fast.column_logits(group, cols), slow.column_logits(group, cols)
            want = _centred(wide.logits(torch.tensor(group, dtype=torch.long).reshape(len(group), -1))[:, cols])
            assert (got - ref).abs().max().item() <= fast.error_bound() + slow.error_bound() == 6 * EXACT
            assert (got - want).abs().max().item() <= fast.error_bound() == 2 * EXACT
        distinct = [len({tuple(r) for r in g}) for g in by_length.values()]
        paid = fast.calls - fast.probe_calls  # the probe: whether logprob_token_ids are answered
        assert fast.method == "token_ids" and paid == sum(math.ceil(n / batch) for n in distinct) * math.ceil(m / size)


def test_a_full_vector_costs_ceil_v_over_128_calls(wide_url, wide):
    with APIModel(wide_url, "wide", logprob_error=EXACT, **QUIET) as api:
        got = api.logits([[1, 2, 3]])
        assert api.records[-1].calls == api.calls - api.probe_calls == math.ceil(300 / 128) == 3
        assert api.probe_calls == 1  # method="auto": is logprob_token_ids answered?
        assert (got - _centred(wide.logits([[1, 2, 3]]))).abs().max().item() <= api.error_bound()
        assert sum(r.tokens for r in api.records) == 3 * (3 + 1)  # usage: prompt + completion, per call


def test_logits_far_below_the_top_are_read_without_any_bias():
    """The exact method cannot read a logit more than bias_limit below the top; token ids can."""
    truth = random_isan(4, 3, 2, generator=0)
    with torch.no_grad():
        truth.B[1, 3] += 40.0 * truth.B[1].norm(dim=0)
    with running_server(serve_app(truth, name="isan", bias_limit=5.0)) as url:
        with APIModel(url, "isan", k=2, bias_limit=5.0, method="exact", **QUIET) as api, \
                pytest.raises(RecoveryError, match="more than bias_limit=5 below the largest logit"):
            api.logits([[0]])
        with APIModel(url, "isan", k=2, bias_limit=5.0, logprob_error=EXACT, **QUIET) as api:
            got = api.logits([[0]])
            assert api.method == "token_ids"
            assert (got - _centred(truth.logits([[0]]))).abs().max().item() <= api.error_bound()


# -- "auto": asked once, falling back to the exact method -------------------------------------------------
@pytest.mark.parametrize(("mode", "paid", "why"), [
    ("refuse", 0, (r"refused the completion request \(prompt of 1 tokens, logprobs=1, 0 biased tokens, 2 "
                   r"logprob_token_ids\) with HTTP 400: logprob_token_ids=\[0, 4\] is not supported")),
    ("ignore", 1, r"returned no log-probability for token 0 named in logprob_token_ids"),
])
def test_auto_falls_back_to_the_exact_method_where_the_field_is_not_answered(isan, mode, paid, why):
    """A 400 is not a call (nothing answered); an answer without the ids is one (the server answered, billed)."""
    with running_server(serve_app(isan, name="isan", faults=ServerFaults(token_ids=mode))) as url, \
            APIModel(url, "isan", k=3, logprob_error=EXACT, cache_dir=None) as api:
        probe = api.probe_calls
        P = torch.tensor([[1, 2], [0, 4]])
        got = api.logits(P)
        assert api.method == "exact" and api.probe_calls == probe + paid
        assert re.search(why, api._transport.token_ids_note)
        assert (got - _centred(isan.logits(P))).abs().max().item() <= api.error_bound() == 4 * EXACT
        api.logits(torch.tensor([[3, 3]]))
        assert api.probe_calls == probe + paid and api.bill()["method"] == "exact"  # asked once per client
    with running_server(serve_app(isan, name="isan", faults=ServerFaults(token_ids=mode))) as url, \
            APIModel(url, "isan", k=3, method="token_ids", **QUIET) as api, \
            pytest.raises((RequestRefusedError, InconsistentServerError), match="logprob_token_ids"):
        api.logits([[1]])


def test_the_client_names_the_limit_where_the_server_refuses_the_ids(isan):
    """A server whose card does not give the limit (vLLM's): 129 ids are refused with the setting to lower."""
    app = serve_app(random_isan(200, 3, 2, generator=1), name="big")
    engine = app.state.engine
    card = engine.card
    engine.card = lambda name=None: {k: v for k, v in card(name).items() if k != "logprob_token_ids_limit"}
    with running_server(app) as url, APIModel(url, "big", token_ids_limit=129, **QUIET) as api, \
            pytest.raises(RequestRefusedError, match=r"HTTP 400: Requested logprob_token_ids of length 129, which is "
                                                     r"greater than max allowed: 128 .*; pass token_ids_limit<=128"):
        api.logits([[1]])
    with running_server(serve_app(isan, name="isan")) as url, APIModel(url, "isan", token_ids_limit=500,
                                                                       **QUIET) as api:
        assert api._transport.token_ids_limit == 128  # lowered to the card's limit


# -- batching: fewer calls, the same answers ----------------------------------------------------------------
def test_batching_answers_every_prompt_as_alone_in_fewer_calls(wide_url):
    P = torch.randint(0, 300, (40, 3), generator=torch.Generator().manual_seed(0))
    distinct = len({tuple(r) for r in P.tolist()})
    out = {}
    for method in ("token_ids", "exact"):
        for batch in (1, 16):
            with APIModel(wide_url, "wide", k=20, method=method, batch_prompts=batch, **QUIET) as api:
                out[method, batch] = (api.logits(P), api.calls)
    per_prompt = {"token_ids": math.ceil(300 / 128), "exact": math.ceil(299 / 19)}
    for method, calls in per_prompt.items():
        assert torch.equal(out[method, 1][0], out[method, 16][0])  # the same answers, read the same way
        assert out[method, 1][1] == distinct * calls
        assert out[method, 16][1] == math.ceil(distinct / 16) * calls


def test_a_server_answering_choices_out_of_order_is_read_by_index(isan):
    app = serve_app(isan, name="isan")
    engine = app.state.engine
    complete = engine.complete
    engine.complete = lambda body: {**(r := complete(body)), "choices": r["choices"][::-1]}
    P = torch.tensor([[1, 2], [0, 4], [3, 3]])
    with running_server(app) as url, APIModel(url, "isan", logprob_error=EXACT, **QUIET) as api:
        assert (api.logits(P) - _centred(isan.logits(P))).abs().max().item() <= api.error_bound()
        assert api.calls - api.probe_calls == 1
    engine.complete = lambda body: {**(r := complete(body)), "choices": r["choices"][:1]}
    with running_server(app) as url, APIModel(url, "isan", **QUIET) as api, \
            pytest.raises(InconsistentServerError, match=r"answered a request of 3 prompts with choices indexed \[0\] "
                                                         r"\(expected 0 … 2, one per prompt\); pass batch_prompts=1"):
        api.logits(P)


def test_a_server_refusing_batches_is_asked_one_prompt_at_a_time(isan):
    """The card does not say max_prompts (vLLM's says nothing) and the server takes one prompt per request."""
    app = serve_app(isan, name="isan", max_prompts=1)
    engine = app.state.engine
    card = engine.card
    engine.card = lambda name=None: {k: v for k, v in card(name).items() if k != "max_prompts"}
    P = torch.tensor([[1, 2], [0, 4], [3, 3]])
    with running_server(app) as url, APIModel(url, "isan", logprob_error=EXACT, **QUIET) as api:
        assert api._transport.batch_limit == 16
        got = api.logits(P)
        assert api._transport.batches_refused and api._transport.batch_limit == 1
        assert api.calls - api.probe_calls == 3  # the batch refused (not a call), then 3 prompts alone
        assert (got - _centred(isan.logits(P))).abs().max().item() <= api.error_bound()
    with running_server(serve_app(isan, name="isan", max_prompts=2)) as url, APIModel(url, "isan", **QUIET) as api:
        api.logits(P)
        assert api._transport.batch_limit == 2 and api.calls - api.probe_calls == 2  # the card's: ⌈3/2⌉ requests


def test_spot_checks_of_batched_answers(isan):
    P = torch.tensor([[1, 2], [0, 4], [3, 3], [2, 2]])
    with running_server(serve_app(isan, name="isan")) as url, \
            APIModel(url, "isan", logprob_error=EXACT, spot_check_rate=1.0, cache_dir=None) as api:
        api.logits(P)
        assert api.calls - api.probe_calls == 1 and api.spot_checks == 1  # the 4 answers re-asked in one request
    faults = ServerFaults(noise=1e-3, honest_prompts=((0,),), seed=2)  # exact only where the probes look
    with running_server(serve_app(isan, name="isan", faults=faults, cache_size=0)) as url, \
            APIModel(url, "isan", logprob_error=EXACT, spot_check_rate=1.0, cache_dir=None) as api, \
            pytest.raises(InconsistentServerError, match=r"failed a spot check .*paid answers is asked again"):
        api.logits(P)


# -- the answer cache, on by default ------------------------------------------------------------------------
def test_the_answer_cache_is_on_by_default_under_the_results_folder(isan, tmp_path, monkeypatch):
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.chdir(tmp_path)
    P = torch.tensor([[1, 2], [0, 4]])
    with running_server(serve_app(isan, name="isan")) as url:
        with APIModel(url, "isan", logprob_error=EXACT) as first:
            want = first.logits(P)
            folder = first.cache_folder
        assert folder.parent == tmp_path / "results" / "api-cache" and folder.name.startswith("served-")
        assert len(list(folder.rglob("*.json"))) == 2 and len(list(folder.glob("*.fingerprint"))) == 1
        with APIModel(url, "isan", logprob_error=EXACT) as again:  # a rerun pays for nothing but the probes
            assert torch.equal(again.logits(P), want)
            assert again.calls == again.probe_calls and again.cached == 2 and again.cache_folder == folder


def test_the_environment_variable_moves_or_turns_off_the_default_cache(isan, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with running_server(serve_app(isan, name="isan")) as url:
        monkeypatch.setenv(CACHE_ENV, str(tmp_path / "elsewhere"))
        with APIModel(url, "isan") as api:
            api.logits([[1]])
            assert api.cache_folder.parent == tmp_path / "elsewhere"
        for off in ("off", ""):
            monkeypatch.setenv(CACHE_ENV, off)
            with APIModel(url, "isan") as api:
                api.logits([[1]])
                assert api.cache_folder is None
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("off", [None, False])
def test_cache_dir_none_or_false_turns_the_disk_cache_off(isan, tmp_path, monkeypatch, off):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    with running_server(serve_app(isan, name="isan")) as url:
        with APIModel(url, "isan", cache_dir=off) as api:
            api.logits([[1], [2]])
            assert api.cache_folder is None and api.probe_calls == 3 + 1  # no fingerprint: the probe, the ids probe
        with APIModel(url, "isan", cache_dir=off) as again:
            again.logits([[1], [2]])
            assert again.cached == 0 and again.calls > again.probe_calls
    assert list(tmp_path.iterdir()) == []  # nothing written anywhere


def test_another_model_under_the_same_url_and_name_gets_another_default_folder(tmp_path, monkeypatch):
    """The default folder is per served model (its fingerprint), so a restarted server with another model is a
    cache miss, not an error; an explicit cache_dir still refuses it (APICacheError)."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "default"))
    a, b = random_isan(V, T, D, generator=0), random_isan(V, T, D, generator=1)
    with running_server(serve_app(a, name="isan")) as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        with APIModel(url, "isan", logprob_error=EXACT) as api:
            api.logits([[1]])
            first = api.cache_folder
        with APIModel(url, "isan", cache_dir=tmp_path / "explicit") as api:
            api.logits([[1]])
    with running_server(serve_app(b, name="isan"), port=port) as url:
        with APIModel(url, "isan", logprob_error=EXACT) as api:
            got = api.logits([[1]])
            assert api.cache_folder != first and api.cached == 0
            assert (got - _centred(b.logits([[1]]))).abs().max().item() <= api.error_bound()
        with pytest.raises(APICacheError, match="holds answers of another served model"):
            APIModel(url, "isan", cache_dir=tmp_path / "explicit")
