"""The optimization methods, from a source model to a candidate ONNX model (no database here).

:func:`run_method` is the one entry point: the orchestrator (:mod:`aiaas.optimize.service`)
hands it the source (its ONNX bytes, and for the PyTorch families its training state and
spec) and the arrays of the dataset version, and registers what comes back. Fine-tuning after
pruning and the training of a distilled student go through the training engine
(:func:`aiaas.training.train`), with its optimizers, seeding and export, so an optimized network
is exported exactly as a trained one is (and answers with the same labels).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aiaas.errors import InvalidArgument
from aiaas.optimize.quantize import dynamic_int8, finish_graph, fp16_weights, static_int8
from aiaas.schemas.training import JobSpec
from aiaas.training import Reporter, TrainingData

__all__ = ["Candidate", "Source", "run_method"]

Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class Source:
    """The version being optimized.

    Attributes:
        onnx: its ONNX bytes.
        input_name: its one input.
        family: the training family (``mlp``, ``cnn``, ...), None for an uploaded model.
        state: its training state (``aiaas.training`` checkpoint bytes), None when not trained here.
        spec: the job spec it was trained with (resolved), None when not trained here.
    """

    onnx: bytes
    input_name: str
    family: str | None = None
    state: bytes | None = None
    spec: dict[str, Any] | None = None


@dataclass
class Candidate:
    """What a method produced: the ONNX model and facts for the report and the lineage.

    Attributes:
        onnx: the optimized model (compact, the source's class labels recorded).
        parameters / parent_parameters: trainable parameters of the networks (PyTorch families).
        state: training state of the result (pruned or distilled networks), to optimize or
            warm-start from later; None for quantized models.
        spec: the job spec that state was trained with.
        notes: method facts for the lineage (widths kept, sparsity reached).
    """

    onnx: bytes
    parameters: int | None = None
    parent_parameters: int | None = None
    state: bytes | None = None
    spec: dict[str, Any] | None = None
    notes: dict[str, Any] = field(default_factory=dict)


def run_method(
    method: str,
    settings: dict[str, Any],
    source: Source,
    data: TrainingData,
    reporter: Reporter,
    *,
    calibration: Array | None = None,
) -> Candidate:
    """Apply one method with its (validated, defaults filled) settings.

    Args:
        method: one of :data:`aiaas.schemas.optimize.METHODS`.
        settings: that method's settings (``OptimizeSpec.settings(method)``).
        source: the version to optimize.
        data: the dataset version's split (fine-tuning, distillation, default calibration).
        reporter: receives log lines and the epochs of any training.
        calibration: rows for ``static_int8`` (default: the training split's first rows).

    Raises:
        InvalidArgument: the method does not apply to this source (a family without weights
            to prune, no training state).
    """
    if method == "dynamic_int8":
        return Candidate(dynamic_int8(source.onnx, per_channel=bool(settings["per_channel"])))
    if method == "static_int8":
        rows = calibration if calibration is not None else data.x_train
        rows = rows[: int(settings["calibration_rows"])]
        reporter.log(f"calibrating on {len(rows)} rows")
        return Candidate(
            static_int8(
                source.onnx, rows, input_name=source.input_name, per_channel=bool(settings["per_channel"])
            )
        )
    if method == "fp16":
        return Candidate(fp16_weights(source.onnx))
    if method == "prune":
        return _prune(settings, source, data, reporter)
    if method == "distill":
        return _distill(settings, source, data, reporter)
    raise InvalidArgument(f"method: unknown optimization method {method!r}", details={"field": "method"})


def _network(source: Source, data: TrainingData) -> tuple[Any, dict[str, Any], JobSpec]:
    """The source's network, rebuilt from its training state, with its params and job spec."""
    from aiaas.training import build_network, load_torch_state

    if source.state is None or source.spec is None or source.family not in ("mlp", "cnn"):
        raise InvalidArgument(
            "method: pruning and distillation work on networks trained here (families mlp, cnn); "
            f"this version is {source.family or 'an uploaded model'!r}",
            details={"field": "method"},
        )
    state = load_torch_state(source.state, field="model")
    params = dict(state["params"])
    network = build_network(source.family, params, data.n_features, data.n_classes, data.image_shape)
    network.load_state_dict(state["model"])
    return network.eval(), params, JobSpec.from_stored(source.spec)


def _tuning_spec(spec: JobSpec, params: dict[str, Any], epochs: int, lr: float | None) -> JobSpec:
    """The source's spec for further training: new widths, ``epochs`` epochs, one worker, no
    early stopping or schedule (a short fine-tune runs its epochs at a constant rate)."""
    data = spec.model_dump(mode="json", exclude_none=True)
    model = {**data["model"], "hidden_sizes": list(params["hidden_sizes"])}
    if "channels" in params:
        model["channels"] = list(params["channels"])
    data.update(model=model, epochs=epochs, workers=1)
    for name in ("early_stopping", "schedule", "warm_start"):
        data.pop(name, None)
    if lr is not None:
        data["optimizer"] = {**data.get("optimizer", {}), "lr": lr}
    return JobSpec.parse(data)


def _state(family: str, data: TrainingData, params: dict[str, Any], network: Any) -> bytes:
    from aiaas.training import save_torch_state

    return save_torch_state(
        {
            "family": family,
            "n_features": data.n_features,
            "n_outputs": data.n_classes,
            "params": params,
            "model": network.state_dict(),
        }
    )


def _export(network: Any, data: TrainingData, source: Source) -> bytes:
    from aiaas.training import export_network

    classes = data.class_labels() if data.task == "classification" else None
    return finish_graph(export_network(network, data.x_train[:5], classes=classes).onnx, source.onnx)


def _prune(settings: dict[str, Any], source: Source, data: TrainingData, reporter: Reporter) -> Candidate:
    from aiaas.optimize.networks import count_parameters, prune_structured, prune_unstructured
    from aiaas.training import build_network, load_torch_state, train

    network, params, spec = _network(source, data)
    assert source.family is not None
    before = count_parameters(network)
    sparsity = float(settings["sparsity"])
    epochs = int(settings["fine_tune_epochs"])
    notes: dict[str, Any] = {}
    if settings["structured"]:
        network, params = prune_structured(
            network,
            params,
            sparsity,
            family=source.family,
            n_features=data.n_features,
            n_outputs=data.n_classes,
            image_shape=data.image_shape,
        )
        notes["hidden_sizes"] = params["hidden_sizes"]
        if "channels" in params:
            notes["channels"] = params["channels"]
        reporter.log(f"kept widths {notes}")
    else:
        notes["zero_fraction_before_tuning"] = prune_unstructured(network, sparsity)
    tuned = _tuning_spec(spec, params, max(epochs, 1), settings.get("learning_rate"))
    if epochs > 0:
        reporter.log(f"fine-tuning for {epochs} epochs")
        result = train(
            tuned, data, reporter, warm_start=_state(source.family, data, params, network), threads=1
        )
        network = build_network(source.family, params, data.n_features, data.n_classes, data.image_shape)
        network.load_state_dict(load_torch_state(result.state, field="state")["model"])
        network.eval()
        if not settings["structured"]:
            # Fine-tuning moves the zeroed weights; pruning again keeps the sparsity asked for.
            notes["zero_fraction"] = prune_unstructured(network, sparsity)
    elif not settings["structured"]:
        notes["zero_fraction"] = notes["zero_fraction_before_tuning"]
    return Candidate(
        onnx=_export(network, data, source),
        parameters=count_parameters(network),
        parent_parameters=before,
        state=_state(source.family, data, params, network),
        spec=tuned.stored(),
        notes=notes,
    )


def _distill(settings: dict[str, Any], source: Source, data: TrainingData, reporter: Reporter) -> Candidate:
    from aiaas.optimize.networks import count_parameters, outputs, student_params
    from aiaas.training import SoftTargets, build_network, load_torch_state, train

    teacher, params, spec = _network(source, data)
    assert source.family is not None
    if source.family != "cnn" and settings.get("channels") is not None:
        raise InvalidArgument(
            f"distill.channels: the student of an {source.family!r} has no conv layers",
            details={"field": "distill.channels"},
        )
    student = student_params(
        params,
        family=source.family,
        width_factor=float(settings["width_factor"]),
        hidden_sizes=settings.get("hidden_sizes"),
        channels=settings.get("channels"),
    )
    spec_student = _tuning_spec(spec, student, int(settings["epochs"]), settings.get("learning_rate"))
    soft = SoftTargets(
        outputs=outputs(teacher, data.x_train),
        temperature=float(settings["temperature"]),
        alpha=float(settings["alpha"]),
    )
    reporter.log(f"training a student with widths {student.get('channels', [])} {student['hidden_sizes']}")
    result = train(spec_student, data, reporter, threads=1, teacher=soft)
    network = build_network(source.family, student, data.n_features, data.n_classes, data.image_shape)
    network.load_state_dict(load_torch_state(result.state, field="state")["model"])
    network.eval()
    return Candidate(
        onnx=_export(network, data, source),
        parameters=count_parameters(network),
        parent_parameters=count_parameters(teacher),
        state=result.state,
        spec=spec_student.stored(),
        notes={
            "hidden_sizes": student["hidden_sizes"],
            **({"channels": student["channels"]} if "channels" in student else {}),
        },
    )
