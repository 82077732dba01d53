"""Model folders: the allow-list of file names, Hugging Face checks, manifest and materialising."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import orjson
import pytest

from aiaas.errors import ArtifactCorrupted, InvalidArgument, PayloadTooLarge
from aiaas.formats import (
    FOLDER_FORMAT,
    HF_CAUSAL_LM,
    HF_EMBEDDING,
    Manifest,
    check_file_name,
    materialize,
    package_folder,
    read_folder,
)
from aiaas.store import FileArtifactStore
from tests._hf_models import make_causal_lm, make_embedder


@pytest.fixture(scope="module")
def lm_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_causal_lm(tmp_path_factory.mktemp("lm") / "model")


@pytest.fixture(scope="module")
def embedder_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_embedder(tmp_path_factory.mktemp("emb") / "model")


@pytest.mark.parametrize(
    "name", ["config.json", "model.safetensors", "1_Pooling/config.json", "vocab.txt", "chat_template.jinja"]
)
def test_file_names_of_a_model_folder_are_accepted(name: str) -> None:
    assert check_file_name(name) == name


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("pytorch_model.bin", "pickle"),
        ("weights.pt", "pickle"),
        ("model.pkl", "pickle"),
        ("modeling_custom.py", "code"),
        ("../config.json", "relative path"),
        ("/etc/passwd.json", "relative path"),
        ("a/b/c.json", "one folder deep"),
        ("run.exe", "not a file a model folder holds"),
        (".hidden.json", "each part"),
        ("", "non-empty"),
    ],
)
def test_file_names_outside_the_allow_list_are_refused_naming_the_file(name: str, rule: str) -> None:
    with pytest.raises(InvalidArgument, match=rule) as info:
        check_file_name(name)
    assert info.value.details["field"] == "files"


def test_causal_lm_folder_is_packaged_with_its_facts(lm_folder: Path) -> None:
    package = package_folder(read_folder(lm_folder))
    assert package.flavor == HF_CAUSAL_LM
    signature = package.signature.to_dict()
    assert signature["inputs"] == [{"name": "prompt", "datatype": "BYTES", "shape": [-1]}]
    params = signature["parameters"]
    assert params["model_type"] == "gpt2"
    assert params["context_length"] == 128
    assert params["chat_template"] is True
    assert params["parameters"] > 10_000


def test_embedding_folder_is_packaged_with_its_dimension(embedder_folder: Path) -> None:
    files = read_folder(embedder_folder)
    assert "README.md" not in files  # documentation is left out, not refused
    assert "1_Pooling/config.json" in files
    package = package_folder(files)
    assert package.flavor == HF_EMBEDDING
    assert package.signature.outputs[0].shape == (-1, 32)


def test_folder_without_config_is_refused(lm_folder: Path) -> None:
    files = read_folder(lm_folder)
    del files["config.json"]
    with pytest.raises(InvalidArgument, match=r"no config\.json"):
        package_folder(files)


def test_folder_with_pickle_weights_is_refused(lm_folder: Path, tmp_path: Path) -> None:
    folder = tmp_path / "pickled"
    folder.mkdir()
    for name, data in read_folder(lm_folder).items():
        (folder / name).write_bytes(data)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(InvalidArgument, match="pickle-based weights are never loaded"):
        read_folder(folder)
    files = read_folder(lm_folder)
    del files["model.safetensors"]
    with pytest.raises(InvalidArgument, match=r"no \*\.safetensors weights"):
        package_folder(files)


def test_unknown_architecture_and_remote_code_are_refused(lm_folder: Path) -> None:
    files = read_folder(lm_folder)
    config = orjson.loads(files["config.json"])
    unknown = dict(files, **{"config.json": orjson.dumps({**config, "model_type": "my-own-lm"})})
    with pytest.raises(InvalidArgument, match="model_type 'my-own-lm'") as info:
        package_folder(unknown)
    assert info.value.details["field"] == "config.json.model_type"
    remote = dict(files, **{"config.json": orjson.dumps({**config, "auto_map": {"AutoModel": "x.Y"}})})
    with pytest.raises(InvalidArgument, match="auto_map"):
        package_folder(remote)
    encoder = dict(files, **{"config.json": orjson.dumps({**config, "architectures": ["GPT2Model"]})})
    with pytest.raises(InvalidArgument, match="cannot tell what this model does"):
        package_folder(encoder)


def test_custom_sentence_transformers_module_is_refused(embedder_folder: Path) -> None:
    files = read_folder(embedder_folder)
    modules = orjson.loads(files["modules.json"])
    modules[1]["type"] = "my_package.Pooling"
    with pytest.raises(InvalidArgument, match="custom module code is never imported"):
        package_folder({**files, "modules.json": orjson.dumps(modules)})


def test_truncated_safetensors_is_refused(lm_folder: Path) -> None:
    files = read_folder(lm_folder)
    with pytest.raises(InvalidArgument, match=r"model\.safetensors: tensor"):
        package_folder({**files, "model.safetensors": files["model.safetensors"][:-100]})
    with pytest.raises(InvalidArgument, match="not a safetensors file"):
        package_folder({**files, "model.safetensors": struct.pack("<Q", 10**9) + b"{}"})


def test_folder_larger_than_the_limit_is_refused(lm_folder: Path) -> None:
    with pytest.raises(PayloadTooLarge):
        read_folder(lm_folder, max_bytes=1000)


def test_manifest_round_trips_and_names_every_file(lm_folder: Path) -> None:
    package = package_folder(read_folder(lm_folder))
    manifest = package.manifest()
    data = manifest.to_bytes()
    assert orjson.loads(data)["format"] == FOLDER_FORMAT
    assert Manifest.from_bytes(data) == manifest
    sha, size = manifest.files["config.json"]
    assert sha == hashlib.sha256(package.files["config.json"]).hexdigest()
    assert size == len(package.files["config.json"])
    with pytest.raises(ArtifactCorrupted):
        Manifest.from_bytes(orjson.dumps({"format": FOLDER_FORMAT, "files": {"../x.json": {}}}))


def test_materialize_writes_verified_files_and_repairs_a_changed_folder(
    lm_folder: Path, tmp_path: Path
) -> None:
    store = FileArtifactStore(tmp_path / "artifacts")
    package = package_folder(read_folder(lm_folder))
    for data in package.files.values():
        store.put(data)
    digest = store.put(package.manifest().to_bytes())
    folder = materialize(store, digest, tmp_path / "cache")
    assert folder.name == digest
    assert read_folder(folder) == package.files
    # A file changed on disk (by hand, or a bad disk) is noticed and written again.
    (folder / "config.json").write_text("{}")
    again = materialize(store, digest, tmp_path / "cache")
    assert (again / "config.json").read_bytes() == package.files["config.json"]
    # A corrupted blob is never handed out.
    blob = store.path(package.manifest().files["tokenizer.json"][0])
    blob.write_bytes(b"tampered")
    (again / "tokenizer.json").unlink()
    with pytest.raises(ArtifactCorrupted):
        materialize(store, digest, tmp_path / "cache")


def test_materialize_streams_sealed_blobs_into_an_owner_only_folder(lm_folder: Path, tmp_path: Path) -> None:
    from aiaas.store import EncryptionKey, Keyring

    store = FileArtifactStore(tmp_path / "artifacts", Keyring(EncryptionKey.generate()))
    package = package_folder(read_folder(lm_folder))
    for data in package.files.values():
        store.put(data)
    digest = store.put(package.manifest().to_bytes())
    assert all(
        package.files["config.json"] not in p.read_bytes()
        for p in (tmp_path / "artifacts").rglob("*")
        if p.is_file()
    )
    folder = materialize(store, digest, tmp_path / "cache")
    assert read_folder(folder) == package.files
    assert (tmp_path / "cache").stat().st_mode & 0o077 == 0
