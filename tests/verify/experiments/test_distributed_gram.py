"""The Gram sum on a Dask cluster (issue 26): equal to the serial one, resumable after a killed driver,
unaffected by a lost worker, and refusing a checkpoint that does not verify."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

distributed = pytest.importorskip("distributed", reason="the dask extra (also in the test extra) is not installed")

from logitrank.algorithms import gram_matrix, logit_spectrum
from logitrank.synth import random_isan
from logitrank.verify.experiments._distributed_gram import distributed_gram

pytestmark = pytest.mark.numerics  # partial sums added in arrival order: .ci/run reruns these on other kernels


def _setting():
    m = random_isan(6, 10, 3, generator=2)
    g = torch.Generator().manual_seed(0)
    H = [tuple(torch.randint(6, (1 + i % 4,), generator=g).tolist()) for i in range(30)]
    F = [tuple(torch.randint(6, (1 + i % 3,), generator=g).tolist()) for i in range(24)]
    cols = torch.stack([torch.randperm(6, generator=g)[:2] for _ in F]).numpy()  # k = 2 distinct tokens
    return m, H, F, cols


@pytest.fixture(scope="module")
def cluster():
    with (distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c,
          distributed.Client(c) as client):
        yield client


def test_equal_to_the_serial_sum_and_spectrum(cluster, tmp_path):
    m, H, F, cols = _setting()
    out = distributed_gram(m, H, F, columns=cols, client=cluster, slices=5, checkpoint=tmp_path / "ck")
    serial = gram_matrix(m, H, F, columns=torch.from_numpy(cols))
    G = out.accumulator.gram
    # the same products summed in another order: float64 rounding of the largest entry
    torch.testing.assert_close(G, serial, rtol=0, atol=1e-12 * float(serial.abs().max()))
    sv = out.accumulator.spectrum().singular_values
    ref = logit_spectrum(m, H, F, columns=torch.from_numpy(cols)).singular_values
    torch.testing.assert_close(sv**2, ref**2, rtol=0, atol=1e-12 * float(ref[0]) ** 2)
    assert out.computed == [0, 1, 2, 3, 4] and out.accumulator.columns == len(F) * 2


def test_a_killed_driver_resumes_without_recomputing_finished_slices(cluster, tmp_path):
    m, H, F, cols = _setting()
    ck = tmp_path / "ck"
    first = distributed_gram(m, H, F, columns=cols, client=cluster, slices=6, checkpoint=ck, max_slices=2)
    assert len(first.computed) == 2
    again = distributed_gram(m, H, F, columns=cols, client=cluster, slices=6, checkpoint=ck)
    assert sorted(set(again.computed) | set(first.computed)) == list(range(6))
    assert not set(again.computed) & set(first.computed)  # finished slices were not recomputed
    serial = gram_matrix(m, H, F, columns=torch.from_numpy(cols))
    torch.testing.assert_close(again.accumulator.gram, serial, rtol=0, atol=1e-12 * float(serial.abs().max()))


def test_a_checkpoint_that_does_not_verify_is_refused(cluster, tmp_path):
    m, H, F, cols = _setting()
    ck = tmp_path / "ck"
    distributed_gram(m, H, F, columns=cols, client=cluster, slices=3, checkpoint=ck, max_slices=1)
    record = json.loads((ck / "record.json").read_text())
    data = ck / record["data"]
    raw = bytearray(data.read_bytes())
    raw[-3] ^= 1
    data.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="does not verify"):
        distributed_gram(m, H, F, columns=cols, client=cluster, slices=3, checkpoint=ck)
    with pytest.raises(ValueError, match="belongs to another setting"):
        distributed_gram(m, H, F[:-1], columns=cols[:-1], client=cluster, slices=3, checkpoint=ck)


def test_a_checkpoint_of_other_weights_dtype_is_refused(cluster, tmp_path):
    # the same H, F, columns and slicing in float32 weights must not resume a float64 sum
    m, H, F, cols = _setting()
    ck = tmp_path / "ck"
    distributed_gram(m, H, F, columns=cols, client=cluster, slices=3, checkpoint=ck, max_slices=1)
    m32 = m.to(dtype=torch.float32) if hasattr(m, "to") else None
    assert m32 is not None and m32.dtype == torch.float32 != m.dtype
    with pytest.raises(ValueError, match="dtype"):
        distributed_gram(m32, H, F, columns=cols, client=cluster, slices=3, checkpoint=ck)


def test_a_worker_killed_mid_run_costs_only_its_slices(tmp_path):
    """kill -9 one worker process while slices run: Dask retries its tasks elsewhere; the sum is exact."""
    m, H, F, cols = _setting()
    holder = {}
    with (distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c,
          distributed.Client(c) as client):
        pids = list(client.run(os.getpid).values())

        def killer(done, total):
            if done == 1 and "killed" not in holder:
                os.kill(pids[0], signal.SIGKILL)  # a worker process dies while the other slices are queued
                holder["killed"] = True

        out = distributed_gram(m, H, F, columns=cols, client=client, slices=8, checkpoint=tmp_path / "ck",
                               on_slice=killer, retries=3)
    assert holder.get("killed") and out.computed == list(range(8))
    serial = gram_matrix(m, H, F, columns=torch.from_numpy(cols))
    torch.testing.assert_close(out.accumulator.gram, serial, rtol=0, atol=1e-12 * float(serial.abs().max()))


def test_a_driver_killed_by_sigkill_resumes(tmp_path):
    """The driver process is kill -9'd after its first slices; a new driver finishes from the checkpoint."""
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time, torch, distributed
        sys.path.insert(0, {str(os.path.dirname(__file__))!r})
        from test_distributed_gram import _setting
        from logitrank.verify.experiments._distributed_gram import distributed_gram
        m, H, F, cols = _setting()
        def slow(done, total):
            print("slice", done, flush=True)
            time.sleep(0.5)
        if __name__ == "__main__":
            with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                          dashboard_address=None) as c, distributed.Client(c) as client:
                distributed_gram(m, H, F, columns=cols, client=client, slices=6, checkpoint={str(tmp_path / 'ck')!r},
                                 on_slice=slow)
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    line = ""
    while time.time() < deadline and "slice 2" not in line:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    record = json.loads((tmp_path / "ck" / "record.json").read_text())
    assert 2 <= len(record["done"]) < 6
    m, H, F, cols = _setting()
    with (distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as c,
          distributed.Client(c) as client):
        out = distributed_gram(m, H, F, columns=cols, client=client, slices=6, checkpoint=tmp_path / "ck")
    assert sorted(out.computed) == sorted(set(range(6)) - set(record["done"]))
    serial = gram_matrix(m, H, F, columns=torch.from_numpy(cols))
    torch.testing.assert_close(out.accumulator.gram, serial, rtol=0, atol=1e-12 * float(serial.abs().max()))
    assert np.isfinite(out.accumulator.gram.numpy()).all()


def test_spectrum_cli_on_a_dask_cluster_equals_the_local_run(tmp_path, capsys):
    """`logitrank spectrum --backend dask --scheduler ADDR` (the tiny model loaded once per worker by name):
    the same σ as the local run, to the float32 rounding of the model's logits."""
    from logitrank.verify.cli import main

    common = ["spectrum", "--n", "24", "--k", "8", "--threads", "1"]
    assert main([*common, "--out", str(tmp_path / "local")]) == 0
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as c:
        assert main([*common, "--out", str(tmp_path / "dask"), "--backend", "dask", "--scheduler", c.scheduler_address,
                     "--slices", "3"]) == 0
    a, b = np.load(tmp_path / "local" / "sigma.npy"), np.load(tmp_path / "dask" / "sigma.npy")
    # float32 logits on two block paths (the disk-cached matrix vs the packed Gram path): relative 1e-4 of σ₁
    np.testing.assert_allclose(b, a, rtol=0, atol=1e-4 * a[0])
    assert (tmp_path / "dask" / "dask").is_dir()  # its checkpoints


def test_spectrum_cli_dask_needs_a_scheduler(capsys):
    from logitrank.verify.cli import main

    with pytest.raises(SystemExit) as info:
        main(["spectrum", "--backend", "dask"])
    assert info.value.code == 2 and "--backend dask needs --scheduler" in capsys.readouterr().err


def test_a_real_tcp_scheduler_passes_the_handshake_probe():
    """Issue 34: `--scheduler` is probed before any work (a web server's reply read as a Dask frame header once
    asked for 3 EiB); a real scheduler over tcp:// must pass that probe."""
    from logitrank.verify.experiments._spectrum import scheduler_answer_problem, scheduler_problem

    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp://",
                                  dashboard_address=None) as c:
        address = c.scheduler_address
        assert address.startswith("tcp://")
        assert scheduler_problem(address) is None and scheduler_answer_problem(address) is None


def test_keyed_checkpoints_keep_one_folder_per_setting(cluster, tmp_path):
    """With keyed=True two settings share one checkpoint folder, each resuming its own (issue 34: a spectrum
    rerun into the same --out with another --k)."""
    m, H, F, cols = _setting()
    ck = tmp_path / "ck"
    distributed_gram(m, H, F, columns=cols, client=cluster, slices=3, checkpoint=ck, keyed=True)
    other = distributed_gram(m, H, F[:-1], columns=cols[:-1], client=cluster, slices=3, checkpoint=ck, keyed=True)
    assert other.computed == [0, 1, 2] and len(list(ck.iterdir())) == 2
    again = distributed_gram(m, H, F, columns=cols, client=cluster, slices=3, checkpoint=ck, keyed=True)
    assert again.computed == []  # resumed from its own finished record


def test_a_record_is_checksummed_as_a_whole(cluster, tmp_path):
    """Any edit of the record (here: one more finished slice) fails its record_sha256."""
    from logitrank.verify.experiments._distributed_gram import CheckpointError

    m, H, F, cols = _setting()
    ck = tmp_path / "ck"
    distributed_gram(m, H, F, columns=cols, client=cluster, slices=3, checkpoint=ck, max_slices=1)
    record = json.loads((ck / "record.json").read_text())
    record["done"] = [0, 1, 2]
    (ck / "record.json").write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="does not verify"):
        distributed_gram(m, H, F, columns=cols, client=cluster, slices=3, checkpoint=ck)
