"""The one definition of a deployment's serving settings: name, type, default, range, unit, help.

Everything else is derived from :class:`DeploymentSettings` or checked against it: the
response and request bodies (:mod:`aiaas.schemas.deployments`), the deployment service's
validation (:func:`check_settings`), the defaults the inference server falls back on, the
CLI's ``aiaas deploy`` options (``aiaas.cli.setting_options``), the SDK's keyword arguments
(:class:`SettingValues`, checked by a test) and the README's table (:func:`settings_table`,
checked by a test). Adding a setting means a field here, a row in the README (the test
prints it) and the code that uses it; the storage keeps a setting without a column of its
own in the deployment's ``settings`` JSON column.

A nested setting (``batching``, ``prediction_log``, ``drift``) is given whole: keys left out
take their defaults. Its CLI options are its keys behind a prefix (``--log-sample-rate``);
a boolean key named ``enabled`` is the setting's own switch (``--batching/--no-batching``), as
is a boolean setting of its own (``--outlier-scores/--no-outlier-scores``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from pydantic import BaseModel, Field, create_model
from pydantic.config import JsonDict
from pydantic.fields import FieldInfo

from aiaas.schemas._base import Wire, WireIn
from aiaas.schemas.monitoring import DriftThresholds
from aiaas.schemas.setting_values import bounds, check_value, invalid, optional

__all__ = [
    "SETTINGS",
    "Batching",
    "DeploymentSettings",
    "PredictionLogSetting",
    "SettingLeaf",
    "SettingValues",
    "SettingsPatch",
    "check_settings",
    "default_settings",
    "given_settings",
    "resolve_settings",
    "setting_leaves",
    "settings_table",
]


def _setting(
    default: Any,
    *,
    help: str,
    unit: str = "",
    cli: str | None = None,
    ge: float | None = None,
    le: float | None = None,
) -> Any:
    """A setting's field: its default, bounds (``ge``/``le``; a nested setting's keys have
    their own), unit and help.

    ``default`` may be a model class (a nested setting, defaulting to its own defaults);
    ``cli`` is a nested setting's prefix of CLI options (default: its name and a dash).
    """
    extra: JsonDict = {"unit": unit} if unit else {}
    if cli is not None:
        extra["cli_prefix"] = cli
    if isinstance(default, type):
        return Field(default_factory=default, description=help, json_schema_extra=extra or None)
    return Field(default=default, description=help, json_schema_extra=extra or None, ge=ge, le=le)


class Batching(WireIn):
    """Dynamic batching: requests arriving together are run as one batch.

    Given in a request, it replaces the whole batching setting: keys left out take the
    defaults shown (``{}`` restores them all). With batching on, ``max_batch_size`` is at
    least 2 (one row per call is no batching: turn it off instead).
    """

    enabled: bool = Field(default=False, description="Batch requests that arrive together.")
    max_batch_size: int = _setting(
        32,
        ge=1,
        le=4096,
        unit="rows",
        help="Most rows in one batch of several requests; a request of this many rows or "
        "more runs at once, alone and whole. At least 2 with batching on.",
    )
    max_queue_delay_ms: float = _setting(
        2.0, ge=0, le=1000, unit="ms", help="How long a batch waits to fill up, in milliseconds."
    )


class PredictionLogSetting(WireIn):
    """What the prediction log keeps of a deployment's requests (inputs, outputs, version,
    request id, latency, time). Given in a request, it replaces the whole setting: keys left
    out take the defaults shown."""

    sample_rate: float = _setting(
        1.0, ge=0, le=1, unit="share", help="Share of requests logged (0 turns the log off)."
    )
    max_rows_per_s: float = _setting(
        100.0, ge=0.001, le=100_000, unit="rows/s", help="Most requests logged a second (a cap)."
    )


class DeploymentSettings(Wire):
    """Every serving setting of a deployment, with its default, range, unit and meaning."""

    batching: Batching = _setting(
        Batching, cli="", help="Dynamic batching: requests arriving together run as one model call."
    )
    max_queue_size: int = _setting(
        1024, ge=1, le=100_000, unit="requests", help="Requests waiting before the server answers 429."
    )
    timeout_s: float = _setting(
        30.0, ge=0.001, le=3600, unit="s", help="Seconds a request may take before it is answered 504."
    )
    max_rows: int = _setting(
        100_000,
        ge=1,
        le=10_000_000,
        unit="rows",
        help="Most rows in one inference request; more is answered 413 naming this setting.",
    )
    min_replicas: int = _setting(
        1, ge=0, le=64, unit="processes", help="Replica processes kept even when idle (0: scale to zero)."
    )
    max_replicas: int = _setting(
        1,
        ge=1,
        le=64,
        unit="processes",
        help="The most replica processes the autoscaler may run (at least min_replicas).",
    )
    target_in_flight: int = _setting(
        4, ge=1, le=10_000, unit="requests", help="Requests in flight per replica the autoscaler aims for."
    )
    scale_down_delay_s: float = _setting(
        30.0, ge=0, le=86_400, unit="s", help="Seconds of low load before a replica is removed."
    )
    prediction_log: PredictionLogSetting = _setting(
        PredictionLogSetting, cli="log-", help="What the prediction log keeps of the requests."
    )
    outlier_scores: bool = _setting(
        False,
        help="Score each logged request's inputs against its version's reference rows (an "
        "Isolation Forest, fitted and run in the log's writer thread, not on the request path): "
        "outlier_score and outlier in the prediction log. Numeric features only.",
    )
    drift: DriftThresholds = _setting(
        DriftThresholds,
        help="When a feature counts as drifted: the thresholds of GET .../drift (a query "
        "overrides them) and of the aiaas_drift_* gauges.",
    )


#: Every setting's name, in the definition's order.
SETTINGS: tuple[str, ...] = tuple(DeploymentSettings.model_fields)


class SettingValues(TypedDict, total=False):
    """The settings as keyword arguments (SDK, service): one per field of
    :class:`DeploymentSettings` (a test checks they agree); ``None`` or left out: not given."""

    batching: Batching | Mapping[str, Any] | None
    max_queue_size: int | None
    timeout_s: float | None
    max_rows: int | None
    min_replicas: int | None
    max_replicas: int | None
    target_in_flight: int | None
    scale_down_delay_s: float | None
    prediction_log: PredictionLogSetting | Mapping[str, Any] | None
    outlier_scores: bool | None
    drift: DriftThresholds | Mapping[str, Any] | None


def default_settings() -> DeploymentSettings:
    """Every setting at its default."""
    return _DEFAULTS


_DEFAULTS = DeploymentSettings()


def check_settings(given: Mapping[str, Any]) -> dict[str, Any]:
    """The settings given (``None`` values are not given), each checked, in their stored form:
    a scalar as given, a nested setting as the keys given (``None`` when none: the default).

    Raises:
        InvalidArgument: naming the setting (``batching.max_batch_size``), what it must be
            and the value given; an unknown setting name too.
    """
    fields = DeploymentSettings.model_fields
    out: dict[str, Any] = {}
    for name, value in given.items():
        if name not in fields:
            raise invalid(name, f"is not a deployment setting (known: {', '.join(SETTINGS)})", value)
        if value is None:
            continue
        if isinstance(value, BaseModel):
            value = value.model_dump(exclude_unset=True)
        out[name] = check_value(name, value, fields[name])
    _check_batching(out.get("batching") or {})
    return out


def _check_batching(given: Mapping[str, Any]) -> None:
    """Batching on with one row per call would be no batching at all (and was ignored): refused."""
    size = given.get("max_batch_size", _DEFAULTS.batching.max_batch_size)
    if given.get("enabled") and size < 2:
        raise invalid(
            "batching.max_batch_size",
            "must be at least 2 with batching enabled (one row per call is no batching; "
            "turn batching off instead)",
            size,
        )


def resolve_settings(stored: Mapping[str, Any]) -> DeploymentSettings:
    """Stored settings (a missing or ``None`` one, and a nested setting's missing keys, take
    their defaults) as the settings in force."""
    return DeploymentSettings.model_validate(
        {name: value for name, value in stored.items() if value is not None and name in SETTINGS}
    )


def given_settings(body: BaseModel) -> dict[str, Any]:
    """The settings a request body gives, as plain JSON values (a nested one: only its keys
    given), ``None`` where not given: what the deployment service takes."""
    out: dict[str, Any] = {}
    for name in SETTINGS:
        value = getattr(body, name)
        out[name] = value.model_dump(exclude_unset=True) if isinstance(value, BaseModel) else value
    return out


def _patch_fields() -> dict[str, Any]:
    """Each setting as an optional request field: same type and bounds, default ``None``
    (not given), its help ending with the default."""
    fields: dict[str, Any] = {}
    for name, info in DeploymentSettings.model_fields.items():
        kind = optional(info.annotation)
        described = f"{info.description} (default {_text(getattr(_DEFAULTS, name))})"
        extra = info.json_schema_extra
        fields[name] = (kind, Field(None, description=described, json_schema_extra=extra, **bounds(info)))
    return fields


# -- flattened: the CLI's options and the README's table ------------------------------------------


@dataclass(frozen=True)
class SettingLeaf:
    """One value a user sets: ``path`` (``batching.max_batch_size``), its CLI ``flag``
    (``--max-batch-size``; a switch reads ``--batching/--no-batching``), ``param`` (the CLI
    function's parameter name) and its field."""

    path: str
    flag: str
    param: str
    info: FieldInfo
    default: Any

    @property
    def unit(self) -> str:
        extra = self.info.json_schema_extra
        return str(extra.get("unit", "")) if isinstance(extra, dict) else ""


def setting_leaves() -> list[SettingLeaf]:
    """Every settable value, nested settings flattened, in the definition's order."""
    leaves = []
    for name, info in DeploymentSettings.model_fields.items():
        default = getattr(_DEFAULTS, name)
        if not isinstance(default, BaseModel):
            flag = name.replace("_", "-")
            flag = f"--{flag}/--no-{flag}" if info.annotation is bool else f"--{flag}"
            leaves.append(SettingLeaf(name, flag, name, info, default))
            continue
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        prefix = str(extra.get("cli_prefix", f"{name.replace('_', '-')}-"))
        for key, sub in type(default).model_fields.items():
            if key == "enabled" and sub.annotation is bool:
                own = name.replace("_", "-")
                flag, param = f"--{own}/--no-{own}", name
            else:
                flag = f"--{prefix}{key.replace('_', '-')}"
                param = flag[2:].replace("-", "_")
            leaves.append(SettingLeaf(f"{name}.{key}", flag, param, sub, getattr(default, key)))
    return leaves


def settings_table() -> str:
    """The README's deployment-settings table (a test compares it with the README)."""
    rows = [
        "| setting | `aiaas deploy` option | default | range | unit | meaning |",
        "|---|---|---|---|---|---|",
    ]
    for leaf in setting_leaves():
        meaning = (leaf.info.description or "").replace("|", "\\|")
        rows.append(
            f"| `{leaf.path}` | `{leaf.flag}` | {_text(leaf.default)} | {_limits(leaf.info)} "
            f"| {leaf.unit} | {meaning} |"
        )
    return "\n".join(rows) + "\n"


def _limits(info: FieldInfo) -> str:
    b = bounds(info)
    if not b:
        args = getattr(info.annotation, "__args__", ())
        return " \\| ".join(map(str, args)) if args else ""
    low = f"{_text(b['ge'])} ≤" if "ge" in b else f"{_text(b['gt'])} <" if "gt" in b else ""
    high = f"≤ {_text(b['le'])}" if "le" in b else f"< {_text(b['lt'])}" if "lt" in b else ""
    return " ".join(p for p in (low, "x", high) if p)


def _text(value: Any) -> str:
    if isinstance(value, BaseModel):
        return json.dumps(value.model_dump())
    if isinstance(value, float):
        return f"{value:g}"
    return json.dumps(value) if isinstance(value, bool | str) else str(value)


if TYPE_CHECKING:

    class SettingsPatch(WireIn):
        """The type checker's view: the settings' fields are read through given_settings()."""

else:
    SettingsPatch = create_model(
        "SettingsPatch",
        __base__=WireIn,
        __doc__="Every setting of :class:`DeploymentSettings`, optional (left out: not given).",
        **_patch_fields(),
    )
