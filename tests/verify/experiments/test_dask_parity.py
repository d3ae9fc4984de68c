"""Issue 32, item 6: the Dask path of `logitrank spectrum` computes the local path's logit rows bit for bit, so
its Gram differs from the local one by float64 summation order only and α agrees to ~1e-9, in float32 and
bfloat16; a worker undoes the nanny's MALLOC_TRIM_THRESHOLD_.

Why α differed before: the Dask path cut each downsizing segment into 2 slices per worker, the local path
cuts the futures into its own chunks (``_spectrum._chunks``). A causal model's packed path packs the futures
of one call together, and in bfloat16 what shares a pass changes the rounding of every logit (≈ 1e-3
relative), so other cuts gave another matrix (α 0.24171 local, 0.24147 / 0.24273 on Dask at N = 32).
"""

import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

distributed = pytest.importorskip("distributed", reason="the dask extra (also in the test extra) is not installed")

from logitrank.algorithms import logit_matrix, top_k_columns
from logitrank.verify.experiments import _spectrum
from logitrank.verify.experiments._distributed_gram import GramJob, distributed_gram, distributed_grams
from logitrank.verify.experiments._spectrum import FACTORS, SpectrumConfig, compute_spectrum

#: float64 summation order of an (n, n) Gram of float32/bfloat16 logits: relative to its largest entry
GRAM_RTOL = 1e-12


class _NoBar:
    def update(self, cells: int) -> None:
        pass


@pytest.fixture(scope="module")
def client():
    with (distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as c,
          distributed.Client(c) as cl):
        yield cl


def _setting(dtype: str, address: str, out, slices=None):
    """(config, H, F, cols, sizes) of a tiny-model spectrum at N = 24, k = 8, as compute_spectrum cuts it."""
    config = SpectrumConfig(n=24, k=8, dtype=dtype, backend="dask", scheduler=address, slices=slices, out=out)
    model = _spectrum._load(config)
    n, lengths, source = _spectrum._fit_to_model(config, model)
    H, F = _spectrum._cut(config, model, n, lengths, source)
    cols = top_k_columns(model, F, config.k)
    sizes = {i: (int(len(H) / math.sqrt(i)), int(len(F) / math.sqrt(i))) for i in FACTORS}
    return config, model, H, F, cols, {i: s for i, s in sizes.items() if min(s) >= 8}


def _grams(dtype, address, tmp_path, slices=None):
    """(G local, G Dask, snapshots local, snapshots Dask): step 3 of both paths on the same cut."""
    config, model, H, F, cols, sizes = _setting(dtype, address, tmp_path / "dask", slices)
    G_local = torch.zeros(len(H), len(H), dtype=torch.float64)
    G_dask = torch.zeros_like(G_local)
    snaps_local, snaps_dask = {}, {}
    _spectrum._local_gram(model, H, F, cols, sizes, G_local, snaps_local, tmp_path / "local", _NoBar())
    _spectrum._dask_gram(config, H, F, cols, sizes, G_dask, snaps_dask, tmp_path / "dask", _NoBar())
    return G_local, G_dask, snaps_local, snaps_dask


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_the_dask_gram_is_the_local_gram_to_float64_rounding(client, tmp_path, dtype):
    G_local, G_dask, snaps_local, snaps_dask = _grams(dtype, client.scheduler.address, tmp_path)
    scale = float(G_local.abs().max())
    torch.testing.assert_close(G_dask, G_local, rtol=0, atol=GRAM_RTOL * scale)
    assert snaps_dask.keys() == snaps_local.keys() and len(snaps_local) >= 3
    for i in snaps_local:  # every downsized matrix too
        torch.testing.assert_close(snaps_dask[i], snaps_local[i], rtol=0, atol=GRAM_RTOL * scale)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_other_slices_give_another_matrix(client, tmp_path, dtype):
    """What the test above would catch: equal slices (the former default) change the logits themselves,
    far beyond the float64 rounding it allows (bfloat16: ~1e-4 of the largest entry)."""
    G_local, G_dask, _, _ = _grams(dtype, client.scheduler.address, tmp_path, slices=3)
    scale = float(G_local.abs().max())
    assert float((G_dask - G_local).abs().max()) > 1e3 * GRAM_RTOL * scale


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_spectrum_alpha_on_dask_equals_the_local_alpha(client, tmp_path, dtype):
    local = compute_spectrum(SpectrumConfig(n=24, k=8, dtype=dtype, out=tmp_path / "local"))
    dask = compute_spectrum(SpectrumConfig(n=24, k=8, dtype=dtype, backend="dask", scheduler=client.scheduler.address,
                                           out=tmp_path / "dask"))
    assert abs(dask.alpha - local.alpha) < 1e-9
    for i, sv in local.spectra.items():  # σ² = eig(G): LAPACK on two Grams equal to float64 rounding
        np.testing.assert_allclose(dask.spectra[i] ** 2, sv**2, rtol=0, atol=1e-11 * sv[0] ** 2)


def test_jobs_submitted_together_equal_jobs_summed_one_by_one(client, tmp_path):
    *_, H, F, cols, _ = _setting("bfloat16", client.scheduler.address, tmp_path)
    cols = cols.numpy()
    jobs = [GramJob(F[:10], cols[:10], bounds=[0, 4, 10]), GramJob(F[10:], cols[10:], slices=3)]
    calls = []
    together = distributed_grams("tiny", H, jobs, client=client, dtype="bfloat16", one_block=True,
                                 on_slice=lambda *a: calls.append(a))
    assert sorted((j, p) for j, p, _, _ in calls) == [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2)]
    for job, part in zip(jobs, together):
        alone = distributed_gram("tiny", H, job.futures, columns=job.columns, bounds=job.bounds, slices=job.slices,
                                 client=client, dtype="bfloat16")
        G = alone.accumulator.gram
        torch.testing.assert_close(part.accumulator.gram, G, rtol=0, atol=GRAM_RTOL * float(G.abs().max()))
    with pytest.raises(ValueError, match="bounds must rise strictly"):
        distributed_gram("tiny", H, F[:10], columns=cols[:10], bounds=[0, 5, 5, 10], client=client)


def test_one_block_ignores_a_small_memory_budget(client, tmp_path):
    """one_block: a slice is one model call (the local chunk's rows) even where memory_budget would cut it.
    (The two calls share H, F, columns and cuts: each call's task keys are its own, or the second would be
    handed the first one's results.)"""
    _, model, H, F, cols, _ = _setting("bfloat16", client.scheduler.address, tmp_path)
    cols = cols.numpy()
    L = logit_matrix(model, H, F[:12], columns=torch.from_numpy(cols[:12])).to(torch.float64)  # (n, 12·k)
    G = L @ L.T  # (n, n): the local path's chunk
    whole = distributed_gram("tiny", H, F[:12], columns=cols[:12], bounds=[0, 12], client=client, dtype="bfloat16",
                             memory_budget=1)
    assert float((whole.accumulator.gram - G).abs().max()) > 1e3 * GRAM_RTOL * float(G.abs().max())  # 12 blocks
    (one,) = distributed_grams("tiny", H, [GramJob(F[:12], cols[:12], bounds=[0, 12])], client=client,
                               dtype="bfloat16", memory_budget=1, one_block=True)
    torch.testing.assert_close(one.accumulator.gram, G, rtol=0, atol=GRAM_RTOL * float(G.abs().max()))


def test_a_worker_undoes_the_nanny_malloc_trim_threshold():
    """With MALLOC_TRIM_THRESHOLD_=65536 (what the nanny sets) each freed 1 MiB buffer is unmapped and every
    new one faults its pages in again; _tune_malloc brings that back to a few faults (once per process)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("glibc's mallopt: Linux only")
    script = textwrap.dedent("""
        import resource, sys, torch
        from logitrank.verify.experiments._distributed_gram import _tune_malloc
        tuned = (_tune_malloc(), _tune_malloc()) if sys.argv[1] == "tune" else None
        r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(200):
            x = torch.ones(2**18)  # 1 MiB
            del x
        print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0)
    """)

    def faults(mode: str, trim: str | None):
        env = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
        if trim is not None:
            env["MALLOC_TRIM_THRESHOLD_"] = trim
        out = subprocess.run([sys.executable, "-c", script, mode], env=env, capture_output=True, text=True, check=True)
        tuned, count = out.stdout.split(" ", 1) if not out.stdout.startswith("(") else out.stdout.rsplit(" ", 1)
        return tuned.strip(), int(count)

    tuned, after = faults("tune", "65536")
    _, before = faults("none", "65536")
    assert tuned == "(True, False)"  # tuned once, not twice
    assert before > 20 * 256 * 10 and after * 10 < before  # 200 × 256 pages faulted in without the tuning
    assert faults("tune", None)[0] == "(False, False)"  # a process without the variable is left alone
