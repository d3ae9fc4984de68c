"""benchmarks/bench_gram.py --paper-size: its running sum resumes from a verified checkpoint, refuses
one that does not verify, and ends at the spectrum of one logit_spectrum call (no timing asserted)."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from logitrank.algorithms import logit_spectrum

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_gram.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_gram_under_test", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_checkpoint_round_trip_and_refusals(bench, tmp_path):
    path = tmp_path / "g.json"
    key = {"n": 3, "parts": 2}
    G = torch.arange(9, dtype=torch.float64).reshape(3, 3)
    assert bench._load_checkpoint(path, key, 3)[1:] == ([], None)  # nothing yet: a zero sum
    bench._save_checkpoint(path, key, G, [{"part": 0}], [2, 0, 1])
    G2, done, inv = bench._load_checkpoint(path, key, 3)
    assert torch.equal(G2, G) and done == [{"part": 0}] and inv == [2, 0, 1]  # exact: the saved bytes, read back
    bench._save_checkpoint(path, key, G + 1, [{"part": 0}, {"part": 1}], [2, 0, 1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.json", "g.json.2.f64"]  # the old data file is gone
    with pytest.raises(SystemExit, match="belongs to another setting"):
        bench._load_checkpoint(path, {"n": 3, "parts": 5}, 3)
    data = tmp_path / "g.json.2.f64"
    raw = bytearray(data.read_bytes())
    raw[5] ^= 1
    data.write_bytes(bytes(raw))
    with pytest.raises(SystemExit, match="does not verify"):
        bench._load_checkpoint(path, key, 3)


def test_killed_between_data_and_metadata_resumes_from_the_last_consistent_pair(bench, tmp_path):
    path = tmp_path / "g.json"
    key = {"n": 2}
    G = torch.ones(2, 2, dtype=torch.float64)
    bench._save_checkpoint(path, key, G, [{"part": 0}], None)
    (tmp_path / "g.json.2.f64").write_bytes(b"half-written")  # a later save killed before its metadata
    G2, done, _ = bench._load_checkpoint(path, key, 2)
    assert torch.equal(G2, G) and done == [{"part": 0}]  # exact: the saved bytes, read back


@pytest.mark.numerics  # a running sum with moved block ends against one call: .ci/run reruns it on other kernels
def test_slices_resumed_over_runs_give_the_one_call_spectrum(bench, tmp_path):
    n, ck = 120, tmp_path / "g.json"
    out = tmp_path / "r.json"
    bench.paper_child(n, 4, 1, str(ck), False, str(out))  # one slice, then "killed"
    first = json.loads(out.read_text())
    assert not first["complete"] and [d["part"] for d in first["done"]] == [0]
    bench.paper_child(n, 4, None, str(ck), False, str(out))  # resumes at slice 1
    r = json.loads(out.read_text())
    assert r["complete"] and [d["part"] for d in r["done"]] == [0, 1, 2, 3]
    assert r["done"][0] == first["done"][0]  # the finished slice was not recomputed (exact: its stored record)
    model, H, F, cols = bench.setting(n)
    ref = logit_spectrum(model, H, F, columns=cols).singular_values[:100]
    # the same sum with block ends moved to slice ends: float64 rounding, 1e-12 of σ₁² on σ²
    torch.testing.assert_close(torch.tensor(r["sv"], dtype=torch.float64) ** 2, ref**2, rtol=0, atol=1e-12 * float(ref[0]) ** 2)
