"""Issue 31, settings cleanup: ``until``, ``max_queries`` and ``widening`` are validated fields of the frozen
``ApproxSettings`` (``learn_approx``'s keywords still set them and override ``settings=``); one report class
(``ApproxRunReport`` is ``ApproxLearnReport``) says which TV its bound is on."""

import dataclasses
import warnings

import pytest

from logitrank.algorithms import (
    ApproxLearnReport,
    ApproxNotAcceptedWarning,
    ApproxRunReport,
    ApproxSettings,
    learn_approx,
    oracle_widening,
)
from logitrank.synth import random_isan

FAST = {"n_validation": 8, "n_spanner": 16, "n_heldout": 16, "n_cert": 200}


def _run(model=None, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ApproxNotAcceptedWarning)
        return learn_approx(model or random_isan(2, 4, 2, generator=0), generator=0, **kwargs)


@pytest.mark.parametrize("field, value, error, message", [
    ("until", "forever", ValueError, r"until must be one of \('accept', 'budget'\); got 'forever'"),
    ("until", 3, ValueError, r"until must be one of .*; got 3"),
    ("widening", "huge", ValueError, r"widening must be one of \('kl', 'log_ratio'\); got 'huge'"),
    ("max_queries", 0, ValueError, r"max_queries must be >= 1; got 0"),
    ("max_queries", 2.5, TypeError, r"max_queries must be an integer; got 2.5"),
    ("oracle_error", -0.1, ValueError, r"oracle_error"),
    ("delta", 1.0, ValueError, r"delta"),
])
def test_bad_settings_are_refused_naming_the_field_and_the_value(field, value, error, message):
    with pytest.raises(error, match=message):
        ApproxSettings(rank=2, epsilon=0.1, **{field: value})
    with pytest.raises(error, match=message):  # the same check through learn_approx's keywords
        learn_approx(random_isan(2, 3, 2, generator=0), rank=2, epsilon=0.1, generator=0, **{field: value})


def test_the_run_options_are_settings_and_frozen():
    s = ApproxSettings(rank=2, epsilon=0.1, until="budget", max_queries=500, widening="log_ratio")
    assert {"until", "max_queries", "widening"} <= set(ApproxSettings.fields())
    assert (s.until, s.max_queries, s.widening) == ("budget", 500, "log_ratio")
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.until = "accept"
    defaults = ApproxSettings(rank=2, epsilon=0.1)
    assert (defaults.until, defaults.max_queries, defaults.widening) == ("accept", None, "kl")


def test_keywords_map_onto_settings_and_override_them():
    budget = ApproxSettings(rank=2, epsilon=0.1, until="budget", patience=None, epochs=3, **FAST)
    _, rep = _run(settings=budget)  # no keyword: the settings' mode runs
    assert rep.settings.until == rep.until == "budget" and rep.epochs == 3 and rep.stop_reason == "epochs"
    _, rep = _run(settings=budget, until="accept")  # the keyword overrides the field
    assert rep.settings.until == rep.until == "accept" and rep.stop_reason == "accepted" and rep.epochs < 3
    _, rep = _run(rank=2, epsilon=0.1, until="budget", patience=None, epochs=3, **FAST)  # keywords alone
    assert rep.settings == budget


def test_max_queries_and_widening_from_settings_reach_the_run():
    model = random_isan(3, 4, 3, generator=1)
    s = ApproxSettings(rank=1, epsilon=0.05, until="budget", patience=None, max_queries=1, oracle_error=0.01,
                       widening="log_ratio", **FAST)
    _, rep = _run(model, settings=s)
    assert rep.stop_reason == "queries" and rep.epochs == 1 and rep.max_queries == 1
    assert rep.widening == "log_ratio" and rep.oracle_widening == pytest.approx(oracle_widening(0.01, 4, "log_ratio"))
    _, kl = _run(model, settings=s, widening="kl")
    assert kl.oracle_widening == pytest.approx(oracle_widening(0.01, 4)) and kl.oracle_widening < rep.oracle_widening


def test_one_report_class_and_which_tv_the_bound_is_on():
    assert ApproxRunReport is ApproxLearnReport
    _, rep = _run(rank=2, epsilon=0.1, **FAST)
    assert isinstance(rep, ApproxRunReport) and rep.bounds_tv_to == "oracle" and rep.oracle_widening == 0.0
    assert rep.certified_epochs == list(range(1, rep.epochs + 1)) and rep.cert_delta == pytest.approx(0.05 / 9)
    _, noisy = _run(rank=2, epsilon=0.1, oracle_error=1e-3, **FAST)
    assert noisy.bounds_tv_to == "truth" and noisy.oracle_widening == pytest.approx(oracle_widening(1e-3, 4))


def test_either_accepts_exactly_what_certificate_accepts():
    runs = [_run(random_isan(3, 4, 3, generator=g, scale=2.0), rank=2, epsilon=0.1, acceptance=rule, **FAST)[1]
            for g in (0, 1, 2) for rule in ("certificate", "either")]
    for cert, either in zip(runs[::2], runs[1::2]):
        assert (cert.accepted, cert.accepted_by, cert.returned_epoch, cert.tv_bound) == \
            (either.accepted, either.accepted_by, either.returned_epoch, either.tv_bound)


def test_on_epoch_must_be_callable():
    with pytest.raises(TypeError, match="on_epoch must be None or a callable"):
        learn_approx(random_isan(2, 3, 2, generator=0), rank=2, epsilon=0.1, generator=0, on_epoch=3)
