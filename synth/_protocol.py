"""The language-model interface every part of logitrank speaks (paper A, §2).

A model is anything with a vocabulary Σ = {0, …, V−1}, an optional horizon T, and mean-centred
next-token logits (Definition 2.1): for a prefix y_{1:t},

    L_M[z | y_{1:t}] = log Pr_M[z | y_{1:t}] − (1/V) Σ_{z'} log Pr_M[z' | y_{1:t}].

:class:`LanguageModel` is the structural protocol; :class:`LogitModel` is a convenience base class
that derives ``log_probs``, ``sample`` and ``log_prob`` from a single ``_raw_logits`` method and
does all argument checking, so a new synthetic model only writes its next-token scores.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Protocol, runtime_checkable

import torch

from logitrank._validation import as_generator, check_int, check_tokens

__all__ = ["LanguageModel", "LogitModel", "center_logits"]


@runtime_checkable
class LanguageModel(Protocol):
    """Structural interface of a next-token model over Σ = {0, …, V−1}.

    Attributes
    ----------
    vocab_size : int
        V, the number of tokens.
    horizon : int or None
        T, the sequence length the model defines a distribution over; None when unbounded.

    Methods
    -------
    logits(prefixes : (B, t) LongTensor) -> (B, V) tensor
        Mean-centred next-token logits (Definition 2.1); every row sums to zero. All prefixes in one
        call share one length t; t = 0 (the empty prefix) is allowed.
    log_probs(prefixes : (B, t) LongTensor) -> (B, V) tensor
        Next-token log-probabilities, ``log_softmax(logits(prefixes))``.
    sample(n : int, *, generator) -> (n, T) LongTensor
        n independent sequences of length T.
    log_prob(sequences : (n, t) LongTensor) -> (n,) tensor
        log Pr_M[y_{1:t}] (the marginal of the first t tokens when t < T).
    """

    @property
    def vocab_size(self) -> int: ...

    @property
    def horizon(self) -> int | None: ...

    def logits(self, prefixes: torch.Tensor) -> torch.Tensor: ...

    def log_probs(self, prefixes: torch.Tensor) -> torch.Tensor: ...

    def sample(self, n: int, *, generator) -> torch.Tensor: ...

    def log_prob(self, sequences: torch.Tensor) -> torch.Tensor: ...


def center_logits(scores: torch.Tensor) -> torch.Tensor:
    """Subtract each row's mean: (…, V) scores → (…, V) mean-centred logits (Definition 2.1).

    Any per-row additive constant (e.g. a log-normaliser) cancels, so log-probabilities and
    unnormalised scores give the same result.

    Examples
    --------
    >>> import torch
    >>> center_logits(torch.tensor([[1.0, 2.0, 3.0]]))
    tensor([[-1.,  0.,  1.]])
    """
    if not isinstance(scores, torch.Tensor) or not scores.dtype.is_floating_point or scores.ndim < 1:
        got = f"dtype {scores.dtype}, shape {tuple(scores.shape)}" if isinstance(scores, torch.Tensor) else type(scores).__name__
        raise TypeError(f"scores must be a floating (…, V) torch.Tensor; got {got}")
    return scores - scores.mean(dim=-1, keepdim=True)


class LogitModel(ABC):
    """Base class: implement ``_raw_logits`` and get the whole :class:`LanguageModel` protocol.

    Subclasses set ``vocab_size``, ``horizon``, ``device`` and ``dtype`` and implement
    ``_raw_logits(prefixes)`` returning (B, V) next-token scores up to a per-row additive constant
    for a validated (B, t) LongTensor on ``device``. ``sample`` and ``log_prob`` here re-run every
    prefix (O(T²) work); models with a recurrent state override them with O(T) versions.
    """

    vocab_size: int
    horizon: int | None
    device: torch.device
    dtype: torch.dtype

    @abstractmethod
    def _raw_logits(self, prefixes: torch.Tensor) -> torch.Tensor:
        """(B, t) LongTensor → (B, V) scores (any per-row shift allowed)."""

    # -- validation ---------------------------------------------------------------------------
    def _check_prefixes(self, prefixes, name: str = "prefixes") -> torch.Tensor:
        """Prefixes must leave room for a next token: length <= T − 1."""
        limit = None if self.horizon is None else self.horizon - 1
        reason = "" if self.horizon is None else f" (= horizon {self.horizon} − 1: a next token must exist)"
        return check_tokens(
            name, prefixes, vocab_size=self.vocab_size, device=self.device,
            max_length=limit, max_length_reason=reason,
        )

    def _check_sequences(self, sequences, name: str = "sequences") -> torch.Tensor:
        reason = "" if self.horizon is None else " (the horizon)"
        return check_tokens(
            name, sequences, vocab_size=self.vocab_size, device=self.device,
            max_length=self.horizon, max_length_reason=reason,
        )

    def _check_length(self, length) -> int:
        if length is None:
            if self.horizon is None:
                raise ValueError("length is required for a model with no horizon (horizon=None)")
            return self.horizon
        limit = self.horizon
        return check_int("length", length, minimum=0, maximum=limit)

    # -- the protocol -------------------------------------------------------------------------
    def logits(self, prefixes) -> torch.Tensor:
        """Mean-centred next-token logits: (B, t) LongTensor → (B, V) (Definition 2.1)."""
        return center_logits(self._raw_logits(self._check_prefixes(prefixes)))

    def log_probs(self, prefixes) -> torch.Tensor:
        """Next-token log-probabilities: (B, t) LongTensor → (B, V)."""
        return torch.log_softmax(self._raw_logits(self._check_prefixes(prefixes)), dim=-1)

    def sample(self, n: int, *, generator, length: int | None = None) -> torch.Tensor:
        """Draw n sequences token by token: → (n, length) LongTensor (length defaults to T)."""
        n = check_int("n", n, minimum=0)
        length = self._check_length(length)
        gen = as_generator(generator, self.device)
        out = torch.empty(n, length, dtype=torch.long, device=self.device)
        for t in range(length):
            probs = torch.softmax(self._raw_logits(out[:, :t]), dim=-1)  # (n, V)
            out[:, t] = _draw(probs, gen)
        return out

    def log_prob(self, sequences) -> torch.Tensor:
        """log Pr[y_{1:t}]: (n, t) LongTensor → (n,)."""
        seq = self._check_sequences(sequences)
        total = torch.zeros(seq.shape[0], dtype=self.dtype, device=self.device)
        for t in range(seq.shape[1]):
            lp = torch.log_softmax(self._raw_logits(seq[:, :t]), dim=-1)  # (n, V)
            total = total + lp.gather(1, seq[:, t : t + 1]).squeeze(1)
        return total


def _draw(probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One categorical draw per row of (n, V) probabilities → (n,) LongTensor."""
    if probs.shape[0] == 0:
        return torch.empty(0, dtype=torch.long, device=probs.device)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)
