"""The drift check end to end on counts: exactly the shifted features are flagged, no others."""

from __future__ import annotations

import numpy as np
import pytest

from aiaas.errors import InvalidArgument
from aiaas.monitoring import CountWindow, ReferenceProfile, check_drift, count_batch
from aiaas.schemas import DriftSettings
from tests.monitoring._tables import MEAN_SHIFTED, SHIFTED, make_tables

ROWS = 20_000


@pytest.fixture(scope="module", params=[0, 1, 2], ids=lambda s: f"seed{s}")
def tables(request: pytest.FixtureRequest) -> tuple[ReferenceProfile, object]:
    tables = make_tables(ROWS, request.param)
    return ReferenceProfile.build(tables.reference, categorical=tables.categorical), tables


def test_exactly_the_shifted_features_are_flagged(tables) -> None:
    profile, t = tables
    report = check_drift(profile, count_batch(profile, t.shifted))
    assert len(profile.features) == 100 and len(SHIFTED) == 20
    assert sorted(report.drifted) == SHIFTED
    assert report.drifted_share == pytest.approx(0.2)
    flagged = {f.name: f for f in report.features if f.drifted}
    assert {f.kind for f in flagged.values()} == {"numeric", "categorical"}
    assert all(f.method == "psi" and f.score >= 0.2 and f.enough_rows for f in flagged.values())


def test_an_unshifted_sample_flags_nothing(tables) -> None:
    profile, t = tables
    report = check_drift(profile, count_batch(profile, t.unshifted))
    assert report.drifted == []
    assert max(f.psi for f in report.features) < 0.02  # far below 0.2, not just under it


@pytest.mark.parametrize(
    "methods",
    [
        {"numeric_method": "jensen_shannon", "categorical_method": "jensen_shannon"},
        {"numeric_method": "ks", "categorical_method": "psi"},
        # A p-value < 0.05 happens to 5% of unshifted features by definition: chi-squared only
        # separates at a much stricter level, which is why PSI decides by default.
        {"numeric_method": "wasserstein", "categorical_method": "chi2", "chi2_p_value": 1e-6},
    ],
    ids=lambda m: f"{m['numeric_method']}-{m['categorical_method']}",
)
def test_every_method_separates_shifted_from_unshifted(tables, methods) -> None:
    profile, t = tables
    settings = DriftSettings(**methods)
    shifted = check_drift(profile, count_batch(profile, t.shifted), settings)
    assert sorted(shifted.drifted) == SHIFTED
    assert all(f.method in methods.values() for f in shifted.features)
    assert check_drift(profile, count_batch(profile, t.unshifted), settings).drifted == []


def test_a_threshold_moves_the_flags() -> None:
    t = make_tables(ROWS, 0)
    profile = ReferenceProfile.build(t.reference, categorical=t.categorical)
    report = check_drift(profile, count_batch(profile, t.shifted), DriftSettings(psi_threshold=50))
    assert report.drifted == []


def test_too_few_live_rows_are_reported_and_never_flagged() -> None:
    t = make_tables(ROWS, 0)
    profile = ReferenceProfile.build(t.reference, categorical=t.categorical)
    few = {name: column[:500] for name, column in t.shifted.items()}
    report = check_drift(profile, count_batch(profile, few))
    assert report.drifted == []
    assert all(not f.enough_rows and f.rows == 500 for f in report.features)
    # with min_rows lowered, the same counts flag (a mean shift of one std is plain at 500 rows)
    lowered = check_drift(profile, count_batch(profile, few), DriftSettings(min_rows=100))
    assert set(MEAN_SHIFTED) <= set(lowered.drifted)


def test_output_drift_uses_the_same_code() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(ROWS, 3))
    label = np.where(x[:, 0] > 0.5, "spam", "ham")
    score = x @ np.array([1.0, 2.0, -1.0])
    profile = ReferenceProfile.build(
        {"a": x[:, 0], "b": x[:, 1], "c": x[:, 2]}, {"label": label, "score": score}
    )
    assert [f.role for f in profile.features] == ["input", "input", "input", "output", "output"]
    live = rng.normal(size=(ROWS, 3))
    now = [1000.0]
    window = CountWindow(profile, DriftSettings(interval_s=60), clock=lambda: now[0])
    weights = np.array([1.0, 2.0, -1.0])
    window.add(live, {"label": np.where(live[:, 0] > 0.5, "spam", "ham"), "score": live @ weights})
    assert check_drift(profile, window.counts(window_s=60)).drifted == []
    # A minute later the model answers "spam" far more often and its score moves up
    now[0] += 60
    window.add(live, {"label": np.where(live[:, 0] > -0.5, "spam", "ham"), "score": live @ weights + 3})
    report = check_drift(profile, window.counts(window_s=60))
    assert sorted(report.drifted) == ["label", "score"]
    assert report.drifted_share == 0.0  # inputs only
    assert {f.name: f.kind for f in report.features if f.role == "output"} == {
        "label": "categorical",
        "score": "numeric",
    }


def test_counts_of_another_reference_are_refused() -> None:
    t = make_tables(2000, 0)
    profile = ReferenceProfile.build(t.reference, categorical=t.categorical)
    other = ReferenceProfile.build({"x": np.arange(100.0)})
    with pytest.raises(InvalidArgument, match="cannot be checked against") as info:
        check_drift(profile, count_batch(other, {"x": np.arange(10.0)}))
    assert info.value.details["field"] == "profile"


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"psi_threshold": -1}, "psi_threshold"),
        ({"numeric_bins": 1}, "numeric_bins"),
        ({"numeric_method": "chi2"}, "numeric_method"),
        ({"ks_threshold": 1.5}, "ks_threshold"),
        ({"window_minutes": 5}, "window_minutes"),
        ({"min_rows": "many"}, "min_rows"),
        ({"interval_s": 0}, "interval_s"),
    ],
)
def test_bad_settings_name_the_field(settings, field) -> None:
    with pytest.raises(InvalidArgument, match=f"invalid drift settings: {field}") as info:
        DriftSettings.parse(settings)
    assert info.value.details["field"] == field


def test_settings_defaults_are_documented_values() -> None:
    settings = DriftSettings.parse(None)
    assert (settings.psi_threshold, settings.numeric_bins, settings.max_categories) == (0.2, 20, 20)
    assert (settings.numeric_method, settings.categorical_method) == ("psi", "psi")
