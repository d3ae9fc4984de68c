"""B5 (issue 31): the regime map's N runs are N independent draws — a fresh model, learning stream and
certificate stream per run — and its rule still fails on a false accept."""

import pytest

import logitrank.verify.claims.checks._certificate_claims as b5
from logitrank.synth import all_sequences

TINY = {"VT": (2, 3), "xi": (1e-2,), "alpha": (2.0,), "ranks": (1, 2), "epsilons": (0.2,), "runs": 3}


@pytest.fixture(scope="module")
def rows():
    return b5.regime_rows(TINY, 0)


def test_every_run_is_its_own_model_draw_and_certificate_stream(rows):
    assert len(rows) == 2 * 2 * 3  # model families × rank budgets × runs
    assert len({(r["model"], r["model seed"]) for r in rows}) == len(rows)  # no two runs share a model
    assert len({r["cert seed"] for r in rows}) == len(rows)
    assert not {r["model seed"] for r in rows} & {r["cert seed"] for r in rows}


def test_the_runs_of_one_cell_are_distinct_models():
    """Rebuilt from the recorded seeds, the three runs of a cell are three different distributions."""
    V, T = TINY["VT"]
    for label, build in b5._models(V, T, TINY):
        seeds = [b5.run_seeds(0, 0 if label.startswith("perturbed") else 1, 1, 0, run)[0] for run in range(3)]
        probs = [build(s).log_prob(all_sequences(V, T)).exp() for s in seeds]
        assert all(float((probs[i] - probs[j]).abs().max()) > 1e-3 for i in range(3) for j in range(i))


def test_seeds_are_stable_and_differ_by_every_key():
    assert b5.run_seeds(0, 1, 2, 3, 4) == b5.run_seeds(0, 1, 2, 3, 4)
    keys = [(0, 1, 2, 3, 4), (1, 1, 2, 3, 4), (0, 0, 2, 3, 4), (0, 1, 1, 3, 4), (0, 1, 2, 2, 4), (0, 1, 2, 3, 5)]
    assert len({b5.run_seeds(*k)[0] for k in keys}) == len(keys)


def test_the_rule_fails_on_a_false_accept(rows):
    planted = [dict(r) for r in rows]
    planted[0].update(accepted=True, TV=2 * planted[0]["epsilon"])
    verdict, reason, figures = b5.judge(planted)
    assert verdict == "fails" and figures["accepted with TV > ε"] == 1 and "TV > ε" in reason
