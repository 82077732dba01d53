"""Every ``AIAAS_*`` setting in one declarative table.

One :class:`Settings` object is built once at process start (from the environment and
command-line overrides) and passed down; domain code never reads ``os.environ``. The
defaults are the embedded ones: a SQLite file and an artifact folder under ``AIAAS_HOME``,
so ``aiaas up`` needs no other service.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from aiaas.errors import InvalidArgument
from aiaas.translate import problems

__all__ = ["Settings", "load_settings"]


class _Broken(ValueError):
    """A rule between settings, put on the one setting it concerns (see :func:`aiaas.translate.problems`)."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(rule)
        self.field = field
        self.rule = rule


class Settings(BaseSettings):
    """Platform settings; each field is read from ``AIAAS_<NAME>``.

    Example:
        >>> s = Settings(home=Path("/tmp/aiaas-doc"))
        >>> s.resolved_database_url()
        'sqlite:////tmp/aiaas-doc/aiaas.db'
    """

    model_config = SettingsConfigDict(env_prefix="AIAAS_", extra="forbid")

    home: Path = Field(
        default=Path("~/.aiaas"),
        description="Folder for the embedded database, artifacts and logs.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the metadata DB; default: SQLite file <home>/aiaas.db. "
        "PostgreSQL: postgresql+psycopg://user@host:5432/db.",
    )
    artifact_root: str | None = Field(
        default=None,
        description="Where model artifacts live; default: folder <home>/artifacts (file://).",
    )
    encryption_key: SecretStr | None = Field(
        default=None,
        description="Base64 of a 32-byte key: artifacts, dataset files and checkpoints are written "
        "encrypted (AES-256-GCM) and read back with it. Unset: written plain (blobs already "
        "encrypted still need their key). See docs/security.md.",
    )
    encryption_key_file: Path | None = Field(
        default=None,
        description="A file holding the encryption key as base64 (instead of "
        "AIAAS_ENCRYPTION_KEY); `aiaas encryption new-key FILE` writes one.",
    )
    host: str = Field(default="127.0.0.1", description="Interface both servers bind to.")
    port: int = Field(default=8000, ge=0, le=65535, description="Control plane (REST API, docs) port.")
    inference_port: int = Field(
        default=8080, ge=0, le=65535, description="Inference server (V1/V2 protocols) port."
    )
    reconcile_interval_s: float = Field(
        default=0.25,
        gt=0,
        description="How often the inference server reads desired deployments from the DB (one "
        "indexed read of a revision counter; a deployment is served at most this long after it is made).",
    )
    max_request_bytes: int = Field(
        default=64 * 1024 * 1024,
        gt=0,
        description="Largest request body either server accepts (413 above it).",
    )
    max_upload_bytes: int = Field(
        default=2 * 1024 * 1024 * 1024,
        gt=0,
        description="Largest model artifact the control plane accepts on upload.",
    )
    max_dataset_bytes: int = Field(
        default=256 * 1024 * 1024,
        gt=0,
        description="Largest dataset file (CSV or Parquet) the control plane accepts (413 above it).",
    )
    max_dataset_cells: int = Field(
        default=25_000_000,
        gt=0,
        description="Most values (rows x columns) a dataset version may hold, checked from a Parquet "
        "file's metadata before it is decoded (413 above it): a small, highly compressed file can "
        "otherwise decode to gigabytes.",
    )
    max_api_body_bytes: int = Field(
        default=1024 * 1024,
        gt=0,
        description="Largest request body the control plane accepts other than a file upload (JSON "
        "bodies: models, deployments, job specs); 413 above it. Uploads have their own limits "
        "(AIAAS_MAX_UPLOAD_BYTES, AIAAS_MAX_DATASET_BYTES).",
    )
    body_read_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="Longest the control plane waits for the next bytes of a request body; the whole "
        "body must also arrive within this time plus one second per MiB. A stalled or trickling "
        "client gets 408 and its connection is closed.",
    )
    ort_intra_op_threads: int = Field(
        default=1,
        ge=0,
        description="ONNX Runtime intra-op threads per loaded model (0 = one per core). One "
        "keeps single-row latency low when many requests run side by side.",
    )
    training_slots: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        gt=0,
        description="CPU slots the training scheduler may fill (default: the CPU count). A job "
        "with `workers: N` waits until N slots are free.",
    )
    training_max_attempts: int = Field(
        default=3,
        ge=1,
        description="Times a training job is started before a job whose process keeps dying "
        "(killed, out of memory) is marked failed. Each attempt resumes from the last checkpoint.",
    )
    scheduler_interval_s: float = Field(
        default=0.25,
        gt=0,
        description="How often the training scheduler looks for finished, cancelled and queued jobs.",
    )
    replica_processes: bool = Field(
        default=True,
        description="Run each deployment's model in its own replica processes (crash isolation, "
        "min_replicas..max_replicas per deployment). false runs every model inside the inference "
        "server process: one process, no isolation, replica settings ignored.",
    )
    cpu_budget: int = Field(
        default=0,
        ge=0,
        description="Replica processes the autoscaler may run on this node, all deployments "
        "together (0 = one per CPU core).",
    )
    model_memory_budget_bytes: int = Field(
        default=8 * 1024**3,
        gt=0,
        description="Memory the inference server's language and embedding models may take together "
        "(weights, plus a full batch's KV cache at full context for a language model). A model is "
        "loaded on its first request; to make room, the least recently used idle ones are stopped.",
    )
    torch_device: str = Field(
        default="auto",
        pattern=r"^(auto|cpu|cuda(:[0-9]+)?)$",
        description="Where language and embedding models run: auto (a CUDA GPU in half precision "
        "when PyTorch sees one, else the CPU), cpu, cuda or cuda:N.",
    )
    torch_threads: int = Field(
        default=0,
        ge=0,
        description="PyTorch intra-op threads in each language or embedding model replica, and "
        "ONNX Runtime's for an embedding model on a CPU (0 = the library's default, one per core).",
    )
    model_cache_dir: Path | None = Field(
        default=None,
        description="Where the files of served model folders are written from the artifact store "
        "(verified, one folder per artifact digest); default: <home>/model-cache.",
    )
    prediction_log_dir: Path | None = Field(
        default=None,
        description="Where the inference server writes the prediction log (Parquet segments, "
        "one folder per deployment and day) and the control plane reads it; default: "
        "<home>/predictions. Both processes must see the same folder.",
    )
    prediction_log_retention_days: float = Field(
        default=30.0,
        gt=0,
        description="Days the prediction log keeps a segment; older day folders are deleted by the "
        "inference server.",
    )
    prediction_log_flush_interval_s: float = Field(
        default=2.0,
        gt=0,
        le=300,
        description="Seconds between writes of the prediction log's queued rows to a segment "
        "(also written at shutdown). A killed server loses at most this much of the log.",
    )
    prediction_log_max_queued: int = Field(
        default=4096,
        ge=1,
        description="Requests the prediction log holds in memory between writes, all deployments "
        "together; past it a request is answered as usual and counted as dropped, never held.",
    )
    drift_counting: bool = Field(
        default=True,
        description="Whether the inference server counts requests for drift (false: no counts, so "
        "drift reports see no new traffic; the prediction log is not affected).",
    )
    drift_interval_s: float = Field(
        default=60.0,
        gt=0,
        le=86400,
        description="Seconds of traffic per drift count row: the inference server adds what it "
        "counts into one row per deployment, version and interval, and a drift window is read in "
        "whole intervals.",
    )
    drift_flush_interval_s: float = Field(
        default=2.0,
        gt=0,
        le=300,
        description="Seconds between the inference server's counting of queued requests into drift "
        "counts and their write to the database (also at shutdown).",
    )
    drift_max_queued: int = Field(
        default=4096,
        ge=1,
        description="Requests queued for drift counting between counts, all deployments together; "
        "past it a request is answered as usual and counted as dropped (aiaas_drift_dropped).",
    )
    drift_reference_rows: int = Field(
        default=5000,
        ge=0,
        le=100_000,
        description="Rows of a version's first traffic that become its drift reference when it has "
        "none (no training dataset, no dataset named at registration); 0: never build one from traffic.",
    )
    drift_retention_days: float = Field(
        default=7.0,
        gt=0,
        description="Days drift count rows are kept; older ones are deleted by the inference server.",
    )
    drift_metrics_window_s: float = Field(
        default=3600.0,
        gt=0,
        description="Window of the drift gauges on the control plane's /metrics (aiaas_drift_*).",
    )
    metrics_sampling: bool = Field(
        default=True,
        description="Whether the inference server writes metric samples (requests, errors, latency, "
        "restarts, CPU, memory, queue depth per deployment and version) to the database: the "
        "series alert rules read.",
    )
    metrics_interval_s: float = Field(
        default=60.0,
        gt=0,
        le=86400,
        description="Seconds per metric sample row: a time series has one point per interval, and "
        "an alert rule's window is read in whole intervals.",
    )
    metrics_flush_interval_s: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="Seconds between the inference server's readings of its metrics into sample "
        "rows (also at shutdown).",
    )
    metrics_retention_days: float = Field(
        default=7.0,
        gt=0,
        description="Days metric sample rows are kept; older ones are deleted by the inference server.",
    )
    alerts_evaluation_interval_s: float = Field(
        default=15.0,
        gt=0,
        le=3600,
        description="Seconds between the control plane's evaluations of the alert rules (and "
        "deliveries of their notifications).",
    )
    alerts_lease_s: float = Field(
        default=60.0,
        gt=0,
        description="Seconds the alert evaluator's database lease lasts without renewal: of several "
        "control-plane workers only the holder evaluates, and another takes over this long after it "
        "dies (at once after a clean stop).",
    )
    alerts_retry_base_s: float = Field(
        default=5.0,
        gt=0,
        description="First wait before a failed webhook delivery is tried again; it doubles with "
        "each attempt, up to AIAAS_ALERTS_RETRY_MAX_S.",
    )
    alerts_retry_max_s: float = Field(
        default=600.0,
        gt=0,
        description="Longest wait between two attempts of one webhook delivery.",
    )
    alerts_max_attempts: int = Field(
        default=10,
        ge=1,
        le=100,
        description="Attempts of one webhook delivery before it is given up (recorded as failed).",
    )
    alerts_webhook_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=120,
        description="Seconds one webhook delivery may take before it counts as failed.",
    )
    control_plane_url: str | None = Field(
        default=None,
        description="URL the CLI and SDK talk to; default: http://<host>:<port> (https:// with "
        "AIAAS_TLS_CERT_FILE).",
    )
    inference_url: str | None = Field(
        default=None,
        description="Inference server URL. The control plane reports it on GET /api/v1/health "
        "(default: http://<host>:<inference_port>, https:// with AIAAS_TLS_CERT_FILE); the CLI and "
        "SDK send predictions there "
        "(default: what the control plane reports).",
    )
    api_key: str | None = Field(
        default=None,
        description="API key the CLI and SDK send (default: the key in <home>/admin.key). Client side "
        "only: the servers check keys made with `aiaas keys create` or the first start's admin key.",
    )
    auth: bool = Field(
        default=True,
        description="Whether both servers require an API key (`Authorization: Bearer <key>`); on or "
        "off. Off (`aiaas up --dev`) serves anyone, and each server says so loudly at every start.",
    )
    auth_refresh_s: float = Field(
        default=1.0,
        gt=0,
        le=5,
        description="Seconds between the servers' reloads of the API keys from the database: a "
        "revoked key is refused within this time (plus one reload).",
    )
    key_rate_limit: float = Field(
        default=0.0,
        ge=0,
        description="Default request rate of each API key on the inference server, in requests per "
        "second (0: unlimited); over it, 429 with Retry-After. A key's own rate_limit overrides it.",
    )
    key_rate_burst: int = Field(
        default=0,
        ge=0,
        description="Requests a key may send at once on top of its rate (0: one second's worth). A "
        "key's own rate_burst overrides it.",
    )
    metrics_public: bool = Field(
        default=False,
        description="Serve /metrics on both servers without a key, for a Prometheus that sends no "
        "credentials (default: a key of any role but inference is needed, like the rest of the API).",
    )
    tls_cert_file: Path | None = Field(
        default=None,
        description="PEM certificate (with its chain) both servers present: set, they serve HTTPS "
        "only, and the default control plane and inference URLs are https://. See docs/security.md.",
    )
    tls_key_file: Path | None = Field(
        default=None,
        description="PEM private key of AIAAS_TLS_CERT_FILE, unencrypted; default: the key is in "
        "the certificate file.",
    )
    tls_ca_file: Path | None = Field(
        default=None,
        description="PEM CA bundle the CLI, SDK and `aiaas up` verify the servers' certificates "
        "against, instead of the system's trusted CAs (a private CA, or a self-signed certificate "
        "itself). Verification is never turned off.",
    )
    project: str | None = Field(
        default=None,
        description="Project the CLI and SDK work in (sent as the X-Aiaas-Project header); "
        "default: the server's, 'default'.",
    )

    @model_validator(mode="after")
    def _expand_paths(self) -> Settings:
        self.home = self.home.expanduser()
        for name in ("tls_cert_file", "tls_key_file", "tls_ca_file"):
            path = getattr(self, name)
            if path is not None:
                setattr(self, name, path.expanduser())
        if self.tls_key_file is not None and self.tls_cert_file is None:
            raise _Broken("tls_key_file", "is set without AIAAS_TLS_CERT_FILE; give the certificate too")
        return self

    @property
    def tls(self) -> bool:
        """Whether both servers serve HTTPS (a certificate is given)."""
        return self.tls_cert_file is not None

    def resolved_database_url(self) -> str:
        """The metadata DB URL, defaulting to the embedded SQLite file."""
        return self.database_url or f"sqlite:///{self.home / 'aiaas.db'}"

    def resolved_artifact_root(self) -> str:
        """The artifact store location, defaulting to a folder under ``home``."""
        return self.artifact_root or str(self.home / "artifacts")

    def resolved_model_cache_dir(self) -> Path:
        """Where model folders are materialised, defaulting to a folder under ``home``."""
        return (self.model_cache_dir or self.home / "model-cache").expanduser()

    def resolved_prediction_log_dir(self) -> Path:
        """Where the prediction log's segments are, defaulting to a folder under ``home``."""
        return (self.prediction_log_dir or self.home / "predictions").expanduser()

    @property
    def scheme(self) -> str:
        """``https`` when the servers serve TLS, else ``http``: the default URLs' scheme."""
        return "https" if self.tls else "http"

    def admin_key_path(self) -> Path:
        """The file the first start writes the platform admin key to (mode 0600), and the CLI
        and SDK read when no key is given."""
        return self.home / "admin.key"

    def resolved_control_plane_url(self) -> str:
        return (self.control_plane_url or f"{self.scheme}://{self.host}:{self.port}").rstrip("/")

    def resolved_inference_url(self) -> str:
        return (self.inference_url or f"{self.scheme}://{self.host}:{self.inference_port}").rstrip("/")


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment plus explicit overrides (``None`` is ignored).

    Raises:
        InvalidArgument: naming each setting whose value is invalid.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        # Named as set, by variable: AIAAS_MAX_UPLOAD_BYTES, not max_upload_bytes.
        named = [f"AIAAS_{p.field.replace('.', '_').upper()}: {p.message}" for p in problems(exc.errors())]
        raise InvalidArgument("invalid settings: " + "; ".join(named), details={"errors": named}) from None
