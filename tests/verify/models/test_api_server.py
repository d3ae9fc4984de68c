"""The OpenAI-compatible server of logitrank.verify.models.served, driven by the real ``openai`` client over 127.0.0.1."""

import argparse
import re

import numpy as np
import pytest
import torch

openai = pytest.importorskip("openai")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from logitrank._validation import UsageError
from logitrank.synth import random_isan
from logitrank.verify.cli.serve import add_parser, model_from_spec, run
from logitrank.verify.models import ServerFaults, running_server, serve_app
from logitrank.verify.models.served._server import prompt_limit

V, T, D = 5, 6, 3


@pytest.fixture(scope="module")
def isan():
    return random_isan(V, T, D, generator=0)


@pytest.fixture(scope="module")
def served(isan):
    app = serve_app(isan, name="isan", top_logprobs_limit=4, bias_limit=50.0)
    with running_server(app) as url:
        yield url, app, openai.OpenAI(api_key="EMPTY", base_url=url, max_retries=0)


def _top(response) -> dict[int, float]:
    return {int(name.split(":")[1]): lp for name, lp in response.choices[0].logprobs.top_logprobs[0].items()}


def test_model_card_names_the_limits(served):
    _, _, client = served
    card = client.models.retrieve("isan").model_dump()
    assert card["id"] == "isan" and card["vocab_size"] == V and card["horizon"] == T
    assert (card["max_prompt_tokens"], card["top_logprobs_limit"], card["bias_limit"]) == (T - 1, 4, 50.0)
    assert [m.id for m in client.models.list().data] == ["isan"]


def test_top_logprobs_are_those_of_the_biased_logits(served, isan):
    """Worked by hand: log_softmax(L + b) of the local model, top 4, ties to the smaller id."""
    _, _, client = served
    prompt, bias = [0, 3, 1], {2: 7.5, 4: -50.0}
    r = client.completions.create(model="isan", prompt=prompt, max_tokens=1, logprobs=4,
                                  logit_bias={str(t): b for t, b in bias.items()})
    shifted = isan.logits(torch.tensor([prompt]))[0].double()
    for t, b in bias.items():
        shifted[t] += b
    want = torch.log_softmax(shifted, dim=0)
    top = _top(r)
    assert sorted(top) == sorted(torch.argsort(want, descending=True)[:4].tolist())
    assert max(abs(lp - want[t].item()) for t, lp in top.items()) < 1e-12
    assert r.choices[0].text == f"token_id:{int(want.argmax())}"
    assert r.usage.prompt_tokens == 3 and r.usage.completion_tokens == 1


def test_prefix_cache_runs_the_model_once_per_prompt(served):
    _, app, client = served
    before = dict(app.state.stats)
    for b in (0.0, 1.0, 2.0):
        client.completions.create(model="isan", prompt=[4, 4, 4, 4], max_tokens=1, logprobs=2, logit_bias={"1": b})
    assert app.state.stats["forward"] - before["forward"] == 1
    assert app.state.stats["cache_hits"] - before["cache_hits"] == 2


BAD_REQUESTS = [
    ({"logprobs": 5}, openai.BadRequestError, r"logprobs must be <= 4 \(this server's top_logprobs_limit\); got 5"),
    ({"logit_bias": {"1": 60}}, openai.BadRequestError, r"logit_bias\['1'\] must lie in \[-50, 50\]; got 60"),
    ({"logit_bias": {"9": 1}}, openai.BadRequestError, r"logit_bias names token id 9, outside the vocabulary \[0, 5\)"),
    ({"prompt": [0] * T}, openai.BadRequestError, r"prompt has 6 tokens; this model continues prompts of at most 5"),
    ({"prompt": [0, 7]}, openai.BadRequestError, r"prompt holds token id 7, outside the vocabulary"),
    ({"prompt": "hello"}, openai.BadRequestError, r"prompt must be token ids"),
    ({"max_tokens": 2}, openai.BadRequestError, r"max_tokens must be 1"),
    ({"model": "gpt-5"}, openai.NotFoundError, r"The model `gpt-5` does not exist; this server serves 'isan'"),
]


@pytest.mark.parametrize(("change", "error", "match"), BAD_REQUESTS, ids=[m for _, _, m in BAD_REQUESTS])
def test_bad_requests_get_openai_style_errors(served, change, error, match):
    _, _, client = served
    kwargs = {"model": "isan", "prompt": [0, 1], "max_tokens": 1, "logprobs": 2, **change}
    with pytest.raises(error, match=match) as info:
        client.completions.create(**kwargs)
    assert set(info.value.body) >= {"message", "type", "param"}


def test_an_api_key_is_required_when_set(isan):
    with running_server(serve_app(isan, name="isan", api_key="sesame")) as url:
        with pytest.raises(openai.AuthenticationError, match="Incorrect API key"):
            openai.OpenAI(api_key="wrong", base_url=url, max_retries=0).models.list()
        assert openai.OpenAI(api_key="sesame", base_url=url, max_retries=0).models.list().data[0].id == "isan"


def test_faults_drop_tokens_and_ignore_bias(isan):
    app = serve_app(isan, name="isan", faults=ServerFaults(drop_tokens=2, ignore_bias=True))
    with running_server(app) as url:
        client = openai.OpenAI(api_key="EMPTY", base_url=url, max_retries=0)
        plain = _top(client.completions.create(model="isan", prompt=[1], max_tokens=1, logprobs=4))
        biased = _top(client.completions.create(model="isan", prompt=[1], max_tokens=1, logprobs=4,
                                                logit_bias={"0": 30}))
    assert len(plain) == 2 and plain == biased


def test_prompt_limit_of_each_kind_of_model(isan):
    class Causal:
        vocab_size, horizon, max_length, bos_token_id = 8, None, 64, 8

    class Unbounded:
        vocab_size, horizon = 8, None

    assert (prompt_limit(isan), prompt_limit(Causal()), prompt_limit(Unbounded())) == (T - 1, 63, None)


BAD_APPS = [
    ({"top_logprobs_limit": 0}, ValueError, "top_logprobs_limit must be >= 1; got 0"),
    ({"bias_limit": -1.0}, ValueError, r"bias_limit must lie in \(0.0, inf\]; got -1.0"),
    ({"cache_size": -1}, ValueError, "cache_size must be >= 0; got -1"),
    ({"name": ""}, TypeError, "name must be a non-empty string"),
    ({"faults": "drop"}, TypeError, "faults must be a ServerFaults"),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), BAD_APPS, ids=[m for _, _, m in BAD_APPS])
def test_bad_server_settings(isan, kwargs, error, match):
    with pytest.raises(error, match=match):
        serve_app(isan, **kwargs)


def test_serve_app_refuses_a_non_model():
    with pytest.raises(TypeError, match="model must be a language model"):
        serve_app(np.zeros(3))


# -- logitrank serve -----------------------------------------------------------------------------
def _parse(argv):
    parser = argparse.ArgumentParser(prog="logitrank")
    add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["serve", *argv])


def test_cli_serves_the_named_model(monkeypatch):
    seen = {}
    monkeypatch.setattr("logitrank.verify.models.served._server.serve", lambda model, **kw: seen.update(model=model, **kw))
    assert run(_parse(["--model", "isan:3,4,2,7", "--port", "0", "--top-logprobs-limit", "5"])) == 0
    bound = seen["sock"].getsockname()[1]  # bound (port 0: a free one) before the model was built, handed to serve
    seen["sock"].close()
    assert seen["model"].vocab_size == 3 and seen["port"] == bound > 0
    assert seen["top_logprobs_limit"] == 5 and seen["max_prompts"] == 256
    assert seen["name"] == "isan:3,4,2,7" and seen["aliases"] == ("isan",) and seen["api_key"] is None
    assert torch.equal(seen["model"].B, random_isan(3, 4, 2, generator=7).B)  # exact: the same seed, rebuilt


@pytest.mark.parametrize(("argv", "match"), [
    (["--model", "isan:3,4"], "isan:V,T,d"),
    (["--model", "isan:3,4,2", "--port", "-1"], "--port must be >= 0"),
    (["--model", "isan:3,4,2", "--bias-limit", "0"], "--bias-limit must be a finite number > 0"),
    (["--model", "isan:3,4,2", "--api-key-env", "LOGITRANK_TEST_UNSET_KEY"], "not set"),
    (["--model", "tiny@step99999"], "no checkpoint at step 99999"),
])
def test_cli_usage_errors_exit_2(argv, match, capsys, monkeypatch):
    monkeypatch.delenv("LOGITRANK_TEST_UNSET_KEY", raising=False)
    with pytest.raises(UsageError, match=re.escape(match)):
        run(_parse(argv))


def test_model_from_spec_loads_tiny():
    model, names = model_from_spec("tiny")
    assert model.vocab_size == 256 and names[0].startswith("tiny@step") and names[1:] == ("tiny",)


def test_serve_tiny_answers_to_tiny_and_its_full_name():
    """Issue 30: `serve --model tiny` serves tiny@stepN; a client asking for "tiny" must be served too."""
    model, names = model_from_spec("tiny")
    with running_server(serve_app(model, name=names[0], aliases=names[1:], top_logprobs_limit=2)) as url:
        client = openai.OpenAI(api_key="EMPTY", base_url=url, max_retries=0)
        assert [m.id for m in client.models.list().data] == list(names)
        for name in names:
            r = client.completions.create(model=name, prompt=[[1, 2]], max_tokens=1, logprobs=2)
            assert r.model == name and len(r.choices) == 1
            assert client.models.retrieve(name).model_dump()["root"] == names[0]
        with pytest.raises(openai.NotFoundError, match="does not exist"):
            client.completions.create(model="tiny-b", prompt=[[1]], max_tokens=1)


def test_a_batch_of_prompts_gets_one_choice_each(served, isan):
    _, _, client = served
    r = client.completions.create(model="isan", prompt=[[0], [1, 2]], max_tokens=1, logprobs=1)
    assert [c.index for c in r.choices] == [0, 1] and r.usage.prompt_tokens == 3
    assert [c.text for c in r.choices] == [f"token_id:{int(isan.logits([p])[0].argmax())}" for p in ([0], [1, 2])]


def test_the_default_prefix_cache_fits_256_mib(isan):
    class Big:
        vocab_size, horizon = 49152, 4

        def logits(self, prefixes):
            return torch.zeros(len(prefixes), 49152)

    assert serve_app(isan).state.engine.cache_size == 4096
    assert serve_app(Big()).state.engine.cache_size == 2**28 // (8 * 49152) == 682
