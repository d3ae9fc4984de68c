"""Level-wise tensor caches of logit blocks for CompleteSpan (paper A, Algorithm 3).

CompleteSpan asks, at every level t and round, for blocks L(R, C) with R ⊂ Σ^t (the spanning
histories H_t and the structured rows H_{t−1}∘Σ) and C the futures F_t ∪ Σ∘F_{t+1}. The previous
implementation answered them prefix by prefix through a Python memo (:class:`QueryCache`): exact
de-duplication, but a dict entry per prefix (4.26M per level at V=64, T=32, d=32: 46.6 s and
7.5 GiB). Here each level keeps one dense tensor over (registered rows × kept futures), filled by the
model's batched path (an ISAN's factorised ``logit_block``, counted per prefix by
:class:`logitrank.synth.CountingOracle` exactly like single queries).

The same prefix p = h∘f arises at several levels: (t, h, z∘f) and (t+1, h∘z, f) ask for the same
logits. Before a block goes to the model, its entries are looked up in three places — the level's own
tensor, the next level (first future token moved onto the history) and the previous level (last
history token moved onto the future) — so a prefix that the memo would have served is served here
too, and the query counts of the two paths agree (tested). Sampled rows are not stored (they are
new every round, as in the memo path).

Shapes: n rows, m futures, V tokens; blocks are (n, m, V) float64.
"""

from __future__ import annotations

import torch

from ._logit_matrix import logit_matrix

__all__ = ["LevelStore", "SpanQueries"]

Word = tuple[int, ...]


class LevelStore:
    """Dense cache of L(R_t, K_t) at one level: rows R_t and futures K_t registered on first use.

    ``data`` (rows, futures, V) holds values where ``known`` (rows, futures) is True; both grow by
    doubling. ``children[h]`` maps a token z to the row index of h∘z (for the shallower level's
    look-ups) and ``extensions[f]`` maps z to the future index of z∘f (for the deeper level's).
    """

    def __init__(self, V: int, dtype: torch.dtype, device: torch.device):
        self.V, self.dtype, self.device = V, dtype, device
        self.rows: dict[Word, int] = {}
        self.futures: dict[Word, int] = {}
        self.children: dict[Word, dict[int, int]] = {}
        self.extensions: dict[Word, dict[int, int]] = {}
        self.data = torch.zeros(0, 0, V, dtype=dtype, device=device)  # (rows, futures, V)
        self.known = torch.zeros(0, 0, dtype=torch.bool, device=device)  # (rows, futures)

    def row_index(self, rows: list[Word], register: bool) -> torch.Tensor:
        """(n,) indices of ``rows`` (−1 where unregistered and ``register`` is False)."""
        out = []
        for h in rows:
            i = self.rows.get(h)
            if i is None and register:
                i = self.rows[h] = len(self.rows)
                if h:
                    self.children.setdefault(h[:-1], {})[h[-1]] = i
            out.append(-1 if i is None else i)
        self._grow()
        return torch.tensor(out, dtype=torch.long, device=self.device)

    def future_index(self, futures: list[Word], register) -> torch.Tensor:
        """(m,) indices of ``futures``; ``register(f)`` says which unregistered ones to add (else −1)."""
        out = []
        for f in futures:
            j = self.futures.get(f)
            if j is None and register(f):
                j = self.futures[f] = len(self.futures)
                if f:
                    self.extensions.setdefault(f[1:], {})[f[0]] = j
            out.append(-1 if j is None else j)
        self._grow()
        return torch.tensor(out, dtype=torch.long, device=self.device)

    def _grow(self) -> None:
        r, c = len(self.rows), len(self.futures)
        R, C = self.known.shape
        if r <= R and c <= C:
            return
        R2, C2 = max(R, r if r <= R else max(2 * R, r, 8)), max(C, c if c <= C else max(2 * C, c, 8))
        data = torch.zeros(R2, C2, self.V, dtype=self.dtype, device=self.device)
        known = torch.zeros(R2, C2, dtype=torch.bool, device=self.device)
        data[:R, :C], known[:R, :C] = self.data, self.known
        self.data, self.known = data, known

    def gather(self, ri: torch.Tensor, fj: torch.Tensor, out: torch.Tensor, have: torch.Tensor) -> None:
        """Copy known entries at (ri[a, b], fj[a, b]) (−1: none) into ``out``/``have`` (n, m(, V)) where
        ``have`` is still False."""
        valid = (ri >= 0) & (fj >= 0) & ~have
        if not bool(valid.any()):
            return
        a, b = valid.nonzero(as_tuple=True)
        r, f = ri[a, b], fj[a, b]
        hit = self.known[r, f]
        a, b, r, f = a[hit], b[hit], r[hit], f[hit]
        out[a, b] = self.data[r, f]
        have[a, b] = True

    def write(self, ri: torch.Tensor, fj: torch.Tensor, values: torch.Tensor) -> None:
        """Store values (n, m, V) at rows ``ri`` (n,) × futures ``fj`` (m,), skipping −1 indices."""
        rk, fk = ri >= 0, fj >= 0
        if not (bool(rk.any()) and bool(fk.any())):
            return
        rs, fs = ri[rk], fj[fk]
        block = values[rk][:, fk]  # (n', m', V)
        self.data[rs.unsqueeze(1), fs.unsqueeze(0)] = block
        self.known[rs.unsqueeze(1), fs.unsqueeze(0)] = True


class SpanQueries:
    """Blocks L(rows, futures) per level for CompleteSpan, from the level caches or the model.

    Parameters
    ----------
    model : LanguageModel (typically a CountingOracle) with a horizon T
    store_all : bool
        Keep every future a cached row is asked on (the unsketched test: rows are re-read on all
        columns every round) — memory ~ rows · |F_t ∪ Σ∘F_{t+1}| · V · 8 bytes per level. When False
        only the futures in ``kept[t]`` (CompleteSpan passes F_t) are kept.
    """

    def __init__(self, model, *, store_all: bool):
        self.model = model
        self.T, self.V = model.horizon, model.vocab_size
        self.store_all = store_all
        self.kept: list[set[Word]] = [set() for _ in range(self.T)]
        self._dtype = torch.float64
        self._device = getattr(model, "device", torch.device("cpu"))
        self.levels = [LevelStore(self.V, self._dtype, self._device) for _ in range(self.T)]

    # -- the model ---------------------------------------------------------------------------------------
    def ask(self, rows: torch.Tensor, futures: list[Word]) -> torch.Tensor:
        """L(rows, futures) from the model: (n, t) LongTensor → (n, m, V) float64, counted by the oracle."""
        n, m = rows.shape[0], len(futures)
        if n == 0 or m == 0:
            return torch.zeros(n, m, self.V, dtype=self._dtype, device=self._device)
        block = getattr(self.model, "logit_block", None)
        if callable(block):
            out = block(rows, futures)
        else:
            out = logit_matrix(self.model, rows, futures)
        return out.reshape(n, m, self.V).to(self._dtype)  # (n, m, V)

    # -- cached blocks -----------------------------------------------------------------------------------
    def block(self, t: int, rows: list[Word], futures: list[Word], *, store: bool = True) -> torch.Tensor:
        """L(rows, futures) at level t (every row of length t): (n, m, V) float64.

        Known entries come from the caches (own level, level t+1, level t−1); the missing ones are
        asked of the model, grouped by their pattern of missing futures so that no known prefix is
        asked twice. With ``store`` the rows are registered and the new values kept (on the kept
        futures).
        """
        n, m, V = len(rows), len(futures), self.V
        out = torch.zeros(n, m, V, dtype=self._dtype, device=self._device)
        have = torch.zeros(n, m, dtype=torch.bool, device=self._device)
        if n == 0 or m == 0:
            return out
        level = self.levels[t]
        keep = (lambda f: True) if self.store_all else (lambda f: f in self.kept[t])
        ri = level.row_index(rows, register=store)
        fj = level.future_index(futures, register=keep if store else (lambda f: False))
        level.gather(ri.unsqueeze(1).expand(n, m), fj.unsqueeze(0).expand(n, m), out, have)
        if t + 1 < self.T:
            self._from_deeper(t, rows, futures, out, have)
        if t > 0:
            self._from_shallower(t, rows, futures, out, have)
        self._fill_missing(rows, futures, out, have)
        if store:
            level.write(ri, fj, out)
        return out

    def _from_deeper(self, t, rows, futures, out, have) -> None:
        """(t, h, z∘f) = (t+1, h∘z, f): rows h with children at level t+1, futures of length >= 1."""
        deep = self.levels[t + 1]
        n, m = len(rows), len(futures)
        child = torch.full((n, self.V), -1, dtype=torch.long, device=self._device)
        any_child = False
        for a, h in enumerate(rows):
            kids = deep.children.get(h)
            if kids:
                any_child = True
                for z, i in kids.items():
                    child[a, z] = i
        if not any_child:
            return
        first = torch.tensor([f[0] if f else 0 for f in futures], dtype=torch.long, device=self._device)
        tail = torch.tensor([deep.futures.get(f[1:], -1) if f else -1 for f in futures], dtype=torch.long,
                            device=self._device)
        deep.gather(child[:, first], tail.unsqueeze(0).expand(n, m), out, have)

    def _from_shallower(self, t, rows, futures, out, have) -> None:
        """(t, h'∘z, f) = (t−1, h', z∘f): rows whose parent is registered at level t−1."""
        shallow = self.levels[t - 1]
        n, m = len(rows), len(futures)
        parent = torch.tensor([shallow.rows.get(h[:-1], -1) for h in rows], dtype=torch.long, device=self._device)
        if not bool((parent >= 0).any()):
            return
        ext = torch.full((self.V, m), -1, dtype=torch.long, device=self._device)  # (V, m): index of z∘f
        for b, f in enumerate(futures):
            for z, j in shallow.extensions.get(f, {}).items():
                ext[z, b] = j
        last = torch.tensor([h[-1] for h in rows], dtype=torch.long, device=self._device)
        shallow.gather(parent.unsqueeze(1).expand(n, m), ext[last], out, have)

    def _fill_missing(self, rows, futures, out, have) -> None:
        """Ask the model for the entries still missing, one block per distinct pattern of missing futures."""
        missing = ~have  # (n, m)
        need = missing.any(dim=1)
        if not bool(need.any()):
            return
        idx = need.nonzero(as_tuple=True)[0]
        patterns, inverse = torch.unique(missing[idx], dim=0, return_inverse=True)
        t = len(rows[0])
        for p in range(patterns.shape[0]):
            a = idx[inverse == p]  # rows with this pattern
            b = patterns[p].nonzero(as_tuple=True)[0]  # their missing futures
            R = torch.tensor([rows[i] for i in a.tolist()], dtype=torch.long, device=self._device).reshape(len(a), t)
            vals = self.ask(R, [futures[j] for j in b.tolist()])  # (|a|, |b|, V)
            out[a.unsqueeze(1), b.unsqueeze(0)] = vals
            have[a.unsqueeze(1), b.unsqueeze(0)] = True
