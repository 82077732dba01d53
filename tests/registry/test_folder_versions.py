"""Folder versions in the registry: one blob per file, a manifest as the version's artifact."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiaas.errors import InvalidArgument
from aiaas.formats import FolderPackage, Manifest, ModelPackage, package_folder, read_folder
from aiaas.registry import Registry
from tests._hf_models import make_causal_lm


@pytest.fixture(scope="module")
def lm_package(tmp_path_factory: pytest.TempPathFactory) -> FolderPackage:
    return package_folder(read_folder(make_causal_lm(tmp_path_factory.mktemp("lm") / "model")))


def test_folder_version_stores_each_file_and_a_manifest(
    registry: Registry, lm_package: FolderPackage
) -> None:
    version = registry.register_version("tiny-lm", lm_package, description="imported")
    assert version.flavor == "hf-causal-lm"
    assert version.artifact_size_bytes == lm_package.size_bytes
    assert version.signature["parameters"]["context_length"] == 128
    manifest = Manifest.from_bytes(registry.load_artifact(version))
    assert set(manifest.files) == set(lm_package.files)
    assert registry.load_files(registry.get_version("tiny-lm", "latest")) == lm_package.files


def test_folder_versions_take_numbers_aliases_and_compare_like_any_version(
    registry: Registry, lm_package: FolderPackage
) -> None:
    first = registry.register_version("lm", lm_package)
    second = registry.register_version("lm", lm_package, parent_version=first.version)
    assert (first.version, second.version) == (1, 2)
    assert first.artifact_digest == second.artifact_digest  # same files, same digest
    registry.set_alias("lm", "production", 2)
    assert registry.get_version("lm", "production").version == 2
    comparison = registry.compare("lm", 1, 2)
    assert comparison.same_signature and comparison.agreement == []


def test_load_files_of_an_onnx_version_is_refused(registry: Registry, iris_package: ModelPackage) -> None:
    version = registry.register_version("iris", iris_package)
    with pytest.raises(InvalidArgument, match="not a folder of files"):
        registry.load_files(version)


def test_hand_built_package_with_a_pickle_is_refused_before_anything_is_stored(
    registry: Registry, lm_package: FolderPackage, home: Path
) -> None:
    bad = FolderPackage(
        files={**lm_package.files, "extra.pkl": b"\x80\x04"},
        flavor="hf-causal-lm",
        signature=lm_package.signature,
    )
    with pytest.raises(InvalidArgument, match="pickle"):
        registry.register_version("bad", bad)
    assert registry.list_models() == []
    assert not (home / "artifacts").exists() or not any((home / "artifacts").rglob("*"))
