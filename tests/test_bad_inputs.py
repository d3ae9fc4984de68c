"""A table of bad calls, library and CLI: each must raise a clear error naming what was wrong.

Issue 12: every bad input gets an exception of a stated type whose message names the argument, the
value and what was expected — never a silent wrong result, never a raw error from deep inside
torch, numpy, cvxpy/HiGHS or the allocator. CLI usage errors exit 2 with a one-line message
before any work; here they are re-raised as :class:`UsageError` carrying that line.
"""

from __future__ import annotations

import contextlib
import io
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from logitrank import algorithms as alg
from logitrank import synth
from logitrank import verify as ver
from logitrank.verify.cli import main

M = synth.random_isan(3, 4, 2, generator=0)  # V = 3, T = 4, d = 2, float64
P = synth.noisy_parity([1, 0, 1], 0.1)  # V = 2, T = 4
H2 = [[()], [(0,), (1,), (2,)], [(0, 0), (1, 1)]]  # spanner histories of levels 1 … T − 1 = 3
F2 = [[(0,), (1,), (2,)]] * 4  # every single token per level
L = torch.randn(6, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64)  # (n, m·k), k = 3
SPEC = np.sort(np.random.default_rng(0).uniform(0.1, 1.0, 20))[::-1].copy()
TMP = Path(tempfile.mkdtemp(prefix="logitrank-bad-"))
FILE = TMP / "a-file"
FILE.write_text("not a database")
DIR = TMP / "a-folder"
DIR.mkdir()
JSON = str(TMP / "out" / "checks.json")


class UsageError(Exception):
    """A CLI usage error (exit 2) with its one-line message."""


def cli(*argv: str):
    """Run the CLI; exit 2 becomes UsageError(last stderr line); anything else is returned."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            return main(list(argv))
        except SystemExit as stop:
            if stop.code == 2:
                raise UsageError(err.getvalue().strip().splitlines()[-1]) from None
            raise


def check(*extra: str):
    return cli("check", "T3", "--json", JSON, *extra)


def tensor(*rows, dtype=torch.float64):
    return torch.tensor(rows, dtype=dtype)


BAD = [
    # ---- synth: generators ---------------------------------------------------------------------------
    ("random_isan V=0", lambda: synth.random_isan(0, 4, 2, generator=0), ValueError, r"vocab_size must be >= 2; got 0"),
    ("random_isan T float", lambda: synth.random_isan(3, 4.0, 2, generator=0), TypeError, r"horizon must be an integer; got 4.0"),
    ("random_isan d=0", lambda: synth.random_isan(3, 4, 0, generator=0), ValueError, r"hidden_dim must be >= 1; got 0"),
    ("random_isan bool V", lambda: synth.random_isan(True, 4, 2, generator=0), TypeError, r"vocab_size must be an integer; got True"),
    ("random_isan no generator", lambda: synth.random_isan(3, 4, 2, generator=None), TypeError, r"generator must be a torch.Generator or an int seed"),
    ("random_isan scale nan", lambda: synth.random_isan(3, 4, 2, generator=0, scale=math.nan), ValueError, r"scale must be finite; got nan"),
    ("random_isan scale 0", lambda: synth.random_isan(3, 4, 2, generator=0, scale=0.0), ValueError, r"scale\ must\ lie\ in\ \(0\.0,\ inf\];\ got\ 0\.0"),
    ("random_isan scale overflow f32", lambda: synth.random_isan(3, 4, 2, generator=0, scale=1e39, dtype=torch.float32), ValueError, r"scale=1e\+39 overflows dtype torch.float32"),
    ("random_isan int dtype", lambda: synth.random_isan(3, 4, 2, generator=0, dtype=torch.int64), TypeError, r"dtype must be a floating torch dtype"),
    ("random_isan device gpu", lambda: synth.random_isan(3, 4, 2, generator=0, device="gpu"), ValueError, r"device must name a torch device such as 'cpu', 'cuda' or 'cuda:0'; got 'gpu'"),
    ("random_isan huge", lambda: synth.random_isan(50000, 100, 100, generator=0), MemoryError, r"random_isan\(vocab_size=50000, horizon=100, hidden_dim=100\) .* needs about .* GiB, more than"),
    ("noisy_parity noise 1.5", lambda: synth.noisy_parity([1, 0], 1.5), ValueError, r"noise\ must\ lie\ in\ \[0\.0,\ 0\.5\);\ got\ 1\.5"),
    ("noisy_parity noise nan", lambda: synth.noisy_parity([1, 0], math.nan), ValueError, r"noise\ must\ be\ finite;\ got\ nan"),
    ("noisy_parity secret 2", lambda: synth.noisy_parity([1, 2], 0.1), ValueError, r"secret\ must\ hold\ only\ the\ bits\ 0\ and\ 1;\ got\ 2"),
    ("noisy_parity secret empty", lambda: synth.noisy_parity([], 0.1), ValueError, r"secret\ must\ hold\ n\ >=\ 1\ bits;\ got\ an\ empty\ sequence"),
    ("noisy_parity hidden_dim 3", lambda: synth.noisy_parity([1, 0], 0.1, hidden_dim=3), ValueError, r"hidden_dim\ must\ be\ <=\ 2;\ got\ 3"),
    ("copying n_bits 0", lambda: synth.copying(0, 5.0), ValueError, r"n_bits must be >= 1; got 0"),
    ("copying strength nan", lambda: synth.copying(2, math.nan), ValueError, r"strength must be finite"),
    ("copying strength str", lambda: synth.copying(2, "5"), TypeError, r"strength must be a real number; got '5'"),
    ("copying_tv method", lambda: synth.copying_tv(2, 5.0, method="guess"), ValueError, r"method\ must\ be\ one\ of\ \('closed_form',\ 'enumerate'\);\ got\ 'guess'"),
    ("copying_log_prob id 7", lambda: synth.copying_log_prob(2, torch.full((1, 3), 7)), ValueError, r"sequences must hold token ids in \[0, 2\); got id 7"),
    ("copying_log_prob too long", lambda: synth.copying_log_prob(2, torch.zeros(1, 9, dtype=torch.long)), ValueError, r"sequences must have length <= 4 \(= 2·n_bits for n_bits=2\); got length 9"),
    ("linear_ssm state_dim 0", lambda: synth.random_linear_ssm(3, 4, state_dim=0, input_dim=1, output_dim=1, generator=0), ValueError, r"state_dim must be >= 1; got 0"),
    ("linear_ssm no generator", lambda: synth.random_linear_ssm(3, 4, state_dim=2, input_dim=1, output_dim=1, generator="x"), TypeError, r"generator must be a torch.Generator or an int seed"),
    ("power_law_isan alpha nan", lambda: synth.power_law_isan(3, 4, 2, math.nan, generator=0), ValueError, r"alpha\ must\ be\ finite;\ got\ nan"),
    ("power_law_isan alpha -1", lambda: synth.power_law_isan(3, 4, 2, -1.0, generator=0), ValueError, r"alpha\ must\ lie\ in\ \(0\.0,\ inf\];\ got\ \-1\.0"),
    ("perturbed eps -1", lambda: synth.perturbed(M, -1.0, generator=0), ValueError, r"eps\ must\ lie\ in\ \[0\.0,\ inf\];\ got\ \-1\.0"),
    ("perturbed eps inf", lambda: synth.perturbed(M, math.inf, generator=0), ValueError, r"eps\ must\ be\ finite;\ got\ inf"),
    ("perturbed model None", lambda: synth.perturbed(None, 0.1, generator=0), TypeError, r"model must follow the synth.LanguageModel protocol; got NoneType"),
    ("approx_rank_error rank -1", lambda: synth.approx_rank_error(M, -1, generator=0), ValueError, r"rank must be >= 0; got -1"),
    ("all_sequences length -1", lambda: synth.all_sequences(3, -1), ValueError, r"length must be >= 0; got -1"),
    ("all_sequences too many", lambda: synth.all_sequences(1000, 10), ValueError, r"all_sequences would list V\*\*length = 1000\*\*10 = .* the limit is"),
    ("center_logits int", lambda: synth.center_logits(torch.zeros(2, 3, dtype=torch.long)), TypeError, r"scores must be a floating \(…, V\) torch.Tensor; got dtype torch.int64"),
    ("center_logits list", lambda: synth.center_logits([1.0, 2.0]), TypeError, r"scores must be a floating \(…, V\) torch.Tensor; got list"),
    ("CountingOracle None", lambda: synth.CountingOracle(None), TypeError, r"model must follow the synth.LanguageModel protocol \(vocab_size"),
    ("ISAN horizon 0", lambda: synth.ISAN(M.A[0], M.B[0], M.x0, horizon=0), ValueError, r"horizon must be >= 1; got 0"),
    # ---- synth: model methods --------------------------------------------------------------------------
    ("logits bool prefixes", lambda: M.logits(torch.tensor([[True, False]])), TypeError, r"prefixes must hold integer token ids"),
    ("logits np float", lambda: M.logits(np.array([[0.5, 1.0]])), TypeError, r"prefixes must hold integer token ids"),
    ("logits 3-d", lambda: M.logits(torch.zeros(1, 1, 1, dtype=torch.long)), ValueError, r"prefixes must have shape \(B, t\)"),
    ("logits id 3", lambda: M.logits(torch.tensor([[3]])), ValueError, r"prefixes must hold token ids in \[0, 3\); got id 3"),
    ("log_probs negative", lambda: M.log_probs(torch.tensor([[-2]])), ValueError, r"prefixes\ must\ hold\ token\ ids\ in\ \[0,\ 3\);\ got\ id\ \-2"),
    ("log_prob too long", lambda: M.log_prob(torch.zeros(1, 9, dtype=torch.long)), ValueError, r"sequences must have length <= 4"),
    ("sample n=-3", lambda: M.sample(-3, generator=0), ValueError, r"n must be >= 0; got -3"),
    ("sample n float", lambda: M.sample(3.0, generator=0), TypeError, r"n must be an integer; got 3.0"),
    ("sample n str", lambda: M.sample("3", generator=0), TypeError, r"n must be an integer; got '3'"),
    ("sample huge", lambda: M.sample(10**12, generator=0), MemoryError, r"sample\(n=1000000000000\) .* needs about .* GiB, more than .* smaller n"),
    ("sample generator float", lambda: M.sample(3, generator=1.5), TypeError, r"generator must be a torch.Generator or an int seed"),
    ("parity logits id 2", lambda: P.logits(torch.tensor([[2]])), ValueError, r"prefixes\ must\ hold\ token\ ids\ in\ \[0,\ 2\);\ got\ id\ 2"),
    # ---- algorithms: logit matrices ------------------------------------------------------------------------
    ("logit_matrix model None", lambda: alg.logit_matrix(None, [(0,)], [(1,)]), TypeError, r"model must be a language model .* got NoneType"),
    ("logit_matrix model tensor", lambda: alg.logit_matrix(torch.zeros(3), [(0,)], [(1,)]), TypeError, r"model must be a language model .* got Tensor"),
    ("logit_matrix text histories", lambda: alg.logit_matrix(M, "012", [(1,)]), TypeError, r"histories must be a list of token-id sequences, not text"),
    ("logit_matrix text history", lambda: alg.logit_matrix(M, ["01"], [(1,)]), TypeError, r"histories\[0\] must be a sequence of int token ids, not text"),
    ("logit_matrix str token", lambda: alg.logit_matrix(M, [("0",)], [(1,)]), TypeError, r"histories\[0\] must hold int token ids; got '0'"),
    ("logit_matrix float token", lambda: alg.logit_matrix(M, [(0.0,)], [(1,)]), TypeError, r"histories\[0\] must hold int token ids; got 0.0"),
    ("logit_matrix bool token", lambda: alg.logit_matrix(M, [(True,)], [(1,)]), TypeError, r"histories\[0\] must hold int token ids; got True"),
    ("logit_matrix np bool token", lambda: alg.logit_matrix(M, [(np.bool_(True),)], [(1,)]), TypeError, r"histories\[0\] must hold int token ids"),
    ("logit_matrix bool tensor", lambda: alg.logit_matrix(M, torch.tensor([[True]]), [(1,)]), TypeError, r"histories given as a tensor must hold integer token ids \(torch.long\); got dtype torch.bool"),
    ("logit_matrix float tensor", lambda: alg.logit_matrix(M, torch.tensor([[0.0]]), [(1,)]), ValueError, r"histories given as a tensor must be a \(n, t\) integer tensor"),
    ("logit_matrix 1-d tensor", lambda: alg.logit_matrix(M, torch.tensor([0, 1]), [(1,)]), ValueError, r"histories given as a tensor must be a \(n, t\) integer tensor; .* shape \(2,\)"),
    ("logit_matrix id 3", lambda: alg.logit_matrix(M, [(3,)], [(1,)]), ValueError, r"histories\[0\] must hold token ids in \[0, 3\); got id 3"),
    ("logit_matrix future id -1", lambda: alg.logit_matrix(M, [(0,)], [(-1,)]), ValueError, r"futures\[0\] must hold token ids in \[0, 3\); got id -1"),
    ("logit_matrix int history", lambda: alg.logit_matrix(M, [0], [(1,)]), ValueError, r"histories\[0\] must be a sequence of token ids; got 0"),
    ("logit_matrix dict", lambda: alg.logit_matrix(M, {"a": 1}, [(1,)]), TypeError, r"histories must be a list of token sequences"),
    ("logit_matrix too long", lambda: alg.logit_matrix(M, [(0, 0, 0)], [(1, 1)]), ValueError, r"every\ history\ ∘\ future\ must\ be\ shorter\ than\ horizon=4\ so\ that\ a\ next\ token\ exists;\ the\ lon"),
    ("logit_matrix top_k 0", lambda: alg.logit_matrix(M, [(0,)], [(1,)], top_k=0), ValueError, r"top_k must be >= 1; got 0"),
    ("logit_matrix top_k 4", lambda: alg.logit_matrix(M, [(0,)], [(1,)], top_k=4), ValueError, r"top_k must be <= 3; got 4"),
    ("logit_matrix two selections", lambda: alg.logit_matrix(M, [(0,)], [(1,)], top_k=1, random_k=1, generator=0), ValueError, r"at most one of top_k, random_k and columns"),
    ("logit_matrix random_k no gen", lambda: alg.logit_matrix(M, [(0,)], [(1,)], random_k=1), TypeError, r"random_k needs generator="),
    ("logit_matrix columns shape", lambda: alg.logit_matrix(M, [(0,)], [(1,)], columns=torch.zeros(2, 1, dtype=torch.long)), ValueError, r"columns\ must\ have\ shape\ \(m,\ k\)\ =\ \(1,\ k\)\ with\ k\ >=\ 1,\ one\ row\ per\ future;\ got\ shape\ \(2,\ 1\)"),
    ("logit_matrix columns id", lambda: alg.logit_matrix(M, [(0,)], [(1,)], columns=torch.tensor([[5]])), ValueError, r"columns\ must\ hold\ token\ ids\ in\ \[0,\ 3\);\ got\ ids\ in\ \[5,\ 5\]"),
    ("logit_matrix batch_size 0", lambda: alg.logit_matrix(M, [(0,)], [(1,)], batch_size=0), ValueError, r"batch_size must be >= 1; got 0"),
    ("logit_matrix path", lambda: alg.logit_matrix(M, [(0,)], [(1,)], path="fast"), ValueError, r"path\ must\ be\ one\ of\ \('auto',\ 'generic',\ 'isan',\ 'block'\);\ got\ 'fast'"),
    ("copying device gpu", lambda: synth.copying(2, 5.0, device="gpu"), ValueError, r"device must name a torch device such as 'cpu', 'cuda' or 'cuda:0'; got 'gpu'"),
    ("linear_ssm device gpu", lambda: synth.random_linear_ssm(3, 4, state_dim=2, input_dim=1, output_dim=1, generator=0, device="gpu"), ValueError, r"device must name a torch device .*; got 'gpu'"),
    ("power_law_isan device gpu", lambda: synth.power_law_isan(3, 4, 2, 0.6, generator=0, device="gpu"), ValueError, r"device must name a torch device .*; got 'gpu'"),
    ("noisy_parity device gpu", lambda: synth.noisy_parity([1, 0], 0.1, device="gpu"), ValueError, r"device must name a torch device such as 'cpu', 'cuda' or 'cuda:0'; got 'gpu'"),
    ("top_k_columns None", lambda: alg.top_k_columns(None, [(0,)], 1), TypeError, r"model must be a language model"),
    ("top_k_columns k 0", lambda: alg.top_k_columns(M, [(0,)], 0), ValueError, r"k\ must\ be\ >=\ 1;\ got\ 0"),
    ("random_k_columns k > V", lambda: alg.random_k_columns(3, 2, 4, generator=0), ValueError, r"k\ must\ be\ <=\ 3;\ got\ 4"),
    ("random_k_columns m -1", lambda: alg.random_k_columns(3, -1, 1, generator=0), ValueError, r"n_futures must be >= 0; got -1"),
    ("gram_matrix None", lambda: alg.gram_matrix(None, [(0,)], [(1,)]), TypeError, r"model must be a language model"),
    ("logit_spectrum rank -1", lambda: alg.logit_spectrum(M, [(0,), (1,)], [(1,)], rank=-1), ValueError, r"rank must be >= 0; got -1"),
    ("logit_spectrum rank 3 > n", lambda: alg.logit_spectrum(M, [(0,), (1,)], [(1,)], rank=3), ValueError, r"rank must be <= 2; got 3"),
    ("gram_spectrum not square", lambda: alg.gram_spectrum(torch.zeros(2, 3, dtype=torch.float64)), ValueError, r"gram\ must\ be\ a\ square\ \(n,\ n\)\ tensor;\ got\ \(2,\ 3\)"),
    ("lowrank_spectrum q 0", lambda: alg.lowrank_spectrum(L, 0, generator=0), ValueError, r"q\ must\ be\ >=\ 1;\ got\ 0"),
    ("downsized_spectra factor 0", lambda: alg.downsized_spectra(M, [(0,), (1,)], [(1,), (2,)], factors=(0,)), ValueError, r"factors\[0\]\ must\ be\ >=\ 1;\ got\ 0"),
    ("level_logit_matrix t 9", lambda: alg.level_logit_matrix(M, 9), ValueError, r"t\ must\ be\ <=\ 3;\ got\ 9"),
    ("level_ranks tol -1", lambda: alg.level_ranks(M, tol=-1.0), ValueError, r"tol\ must\ lie\ in\ \[0\.0,\ inf\];\ got\ \-1\.0"),
    ("numerical_rank 1-d", lambda: alg.numerical_rank(torch.zeros(3)), ValueError, r"matrix\ must\ have\ shape\ \(m,\ n\);\ got\ shape\ \(3,\)"),
    ("numerical_rank tol and rtol", lambda: alg.numerical_rank(L, tol=1e-3, rtol=1e-3), ValueError, r"pass\ at\ most\ one\ of\ tol\ and\ rtol"),
    ("numerical_rank nan", lambda: alg.numerical_rank(torch.full((2, 2), math.nan)), ValueError, r"matrix\ must\ be\ finite;\ got\ 4\ non\-finite\ entries"),
    ("generic_level_rank t 9", lambda: alg.generic_level_rank(3, 4, 2, 9), ValueError, r"t\ must\ be\ <=\ 3;\ got\ 9"),
    # ---- algorithms: spectra, KL, angles -------------------------------------------------------------------
    ("fit_power_law 4 values", lambda: alg.fit_power_law(SPEC[:4]), ValueError, r"singular_values\ must\ hold\ at\ least\ 5\ values\ for\ a\ 3\-parameter\ fit;\ got\ 4"),
    ("fit_power_law points = params", lambda: alg.fit_power_law(SPEC[:5], indexing="original"), ValueError, r"at least 4 fitted points .* R² = 1"),
    ("fit_power_law increasing", lambda: alg.fit_power_law(SPEC[::-1]), ValueError, r"singular_values\ must\ be\ in\ non\-increasing\ order\ \(sort\ them\ descending\)"),
    ("fit_power_law negative", lambda: alg.fit_power_law(np.r_[SPEC, -0.5]), ValueError, r"never negative\); got 1 negative values"),
    ("fit_power_law zero", lambda: alg.fit_power_law(np.r_[SPEC, 0.0]), ValueError, r"singular_values\ must\ be\ positive\ \(log\ σ\ is\ fitted\);\ got\ 1\ zero\ values\ —\ the\ matrix\ is\ rank"),
    ("fit_power_law nan", lambda: alg.fit_power_law(np.r_[SPEC, math.nan]), ValueError, r"singular_values must be finite"),
    ("fit_power_law 2-d", lambda: alg.fit_power_law(np.ones((5, 2))), ValueError, r"singular_values must have 1 dimension"),
    ("fit_power_law strings", lambda: alg.fit_power_law(["a", "b"]), TypeError, r"singular_values must be an array of real numbers"),
    ("fit_power_law indexing", lambda: alg.fit_power_law(SPEC, indexing="zero"), ValueError, r"indexing must be one of"),
    ("avg_kl shape", lambda: alg.avg_kl(L, L[:, :6], 3), ValueError, r"A must have the shape of L"),
    ("avg_kl k 5", lambda: alg.avg_kl(L, L, 5), ValueError, r"k must divide the number of columns of L \(12\)"),
    ("avg_kl k 0", lambda: alg.avg_kl(L, L, 0), ValueError, r"k\ must\ be\ >=\ 1;\ got\ 0"),
    ("avg_kl int L", lambda: alg.avg_kl(L.long(), L, 3), TypeError, r"L must be a floating tensor"),
    ("avg_kl numpy L", lambda: alg.avg_kl(L.numpy(), L, 3), TypeError, r"L must be a torch.Tensor; got ndarray"),
    ("avg_kl inf", lambda: alg.avg_kl(L.clone().fill_(math.inf), L, 3), ValueError, r"L\ must\ be\ finite;\ got\ 72\ non\-finite\ entries"),
    ("avg_kl_to_rank r -1", lambda: alg.avg_kl_to_rank(L, -1, 3), ValueError, r"r must be >= 0; got -1"),
    ("avg_kl_to_rank r list", lambda: alg.avg_kl_to_rank(L, [1, 99], 3), ValueError, r"r\[1\] must be <= 6; got 99"),
    ("rank_one_baseline_kl size", lambda: alg.rank_one_baseline_kl(L, torch.zeros(5, dtype=torch.float64), 3), ValueError, r"future_logits must have m·k = 12 entries"),
    ("principal_angles rows", lambda: alg.principal_angles(L, L[:4], 1), ValueError, r"same number of rows .* got 6 and 4"),
    ("principal_angles r > cols", lambda: alg.principal_angles(L[:, :2], L, 3), ValueError, r"r\ must\ be\ <=\ 2;\ got\ 3"),
    ("principal_angles r > rank", lambda: alg.principal_angles(L[:, :1] @ L[:1], L, 2), ValueError, r"r must be <= the numerical rank of L1, 1 .* got r=2"),
    ("principal_angles r > rank L2", lambda: alg.principal_angles(L, L[:, :2] @ L[:2], 3), ValueError, r"numerical rank of L2, 2 .* got r=3"),
    ("principal_angles zero matrix", lambda: alg.principal_angles(torch.zeros(6, 4, dtype=torch.float64), L, 1), ValueError, r"numerical rank of L1, 0"),
    ("principal_angles r float", lambda: alg.principal_angles(L, L, 1.5), TypeError, r"r must be an integer; got 1.5"),
    ("random_subspace_angles r > n", lambda: alg.random_subspace_angles(3, 4, rng=0), ValueError, r"r\ must\ be\ <=\ 3;\ got\ 4"),
    ("sample_histories_futures lengths", lambda: alg.sample_histories_futures(list(range(100)), 2, min_length=5, max_length=3, rng=0), ValueError, r"min_length\ must\ be\ <=\ max_length;\ got\ min_length=5,\ max_length=3"),
    ("sample_histories_futures short", lambda: alg.sample_histories_futures([1, 2], 5, min_length=1, max_length=2, rng=0), ValueError, r"(source|stream|long enough|too short)"),
    ("nonsense_sequences rng", lambda: alg.nonsense_sequences([(1, 2)], rng="x"), TypeError, r"rng\ must\ be\ a\ numpy\ Generator\ or\ a\ non\-negative\ int\ seed;\ got\ 'x'"),
    # ---- algorithms: spanners and samplers ------------------------------------------------------------------
    ("spanner numpy", lambda: alg.barycentric_spanner(np.eye(3)), TypeError, r"rows must be a \(n, k\) torch.Tensor; got ndarray"),
    ("spanner 1-d", lambda: alg.barycentric_spanner(torch.ones(3, dtype=torch.float64)), ValueError, r"rows must be a floating \(n, k\) tensor"),
    ("spanner nan", lambda: alg.barycentric_spanner(tensor([1.0, math.nan])), ValueError, r"rows\ must\ be\ finite;\ got\ nan\ or\ inf\ entries"),
    ("spanner beta 0.5", lambda: alg.barycentric_spanner(torch.eye(3, dtype=torch.float64), 0.5), ValueError, r"beta must lie in \[1.0, inf\]; got 0.5"),
    ("spanner rank 0", lambda: alg.barycentric_spanner(torch.eye(3, dtype=torch.float64), rank=0), ValueError, r"rank must be >= 1; got 0"),
    ("spanner tol -1", lambda: alg.barycentric_spanner(torch.eye(3, dtype=torch.float64), tol=-1.0), ValueError, r"tol\ must\ lie\ in\ \[0\.0,\ inf\];\ got\ \-1\.0"),
    ("spanner rows near 1e308", lambda: alg.barycentric_spanner(tensor([1.7e308, 1e308], [1e308, 1.7e308])), ValueError, r"rows are too large: their spectral norm overflows float64"),
    ("spanner coef_tol nan", lambda: alg.barycentric_spanner(torch.eye(3, dtype=torch.float64), coef_tol=math.nan), ValueError, r"coef_tol must be finite"),
    ("swap_bound beta 0.5", lambda: alg.swap_bound(3, 0.5), ValueError, r"beta must lie in \[1.0, inf\]; got 0.5"),
    ("swap_bound no growth", lambda: alg.swap_bound(3, 1.0, coef_tol=0.0), ValueError, r"beta·\(1 \+ coef_tol\) must exceed 1"),
    ("swap_bound size -1", lambda: alg.swap_bound(-1, 2.0), ValueError, r"size must be >= 0; got -1"),
    ("lp_sampler model None", lambda: alg.lp_sampler(None, H2, F2), TypeError, r"model must be a language model .* got NoneType"),
    ("lp_sampler history id 7", lambda: alg.lp_sampler(M, [[()], [(0,), (7,), (2,)], [(0, 0)]], F2), ValueError, r"histories\[1\]\[1\] must hold token ids in \[0, 3\); got id 7"),
    ("lp_sampler history text", lambda: alg.lp_sampler(M, [[()], ["ab"], [(0, 0)]], F2), TypeError, r"histories\[1\]\[0\] must be a sequence of int token ids, not text"),
    ("lp_sampler future id 9", lambda: alg.lp_sampler(M, H2, [[(0,), (1,), (2,), (9,)]] * 4), ValueError, r"futures\[0\]\[3\] must hold token ids in \[0, 3\); got id 9"),
    ("lp_sampler missing single", lambda: alg.lp_sampler(M, H2, [[(0,), (1,)]] * 4), ValueError, r"futures\[0\] \(F̂_1\) must contain every single token; missing \[2\]"),
    ("lp_sampler level-1 history", lambda: alg.lp_sampler(M, [[(0,)], H2[1], H2[2]], F2), ValueError, r"histories\[0\] must be \[\(\)\]"),
    ("lp_sampler level count", lambda: alg.lp_sampler(M, H2[:2], F2), ValueError, r"need histories for levels 1 … max\(1, T − 1\) = 3"),
    ("lp_sampler beta 0", lambda: alg.lp_sampler(M, H2, F2, beta=0.0), ValueError, r"beta must lie in \[1.0, inf\]; got 0.0"),
    ("lp_sampler slack_tol -1", lambda: alg.lp_sampler(M, H2, F2, slack_tol=-1.0), ValueError, r"slack_tol\ must\ lie\ in\ \[0\.0,\ inf\];\ got\ \-1\.0"),
    ("lp_sampler on_infeasible", lambda: alg.lp_sampler(M, H2, F2, on_infeasible="ignore"), ValueError, r"on_infeasible must be one of"),
    ("lp_sampler solver", lambda: alg.lp_sampler(M, H2, F2, solver="gurobi"), ValueError, r"solver\ must\ be\ one\ of\ \('highs',\ 'cvxpy'\);\ got\ 'gurobi'"),
    ("lp_sampler unknown option", lambda: alg.lp_sampler(M, H2, F2, solver_options={"no_such_option": 1}), ValueError, r"solver_options\['no_such_option'\] = 1 is not a valid HiGHS option"),
    ("lp_sampler option bad value", lambda: alg.lp_sampler(M, H2, F2, solver_options={"time_limit": "soon"}), ValueError, r"solver_options\['time_limit'\] = 'soon' is not a valid HiGHS option"),
    ("lp_sampler options cvxpy", lambda: alg.lp_sampler(M, H2, F2, solver="cvxpy", solver_options={"no_such_option": 1}), ValueError, r"solver_options\['no_such_option'\]"),
    ("lp_sampler options list", lambda: alg.lp_sampler(M, H2, F2, solver_options=["presolve"]), TypeError, r"solver_options must be a dict"),
    ("dist_spanner level 0", lambda: alg.dist_spanner(M, 0, [(0,)]), ValueError, r"level must be >= 1; got 0"),
    ("dist_spanner None", lambda: alg.dist_spanner(None, 1, [(0,)]), TypeError, r"model must be a language model"),
    # ---- algorithms: learners --------------------------------------------------------------------------------
    ("learn_isan None", lambda: alg.learn_isan(None, epsilon=0.1, generator=0), TypeError, r"oracle must be a language model .* got NoneType"),
    ("learn_isan epsilon 1e-300", lambda: alg.learn_isan(M, epsilon=1e-300, generator=0), ValueError, r"epsilon=1e-300 needs N = .* samples per round .* use a larger epsilon or pass n_samples="),
    ("learn_isan n_samples huge", lambda: alg.learn_isan(M, epsilon=0.1, n_samples=2**40, generator=0), ValueError, r"n_samples must be <= 2147483648"),
    ("learn_isan epsilon 0", lambda: alg.learn_isan(M, epsilon=0.0, generator=0), ValueError, r"epsilon must lie in \(0.0, 1.0\); got 0.0"),
    ("learn_isan epsilon nan", lambda: alg.learn_isan(M, epsilon=math.nan, generator=0), ValueError, r"epsilon must be finite; got nan"),
    ("learn_isan delta 1", lambda: alg.learn_isan(M, epsilon=0.1, delta=1.0, generator=0), ValueError, r"delta must lie in \(0.0, 1.0\); got 1.0"),
    ("learn_isan rank_tol 0", lambda: alg.learn_isan(M, epsilon=0.1, rank_tol=0.0, generator=0), ValueError, r"rank_tol\ must\ lie\ in\ \(0\.0,\ 1\.0\);\ got\ 0\.0"),
    ("learn_isan max_rank 0", lambda: alg.learn_isan(M, epsilon=0.1, max_rank=0, generator=0), ValueError, r"max_rank must be >= 1; got 0"),
    ("learn_isan settings dict", lambda: alg.learn_isan(M, epsilon=0.1, settings={}, generator=0), TypeError, r"settings must be a SpanSettings; got dict"),
    ("learn_isan no generator", lambda: alg.learn_isan(M, epsilon=0.1, generator=None), TypeError, r"generator must be a torch.Generator or an int seed"),
    ("SpanSettings path", lambda: alg.SpanSettings(path="fast"), ValueError, r"path must be 'blocks' or 'memo'; got 'fast'"),
    ("learn_approx no rank", lambda: alg.learn_approx(M, generator=0), TypeError, r"learn_approx needs rank and epsilon"),
    ("learn_approx None", lambda: alg.learn_approx(None, rank=2, epsilon=0.1, generator=0), TypeError, r"oracle must be a language model .* got NoneType"),
    ("ApproxSettings rank 0", lambda: alg.ApproxSettings(rank=0, epsilon=0.1), ValueError, r"rank must be >= 1; got 0"),
    ("ApproxSettings epsilon 2", lambda: alg.ApproxSettings(rank=2, epsilon=2.0), ValueError, r"epsilon\ must\ lie\ in\ \(0\.0,\ 1\.0\);\ got\ 2\.0"),
    ("ApproxSettings beta 0.5", lambda: alg.ApproxSettings(rank=2, epsilon=0.1, beta=0.5), ValueError, r"beta\ must\ lie\ in\ \[1\.0,\ inf\];\ got\ 0\.5"),
    ("learn_approx unknown option", lambda: alg.learn_approx(M, rank=2, epsilon=0.1, frobnicate=1, generator=0), TypeError, r"learn_approx\ got\ unexpected\ keyword\(s\)\ \['frobnicate'\];\ settings\ are\ \('rank',\ 'epsilon',\ 'b"),
    ("fit_isan_mle float samples", lambda: alg.fit_isan_mle(torch.zeros(4, 3), vocab_size=2, hidden_dim=2, generator=0), (TypeError, ValueError), r"samples\ must\ hold\ integer\ token\ ids\ \(torch\.long\);\ got\ dtype\ torch\.float32"),
    ("fit_isan_mle id 5", lambda: alg.fit_isan_mle(torch.full((4, 3), 5), vocab_size=2, hidden_dim=2, generator=0), ValueError, r"samples\ must\ hold\ token\ ids\ in\ \[0,\ 2\);\ got\ id\ 5"),
    ("fit_isan_mle steps 0", lambda: alg.fit_isan_mle(torch.zeros(4, 3, dtype=torch.long), vocab_size=2, hidden_dim=2, steps=0, generator=0), ValueError, r"steps must be >= 1; got 0"),
    ("fit_isan_mle lr nan", lambda: alg.fit_isan_mle(torch.zeros(4, 3, dtype=torch.long), vocab_size=2, hidden_dim=2, lr=math.nan, generator=0), ValueError, r"lr\ must\ be\ finite;\ got\ nan"),
    ("default_n_samples epsilon 0", lambda: alg.default_n_samples(4, 0.0, 0.1, 2), ValueError, r"epsilon must lie in \(0.0, 1.0\); got 0.0"),
    ("default_n_samples horizon 0", lambda: alg.default_n_samples(0, 0.1, 0.1, 2), ValueError, r"horizon must be >= 1; got 0"),
    ("samples_per_logit xi 0", lambda: alg.samples_per_logit(0.0, 1.0, 3), ValueError, r"xi\ must\ lie\ in\ \(0\.0,\ inf\];\ got\ 0\.0"),
    ("estimate_logits negative", lambda: alg.estimate_logits(torch.tensor([[-1.0, 2.0]])), ValueError, r"counts\ must\ be\ a\ \(B,\ V\)\ tensor\ of\ non\-negative\ counts;\ got\ shape\ \(1,\ 2\)"),
    ("SampleLogitOracle n 0", lambda: alg.SampleLogitOracle(M, 0, seed=0), ValueError, r"n_samples must be >= 1; got 0"),
    # ---- algorithms: LinGen ----------------------------------------------------------------------------------
    ("lingen None", lambda: alg.lingen(None, [(0,)], [1.0], 1, generator=0), TypeError, r"model must be a language model .* got NoneType"),
    ("lingen v overflow", lambda: alg.lingen(M, [(0,), (1,)], tensor(1e308, 1e308), 2, generator=0), ValueError, r"v is too large: the combined logits .* overflow float64"),
    ("lingen n_tokens too many", lambda: alg.lingen(M, [(0,), (1,)], [0.5, 0.5], 10, generator=0), ValueError, r"n_tokens must be <= horizon − \(longest history\) = 4 − 1 = 3 .* got n_tokens=10"),
    ("lingen n_tokens 0", lambda: alg.lingen(M, [(0,)], [1.0], 0, generator=0), ValueError, r"n_tokens must be >= 1; got 0"),
    ("lingen v length", lambda: alg.lingen(M, [(0,), (1,)], [1.0], 1, generator=0), ValueError, r"v must have n = 2 entries per row"),
    ("lingen v nan", lambda: alg.lingen(M, [(0,)], [math.nan], 1, generator=0), ValueError, r"v\ must\ be\ finite;\ got\ 1\ non\-finite\ entries"),
    ("lingen no histories", lambda: alg.lingen(M, [], [], 1, generator=0), ValueError, r"histories must hold at least one history"),
    ("lingen n_samples 0", lambda: alg.lingen(M, [(0,)], [1.0], 1, n_samples=0, generator=0), ValueError, r"n_samples must be >= 1; got 0"),
    ("lingen history text", lambda: alg.lingen(M, ["ab"], [1.0], 1, generator=0), TypeError, r"histories\[0\] must be a sequence of int token ids, not text"),
    ("fit_lingen_weights ridge -1", lambda: alg.fit_lingen_weights(L, L[:1], ridge=-1.0), ValueError, r"ridge\ must\ lie\ in\ \[0\.0,\ inf\];\ got\ \-1\.0"),
    ("fit_lingen_weights cols", lambda: alg.fit_lingen_weights(L, L[:1, :5]), ValueError, r"L_target\ must\ have\ M\ =\ 12\ columns\ like\ L_histories\ \(the\ same\ futures\ and\ tokens\);\ got\ shap"),
    ("position_kl None", lambda: alg.position_kl(None, (0,), torch.zeros(1, 1, dtype=torch.long), torch.zeros(1, 1, 3)), TypeError, r"model must be a language model"),
    ("ContextWindow window -1", lambda: alg.ContextWindow(M, -1), ValueError, r"window must be >= 0; got -1"),
    ("corollary_c19_bound k 0", lambda: alg.corollary_c19_bound(0.1, 0, 3, 1.0), ValueError, r"k\ must\ be\ >=\ 1;\ got\ 0"),
    # ---- verify: metrics, registry ---------------------------------------------------------------------------
    ("tv_distance atol nan", lambda: ver.tv_distance(tensor(0.5, 0.5), tensor(0.5, 0.5), atol=math.nan), ValueError, r"atol must be a finite float >= 0 .*; got nan"),
    ("tv_distance atol -1", lambda: ver.tv_distance(tensor(0.5, 0.5), tensor(0.5, 0.5), atol=-1.0), ValueError, r"atol must be a finite float >= 0 .*; got -1.0"),
    ("tv_distance not summing", lambda: ver.tv_distance(tensor(0.5, 0.6), tensor(0.5, 0.5)), ValueError, r"p\ must\ sum\ to\ 1\ \(a\ distribution\);\ got\ sum\ 1\.1"),
    ("tv_distance negative", lambda: ver.tv_distance(tensor(1.5, -0.5), tensor(0.5, 0.5)), ValueError, r"p must hold finite non-negative probabilities"),
    ("tv_distance shapes", lambda: ver.tv_distance(tensor(0.5, 0.5), tensor(1.0)), ValueError, r"p\ and\ q\ must\ have\ the\ same\ shape;\ got\ \(2,\)\ and\ \(1,\)"),
    ("tv_distance list", lambda: ver.tv_distance([0.5, 0.5], tensor(0.5, 0.5)), TypeError, r"p must be a torch.Tensor"),
    ("kl_divergence q sum", lambda: ver.kl_divergence(tensor(0.5, 0.5), tensor(0.5, 0.6)), ValueError, r"q must sum to 1 \(a distribution\); got sum 1.1"),
    ("tv_monte_carlo n 0", lambda: ver.tv_monte_carlo(M, M, 0, generator=0), ValueError, r"n must be a positive int; got 0"),
    ("tv_monte_carlo confidence 1", lambda: ver.tv_monte_carlo(M, M, 10, generator=0, confidence=1.0), ValueError, r"confidence must be a float in \(0, 1\); got 1.0"),
    ("tv_monte_carlo vocab", lambda: ver.tv_monte_carlo(M, P, 10, generator=0), ValueError, r"p_model and q_model must share vocabulary and horizon; got \(V=3, T=4\) and \(V=2, T=4\)"),
    ("CheckConfig scale", lambda: ver.CheckConfig(scale="huge"), ValueError, r"scale must be one of \('quick', 'full'\); got 'huge'"),
    ("CheckConfig seed 2**64", lambda: ver.CheckConfig(seed=2**64), ValueError, r"seed must be an int in \[0, 2\*\*63 - 65\]"),
    ("CheckConfig seed -1", lambda: ver.CheckConfig(seed=-1), ValueError, r"seed must be an int in"),
    ("CheckConfig seed float", lambda: ver.CheckConfig(seed=1.0), ValueError, r"seed must be an int in .*; got 1.0"),
    ("CheckConfig model ''", lambda: ver.CheckConfig(model=""), ValueError, r"model must be a non-empty model name"),
    ("CheckConfig seeds 0", lambda: ver.CheckConfig(seeds=0), ValueError, r"seeds must be an int in \[1, 64\]"),
    ("ClaimResult verdict", lambda: ver.ClaimResult("T1", "maybe"), ValueError, r"verdict must be one of"),
    ("run_check unknown", lambda: ver.run_check("Q42"), KeyError, r"unknown claim id 'Q42'"),
    ("register unknown no statement", lambda: ver.register("Q42"), ValueError, r"unknown claim id 'Q42'.*pass statement="),
    ("register bad id", lambda: ver.register("4 two", statement="x"), ValueError, r"claim_id must be a str of letters"),
    ("register built-in clash", lambda: ver.register("T1", statement="other"), ValueError, r"claim T1 is a built-in ledger claim"),
    ("register combine unseeded", lambda: ver.register("T1", combine=lambda rs: ("holds", "")), ValueError, r"combine= applies across seeds"),
    ("register T1 twice", lambda: ver.register("T1")(lambda config: None), ValueError, r"claim T1 already has a check"),
    ("cached_logit_matrix chunk 0", lambda: _cache().cached_logit_matrix(M, [(0,)], [(1,)], chunk=0), ValueError, r"chunk must be a positive int; got 0"),
    ("cached_logit_matrix no fingerprint", lambda: _cache().cached_logit_matrix(M, [(0,)], [(1,)], cache_dir=TMP / "c"), TypeError, r"has no fingerprint\(\) method"),
    ("store on a folder", lambda: _store().connect(DIR), ValueError, r"path must name a database file, not a folder"),
    ("store not sqlite", lambda: _store().connect(FILE), ValueError, r"is not a usable SQLite database"),
    ("plot_singular_values empty", lambda: ver.plot_singular_values({}, TMP), ValueError, r"spectra\ must\ hold\ at\ least\ one\ spectrum;\ got\ an\ empty\ mapping"),
    # ---- CLI: usage errors (exit 2, one line, before any work) ---------------------------------------------------
    ("cli unknown id", lambda: cli("check", "Z9", "--json", JSON), UsageError, r"unknown claim id\(s\) Z9; known: T1"),
    ("cli unknown command", lambda: cli("frobnicate"), UsageError, r"invalid choice: 'frobnicate'"),
    ("cli no command", lambda: cli(), UsageError, r"logitrank:\ error:\ the\ following\ arguments\ are\ required:\ command"),
    ("cli scale", lambda: check("--scale", "huge"), UsageError, r"argument --scale: invalid choice: 'huge'"),
    ("cli seed -1", lambda: check("--seed", "-1"), UsageError, r"--seed must be an integer in \[0, 9223372036854775743\]; got -1"),
    ("cli seed 2**64", lambda: check("--seed", str(2**64)), UsageError, r"--seed must be an integer in .*; got 18446744073709551616"),
    ("cli seed text", lambda: check("--seed", "one"), UsageError, r"--seed must be an integer in .*; got 'one'"),
    ("cli seed float", lambda: check("--seed", "1e3"), UsageError, r"--seed must be an integer in .*; got '1e3'"),
    ("cli seeds 0", lambda: check("--seeds", "0"), UsageError, r"--seeds must be an integer in \[1, 64\]; got 0"),
    ("cli seeds 1000", lambda: check("--seeds", "1000"), UsageError, r"--seeds must be an integer in \[1, 64\]; got 1000"),
    ("cli threads 100000", lambda: check("--threads", "100000"), UsageError, r"--threads must be an integer in \[1, \d+\]; got 100000"),
    ("cli threads 0", lambda: check("--threads", "0"), UsageError, r"--threads must be an integer in \[1, \d+\]; got 0"),
    ("cli threads -4", lambda: check("--threads", "-4"), UsageError, r"--threads must be an integer"),
    ("cli json under a file", lambda: cli("check", "T3", "--json", str(FILE / "x.json")), UsageError, r"--json .*x.json' lies under .*a-file', which is a file, not a folder"),
    ("cli json on a folder", lambda: cli("check", "T3", "--json", str(DIR)), UsageError, r"--json must name a file, not the folder"),
    ("cli json empty", lambda: cli("check", "T3", "--json", ""), UsageError, r"--json must name a file; got an empty path"),
    ("cli json blank", lambda: cli("check", "T3", "--json", "  "), UsageError, r"--json must name a file; got an empty path"),
    ("cli store on a folder", lambda: check("--store", str(DIR)), UsageError, r"--store must name a file, not the folder"),
    ("cli store not sqlite", lambda: check("--store", str(FILE)), UsageError, r"--store .*a-file' cannot be used: .*not a usable SQLite database"),
    ("cli store under a file", lambda: check("--store", str(FILE / "db.sqlite")), UsageError, r"--store .* lies under .*, which is a file"),
    ("cli model doesnotexist", lambda: check("--model", "doesnotexist"), UsageError, r"--model 'doesnotexist' is not tiny, .* \(logitrank never downloads\)"),
    ("cli model org/name", lambda: check("--model", "nobody/no-such-model-xyz"), UsageError, r"--model 'nobody/no-such-model-xyz' is not tiny"),
    ("cli model empty", lambda: check("--model", ""), UsageError, r"--model must be a model name; got an empty string"),
    ("cli model bad step", lambda: check("--model", "tiny@step7"), UsageError, r"--model tiny@step7: tiny has no checkpoint at step 7; stored: \["),
    ("cli model folder without config", lambda: check("--model", str(DIR)), UsageError, r"--model .*a-folder' is not a model folder \(no config.json in it\)"),
    ("cli model a file", lambda: check("--model", str(FILE)), UsageError, r"--model .*a-file' is not a model folder"),
    ("cli plugin missing module", lambda: check("--plugin", "no_such_plugin_xyz"), UsageError, r"plugin 'no_such_plugin_xyz' could not be loaded: ModuleNotFoundError"),
    ("cli plugin missing file", lambda: check("--plugin", str(TMP / "nope.py")), UsageError, r"plugin file .*nope.py' does not exist"),
    ("cli plugin raising", lambda: check("--plugin", str(_raising_plugin())), UsageError, r"plugin .*raising_plugin.py' could not be loaded: RuntimeError: plugin broken"),
    ("cli train-tiny steps", lambda: cli("train-tiny", "--steps", "x"), UsageError, r"argument --steps: invalid int value: 'x'"),
    ("cli train-tiny runs", lambda: cli("train-tiny", "--runs", "c"), UsageError, r"argument --runs: invalid choice: 'c'"),
    ("cli report missing results", lambda: cli("report", "--results", str(TMP / "none.json")), UsageError, r"--results .*none.json' is not a file; run `logitrank check` first"),
    ("cli report out is a file", lambda: cli("report", "--results", str(FILE), "--out", str(FILE)), UsageError, r"(--out .* is not a folder|--results)"),
    ("cli report check-readme alone", lambda: cli("report", "--check-readme"), UsageError, r"--check-readme needs --readme PATH"),
]


def _cache():
    from logitrank.verify.experiments import _matrix_cache as _cache

    return _cache


def _store():
    from logitrank.verify import _store

    return _store


def _raising_plugin() -> Path:
    path = TMP / "raising_plugin.py"
    path.write_text("raise RuntimeError('plugin broken')\n")
    return path


def test_table_is_large_and_unique():
    assert len(BAD) >= 150
    assert len({name for name, *_ in BAD}) == len(BAD)
    assert sum(name.startswith("cli ") for name, *_ in BAD) >= 30


@pytest.mark.parametrize(("name", "call", "exc", "match"), BAD, ids=[b[0] for b in BAD])
def test_bad_call_raises_a_clear_error(name, call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# -- inputs that must be accepted (numpy integers) ----------------------------------------------------------
GOOD = [
    ("np.int64 tokens", lambda: alg.logit_matrix(M, [(np.int64(0),)], [(np.int64(1), np.int32(2))])),
    ("np array tokens", lambda: alg.logit_matrix(M, np.array([[0, 1]]), np.array([[2]]))),
    ("np.int64 n", lambda: M.sample(np.int64(10), generator=0)),
    ("np.int64 sizes", lambda: synth.random_isan(np.int64(3), np.int64(4), np.int64(2), generator=np.int64(0))),
    ("np.int64 k", lambda: alg.top_k_columns(M, [(0,)], np.int64(2))),
    ("np.int64 r", lambda: alg.principal_angles(L, L, np.int64(2))),
    ("np.int64 lingen tokens", lambda: alg.lingen(M, [(np.int64(0),)], [1.0], np.int64(2), generator=0)),
]


@pytest.mark.parametrize(("name", "call"), GOOD, ids=[g[0] for g in GOOD])
def test_numpy_integers_are_accepted(name, call):
    call()
