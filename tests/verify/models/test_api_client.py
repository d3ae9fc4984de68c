"""APIModel against the local server over 127.0.0.1 with the real ``openai`` client: recovered logits
equal the local model's to the stated bound, the learners run through it, every bad input is refused."""

import json
import math
import os
import signal
import subprocess
import sys
import time
import warnings

import pytest
import torch

pytest.importorskip("openai")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from logitrank.algorithms import learn_approx, learn_isan, logit_matrix
from logitrank.synth import LanguageModel, random_isan
from logitrank.verify import tv_distance
from logitrank.verify.models import (
    APICacheWarning,
    APIModel,
    APISettings,
    InconsistentServerError,
    RecoveryError,
    RequestRefusedError,
    RestrictedAPIModel,
    ServerFaults,
    ServerUnreachableError,
    TokenMapError,
    running_server,
    serve_app,
)
from logitrank.verify.models.served._tokens import TokenMap

V, T, D = 5, 6, 3
FAST = {"backoff": 0.001, "backoff_max": 0.01}  # retries without waiting


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "EMPTY")


@pytest.fixture(scope="module")
def isan():
    return random_isan(V, T, D, generator=0)


@pytest.fixture(scope="module")
def isan_url(isan):
    with running_server(serve_app(isan, name="isan")) as url:
        yield url


@pytest.fixture(scope="module")
def tiny():
    from logitrank.verify.models import load_model

    return load_model("tiny")


@pytest.fixture(scope="module")
def tiny_url(tiny):
    with running_server(serve_app(tiny, name="tiny")) as url:
        yield url


def _prefixes(n, length, vocab, seed):
    return torch.randint(0, vocab, (n, length), generator=torch.Generator().manual_seed(seed))


# -- recovery equals the local model ---------------------------------------------------------------
@pytest.mark.parametrize("k", [2, 3, 5])
def test_exact_method_recovers_isan_logits(isan_url, isan, k):
    with APIModel(isan_url, "isan", k=k, logprob_error=1e-12, method="exact") as api:
        assert isinstance(api, LanguageModel) and (api.vocab_size, api.horizon) == (V, T)
        for length in (0, 2, T - 1):
            P = _prefixes(6, length, V, seed=length)
            err = (api.logits(P) - isan.logits(P)).abs().max().item()
            assert err <= api.error_bound() == 4e-12
        assert {r.calls for r in api.records} == {math.ceil((V - 1) / (k - 1))}
        assert api.probe["bias_moved"] == pytest.approx(api.probe["bias"], abs=1e-12)


def test_bisection_recovers_isan_logits_within_its_bound(isan_url, isan):
    with APIModel(isan_url, "isan", method="bisection", bisection_tol=1e-3, bias_limit=16.0, max_workers=4) as api:
        P = _prefixes(2, 3, V, seed=1)
        err = (api.logits(P) - isan.logits(P)).abs().max().item()
        steps = math.ceil(math.log2(16.0 / 1e-3))
        assert err <= api.error_bound() == pytest.approx(1e-3 + 4e-5)
        assert [r.calls for r in api.records] == [1 + (V - 1) * steps] * 2  # no gap above the bias limit here
        assert err > 1e-8  # bisection is approximate: the bound is what it promises


@pytest.mark.parametrize(("method", "used", "calls"), [("auto", "token_ids", math.ceil(256 / 128)),
                                                        ("exact", "exact", math.ceil(255 / 19))])
def test_tiny_logits_and_column_subsets(tiny_url, tiny, method, used, calls):
    with APIModel(tiny_url, "tiny", method=method) as api:
        assert (api.vocab_size, api.horizon) == (256, None)
        P = _prefixes(3, 5, 256, seed=0)
        local = tiny.logits(P).double()  # centred in float32 by the model: ~2.5e-5 off its float64 centring
        local = local - local.mean(dim=1, keepdim=True)  # what the server's float64 answers are centred to
        err = (api.logits(P) - local).abs().max().item()
        assert api.method == used and err <= api.error_bound()  # 2δ (token ids) or 4δ (exact), δ = 1e-5
        assert api.records[-1].calls == calls and api.records[-1].method == used
        cols = [200, 3, 97, 10, 65]
        sub = api.column_logits(P, cols)
        want = local[:, cols] - local[:, cols].mean(dim=1, keepdim=True)
        assert (sub - want).abs().max().item() <= api.error_bound()
        assert api.records[-1].calls == 1 and api.records[-1].columns == 5


def test_logit_matrix_through_the_api(isan_url, isan):
    H, F = [(), (1,), (2, 3)], [(), (0,), (4, 4)]
    with APIModel(isan_url, "isan", k=5, logprob_error=1e-12) as api:
        got = logit_matrix(api, H, F, top_k=2, return_columns=True)
        want = logit_matrix(isan, H, F, columns=got.columns)
        assert (got.values - want).abs().max().item() <= api.error_bound()
        distinct = len({h + f for h in H for f in F} | set(F))  # the top-k columns read the futures alone
        assert api.calls - api.probe_calls == distinct <= api.queries  # a prompt asked twice is paid once


def test_sample_and_log_prob_follow_the_served_model(isan_url, isan):
    with APIModel(isan_url, "isan", k=5, logprob_error=1e-12) as api:
        seqs = api.sample(40, generator=0)
        assert seqs.shape == (40, T) and seqs.dtype == torch.long
        assert (api.log_prob(seqs) - isan.log_prob(seqs)).abs().max().item() < 1e-9
        assert api.sample(0, generator=0).shape == (0, T)


# -- learners through the API ---------------------------------------------------------------------
def test_learn_isan_learns_a_served_isan_as_locally():
    truth = random_isan(3, 4, 2, generator=0)
    local, local_report = learn_isan(truth, epsilon=0.1, generator=0)
    with running_server(serve_app(truth, name="isan")) as url, APIModel(url, "isan", k=3, logprob_error=1e-12) as api:
        served, report = learn_isan(api, epsilon=0.1, generator=0)
        cost, bill = api.cost(), api.bill(report)
    tv_local = tv_distance(truth.distribution(), local.distribution())
    tv_api = tv_distance(truth.distribution(), served.distribution())
    assert tv_local < 1e-12 and tv_api < 1e-9  # both at float precision (~1e-15 measured)
    assert report.hidden_dim == local_report.hidden_dim and report.queries == local_report.queries
    assert bill["calls"] == cost["calls"] - cost["probe_calls"] <= report.queries  # ≤ 1 call per query at V ≤ 128
    assert bill["learner_queries"] == report.queries and bill["method"] == "token_ids"
    # ⌈3/128⌉ = 1 request per prompt, up to batch_prompts = 16 prompts per request
    assert 1 / 16 <= bill["calls_per_vector"] < 1


def test_learn_approx_learns_a_served_isan_as_locally():
    truth = random_isan(2, 4, 2, generator=0)
    options = {"rank": 2, "epsilon": 0.1, "n_validation": 8, "n_spanner": 16, "generator": 0}
    local, local_report = learn_approx(truth, **options)
    with running_server(serve_app(truth, name="isan")) as url, APIModel(url, "isan", k=2, logprob_error=1e-12) as api:
        served, report = learn_approx(api, **options)
    assert report.accepted and local_report.accepted
    tv = [tv_distance(truth.distribution(), m.distribution()) for m in (local, served)]
    assert abs(tv[0] - tv[1]) < 1e-9 and tv[1] <= report.tv_bound


# -- bad inputs: a clear error, or a resumed run ---------------------------------------------------
def test_unreachable_server():
    with running_server(serve_app(random_isan(2, 2, 1, generator=0))) as url:
        pass  # the port is free again once the server stopped
    with pytest.raises(ServerUnreachableError, match=r"did not answer GET /models after 3 tries .*is the server running"):
        APIModel(url, "isan", max_retries=2, **FAST)


def test_wrong_model_name(isan_url):
    with pytest.raises(ValueError, match=r"model='gpt-5' is not served at .*; it serves \['isan'\]"):
        APIModel(isan_url, "gpt-5")


def test_k_above_the_server_limit(isan):
    with running_server(serve_app(isan, name="isan", top_logprobs_limit=3)) as url:
        with pytest.raises(ValueError, match=r"k=4 is more than the server allows \(top_logprobs_limit=3"):
            APIModel(url, "isan", k=4)
        # a request beyond the limit: the server's 400, quoted
        with APIModel(url, "isan", k=3) as api, pytest.raises(RequestRefusedError, match=r"HTTP 400: logprobs must be <= 3"):
            api._transport.ask((0,), 4, {})


@pytest.mark.parametrize(("faults", "match"), [
    (ServerFaults(drop_tokens=1), r"returned 4 log-probabilities for logprobs=5 \(expected 5\)"),
    (ServerFaults(ignore_bias=True), r"returns log-probabilities before logit_bias is applied"),
    (ServerFaults(noise=1e-3, seed=1), r"answered one request twice with log-probabilities .* apart"),
])
def test_an_inconsistent_server_is_refused(isan, faults, match):
    with running_server(serve_app(isan, name="isan", faults=faults)) as url, \
            pytest.raises(InconsistentServerError, match=match):
        APIModel(url, "isan", k=5)


def test_fewer_tokens_are_refused_without_the_probe_too(isan):
    """No probe (and no fingerprint: no disk cache). "auto" finds the token-id answer short of an id and falls
    back to the exact method, whose answers are short of tokens too. The server drops the last 2 ids named
    but always returns the completion's token (4 after [0], as vLLM)."""
    faults = ServerFaults(drop_tokens=2)
    with running_server(serve_app(isan, name="isan", faults=faults)) as url:
        with APIModel(url, "isan", k=3, check_server=False, cache_dir=None) as api:
            assert api.calls == 0
            with pytest.raises(InconsistentServerError, match="returned 1 log-probabilities for logprobs=3"):
                api.logits([[0]])
            assert api.method == "exact" and "no log-probability for token 0" in api._transport.token_ids_note
        with APIModel(url, "isan", k=3, check_server=False, cache_dir=None, method="token_ids") as api, \
                pytest.raises(InconsistentServerError, match=r"returned no log-probability for token 3 named in "
                                                             r"logprob_token_ids \(prompt \[0\]; 1 of 5 missing\)"):
            api.logits([[0]])


def test_rate_limits_and_5xx_are_retried(isan):
    faults = ServerFaults(rate_limit=2, unavailable=2)
    with running_server(serve_app(isan, name="isan", faults=faults)) as url, \
            APIModel(url, "isan", k=5, logprob_error=1e-12, **FAST) as api:
        assert api.retries == 4
        assert (api.logits([[1, 2]]) - isan.logits([[1, 2]])).abs().max().item() <= api.error_bound()
    with running_server(serve_app(isan, name="isan", faults=ServerFaults(rate_limit=5))) as url, \
            pytest.raises(ServerUnreachableError, match=r"after 3 tries \(last: HTTP 429: Rate limit reached"):
        APIModel(url, "isan", max_retries=2, **FAST)


def test_a_logit_beyond_the_bias_limit_is_refused():
    truth = random_isan(4, 3, 2, generator=0)
    with torch.no_grad():
        truth.B[1, 3] += 40.0 * truth.B[1].norm(dim=0)  # token 3 far above the rest after one token
    top = int(truth.logits([[0]])[0].argmax())
    with running_server(serve_app(truth, name="isan", bias_limit=5.0)) as url:
        with APIModel(url, "isan", k=2, bias_limit=5.0, method="exact") as api, \
                pytest.raises(RecoveryError, match="more than bias_limit=5 below the largest logit"):
            api.column_logits([[0]], [c for c in range(4) if c != top])
        with APIModel(url, "isan", k=2, bias_limit=5.0, logprob_error=1e-12) as api:  # token ids need no bias
            cols = [c for c in range(4) if c != top]
            local = truth.logits([[0]])[0, cols]
            got = api.column_logits([[0]], cols)[0]
            assert api.method == "token_ids"
            assert (got - (local - local.mean())).abs().max().item() <= api.error_bound()


def test_missing_api_key(isan_url, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(ValueError, match="environment variable OPENAI_API_KEY, which is not set"):
        APIModel(isan_url, "isan")


def test_token_names_map_to_ids_unambiguously():
    with pytest.raises(TokenMapError, match="gives one text to several ids"):
        TokenMap(3, vocab=["a", "\ufffd", "\ufffd"])
    with pytest.raises(TokenMapError, match="not of the form token_id:N; pass vocab="):
        TokenMap(3).to_ids({"hello": -1.0})
    with pytest.raises(TokenMapError, match="two entries for token id 1"):
        TokenMap(3, vocab=["a", "b", "c"]).to_ids({"b": -1.0, "token_id:1": -1.0})
    with pytest.raises(TokenMapError, match="outside the vocabulary"):
        TokenMap(3).to_id("token_id:3")


BAD_SETTINGS = [
    ({"base_url": "127.0.0.1:8000"}, ValueError, "base_url must start with http"),
    ({"k": 1}, ValueError, "k must be >= 2; got 1"),
    ({"bias_limit": 0}, ValueError, r"bias_limit must lie in \(0.0, inf\]"),
    ({"method": "topk"}, ValueError, r"method must be one of \('auto', 'token_ids', 'exact', 'bisection'\); got 'topk'"),
    ({"method": "bias"}, ValueError, r"method must be one of .*; got 'bias'"),
    ({"token_ids_limit": 0}, ValueError, "token_ids_limit must be >= 1; got 0"),
    ({"batch_prompts": 0}, ValueError, "batch_prompts must be >= 1; got 0"),
    ({"batch_prompts": 2.0}, TypeError, "batch_prompts must be an integer"),
    ({"cache_dir": ""}, ValueError, r"cache_dir must name a folder; got '' \(None or False: no disk cache\)"),
    ({"max_workers": 0}, ValueError, "max_workers must be >= 1"),
    ({"cache_dir": 3}, TypeError, r"cache_dir must be a path, True \(the default folder.*got int"),
    ({"k": 2.5}, TypeError, "k must be an integer"),
]


@pytest.mark.parametrize(("change", "error", "match"), BAD_SETTINGS, ids=[m for _, _, m in BAD_SETTINGS])
def test_bad_settings(change, error, match):
    with pytest.raises(error, match=match):
        APISettings(**{"base_url": "http://127.0.0.1:1/v1", "model": "m", **change})


def test_unknown_option_is_named():
    with pytest.raises(TypeError, match=r"unknown API setting\(s\) \['top_k'\]"):
        APIModel("http://127.0.0.1:1/v1", "m", top_k=3)


def test_bad_prefixes_are_refused_before_any_call(isan_url):
    with APIModel(isan_url, "isan", k=5) as api:
        calls = api.calls
        with pytest.raises(ValueError, match=r"prefixes must have length <= 5 \(the longest prompt"):
            api.logits(torch.zeros(1, T, dtype=torch.long))
        with pytest.raises(ValueError, match=r"prefixes must hold token ids in \[0, 5\); got id 9"):
            api.logits([[9]])
        with pytest.raises(ValueError, match="columns must not repeat a token id"):
            api.column_logits([[0]], [1, 1])
        assert api.calls == calls


# -- the answer cache: resume without paying twice, never trust a bad file ------------------------
def test_a_rerun_reads_every_answer_from_the_cache(isan_url, isan, tmp_path):
    P = _prefixes(12, 3, V, seed=5)
    with APIModel(isan_url, "isan", k=3, cache_dir=tmp_path, logprob_error=1e-12) as first:
        want = first.logits(P)
        paid = sum(r.paid for r in first.records)  # answers; fewer requests (first.calls): prompts share them
        assert 0 < first.calls - first.probe_calls < paid
    with APIModel(isan_url, "isan", k=3, cache_dir=tmp_path, logprob_error=1e-12) as again:
        got = again.logits(P)
        assert again.calls - again.probe_calls == 0 and again.cached == paid
    # exact: the same cached answers through the same recovery arithmetic
    assert torch.equal(got, want) and (got - isan.logits(P)).abs().max() <= again.error_bound()


def test_a_bad_cache_file_is_asked_again(isan_url, tmp_path):
    with APIModel(isan_url, "isan", k=5, cache_dir=tmp_path, check_server=False) as api:
        want = api.logits([[1, 1]])
    (path,) = list(tmp_path.rglob("*.json"))
    record = json.loads(path.read_text())
    record["answer"][0][1] += 0.5  # a silently altered log-probability
    path.write_text(json.dumps(record))
    with APIModel(isan_url, "isan", k=5, cache_dir=tmp_path, check_server=False) as api:
        with pytest.warns(APICacheWarning, match="checksum mismatch"):
            got = api.logits([[1, 1]])
        # exact: the server recomputes the same prompt by the same float64 code, recovered the same way
        assert api.calls - api.probe_calls == 1 and torch.equal(got, want)  # the probe calls: the fingerprint
    path.write_text("{truncated")
    with APIModel(isan_url, "isan", k=5, cache_dir=tmp_path, check_server=False) as api:
        with pytest.warns(APICacheWarning, match="not JSON"):
            api.logits([[1, 1]])
        assert api.calls - api.probe_calls == 1


_KILLED_RUN = """
import sys, torch
from logitrank.verify.models import APIModel
P = torch.randint(0, 5, (200, 4), generator=torch.Generator().manual_seed(0))
with APIModel(sys.argv[1], "isan", k=2, cache_dir=sys.argv[2], max_workers=1, method="exact", batch_prompts=1) as api:
    for i in range(200):
        api.logits(P[i : i + 1])
"""


def test_a_run_killed_with_sigkill_resumes_without_paying_twice(isan_url, isan, tmp_path):
    """kill -9 in the middle of a run; the rerun pays only for the answers that were not stored."""
    env = {**os.environ, "OPENAI_API_KEY": "EMPTY"}
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_RUN, isan_url, str(tmp_path)], env=env,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while len(list(tmp_path.rglob("*.json"))) < 40 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    stored = len(list(tmp_path.rglob("*.json")))
    P = torch.randint(0, 5, (200, 4), generator=torch.Generator().manual_seed(0))
    needed = len({tuple(p) for p in P.tolist()}) * math.ceil((V - 1) / (2 - 1))  # calls per distinct prompt at k=2
    with warnings.catch_warnings():
        warnings.simplefilter("error", APICacheWarning)  # every stored answer verifies: no torn files
        with APIModel(isan_url, "isan", k=2, cache_dir=tmp_path, logprob_error=1e-12, method="exact",
                      batch_prompts=1) as api:
            got = api.logits(P)
            assert api.calls - api.probe_calls == needed - stored
            assert api.cached == stored
    assert 40 <= stored < needed
    assert (got - isan.logits(P)).abs().max().item() <= 4e-12


def test_a_server_naming_tokens_by_text_needs_an_unambiguous_vocab(isan):
    texts = ("a", "b", "c", "d", "e")
    with running_server(serve_app(isan, name="isan", faults=ServerFaults(token_texts=texts))) as url:
        with pytest.raises(TokenMapError, match="'[a-e]', which is not of the form token_id:N; pass vocab="):
            APIModel(url, "isan", k=5)
        with APIModel(url, "isan", k=5, vocab=list(texts), logprob_error=1e-12) as api:
            assert (api.logits([[2, 0]]) - isan.logits([[2, 0]])).abs().max().item() <= api.error_bound()
    clash = ("a", "b", "a", "d", "e")  # ids 0 and 2 share a text: the server's answer merges them
    with running_server(serve_app(isan, name="isan", faults=ServerFaults(token_texts=clash))) as url, \
            pytest.raises(TokenMapError, match=r"'a' for ids \[0, 2\]"):
        APIModel(url, "isan", k=5, vocab=list(clash))


def test_a_restricted_view_of_tiny_is_x4s_restricted_model_at_one_call_per_query(tiny_url, tiny):
    """Σ' = 3 tokens, T = 3: the logits centred over Σ' are RestrictedLM's; learn_isan matches it."""
    from logitrank.verify.claims.checks._surrogate_claims import RestrictedLM

    tokens, horizon = [32, 101, 116], 3  # " ", "e", "t"
    local = RestrictedLM(tiny, tokens, horizon)
    with APIModel(tiny_url, "tiny", k=3) as api:
        view = RestrictedAPIModel(api, tokens, horizon)
        P = torch.tensor([[0, 2], [1, 1], [2, 0]])
        assert (view.logits(P) - local.logits(P)).abs().max().item() <= view.error_bound()
        assert api.records[-1].calls == 1 and api.records[-1].columns == 3
        learned, report = learn_isan(view, epsilon=0.1, rank_tol=0.01, generator=0)
        bill = view.bill(report)
    reference, _ = learn_isan(local, epsilon=0.1, rank_tol=0.01, generator=0)
    p = local.distribution()
    assert abs(tv_distance(p, learned.distribution()) - tv_distance(p, reference.distribution())) < 1e-4
    # every prefix of Σ'^{<3} once (1 + 3 + 9), one token-id request each, up to 16 prompts to a request
    assert sum(r.paid for r in api.records) == 1 + 3 + 9 and bill["calls"] < 1 + 3 + 9
    with pytest.raises(ValueError, match="tokens must be distinct ids"):
        RestrictedAPIModel(api, [1, 1], 2)


def test_bisection_refuses_a_gap_beyond_the_bias_limit():
    truth = random_isan(4, 3, 2, generator=0)
    with torch.no_grad():
        truth.B[1, 3] += 40.0 * truth.B[1].norm(dim=0)
    with running_server(serve_app(truth, name="isan", bias_limit=5.0)) as url, \
            APIModel(url, "isan", k=2, bias_limit=5.0, method="bisection", bisection_tol=0.5) as api, \
            pytest.raises(RecoveryError, match=r"token \d after the prompt \[0\]: the token is not the argmax even with bias 5"):
        api.logits([[0]])
