"""``logitrank serve``: any logitrank model as an OpenAI-compatible completions endpoint.

    logitrank serve --model tiny|tiny@stepN|tiny-b|smollm2|PATH|isan:V,T,d[,seed]
                    [--name NAME] [--host 127.0.0.1] [--port 8000]
                    [--top-logprobs-limit 20] [--bias-limit 100] [--cache-size N]
                    [--max-body-bytes 8388608] [--max-prompts 256] [--max-prompt-tokens 8192]
                    [--api-key-env VAR] [--device cpu] [--dtype float32]

Every spec is read by the one model-name table (:func:`logitrank.verify.models.parse_model_name`):
``isan:V,T,d[,seed]`` serves ``random_isan(V, T, d, generator=seed)`` (seed 0 by default). The model
answers to each of its names (``tiny`` and ``tiny@step1500``; ``isan`` and ``isan:V,T,d,seed``),
all listed in ``/v1/models``. With ``--api-key-env VAR`` requests
must carry the key held in that environment variable. Exit status 2 for usage errors (one line
on stderr naming the option, the value and what was expected), all found before the model is built
(a port out of range or taken, a host that does not resolve, a device this machine lacks, an ISAN
over the size budget) or while it is built (a model that cannot be loaded); the server runs until
interrupted.

The server speaks vLLM's dialect or refuses (a 400 naming each field it does not implement, such as
``temperature`` other than 0 or ``seed``), answers ``GET /health``, and its model card says
``bos_token_id`` and ``adds_bos: true``: the model's start token is prepended to every prompt, so
clients send prompts without it (``APIModel``'s default ``bos="server"``).
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import sys

from logitrank._validation import UsageError

__all__ = ["add_parser", "model_from_spec", "run"]

_DTYPES = ("float32", "float64", "bfloat16", "float16")


def add_parser(sub) -> argparse.ArgumentParser:
    """Add the ``serve`` subcommand to ``sub`` (the subparsers of ``logitrank``)."""
    p = sub.add_parser("serve", help="serve a model as an OpenAI-compatible /v1/completions endpoint (logprobs, logit_bias)",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, metavar="SPEC",
                   help="tiny, tiny@stepN, tiny-b, smollm2, a model folder, or isan:V,T,d[,seed]")
    p.add_argument("--name", default=None, help="the model's name in requests (default: its own name, or 'isan')")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--top-logprobs-limit", type=int, default=20, metavar="K", help="largest logprobs accepted (default 20)")
    p.add_argument("--bias-limit", type=float, default=100.0, metavar="B", help="largest |logit_bias| accepted (default 100)")
    p.add_argument("--cache-size", type=int, default=None, metavar="N",
                   help="prompts kept in the prefix cache (default: what fits in 256 MiB, at most 4096)")
    p.add_argument("--max-body-bytes", type=int, default=8 * 2**20, metavar="N",
                   help="largest request body accepted, in bytes (default 8 MiB; above it: HTTP 413)")
    p.add_argument("--max-prompts", type=int, default=256, metavar="N", help="prompts per request (default 256)")
    p.add_argument("--max-prompt-tokens", type=int, default=8192, metavar="N",
                   help="tokens per prompt (default 8192; the model's own context limit applies too)")
    p.add_argument("--api-key-env", default=None, metavar="VAR", help="require the API key held in this environment variable")
    p.add_argument("--device", default="cpu", help="torch device of the model (default cpu)")
    p.add_argument("--dtype", default=None, choices=_DTYPES, help="weights' dtype (default: the model's own)")
    return p


def model_from_spec(spec: str, *, device: str = "cpu", dtype: str | None = None):
    """The model a ``--model`` spec names (:func:`logitrank.verify.models.parse_model_name`) → (model, names).

    ``names`` lists every name the model answers to, the canonical one first.

    >>> m, names = model_from_spec("isan:3,4,2")
    >>> (m.vocab_size, m.horizon, names)
    (3, 4, ('isan:3,4,2,0', 'isan:3,4,2', 'isan'))
    """
    import torch

    from ..models import load_model, parse_model_name

    parsed = parse_model_name(spec)
    model = load_model(spec, device=device, dtype=None if dtype is None else getattr(torch, dtype))
    return model, parsed.aliases


def _check_numbers(args) -> None:
    """Every numeric option in range (one UsageError naming the first that is not)."""
    for flag, value, low, high in (("--port", args.port, 0, 65535), ("--top-logprobs-limit", args.top_logprobs_limit, 1, None),
                                   ("--cache-size", args.cache_size, 0, None), ("--max-body-bytes", args.max_body_bytes, 1, None),
                                   ("--max-prompts", args.max_prompts, 1, None),
                                   ("--max-prompt-tokens", args.max_prompt_tokens, 1, None)):
        if value is not None and value < low:
            raise UsageError(f"{flag} must be >= {low}; got {value}")
        if value is not None and high is not None and value > high:
            raise UsageError(f"{flag} must be <= {high} (a TCP port is 0 … 65535); got {value}")
    if not (math.isfinite(args.bias_limit) and args.bias_limit > 0):
        raise UsageError(f"--bias-limit must be a finite number > 0; got {args.bias_limit}")


def _check_host(host: str, port: int) -> None:
    """``host`` must resolve to an address this machine can listen on (no socket is bound here)."""
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise UsageError(f"--host {host!r} does not resolve to an address ({reason}); give an address such as "
                         "127.0.0.1 or 0.0.0.0, or a host name this machine resolves") from None


def _listen(host: str, port: int):
    """The bound socket of ``host:port``, or UsageError naming the option (taken port, foreign address)."""
    from ..models.served._server import _bind

    try:
        return _bind(host, port)
    except OSError as err:
        reason = err.strerror or str(err)
        raise UsageError(f"--host {host} --port {port}: cannot listen there ({reason}); choose another --port, "
                         "or a --host that is an address of this machine") from None


def _model(args):
    """(model, names) of ``--model``; UsageError for a bad name, a device this machine lacks or a failed load."""
    from logitrank._validation import check_device

    from ..models import parse_model_name

    try:
        check_device("--device", args.device)
    except (ValueError, TypeError) as err:
        raise UsageError(str(err)) from None
    try:
        parse_model_name(args.model)
    except (ValueError, FileNotFoundError) as err:
        raise UsageError(f"--model {args.model}: {err}") from None
    try:
        return model_from_spec(args.model, device=args.device, dtype=args.dtype)
    except (ValueError, FileNotFoundError, ImportError, MemoryError, RuntimeError, OSError) as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UsageError(f"--model {args.model}: {reason}") from None


def run(args) -> int:
    """Serve the model of ``args`` until interrupted; UsageError (exit 2) on a bad option."""
    from ..models.served._server import serve

    _check_numbers(args)
    _check_host(args.host, args.port)
    key = None
    if args.api_key_env is not None:
        key = os.environ.get(args.api_key_env)
        if not key:
            raise UsageError(f"--api-key-env {args.api_key_env}: that environment variable is not set")
    sock = _listen(args.host, args.port)  # before the model is built: a taken port costs nothing
    try:
        model, names = _model(args)
    except BaseException:
        sock.close()
        raise
    name, aliases = (args.name, names) if args.name else (names[0], names[1:])
    port = sock.getsockname()[1]
    bos = getattr(model, "bos_token_id", None)
    start = "no start token" if bos is None else f"start token {bos} prepended to every prompt"
    print(f"serving {' = '.join((name, *aliases))} (V={model.vocab_size}, T={model.horizon}, {start}) at "
          f"http://{args.host}:{port}/v1", file=sys.stderr)
    serve(model, host=args.host, port=port, sock=sock, name=name, aliases=aliases,
          top_logprobs_limit=args.top_logprobs_limit, bias_limit=args.bias_limit, cache_size=args.cache_size, api_key=key,
          max_body_bytes=args.max_body_bytes, max_prompts=args.max_prompts, max_prompt_tokens=args.max_prompt_tokens)
    return 0
