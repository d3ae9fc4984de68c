"""A served model as a :class:`~logitrank.synth.LanguageModel`: logits recovered from top-k logprobs and bias.

:class:`APIModel` follows the protocol (``vocab_size``, ``horizon``, ``logits``, ``log_probs``,
``sample``, ``log_prob``), so :func:`logitrank.algorithms.logit_matrix`, ``learn_isan`` and
``learn_approx`` take it unchanged. Each logit vector is recovered by the method of its settings
(:mod:`logitrank.verify.models.served._recover`), with the requests of a whole batch of prompts in flight
at once on a bounded thread pool, through :class:`~logitrank.verify.models.served._transport.Transport`
(retries, verified answer cache, consistency probe).

Requests. The token-id and exact methods ask the same requests of every prompt (the same
``logprob_token_ids`` chunk, or the same ``logit_bias``), so the prompts of a batch are grouped,
``batch_prompts`` to a request, and the requests of one group are in flight together: one group's
prompts stay hot in a server's prefix cache.

Costs. ``calls`` counts requests the server answered (``probe_calls`` of them for the probe, the
fingerprint and the ``logprob_token_ids`` probe of ``method="auto"``; a batch of prompts is one
call), ``spot_checks`` the further paid requests that re-asked a sample of the answers,
``cached`` requests answered from memory or disk, ``retries`` failed tries, ``tokens`` billed tokens
(prompt + completion, from the server's usage), ``queries`` recovered logit vectors (one per
distinct prompt and column set); ``records`` holds a :class:`QueryRecord` per query with its
calls, tokens and error bound.
"""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass

import numpy as np
import torch

from logitrank._validation import as_generator, check_int, check_tokens

from ._errors import RecoveryError
from ._recover import bisect_gap, centre, exact_differences, exact_requests, token_id_chunks, token_id_logprobs
from ._settings import APISettings, settings_from
from ._transport import Transport

__all__ = ["APIModel", "QueryRecord", "RestrictedAPIModel"]


@dataclass(frozen=True)
class QueryRecord:
    """What one recovered logit vector cost.

    Attributes
    ----------
    prompt_tokens : int
        Length of the prompt.
    columns : int
        m, the logits recovered (V for a full vector).
    method : str
        "token_ids", "exact" or "bisection" (what "auto" resolved to).
    calls : int
        Answers it needed (paid + cached), one per request of its prompt; with ``batch_prompts`` > 1
        several prompts' answers share one request (``APIModel.calls`` counts requests).
    paid : int
        Of those, answers the server gave.
    tokens : int
        Tokens billed for the paid answers (each answer's share of its request's).
    bound : float
        Bound on |recovered − true| of each returned logit (:meth:`APISettings.error_bound`).
    """

    prompt_tokens: int
    columns: int
    method: str
    calls: int
    paid: int
    tokens: int
    bound: float


class _FromLogits:
    """``log_probs``, ``sample`` and ``log_prob`` of a model whose only primitive is ``logits``
    (the API models: every step recovers the logits of the distinct prefixes only)."""

    vocab_size: int
    horizon: int | None
    device = torch.device("cpu")
    dtype = torch.float64

    def log_probs(self, prefixes) -> torch.Tensor:
        """Next-token log-probabilities, log_softmax of :meth:`logits`: (B, t) → (B, V)."""
        return torch.log_softmax(self.logits(prefixes), dim=-1)

    def sample(self, n: int, *, generator, length: int | None = None) -> torch.Tensor:
        """n sequences drawn token by token from the next-token distributions of ``logits`` → (n, length).

        The draws are those of :meth:`logitrank.synth.LogitModel.sample` (one categorical draw per row
        and step from ``generator``), so a local model and its served copy give the same samples up to
        ties within the recovery error. Each step recovers the logits of the distinct prefixes only.
        """
        n = check_int("n", n, minimum=0)
        if length is None:
            if self.horizon is None:
                raise ValueError("length is required for a model with no horizon (horizon=None)")
            length = self.horizon
        length = check_int("length", length, minimum=0, maximum=self.horizon)
        gen = as_generator(generator, self.device)
        out = torch.empty(n, length, dtype=torch.long)
        for t in range(length):
            probs = torch.softmax(self.logits(out[:, :t]), dim=-1)  # (n, V)
            out[:, t] = torch.multinomial(probs, 1, generator=gen).squeeze(1) if n else out[:, t]
        return out

    def log_prob(self, sequences) -> torch.Tensor:
        """log Pr[y_{1:t}] from the recovered logits: (n, t) → (n,)."""
        limit = None if self.horizon is None else self.horizon
        seq = check_tokens("sequences", sequences, vocab_size=self.vocab_size, device=self.device, max_length=limit)
        total = torch.zeros(seq.shape[0], dtype=self.dtype)
        for t in range(seq.shape[1]):
            lp = self.log_probs(seq[:, :t])  # (n, V)
            total = total + lp.gather(1, seq[:, t : t + 1]).squeeze(1)
        return total


class APIModel(_FromLogits):
    """A model behind an OpenAI-compatible completions endpoint, as a logitrank ``LanguageModel``.

    Parameters
    ----------
    base_url, model : str, optional
        Shorthands for the settings of the same names.
    settings : APISettings, optional
        All settings (:class:`APISettings`); ``base_url``, ``model`` and ``**options`` override its fields.
    vocab : sequence of str, optional
        The server's token texts (``vocab[i]`` = text of id i), for servers that do not name tokens
        ``token_id:N``; refused when two ids share a text.
    **options
        Any field of :class:`APISettings` (``k=``, ``method=``, ``cache_dir=``, ``bos=``, …). ``bos`` is the
        start-token convention: ``"server"`` (default) trusts a model card that says ``adds_bos: true`` and
        refuses one that says nothing (vLLM adds no start token to token-id prompts); an int is prepended
        by the client to every prompt (SmolLM2: 0); None sends prompts as they are.

    Attributes
    ----------
    vocab_size, horizon : int, int or None
        From the settings or the server's model card.
    device, dtype : torch.device("cpu"), torch.float64
        Where and how recovered logits are returned.
    probe : dict or None
        The numbers the consistency probe measured (``check_server``).
    method : str
        The recovery method in use: the setting, or for ``method="auto"`` "token_ids" when the server
        answers ``logprob_token_ids`` (asked once, on first use) and "exact" when it does not.

    Raises
    ------
    ValueError
        The API key variable is unset, the model is not served, k / bias_limit exceed the server's limits, or
        the start-token convention is unsettled (``bos``: a card without ``adds_bos``, or a start token the
        server would add twice).
    ServerUnreachableError, RequestRefusedError, InconsistentServerError, TokenMapError
        Module :mod:`logitrank.verify.models.served._errors`.
    """

    def __init__(self, base_url: str | None = None, model: str | None = None, *, settings: APISettings | None = None,
                 vocab=None, **options):
        if base_url is not None:
            options["base_url"] = base_url
        if model is not None:
            options["model"] = model
        self.settings = settings_from(settings, options)
        self._transport = Transport(self.settings, vocab=vocab)
        self.vocab_size = self._transport.vocab_size
        self.horizon = self._transport.horizon
        self.name = self.settings.model
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=self.settings.max_workers, thread_name_prefix="logitrank-api")
        self.records: list[QueryRecord] = []
        self.queries = 0
        self.probe = None
        self._method = None if self.settings.method == "auto" else self.settings.method
        try:
            if self.settings.check_server:
                self.probe = self._transport.probe()
            if self._transport.bos_error is not None:  # after the probe: a server that refuses requests says so first
                raise ValueError(self._transport.bos_error)
            self._transport.open_cache()  # never stores answers of a conditional the client does not trust
        except BaseException:
            self.close()
            raise

    @property
    def method(self) -> str:
        """The recovery method in use ("token_ids", "exact" or "bisection"); ``method="auto"`` asks the server
        once, here, whether it answers ``logprob_token_ids``."""
        if self._method is None:
            self._method = "token_ids" if self._transport.supports_token_ids() else "exact"
        return self._method

    @property
    def cache_folder(self):
        """The folder of the on-disk answer cache (a ``pathlib.Path``), or None without one."""
        disk = self._transport.disk
        return None if disk is None else disk.folder

    # -- costs ---------------------------------------------------------------------------------
    @property
    def calls(self) -> int:
        """Requests the server answered (the probe's and the fingerprint's included; the spot checks are counted
        apart, in :attr:`spot_checks`)."""
        return self._transport.calls

    @property
    def cached(self) -> int:
        """Requests answered from the memory or disk cache."""
        return self._transport.cached

    @property
    def retries(self) -> int:
        return self._transport.retries

    @property
    def tokens(self) -> int:
        """Tokens billed (prompt + completion) over all paid calls."""
        return self._transport.tokens

    @property
    def probe_calls(self) -> int:
        """Of :attr:`calls`, those that verified the server: the probe and the fingerprint."""
        return self._transport.probe_calls

    @property
    def spot_checks(self) -> int:
        """Paid requests that asked a real request again to check the server (``spot_check_rate``); not in
        :attr:`calls`, their tokens are in :attr:`tokens`."""
        return self._transport.spot_checks

    def cost(self) -> dict[str, int]:
        """The counters as a dict (for reports)."""
        return {"calls": self.calls, "cached": self.cached, "retries": self.retries, "tokens": self.tokens,
                "queries": self.queries, "probe_calls": self.probe_calls, "spot_checks": self.spot_checks}

    def bill(self, report=None) -> dict:
        """What the queries so far cost, beside what a learner counted.

        Parameters
        ----------
        report : LearnReport or ApproxLearnReport, optional
            A learner's report; its ``queries`` (distinct logit queries of the learner) and
            ``samples`` are put beside the API's counts.

        Returns
        -------
        dict with ``calls`` (paid requests, the probe's excluded), ``probe_calls`` (the probe and the
        fingerprint), ``spot_checks`` (further paid requests, at ``spot_check_rate``), ``cached``
        (answers from memory or disk), ``retries``, ``tokens`` (billed), ``vectors`` (logit vectors asked
        for), ``vectors_paid`` (those that needed at least one paid answer: the rest were answered from
        the caches), ``calls_per_vector`` (calls / vectors_paid: ⌈m/token_ids_limit⌉ for the token-id
        method and ⌈(m − 1)/(k − 1)⌉ for the exact one, divided by up to ``batch_prompts`` where prompts
        share requests), ``batch_prompts`` (prompts per request now), the recovery ``method`` in use and
        its per-logit ``error_bound``; with a report also ``learner_queries``, ``learner_samples`` and
        ``calls_per_learner_query``.
        """
        paid = self.calls - self.probe_calls
        with self._lock:
            records = list(self.records)
        fresh = sum(1 for r in records if r.paid)
        out = {"calls": paid, "probe_calls": self.probe_calls, "spot_checks": self.spot_checks,
               "spot_check_rate": self.settings.spot_check_rate, "cached": self.cached, "retries": self.retries,
               "tokens": self.tokens, "vectors": len(records), "vectors_paid": fresh,
               "calls_per_vector": paid / fresh if fresh else float("nan"),
               "batch_prompts": self._transport.batch_limit, "method": self.method, "error_bound": self.error_bound()}
        if report is not None:
            queries = int(report.queries)
            out.update(learner_queries=queries, learner_samples=int(getattr(report, "samples", 0)),
                       calls_per_learner_query=paid / queries if queries else float("nan"))
        return out

    def error_bound(self) -> float:
        """Bound on |recovered − true| of every logit this model returns (the method in use: 2·logprob_error for
        "token_ids", 4·logprob_error for "exact")."""
        return self.settings.error_bound(self.method)

    def check_server(self) -> dict:
        """Run the consistency probe again (:meth:`Transport.probe`); raises on an inconsistent server."""
        self.probe = self._transport.probe()
        return self.probe

    def fingerprint(self) -> str:
        """A stable id of the served model, for on-disk logit-matrix caches: its cache scope and its answers
        to the fixed fingerprint prompts (asked once per client), so another model served under the same
        URL and name gets another id."""
        import hashlib

        text = f"{self.settings.scope}|{self._transport.fingerprint_digest()}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    # -- the protocol --------------------------------------------------------------------------
    def _check_prefixes(self, prefixes, name: str = "prefixes") -> torch.Tensor:
        limit = self._transport.max_prompt
        return check_tokens(name, prefixes, vocab_size=self.vocab_size, device=self.device, max_length=limit,
                            max_length_reason="" if limit is None else " (the longest prompt the server continues)")

    def logits(self, prefixes) -> torch.Tensor:
        """Mean-centred next-token logits (Definition 2.1), recovered through the API: (B, t) → (B, V) float64.

        Each returned logit is within :meth:`error_bound` of the served model's.
        """
        rows = self._check_prefixes(prefixes)
        return torch.from_numpy(self._recover(rows, list(range(self.vocab_size))))

    def column_logits(self, prefixes, columns) -> torch.Tensor:
        """Logits of the tokens ``columns`` only, centred over them: (B, t), (m,) → (B, m) float64.

        Costs ⌈m/token_ids_limit⌉ calls per prompt with the token-id method (⌈(m − 1)/(k − 1)⌉ with the exact
        one) instead of ⌈V/token_ids_limit⌉ (⌈(V − 1)/(k − 1)⌉).
        Entry [i, j] = L[c_j | y_i] − (1/m) Σ_c L[c | y_i]: Definition 2.1's logit less one constant per
        row (Definition 2.1's mean runs over all V tokens, which a subset cannot see), so the rank of a
        matrix of such rows is that of the mean-centred rows ± 1 (module :mod:`~logitrank.verify.models.served._recover`).
        """
        rows = self._check_prefixes(prefixes)
        cols = check_tokens("columns", [list(columns)] if not isinstance(columns, torch.Tensor) else columns[None],
                            vocab_size=self.vocab_size, device=self.device)[0].tolist()
        if not cols:
            raise ValueError("columns must name at least one token id; got none")
        if len(set(cols)) != len(cols):
            raise ValueError("columns must not repeat a token id")
        return torch.from_numpy(self._recover(rows, cols))

    # -- recovery ------------------------------------------------------------------------------
    def _recover(self, rows: torch.Tensor, columns: list[int]) -> np.ndarray:
        """Logits centred over ``columns`` for every row: (B, t) → (B, m), recovering distinct rows once."""
        prompts = [tuple(r) for r in rows.tolist()]
        distinct = list(dict.fromkeys(prompts))
        recover = {"token_ids": self._token_ids, "exact": self._exact, "bisection": self._bisection}[self.method]
        values = recover(distinct, columns)
        index = {p: i for i, p in enumerate(distinct)}
        out = np.empty((len(prompts), len(columns)))
        for i, p in enumerate(prompts):
            out[i] = values[index[p]]
        return out

    def _token_ids(self, prompts: list[tuple[int, ...]], columns: list[int]) -> np.ndarray:
        """Logits centred over ``columns`` from ``logprob_token_ids``: (P,) prompts → (P, m)."""
        chunks = token_id_chunks(columns, self._transport.token_ids_limit)
        answers = self._ask_all(prompts, [(1, {}, chunk) for chunk in chunks])  # logprobs=1: set, as vLLM needs
        out = np.empty((len(prompts), len(columns)))
        for i, p in enumerate(prompts):
            out[i] = centre(token_id_logprobs(columns, chunks, [a.top for a in answers[i]], prompt=p))
            self._record(p, len(columns), answers[i])
        return out

    def _exact(self, prompts: list[tuple[int, ...]], columns: list[int]) -> np.ndarray:
        """Logits centred over ``columns`` from biased top-k answers: (P,) prompts → (P, m)."""
        s = self.settings
        requests = exact_requests(columns, s.k, s.bias_limit)
        answers = self._ask_all(prompts, [(len(req), req, None) for req in requests])
        out = np.empty((len(prompts), len(columns)))
        for i, p in enumerate(prompts):
            out[i] = centre(exact_differences(columns, requests, [a.top for a in answers[i]], prompt=p))
            self._record(p, len(columns), answers[i])
        return out

    def _ask_all(self, prompts: list[tuple[int, ...]], asks: list[tuple]) -> list[list]:
        """Every (k, bias, token_ids) of ``asks`` for every prompt → answers[prompt][ask], the prompts in groups
        of ``batch_limit`` (one request per group and ask), group by group on the thread pool."""
        size, ask_many = self._transport.batch_limit, self._transport.ask_many
        jobs = [(g, j) for g in range(0, len(prompts), size) for j in range(len(asks))]
        results = self._map(lambda job: ask_many(prompts[job[0] : job[0] + size], *asks[job[1]]), jobs)
        out = [[None] * len(asks) for _ in prompts]
        for (g, j), answers in zip(jobs, results):
            for i, answer in enumerate(answers):
                out[g + i][j] = answer
        return out

    def _bisection(self, prompts: list[tuple[int, ...]], columns: list[int]) -> np.ndarray:
        s, ask = self.settings, self._transport.ask
        tops = self._map(lambda p: ask(p, 1, {}), prompts)  # 1. the unbiased argmax of each prompt
        jobs = [(i, z) for i, p in enumerate(prompts) for z in columns if z != tops[i].argmax()]

        def gap(job):  # 2. bisection on the bias that makes z the argmax
            i, z = job
            answers = []

            def is_top(b: float) -> bool:
                answers.append(ask(prompts[i], 1, {z: b}))
                return answers[-1].argmax() == z

            try:
                g, _ = bisect_gap(is_top, s.bias_limit, s.bisection_steps)
            except RecoveryError as err:
                prompt = list(prompts[i])
                raise RecoveryError(f"token {z} after the prompt {prompt[:8]}{'…' if len(prompt) > 8 else ''}: "
                                    f"{err}") from None
            return g, answers

        gaps = dict(zip(jobs, self._map(gap, jobs)))
        out = np.empty((len(prompts), len(columns)))
        for i, p in enumerate(prompts):
            d = np.array([-gaps[(i, z)][0] if (i, z) in gaps else 0.0 for z in columns])
            out[i] = centre(d)
            spent = [tops[i]] + [a for z in columns if (i, z) in gaps for a in gaps[(i, z)][1]]
            self._record(p, len(columns), spent)
        return out

    def _record(self, prompt, m: int, answers) -> None:
        record = QueryRecord(prompt_tokens=len(prompt), columns=m, method=self.method, calls=len(answers),
                             paid=sum(a.paid for a in answers), tokens=sum(a.tokens for a in answers),
                             bound=self.error_bound())
        with self._lock:
            self.records.append(record)
            self.queries += 1

    def _map(self, fn, items: list) -> list:
        """[fn(x) for x in items] on the thread pool; the first failure cancels what has not started and is raised."""
        if len(items) <= 1:
            return [fn(x) for x in items]
        futures = [self._pool.submit(fn, x) for x in items]
        _, pending = wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in futures if f.done() and f.exception() is not None), None)
        if failed is not None:
            for f in pending:
                f.cancel()
            wait(pending)
            raise failed.exception()
        return [f.result() for f in futures]

    # -- lifetime ------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the thread pool and the HTTP client."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        s = self.settings
        method = s.method if self._method is None else self._method  # repr asks the server nothing
        return (f"APIModel({s.base_url!r}, {s.model!r}, V={self.vocab_size}, T={self.horizon}, k={s.k}, "
                f"method={method!r}, {self.cost()})")


class RestrictedAPIModel(_FromLogits):
    """A served model seen on a few tokens Σ' and a horizon T, renormalised over Σ' — X4's
    :class:`~logitrank.verify.claims.checks._surrogate_claims.RestrictedLM`, read through the API.

    Token i here is token ``tokens[i]`` of the served model; Pr'[z | y] = Pr[z | y] / Σ_{z'∈Σ'} Pr[z' | y].
    Its mean-centred logits are the served model's logits centred over Σ', which is exactly what
    :meth:`APIModel.column_logits` recovers: ⌈(V' − 1)/(k − 1)⌉ calls per query instead of the
    ⌈(V − 1)/(k − 1)⌉ a full vector costs. The costs are counted on ``api``.

    Parameters
    ----------
    api : APIModel
    tokens : (V',) sequence of distinct token ids of the served model
    horizon : int >= 1
    """

    def __init__(self, api: APIModel, tokens, horizon: int):
        if not isinstance(api, APIModel):
            raise TypeError(f"api must be an APIModel; got {type(api).__name__}")
        ids = [int(t) for t in tokens]
        if not ids or len(set(ids)) != len(ids) or min(ids) < 0 or max(ids) >= api.vocab_size:
            raise ValueError(f"tokens must be distinct ids in [0, {api.vocab_size}); got {ids[:8]}")
        limit = api._transport.max_prompt
        self.horizon = check_int("horizon", horizon, minimum=1, maximum=None if limit is None else limit + 1)
        self.api, self.tokens, self.vocab_size = api, ids, len(ids)
        self.name = f"{api.name}|Σ'={len(ids)},T={self.horizon}"
        self._base = torch.tensor(ids, dtype=torch.long)

    def logits(self, prefixes) -> torch.Tensor:
        """Mean-centred logits of the restricted model: (B, t) over Σ' → (B, V') float64."""
        rows = check_tokens("prefixes", prefixes, vocab_size=self.vocab_size, device=self.device,
                            max_length=self.horizon - 1, max_length_reason=f" (= horizon {self.horizon} − 1)")
        return self.api.column_logits(self._base[rows], self.tokens)

    def error_bound(self) -> float:
        return self.api.error_bound()

    def cost(self) -> dict[str, int]:
        return self.api.cost()

    def bill(self, report=None) -> dict:
        return self.api.bill(report)
