"""The registry: numbered immutable versions, lineage, aliases and rollback, compare, and
the guards that keep a served version from disappearing."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest
from sqlalchemy import select

from aiaas.deployments import DeploymentService
from aiaas.errors import (
    AlreadyExists,
    ArtifactCorrupted,
    Conflict,
    InvalidArgument,
    NotFound,
    PayloadTooLarge,
)
from aiaas.formats import ModelPackage, decode_tensors, package_model
from aiaas.registry import Registry
from aiaas.schemas import Model, ModelVersion
from aiaas.store import MAX_JSON_BYTES, MAX_JSON_DEPTH, MAX_TEXT_CHARS
from aiaas.store.limits import TOO_DEEP
from aiaas.store.tables import ModelRow
from tests.registry.conftest import EXAMPLE_ROWS

# -- models and version numbers ----------------------------------------------------------


def test_versions_are_numbered_one_two_three_per_model(
    registry: Registry, iris_package: ModelPackage
) -> None:
    assert [registry.register_version("iris", iris_package).version for _ in range(3)] == [1, 2, 3]
    assert registry.register_version("other", iris_package).version == 1
    assert [v.version for v in registry.list_versions("iris")] == [1, 2, 3]
    assert registry.get_model("iris").latest_version == 3
    assert registry.get_model("other").latest_version == 1


def test_registering_creates_the_model(registry: Registry, iris_package: ModelPackage) -> None:
    v = registry.register_version("iris", iris_package, description="first")
    assert (v.model, v.status, v.flavor, v.description) == ("iris", "ready", "sklearn", "first")
    assert [m.name for m in registry.list_models()] == ["iris"]


def test_version_records_the_artifact_signature_and_example(
    registry: Registry, iris_package: ModelPackage
) -> None:
    v = registry.register_version("iris", iris_package)
    assert v.artifact_size_bytes == len(iris_package.onnx)
    assert registry.load_artifact(v) == iris_package.onnx
    assert v.signature == iris_package.signature.to_dict()
    example = decode_tensors(v.example["inputs"])
    np.testing.assert_array_equal(example["X"], iris_package.example["X"])
    assert example["X"].dtype == np.float32


def test_create_model_twice_is_already_exists(registry: Registry) -> None:
    model = registry.create_model("iris", description="flowers", tags={"team": "ml"})
    assert (model.description, model.tags, model.latest_version) == ("flowers", {"team": "ml"}, None)
    with pytest.raises(AlreadyExists, match="model 'iris' already exists"):
        registry.create_model("iris")


def test_update_model_changes_description_and_tags_only(registry: Registry) -> None:
    registry.create_model("iris", description="old", tags={"a": 1})
    assert registry.update_model("iris", description="new").tags == {"a": 1}
    updated = registry.update_model("iris", tags={"b": 2})
    assert (updated.description, updated.tags) == ("new", {"b": 2})
    assert registry.get_model("iris").description == "new"


def test_unknown_model_is_not_found(registry: Registry) -> None:
    for call in (
        lambda: registry.get_model("nope"),
        lambda: registry.list_versions("nope"),
        lambda: registry.get_version("nope", 1),
        lambda: registry.delete_model("nope"),
    ):
        with pytest.raises(NotFound, match="model 'nope' not found"):
            call()


BAD_NAMES = ["", "-leading-dash", "a/b", "a b", "x" * 129, "ünicode", "a?b"]


def test_bad_model_names_are_invalid_arguments(registry: Registry, iris_package: ModelPackage) -> None:
    # One database for all the names: each is refused before anything is written.
    for name in BAD_NAMES:
        with pytest.raises(InvalidArgument, match="name must be 1-128 characters") as info:
            registry.create_model(name)
        assert info.value.details == {"field": "name", "value": name}
        with pytest.raises(InvalidArgument, match="name must be"):
            registry.register_version(name, iris_package)
    assert registry.list_models() == []


def test_metrics_and_params_must_be_objects(registry: Registry, iris_package: ModelPackage) -> None:
    for field in ("metrics", "params"):
        for value in ([("accuracy", 0.9)], "accuracy=0.9", 0.9):
            with pytest.raises(InvalidArgument, match=f"{field} must be an object") as info:
                registry.register_version("iris", iris_package, **{field: value})  # type: ignore[arg-type]
            assert info.value.details["field"] == field
    assert registry.list_models() == []


def test_package_whose_example_does_not_fit_is_refused(
    registry: Registry, iris_package: ModelPackage
) -> None:
    broken = dataclasses.replace(iris_package, example={"X": np.zeros((2, 3), np.float32)})
    with pytest.raises(InvalidArgument, match=r"input 'X' has shape \[2, 3\]"):
        registry.register_version("iris", broken)
    assert registry.list_models() == []


def test_concurrent_registrations_get_distinct_consecutive_numbers(
    registry: Registry, iris_package: ModelPackage
) -> None:
    writers = 8
    start = threading.Barrier(writers)
    numbers: list[int] = []
    failures: list[BaseException] = []

    def register() -> None:
        start.wait()
        try:
            numbers.append(registry.register_version("race", iris_package).version)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=register) for _ in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert sorted(numbers) == list(range(1, writers + 1))
    assert [v.version for v in registry.list_versions("race")] == list(range(1, writers + 1))


# -- immutability and lineage ------------------------------------------------------------


def test_versions_are_immutable(registry: Registry, iris_package: ModelPackage) -> None:
    v1 = registry.register_version("iris", iris_package, metrics={"accuracy": 0.9})
    with pytest.raises(dataclasses.FrozenInstanceError):
        v1.artifact_digest = "0" * 64  # type: ignore[misc]
    # Changing what a caller was handed does not change what is stored.
    v1.metrics["accuracy"] = 0.1
    v1.signature["inputs"][0]["name"] = "hacked"
    stored = registry.get_version("iris", 1)
    assert stored.metrics == {"accuracy": 0.9}
    assert stored.signature == iris_package.signature.to_dict()


def test_later_changes_leave_an_earlier_version_as_it_was(
    registry: Registry, iris_package: ModelPackage, retrained_package: ModelPackage
) -> None:
    v1 = registry.register_version("iris", iris_package, metrics={"accuracy": 0.9}, params={"C": 1.0})
    registry.register_version("iris", retrained_package, metrics={"accuracy": 0.7})
    registry.set_alias("iris", "production", 2)
    archived = registry.archive_version("iris", 1)
    assert archived.status == "archived"
    assert dataclasses.replace(archived, status="ready") == v1
    assert registry.load_artifact(archived) == iris_package.onnx


def test_lineage_is_stored(registry: Registry, iris_package: ModelPackage) -> None:
    registry.register_version("iris", iris_package, source="job:7")
    v2 = registry.register_version("iris", iris_package, parent_version=1, source="optimize:int8 of v1")
    assert (v2.parent_version, v2.source) == (1, "optimize:int8 of v1")
    stored = registry.get_version("iris", 2)
    assert (stored.parent_version, stored.source) == (1, "optimize:int8 of v1")
    assert registry.get_version("iris", 1).parent_version is None


def test_parent_that_does_not_exist_is_not_found(registry: Registry, iris_package: ModelPackage) -> None:
    with pytest.raises(NotFound, match="model 'iris' has no version 4"):
        registry.register_version("iris", iris_package, parent_version=4)
    # Nothing was half-created: not even the model.
    assert registry.list_models() == []
    registry.register_version("iris", iris_package)
    with pytest.raises(NotFound, match="has no version 2"):
        registry.register_version("iris", iris_package, parent_version=2)
    assert [v.version for v in registry.list_versions("iris")] == [1]


# -- references: number, alias, latest ---------------------------------------------------


def test_get_version_by_number_alias_and_latest(registry: Registry, iris_package: ModelPackage) -> None:
    for _ in range(3):
        registry.register_version("iris", iris_package)
    registry.set_alias("iris", "production", 2)
    assert registry.get_version("iris", 1).version == 1
    assert registry.get_version("iris", "3").version == 3
    by_alias = registry.get_version("iris", "production")
    assert (by_alias.version, by_alias.aliases) == (2, ("production",))
    assert registry.get_version("iris", "latest").version == 3
    assert registry.resolve_version("iris", "production") == 2


def test_unknown_references_are_not_found(registry: Registry, iris_package: ModelPackage) -> None:
    registry.create_model("empty")
    with pytest.raises(NotFound, match="'empty' has no versions yet"):
        registry.get_version("empty", "latest")
    registry.register_version("iris", iris_package)
    with pytest.raises(NotFound, match="'iris' has no version 9"):
        registry.get_version("iris", 9)
    with pytest.raises(NotFound, match="'iris' has no version or alias 'staging'"):
        registry.get_version("iris", "staging")


# -- aliases and rollback ----------------------------------------------------------------


def test_alias_set_move_and_roll_back(registry: Registry, iris_package: ModelPackage) -> None:
    for _ in range(2):
        registry.register_version("iris", iris_package)
    created = registry.set_alias("iris", "production", 1)
    assert (created.version, created.previous_version) == (1, None)
    moved = registry.set_alias("iris", "production", 2)
    assert (moved.version, moved.previous_version) == (2, 1)
    assert registry.get_version("iris", "production").version == 2
    rolled_back = registry.set_alias("iris", "production", moved.previous_version or 0)
    assert (rolled_back.version, rolled_back.previous_version) == (1, 2)
    assert registry.get_version("iris", "production").version == 1
    assert registry.get_model("iris").aliases == {"production": 1}


def test_several_aliases_are_listed(registry: Registry, iris_package: ModelPackage) -> None:
    for _ in range(2):
        registry.register_version("iris", iris_package)
    registry.set_alias("iris", "staging", 2)
    registry.set_alias("iris", "production", 1)
    assert [(a.name, a.version) for a in registry.list_aliases("iris")] == [("production", 1), ("staging", 2)]
    assert {v.version: v.aliases for v in registry.list_versions("iris")} == {
        1: ("production",),
        2: ("staging",),
    }


def test_moving_an_alias_bumps_the_serving_revision(registry: Registry, iris_package: ModelPackage) -> None:
    for _ in range(2):
        registry.register_version("iris", iris_package)
    before = registry.db.revision()
    registry.set_alias("iris", "production", 1)
    registry.set_alias("iris", "production", 2)
    assert registry.db.revision() == before + 2


def test_invalid_alias_names_are_refused(registry: Registry, iris_package: ModelPackage) -> None:
    registry.register_version("iris", iris_package)
    for alias in ["1", "42", "latest", "", "-x", "1st", "a b", "a.b", "x" * 65]:
        with pytest.raises(InvalidArgument, match="alias must start with a letter") as info:
            registry.set_alias("iris", alias, 1)
        assert info.value.details == {"field": "alias", "value": alias}
    assert registry.list_aliases("iris") == []


def test_alias_to_a_missing_or_archived_version_is_refused(
    registry: Registry, iris_package: ModelPackage
) -> None:
    registry.register_version("iris", iris_package)
    with pytest.raises(NotFound, match="has no version 5"):
        registry.set_alias("iris", "production", 5)
    registry.archive_version("iris", 1)
    with pytest.raises(Conflict, match="version 1 of 'iris' is archived"):
        registry.set_alias("iris", "production", 1)


def test_delete_alias(registry: Registry, iris_package: ModelPackage) -> None:
    registry.register_version("iris", iris_package)
    registry.set_alias("iris", "staging", 1)
    before = registry.db.revision()
    registry.delete_alias("iris", "staging")
    assert registry.list_aliases("iris") == []
    assert registry.db.revision() == before + 1
    with pytest.raises(NotFound, match="model 'iris' has no alias 'staging'"):
        registry.delete_alias("iris", "staging")


def test_deleting_an_alias_a_deployment_follows_is_a_conflict(
    registry: Registry, iris_package: ModelPackage
) -> None:
    registry.register_version("iris", iris_package)
    registry.set_alias("iris", "production", 1)
    DeploymentService(registry).create("iris-prod", model="iris", alias="production")
    with pytest.raises(Conflict, match=r"alias 'production' is followed by deployments \['iris-prod'\]"):
        registry.delete_alias("iris", "production")
    assert registry.get_version("iris", "production").version == 1


# -- compare -----------------------------------------------------------------------------


def test_compare_identical_models(registry: Registry, iris_package: ModelPackage) -> None:
    registry.register_version("iris", iris_package, metrics={"accuracy": 0.9, "f1": 0.8}, params={"C": 1.0})
    registry.register_version(
        "iris", iris_package, metrics={"accuracy": 0.95, "loss": 0.1}, params={"C": 1.0, "solver": "lbfgs"}
    )
    c = registry.compare("iris", 1, 2)
    assert (c.a.version, c.b.version) == (1, 2)
    assert c.metrics["accuracy"]["a"] == 0.9
    assert c.metrics["accuracy"]["b"] == 0.95
    assert c.metrics["accuracy"]["delta"] == pytest.approx(0.05)
    assert c.metrics["f1"] == {"a": 0.8, "b": None}
    assert c.metrics["loss"] == {"a": None, "b": 0.1}
    assert c.params == {"C": {"a": 1.0, "b": 1.0, "delta": 0.0}, "solver": {"a": None, "b": "lbfgs"}}
    assert c.same_signature
    assert c.size_ratio == 1.0
    assert c.example_rows == EXAMPLE_ROWS
    assert {a.output for a in c.agreement} == {"label", "probabilities"}
    assert all(a.equal_fraction == 1.0 for a in c.agreement)
    probabilities = next(a for a in c.agreement if a.output == "probabilities")
    assert probabilities.max_abs_diff == 0.0


def test_compare_a_differently_trained_model(
    registry: Registry, iris_package: ModelPackage, retrained_package: ModelPackage
) -> None:
    registry.register_version("iris", iris_package)
    registry.register_version("iris", retrained_package)
    registry.set_alias("iris", "candidate", 2)
    c = registry.compare("iris", 1, "candidate")
    assert c.same_signature
    assert c.size_ratio == len(retrained_package.onnx) / len(iris_package.onnx)
    by_output = {a.output: a for a in c.agreement}
    assert by_output["probabilities"].equal_fraction < 1.0
    assert (by_output["probabilities"].max_abs_diff or 0.0) > 0.01
    assert 0.0 <= by_output["label"].equal_fraction <= 1.0


def test_compare_models_with_different_signatures(
    registry: Registry, iris_package: ModelPackage, regressor_package: ModelPackage
) -> None:
    registry.register_version("mixed", iris_package)
    registry.register_version("mixed", regressor_package)
    c = registry.compare("mixed", 1, 2)
    assert not c.same_signature
    assert c.agreement == []
    assert c.example_rows == 0


def _species_package(names: list[str], C: float = 1.0) -> ModelPackage:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    return package_model(LogisticRegression(C=C, max_iter=500).fit(x, np.asarray(names)[y]), x[::10])


def test_compare_versions_with_text_labels_agrees_on_the_labels(registry: Registry) -> None:
    species = ["setosa", "versicolor", "virginica"]
    registry.register_version("species", _species_package(species))
    registry.register_version("species", _species_package(species, C=0.01))
    c = registry.compare("species", 1, 2)
    assert c.same_signature
    by_output = {a.output: a for a in c.agreement}
    # Text labels are compared as values: most rows of the example agree, not none.
    assert 0.5 <= by_output["label"].equal_fraction <= 1.0 and by_output["label"].max_abs_diff is None
    assert by_output["probabilities"].equal_fraction < 1.0


def test_compare_refuses_to_match_probability_columns_of_different_classes(registry: Registry) -> None:
    """Same graph shape, other classes: column 0 means another class, so nothing is compared."""
    registry.register_version("renamed", _species_package(["setosa", "versicolor", "virginica"]))
    registry.register_version("renamed", _species_package(["a", "b", "c"]))
    c = registry.compare("renamed", 1, 2)
    assert not c.same_signature
    assert c.agreement == [] and c.example_rows == 0


# -- archive and delete guards -----------------------------------------------------------


@pytest.mark.parametrize("action", ["archive_version", "delete_version"])
def test_version_served_pinned_cannot_be_archived_or_deleted(
    registry: Registry, iris_package: ModelPackage, action: str
) -> None:
    registry.register_version("iris", iris_package)
    deployments = DeploymentService(registry)
    deployments.create("iris-v1", model="iris", version=1)
    with pytest.raises(Conflict, match=r"version 1 of 'iris': deployments \['iris-v1'\] serve it") as info:
        getattr(registry, action)("iris", 1)
    assert info.value.details["deployments"] == ["iris-v1"]
    assert registry.get_version("iris", 1).status == "ready"
    deployments.delete("iris-v1")
    getattr(registry, action)("iris", 1)


@pytest.mark.parametrize("action", ["archive_version", "delete_version"])
def test_version_served_through_an_alias_cannot_be_archived_or_deleted(
    registry: Registry, iris_package: ModelPackage, action: str
) -> None:
    registry.register_version("iris", iris_package)
    registry.register_version("iris", iris_package)
    registry.set_alias("iris", "production", 1)
    DeploymentService(registry).create("iris-prod", model="iris", alias="production")
    with pytest.raises(Conflict, match=r"deployments \['iris-prod'\] serve it"):
        getattr(registry, action)("iris", 1)
    # Once the alias moves on, version 1 is no longer served.
    registry.set_alias("iris", "production", 2)
    getattr(registry, action)("iris", 1)
    with pytest.raises(Conflict, match="serve it"):
        getattr(registry, action)("iris", 2)


def test_archive_then_delete_a_version(registry: Registry, iris_package: ModelPackage) -> None:
    registry.register_version("iris", iris_package)
    registry.register_version("iris", iris_package)
    assert registry.archive_version("iris", 1).status == "archived"
    assert registry.get_version("iris", 1).status == "archived"
    registry.delete_version("iris", 1)
    assert [v.version for v in registry.list_versions("iris")] == [2]
    with pytest.raises(NotFound):
        registry.get_version("iris", 1)
    # Numbers are never reused: the next version is 3.
    assert registry.register_version("iris", iris_package).version == 3


def test_version_an_alias_points_at_cannot_be_deleted(registry: Registry, iris_package: ModelPackage) -> None:
    registry.register_version("iris", iris_package)
    registry.set_alias("iris", "staging", 1)
    with pytest.raises(Conflict, match=r"target of aliases \['staging'\]"):
        registry.delete_version("iris", 1)
    registry.delete_alias("iris", "staging")
    registry.delete_version("iris", 1)


def test_model_served_by_a_deployment_cannot_be_deleted(
    registry: Registry, iris_package: ModelPackage
) -> None:
    registry.register_version("iris", iris_package)
    registry.set_alias("iris", "production", 1)
    deployments = DeploymentService(registry)
    deployments.create("iris-prod", model="iris")
    with pytest.raises(Conflict, match=r"model 'iris' is served by deployments \['iris-prod'\]"):
        registry.delete_model("iris")
    assert registry.get_model("iris").latest_version == 1
    deployments.delete("iris-prod")
    registry.delete_model("iris")
    with pytest.raises(NotFound):
        registry.get_model("iris")
    # The name is free again, but its numbers stay retired: version 1 of "iris" was
    # another artifact, and a number always means one artifact.
    again = registry.register_version("iris", iris_package)
    assert again.version == 2
    with pytest.raises(NotFound, match="version 1 of model 'iris' was deleted"):
        registry.get_version("iris", 1)


# -- artifacts ---------------------------------------------------------------------------


def test_corrupted_artifact_is_caught_on_load(registry: Registry, iris_package: ModelPackage) -> None:
    v = registry.register_version("iris", iris_package)
    path = registry.artifacts.path(v.artifact_digest)  # type: ignore[attr-defined]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactCorrupted, match=v.artifact_digest):
        registry.load_artifact(registry.get_version("iris", 1))


def test_identical_artifacts_are_stored_once(registry: Registry, iris_package: ModelPackage) -> None:
    a = registry.register_version("iris", iris_package)
    b = registry.register_version("copy", iris_package)
    assert a.artifact_digest == b.artifact_digest
    root = registry.artifacts.root  # type: ignore[attr-defined]
    assert len([p for p in root.rglob("*") if p.is_file()]) == 1


# -- retired numbers: a number always means one artifact --------------------------------


def test_deleting_the_newest_version_retires_its_number(
    registry: Registry, iris_package: ModelPackage, retrained_package: ModelPackage
) -> None:
    for _ in range(3):
        registry.register_version("iris", iris_package)
    deleted = registry.get_version("iris", 3)
    registry.delete_version("iris", 3)
    with pytest.raises(NotFound, match=r"version 3 of model 'iris' was deleted.*never reused") as info:
        registry.get_version("iris", 3)
    assert info.value.details["status"] == "deleted"

    again = registry.register_version("iris", retrained_package)
    assert again.version == 4
    assert again.artifact_digest != deleted.artifact_digest
    assert [v.version for v in registry.list_versions("iris")] == [1, 2, 4]
    assert registry.get_model("iris").latest_version == 4
    # A number never given is still just unknown, not "deleted".
    with pytest.raises(NotFound, match=r"model 'iris' has no version 9$"):
        registry.get_version("iris", 9)


def test_numbers_after_a_retired_one_stay_unique_and_gapless_under_concurrency(
    registry: Registry, iris_package: ModelPackage
) -> None:
    registry.register_version("race", iris_package)
    registry.register_version("race", iris_package)
    registry.delete_version("race", 2)
    writers = 6
    start = threading.Barrier(writers)
    numbers: list[int] = []
    failures: list[BaseException] = []

    def register() -> None:
        start.wait()
        try:
            numbers.append(registry.register_version("race", iris_package).version)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=register) for _ in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert sorted(numbers) == list(range(3, 3 + writers))


# -- limits on free-form JSON and text ------------------------------------------------------


def _nested(depth: int) -> dict[str, object]:
    value: dict[str, object] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 256, 100_000])
def test_tags_nested_too_deep_are_refused_before_anything_is_stored(registry: Registry, depth: int) -> None:
    with pytest.raises(InvalidArgument, match=rf"tags is nested deeper than {MAX_JSON_DEPTH} levels") as info:
        registry.create_model("deep", tags=_nested(depth))
    assert info.value.details == {"field": "tags", "limit": MAX_JSON_DEPTH, "at": info.value.details["at"]}
    assert registry.list_models() == []

    registry.create_model("flat", tags=_nested(MAX_JSON_DEPTH))  # exactly at the limit is fine
    with pytest.raises(InvalidArgument, match="tags is nested deeper"):
        registry.update_model("flat", tags=_nested(depth))
    assert registry.get_model("flat").tags == _nested(MAX_JSON_DEPTH)


@pytest.mark.parametrize("field", ["metrics", "params", "lineage"])
def test_version_json_fields_nested_too_deep_are_refused(
    registry: Registry, iris_package: ModelPackage, field: str
) -> None:
    with pytest.raises(InvalidArgument, match=rf"{field} is nested deeper than {MAX_JSON_DEPTH}"):
        registry.register_version("iris", iris_package, **{field: _nested(300)})  # type: ignore[arg-type]
    assert registry.list_models() == []


def test_oversized_metadata_is_refused_naming_the_limit(
    registry: Registry, iris_package: ModelPackage
) -> None:
    big = {"blob": "x" * MAX_JSON_BYTES}
    with pytest.raises(PayloadTooLarge, match=rf"params is larger than the limit of {MAX_JSON_BYTES} bytes"):
        registry.register_version("iris", iris_package, params=big)
    with pytest.raises(PayloadTooLarge, match=rf"description is {MAX_TEXT_CHARS + 1} characters long"):
        registry.register_version("iris", iris_package, description="d" * (MAX_TEXT_CHARS + 1))
    with pytest.raises(PayloadTooLarge, match="description is"):
        registry.create_model("iris", description="d" * (MAX_TEXT_CHARS + 1))
    assert registry.list_models() == []


def test_a_record_stored_before_the_limits_does_not_break_reading(
    registry: Registry, iris_package: ModelPackage
) -> None:
    """A value nested 256 deep, committed by an earlier release, reads back cut at the limit."""
    registry.register_version("old", iris_package)
    with registry.db.transaction() as s:
        model = s.scalar(select(ModelRow).where(ModelRow.name == "old"))
        assert model is not None
        model.tags = _nested(256)
        model.versions[0].metrics = {"m": _nested(256)}
    models = registry.list_models()
    assert [m.name for m in models] == ["old"]
    tags = models[0].tags
    for _ in range(MAX_JSON_DEPTH):  # the 32 levels allowed are kept, the rest replaced
        tags = tags["a"]
    assert tags == TOO_DEEP
    # The API's response encoder copes with what the registry hands out.
    Model.model_validate(models[0]).model_dump_json()
    ModelVersion.model_validate(registry.get_version("old", 1)).model_dump_json()


def test_text_no_response_could_encode_is_refused(registry: Registry, iris_package: ModelPackage) -> None:
    with pytest.raises(InvalidArgument, match=r"tags holds a lone UTF-16 surrogate .* at tags\.k"):
        registry.create_model("m", tags={"k": "\ud800"})
    with pytest.raises(InvalidArgument, match="description holds a lone UTF-16 surrogate"):
        registry.register_version("m", iris_package, description="\udc00")
    assert registry.list_models() == []
