"""Datasets through a real control plane process: HTTP uploads and their errors, the SDK,
the ``aiaas datasets`` commands (in-process and as a real subprocess) and the README block."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from aiaas.cli import app
from aiaas.errors import InvalidArgument, NotFound
from aiaas.sdk import Client
from tests._auth import AUTH
from tests._servers import ServerProcess, free_port
from tests.conftest import DATABASES, fresh_database, server_environment
from tests.e2e.conftest import start_api

#: Small on purpose, so one test can go over it; bundled samples are not held to it.
LIMIT_BYTES = 16 * 1024

README = Path(__file__).resolve().parents[2] / "README.md"

CSV = b"sepal,petal,kind\n" + b"".join(
    f"{5 + i % 7 * 0.1:.1f},{1 + i % 5 * 0.2:.1f},{'abc'[i % 3]}\n".encode() for i in range(60)
)


@dataclass
class ControlPlane:
    server: ServerProcess
    http: httpx.Client
    client: Client

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="module", params=DATABASES)
def control_plane(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlane]:
    home = tmp_path_factory.mktemp("datasets")
    with fresh_database(request.param, home, migrated=True) as url:
        env = server_environment(home, url) | {"AIAAS_MAX_DATASET_BYTES": str(LIMIT_BYTES)}
        server = start_api(env, home, free_port())
        http = httpx.Client(base_url=f"{server.url}/api/v1", timeout=60, headers=AUTH)
        client = Client(server.url)
        try:
            yield ControlPlane(server=server, http=http, client=client)
        finally:
            client.close()
            http.close()
            server.stop()


def _upload(cp: ControlPlane, name: str, data: bytes, filename: str = "f.csv", **form: str) -> httpx.Response:
    return cp.http.post(f"/datasets/{name}/versions", files={"file": (filename, data)}, data=form)


def _error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    return error


# -- HTTP ------------------------------------------------------------------------------------


def test_csv_upload_over_http_returns_its_schema(control_plane: ControlPlane) -> None:
    response = _upload(
        control_plane, "http-csv", CSV, "flowers.csv", target="kind", validation_fraction="0.25", seed="4"
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["dataset"], body["version"], body["row_count"], body["format"]) == ("http-csv", 1, 60, "csv")
    assert [(c["name"], c["dtype"], c["kind"]) for c in body["schema"]] == [
        ("sepal", "float64", "numeric"),
        ("petal", "float64", "numeric"),
        ("kind", "string", "string"),
    ]
    assert (body["target"], body["task"]) == ("kind", "classification")
    assert body["split"]["seed"] == 4 and body["split"]["validation_rows"] == 15
    assert body["statistics"]["columns"]["kind"]["distinct_count"] == 3

    shown = control_plane.http.get("/datasets/http-csv/versions/latest").json()
    assert shown == body
    assert control_plane.http.get("/datasets/http-csv/versions/1").json() == body
    assert control_plane.http.get("/datasets/http-csv").json()["latest_version"] == 1
    listed = control_plane.http.get("/datasets/http-csv/versions").json()["versions"]
    assert [v["version"] for v in listed] == [1]
    data = control_plane.http.get("/datasets/http-csv/versions/1/data")
    assert data.status_code == 200 and data.content == CSV
    assert data.headers["content-type"].startswith("text/csv")
    names = [d["name"] for d in control_plane.http.get("/datasets").json()["datasets"]]
    assert "http-csv" in names


def test_sample_from_a_json_body(control_plane: ControlPlane) -> None:
    response = control_plane.http.post("/datasets/http-digits/versions", json={"sample": "digits", "seed": 2})
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["row_count"], body["metadata"]["image_shape"], body["split"]["seed"]) == (1797, [1, 8, 8], 2)


BAD = [
    pytest.param(b"", {}, 400, "file is empty", id="empty"),
    pytest.param(b"a,b\n", {}, 400, "has no rows", id="header-only"),
    pytest.param(b"a,b\n1,2\n3,4,5\n", {}, 400, "could not be parsed as CSV", id="unparseable"),
    pytest.param(CSV, {"target": "colour"}, 400, "target column 'colour' is not in the file", id="no-target"),
    pytest.param(
        CSV,
        {"target": "sepal"},
        400,
        r"feature columns must be numeric or bool; not so: 'kind'",
        id="string-feature",
    ),
    pytest.param(CSV, {"validation_fraction": "1.5"}, 400, "validation_fraction must be", id="fraction"),
    pytest.param(CSV, {"seed": "abc"}, 400, "seed must be an integer; got 'abc'", id="seed"),
    pytest.param(CSV, {"colour": "red"}, 400, r"unknown form fields \['colour'\]", id="unknown-field"),
    pytest.param(
        b"a,b\n" + b"1,2\n" * (LIMIT_BYTES // 4),
        {},
        413,
        f"larger than the dataset limit of {LIMIT_BYTES} bytes",
        id="too-large",
    ),
]


@pytest.mark.parametrize(("data", "form", "status", "message"), BAD)
def test_bad_uploads_get_a_4xx_naming_the_problem(
    control_plane: ControlPlane, data: bytes, form: dict[str, str], status: int, message: str
) -> None:
    error = _error(_upload(control_plane, "http-bad", data, **form), status)
    assert re.search(message, error["message"]), error
    assert error["details"].get("field")
    _error(control_plane.http.get("/datasets/http-bad"), 404)  # nothing half-registered


def test_requests_of_the_wrong_shape_are_400s(control_plane: ControlPlane) -> None:
    error = _error(
        control_plane.http.post("/datasets/x/versions", content=b"a,b", headers={"content-type": "text/csv"}),
        400,
    )
    assert "multipart/form-data" in error["message"] and error["details"]["field"] == "content-type"
    error = _error(
        control_plane.http.post("/datasets/x/versions", data={"target": "a"}, files={"other": ("a", b"1")}),
        400,
    )
    assert "field 'file' is missing" in error["message"]
    error = _error(control_plane.http.post("/datasets/x/versions", json={"sample": "mnist"}), 400)
    assert "sample must be one of" in error["message"] and "iris" in error["message"]
    error = _error(control_plane.http.post("/datasets/x/versions", json={"sampel": "iris"}), 400)
    assert "sample" in error["message"]
    error = _error(control_plane.http.post("/datasets/bad name/versions", json={"sample": "iris"}), 400)
    assert "name must be 1-128 characters" in error["message"]
    _error(control_plane.http.get("/datasets/nope"), 404)
    assert (
        _error(control_plane.http.get("/datasets/http-csv/versions/v1"), 400)["details"]["field"] == "version"
    )


# -- SDK -------------------------------------------------------------------------------------


def test_sdk_creates_and_reads_datasets(control_plane: ControlPlane, tmp_path: Path) -> None:
    client = control_plane.client
    path = tmp_path / "flowers.csv"
    path.write_bytes(CSV)
    v1 = client.create_dataset("sdk", path, target="kind", description="first")
    assert (v1.version, v1.target, v1.metadata["filename"], v1.description) == (
        1,
        "kind",
        "flowers.csv",
        "first",
    )
    assert client.create_dataset("sdk", CSV, target="kind") == v1  # identical: the same version
    v2 = client.create_dataset("sdk", sample="wine", validation_fraction=0.3, seed=1)
    assert (v2.version, v2.row_count, v2.split.validation_fraction) == (2, 178, 0.3)
    assert client.get_dataset("sdk").latest_version == 2
    assert [v.version for v in client.list_dataset_versions("sdk")] == [1, 2]
    assert client.get_dataset_version("sdk").version == 2
    assert client.get_dataset_version("sdk", 1).schema_[2].name == "kind"
    assert client.download_dataset("sdk", 1) == CSV
    assert "sdk" in [d.name for d in client.list_datasets()]
    with pytest.raises(InvalidArgument, match="target column 'x' is not in the file"):
        client.create_dataset("sdk", CSV, target="x")
    with pytest.raises(InvalidArgument, match="either a file"):
        client.create_dataset("sdk")
    with pytest.raises(NotFound, match="dataset 'sdk' has no version 9"):
        client.get_dataset_version("sdk", 9)


# -- CLI -------------------------------------------------------------------------------------

runner = CliRunner()


def aiaas(cp: ControlPlane, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--url", cp.url, *args])
    return result.exit_code, result.stdout, result.stderr


def test_cli_creates_lists_and_shows_datasets(control_plane: ControlPlane, tmp_path: Path) -> None:
    path = tmp_path / "flowers.csv"
    path.write_bytes(CSV)
    code, out, err = aiaas(
        control_plane, "datasets", "create", "cli", "--file", str(path), "--target", "kind"
    )
    assert code == 0, err
    assert "dataset cli version 1: 60 rows, 3 columns" in out and "Schema" in out
    assert "48 train / 12 validation, stratified" in out

    code, out, err = aiaas(
        control_plane, "datasets", "create", "cli", "--sample", "iris", "--seed", "3", "--json"
    )
    assert code == 0, err
    created = json.loads(out)
    assert (created["version"], created["split"]["seed"], created["schema"][-1]["name"]) == (2, 3, "target")

    code, out, _ = aiaas(control_plane, "datasets", "list", "--json")
    assert {"name": "cli", "latest_version": 2}.items() <= next(
        d for d in json.loads(out) if d["name"] == "cli"
    ).items()
    code, out, _ = aiaas(control_plane, "datasets", "show", "cli:1", "--json")
    assert json.loads(out)["target"] == "kind"
    code, out, _ = aiaas(control_plane, "datasets", "show", "cli:latest", "--json")
    assert json.loads(out)["version"] == 2
    code, _, err = aiaas(control_plane, "datasets", "show", "cli:first")
    assert code != 0 and "VERSION must be a number or 'latest'" in err
    code, out, _ = aiaas(control_plane, "datasets", "show", "cli")
    # (the table folds long names at the terminal width, so only their start is checked)
    assert code == 0 and "Schema" in out and "sepal_len" in out and "(target)" in out
    assert "120 train / 30 validation, stratified by the target, seed 3" in out
    code, out, _ = aiaas(control_plane, "datasets", "versions", "cli")
    assert code == 0 and "kind" in out and "target" in out  # the target of each version

    code, _, err = aiaas(control_plane, "datasets", "create", "cli")
    assert code != 0 and "exactly one of --file PATH or --sample NAME" in err


def test_cli_subprocess_reports_bad_data_in_one_line(control_plane: ControlPlane, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(CSV)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "aiaas.cli",
            "--url",
            control_plane.url,
            "datasets",
            "create",
            "sub",
            "--file",
            str(path),
            "--target",
            "sepal",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "feature columns must be numeric or bool" in proc.stderr and "'kind'" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "aiaas.cli",
            "--url",
            control_plane.url,
            "datasets",
            "create",
            "sub",
            "--sample",
            "diabetes",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["task"] == "regression"


def test_readme_datasets_block_runs(
    control_plane: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = README.read_text()
    start = text.index("```\naiaas datasets create")
    block = text[start + 4 : text.index("```", start + 4)]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "flowers.csv").write_bytes(CSV.replace(b"kind", b"species"))
    for line in block.strip().splitlines():
        args = shlex.split(line.split("#")[0])[1:]
        code, out, err = aiaas(control_plane, *args)
        assert code == 0, f"{line}\n{out}{err}"


# -- text datasets ---------------------------------------------------------------------------

CORPUS = "\n\n".join(f"Paragraph {i}: the cat sat on mat number {i}.\nA second line." for i in range(20))
CHAT = b"".join(
    json.dumps({"q": f"what is {i} plus one?", "a": f"{i + 1}", "lang": "en"}).encode() + b"\n"
    for i in range(12)
)


def test_text_corpus_and_chat_pairs_over_http(control_plane: ControlPlane) -> None:
    response = _upload(control_plane, "http-text", CORPUS.encode(), "book.txt", seed="2")
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["format"], body["row_count"], body["task"]) == ("text", 20, "text-generation")
    assert body["text"] == {
        "columns": ["text"],
        "text_column": "text",
        "prompt_column": None,
        "response_column": None,
        "documents": "paragraph",
    }
    assert body["schema"][0]["kind"] == "text"
    assert body["statistics"]["text"]["documents"] == 20
    assert body["statistics"]["text"]["characters"] == len(CORPUS) - 2 * 19  # the blank lines go
    again = _upload(control_plane, "http-text", CORPUS.encode(), "book.txt", seed="2")
    assert again.status_code == 201 and again.json() == body  # identical upload, same version
    lines = _upload(control_plane, "http-text", CORPUS.encode(), "book.txt", documents="line")
    assert (lines.json()["version"], lines.json()["row_count"]) == (2, 40)
    data = control_plane.http.get("/datasets/http-text/versions/1/data")
    assert data.content == CORPUS.encode() and data.headers["content-type"].startswith("text/plain")
    assert 'filename="http-text-v1.txt"' in data.headers["content-disposition"]

    chat = _upload(control_plane, "http-chat", CHAT, "chat.jsonl", prompt_column="q", response_column="a")
    assert chat.status_code == 201, chat.text
    assert chat.json()["text"]["columns"] == ["q", "a"] and chat.json()["format"] == "jsonl"
    assert [c["kind"] for c in chat.json()["schema"]] == ["text", "text", "string"]


BAD_TEXT = [
    pytest.param(b"  \n\n", "c.txt", {}, 400, "file is empty", id="empty"),
    pytest.param(b"caf\xe9\n\nau lait", "c.txt", {}, 400, "not UTF-8 text: byte 0xe9", id="not-utf8"),
    pytest.param(b'{"q": 1}\n[2]\n', "c.jsonl", {}, 400, "could not be parsed as JSONL", id="unparseable"),
    pytest.param(
        CHAT, "c.jsonl", {"text_column": "body"}, 400, "text_column 'body' is not in the file", id="no-column"
    ),
    pytest.param(CHAT, "c.jsonl", {"documents": "line"}, 400, "applies to .txt corpora only", id="documents"),
    pytest.param(
        (CORPUS * 40).encode(),
        "c.txt",
        {},
        413,
        f"larger than the dataset limit of {LIMIT_BYTES} bytes",
        id="too-large",
    ),
]


@pytest.mark.parametrize(("data", "filename", "form", "status", "message"), BAD_TEXT)
def test_bad_text_uploads_get_a_4xx_naming_the_problem(
    control_plane: ControlPlane, data: bytes, filename: str, form: dict[str, str], status: int, message: str
) -> None:
    error = _error(_upload(control_plane, "http-bad-text", data, filename, **form), status)
    assert re.search(message, error["message"]), error
    assert error["details"].get("field")
    _error(control_plane.http.get("/datasets/http-bad-text"), 404)


def test_sdk_and_cli_register_text_datasets(control_plane: ControlPlane, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(CORPUS)
    v = control_plane.client.create_dataset("sdk-text", corpus, documents="line", seed=1)
    assert (v.format, v.row_count, v.text.documents if v.text else None) == ("text", 40, "line")
    chat = control_plane.client.create_dataset(
        "sdk-chat", CHAT, filename="chat.jsonl", prompt_column="q", response_column="a"
    )
    assert chat.text is not None and (chat.text.prompt_column, chat.text.response_column) == ("q", "a")
    with pytest.raises(InvalidArgument, match="need both prompt_column and response_column"):
        control_plane.client.create_dataset("sdk-chat", CHAT, filename="chat.jsonl", prompt_column="q")

    code, out, err = aiaas(control_plane, "datasets", "create", "cli-text", "--file", str(corpus))
    assert code == 0, err
    assert "dataset cli-text version 1: 20 documents, 1 columns, text" in out
    assert "text in text, cut by paragraph: 20 documents" in out
    jsonl = tmp_path / "reviews.jsonl"
    jsonl.write_bytes(
        b"".join(json.dumps({"q": f"review {i}", "lang": "en"}).encode() + b"\n" for i in range(12))
    )
    code, out, err = aiaas(
        control_plane,
        "datasets",
        "create",
        "cli-cls",
        "--file",
        str(jsonl),
        "--text-column",
        "q",
        "--target",
        "lang",
        "--json",
    )
    assert code == 0, err
    created = json.loads(out)
    assert (created["target"], created["task"], created["text"]["columns"]) == (
        "lang",
        "classification",
        ["q"],
    )
    result = runner.invoke(
        app,
        ["--url", control_plane.url, "datasets", "create", "cli-bad", "-f", str(jsonl), "--text-column", "x"],
    )
    assert isinstance(result.exception, InvalidArgument)  # `aiaas` prints it as one error line
    assert "text_column 'x' is not in the file" in str(result.exception)
