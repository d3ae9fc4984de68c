"""The Dask path of the sweep engine gives the numbers of the local path (in-process LocalCluster)."""

import pytest

distributed = pytest.importorskip("distributed", reason="the dask extra (also in the test extra) is not installed")

from logitrank.verify.experiments.sweep import Engine, SweepSpec, load, run_sweep


def test_dask_local_cluster_matches_the_local_engine(tmp_path):
    spec = SweepSpec(name="dask", task="learn", grid={"V": [2, 3], "xi": [0.0, 1e-3]}, seeds=2,
                     fixed={"T": 4, "d": 2, "family": "random_isan"})
    run_sweep(spec, store=tmp_path / "local.sqlite")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        result = run_sweep(spec, store=tmp_path / "dask.sqlite",
                           engine=Engine(jobs=2, backend="dask", scheduler=cluster.scheduler_address))
    assert (result.done, result.failed) == (8, 0)
    cols = ["cell", "seed_index", "seed", "tv", "queries", "dim", "rounds"]
    local, dask = (load(tmp_path / f"{x}.sqlite", "dask")[cols].sort_values(["cell", "seed_index"])
                   .reset_index(drop=True) for x in ("local", "dask"))
    assert local.equals(dask)


def test_unreachable_scheduler_is_a_clear_error(tmp_path):
    spec = SweepSpec(name="x", task="noop", grid={"i": [0]})
    with pytest.raises(ValueError, match=r"scheduler 'tcp://127.0.0.1:9': no Dask scheduler answered"):
        run_sweep(spec, store=tmp_path / "x.sqlite", engine=Engine(backend="dask", scheduler="tcp://127.0.0.1:9"))
