"""The claims ledger of the two papers, restated: every ID the project must check.

Each entry is a short restatement in this project's words with its source in the papers.
Paper A: "Sequences of Logits Reveal the Low Rank Structure of Language Models" (arXiv 2510.24966).
Paper B: "Provably Learning from Modern Language Models via Low Logit Rank" (arXiv 2512.09892).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LEDGER", "Claim"]


@dataclass(frozen=True)
class Claim:
    """One ledger row: ``id`` (e.g. "T1"), a one-line ``statement`` and its ``source``."""

    id: str
    statement: str
    source: str


_ROWS = [
    ("T1", "Every level logit matrix L(Σ^t, Σ^{≤T−t}) of a dim-d time-varying ISAN has rank ≤ d", "A, Fact C.4"),
    ("T2", "Spanning histories of a rank-d model give a dim-d ISAN with the same distribution", "A, Lemma C.3 / Thm 4.3"),
    ("T3", "A dim-d time-varying ISAN equals a time-invariant ISAN of dim T·d", "A, Fact C.2"),
    ("T4", "A linear-in-state SSM (p, q, d) equals an ISAN of dim d+2q+1", "A, Fact C.7"),
    ("T5", "n-bit copying has a dim-(n+1) ISAN whose TV to copying vanishes as C grows", "A, Fact C.9"),
    ("T6", "Noisy parity has a dim-2 ISAN; its mean-centred logit rank is at most 1", "A, Fact C.11"),
    ("T7", "Noisy parity: a sample-based learner fails where the logit-query learner succeeds", "A, Thm C.13"),
    ("T8", "Algorithms 2+3 stop within dT rounds with E[TV] ≤ ε from polynomially many queries", "A, Thm 4.4 / Lemma C.17"),
    ("T9", "Power-law spectra: α > ½ gives vanishing rank-r error, α < ½ does not", "A, Fact A.1"),
    ("T10", "Summed KL between row softmaxes ≤ ½‖A − A′‖_F²", "A, Fact A.2"),
    ("T11", "LinGen's KL to the truth is bounded under condition (5)", "A, Lemma C.18 / Cor C.19"),
    ("T12", "The empirical Gram matrix of L(H, F) concentrates as |F| grows", "A, Fact C.20"),
    ("T13", "KL(Q‖P) ≤ (1+C)·sqrt(2·KL(P‖Q)) when −log p_i ≤ C", "A, Fact C.21"),
    ("B1", "The approximate learner's TV is small when ε_avg is small (TV vs ε_avg, d, T)", "B, main theorem"),
    ("B2", "Witnesses per level stay O(d log) (elliptical potential)", "B, §2.2"),
    ("B3", "The joint LP keeps ‖c‖_∞ ≤ β while greedy composition grows with t", "B, §2.3"),
    ("B4", "Query counts are polynomial; measured against the stated bound", "B, main theorem"),
    ("B5", "The held-out TV certificate never accepts a sampler with TV > ε and accepts where TV ≤ ε/2 (regime map)",
     "B, main theorem (its TV guarantee, certified; issue 21)"),
    ("B6", "Completeness: the certificate accepts (w.p. ≥ 1 − δ) whenever the model's ε_avg is small enough for ε",
     "B, main theorem (its guarantee w.p. ≥ 1 − δ; issue 31)"),
    ("E1", "Logit-matrix singular values follow a power law with α slightly above ½, stable under downsizing", "A, Fig 2, 6"),
    ("E2", "An untrained model shows no such structure (α well below ½)", "A, Fig 6d"),
    ("E3", "Average KL to the best rank-r approximation decays as a power law in r", "A, Fig 1a, 7"),
    ("E4", "Over training, KL-to-low-rank drops sharply, then rises slowly", "A, Fig 3"),
    ("E5", "α is similar across datasets", "A, Fig 8"),
    ("E6", "Top-k and random-k column choices give similar α", "A, Fig 10"),
    ("E7", "Column spaces for real and nonsense futures overlap far more than random subspaces", "A, Fig 4"),
    ("E8", "The overlap holds across models, except an untrained one", "A, Fig 11"),
    ("E9", "The nearest history by logit-row distance is semantically related", "A, Table 1"),
    ("E10", "LinGen beats single-token LinGen, a 5-token-context model and an earlier checkpoint in KL", "A, Fig 5"),
    ("E11", "LinGen with nonsense histories and futures still beats those baselines", "A, Fig 1b, Table 3"),
    ("E12", "A Gaussian matrix of the same shape shows no power-law decay", "A, App. B"),
    ("X1", "How achievable TV depends on d at fixed ε_avg", "B, open problem 1"),
    ("X2", "Learning from conditional samples only: the e^{2λ} cost of estimating logits", "B, open problem 2"),
    ("X3", "Where the learners break in d, |Σ|, T and noise ξ", "project"),
    ("X4", "An ISAN surrogate of a real LM learned from logit queries: TV/KL vs rank d", "project"),
    ("X5", "Is spectral decay a diagnostic of training progress?", "A, closing question"),
    ("X6", "A model's logit vectors span exactly its hidden width: the rank of its next-token logits is d",
     "A, §4 (logit queries read the embedding dimension; Carlini et al. 2024)"),
]

#: Every claim ID of the ledger, in ledger order.
LEDGER: dict[str, Claim] = {cid: Claim(cid, text, src) for cid, text, src in _ROWS}
