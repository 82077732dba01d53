"""Per-request outlier scores for the prediction log, computed in its writer thread.

A deployment with ``outlier_scores`` on has each logged request scored against its version's
reference rows by an :class:`aiaas.monitoring.OutlierForest`. Nothing of it runs on a
request's path: :meth:`OutlierScorer.score` is called by the prediction log's writer thread
on the block of requests it is about to write, and returns at once for a version whose forest
is not ready, which is then fitted in this scorer's own thread (one fit at a time), so the
writer never waits for a fit either. Those first requests are written without scores.

Per version, the forest is:

* fitted once, on the reference sample stored with the version (``drift_references.sample``,
  at most 1024 rows), read again every :data:`REFRESH_S` and refitted only when the reference
  changed (a version's first-traffic reference replaced by a dataset's);
* absent, with a reason logged once, when the version has no reference yet (checked again
  every :data:`REFRESH_S`: one built from its first traffic may come), when its reference
  keeps no sample (a feature that is not a number: text, string categories; a model whose
  inputs are not tabular has no reference at all), or when the fit failed. Its requests are
  then logged without scores; logging itself never fails for a score.

Memory: at most :data:`MAX_VERSIONS` forests (the least recently used is dropped), each some
hundreds of kB.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from aiaas.monitoring import OutlierForest, request_scores
from aiaas.registry import Layout, ReferenceStore

__all__ = ["MAX_VERSIONS", "REFRESH_S", "OutlierScorer"]

logger = logging.getLogger("aiaas.serving.outlier_scorer")

#: How often a version's reference is read again (one may have been stored or replaced since).
REFRESH_S = 30.0
#: The most versions whose forests are kept.
MAX_VERSIONS = 64

_Key = tuple[str, int]  # model (qualified), version


@dataclass
class _Version:
    """What the scorer knows of one version: its forest when ready, else why not."""

    checked_at: float
    #: The forest and the layout its columns follow, set together (read by the writer thread).
    fitted: tuple[OutlierForest, Layout] | None = None
    digest: str | None = None
    reason: str = "its forest is being fitted"
    fitting: bool = True


class OutlierScorer:
    """Scores logged requests against their versions' reference rows; fits forests in a thread.

    Args:
        references: where versions' references (and their samples) are read.
        refresh_s: seconds between reads of a version's reference.
        max_versions: forests kept, least recently used dropped first.
        fit: fits a forest on a sample (tests pass a failing one).
    """

    def __init__(
        self,
        references: ReferenceStore,
        *,
        refresh_s: float = REFRESH_S,
        max_versions: int = MAX_VERSIONS,
        fit: Callable[[np.ndarray], OutlierForest] = OutlierForest.fit,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.references = references
        self.refresh_s = refresh_s
        self.max_versions = max_versions
        self._fit = fit
        self._monotonic = monotonic
        self._versions: OrderedDict[_Key, _Version] = OrderedDict()
        self._lock = threading.Lock()
        self._fitter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aiaas-outlier-fit")

    def score(
        self, model: str, version: int, requests: Sequence[Mapping[str, Any]]
    ) -> list[tuple[float, bool] | None]:
        """Each request's (score, outlier) from its input tensors; None where it is not scored
        (no forest yet or at all, or inputs that do not fit the reference). Never raises."""
        fitted = self._state((model, version)).fitted
        if fitted is None:
            return [None] * len(requests)
        forest, layout = fitted
        try:
            return request_scores(forest, [_block(layout, inputs) for inputs in requests])
        except Exception:
            logger.exception("outlier scores of %d requests of %s v%d failed", len(requests), model, version)
            return [None] * len(requests)

    def reason(self, model: str, version: int) -> str | None:
        """Why the version's requests get no scores (None: they do, or it was never asked)."""
        with self._lock:
            state = self._versions.get((model, version))
        return None if state is None or state.fitted is not None else state.reason

    def wait_idle(self, timeout_s: float = 30.0) -> bool:
        """Wait until no fit is queued or running (tests, shutdown); returns whether it was."""
        done = threading.Event()
        self._fitter.submit(done.set)
        return done.wait(timeout_s)

    def close(self) -> None:
        """Stop fitting (a fit in progress finishes in its thread)."""
        self._fitter.shutdown(wait=False, cancel_futures=True)

    def _state(self, key: _Key) -> _Version:
        now = self._monotonic()
        with self._lock:
            state = self._versions.get(key)
            if state is None:
                state = self._versions[key] = _Version(checked_at=now)
                while len(self._versions) > self.max_versions:
                    self._versions.popitem(last=False)
                self._submit(key, state)
            else:
                self._versions.move_to_end(key)
                if not state.fitting and now - state.checked_at >= self.refresh_s:
                    state.fitting, state.checked_at = True, now
                    self._submit(key, state)
            return state

    def _submit(self, key: _Key, state: _Version) -> None:
        try:
            self._fitter.submit(self._refresh, key, state)
        except RuntimeError:  # closed: shutting down
            state.fitting, state.reason = False, "the scorer is closed"

    def _refresh(self, key: _Key, state: _Version) -> None:
        """In the fitting thread: read the reference; fit a forest when it is new."""
        model, version = key
        before = state.reason if state.fitted is None else None
        try:
            reference = self.references.get(model, version)
            if reference is None:
                state.fitted, state.reason = None, "its version has no drift reference yet"
            elif reference.sample is None:
                state.fitted = None
                state.reason = "its reference keeps no numeric sample (a feature is not a number)"
            elif reference.profile.digest != state.digest or state.fitted is None:
                started = time.perf_counter()
                forest = self._fit(reference.sample)
                state.fitted, state.digest = (forest, reference.layout), reference.profile.digest
                logger.info(
                    "outlier scores: %s v%d forest fitted on %d reference rows in %.2f s",
                    model,
                    version,
                    len(reference.sample),
                    time.perf_counter() - started,
                )
        except Exception as exc:  # a fit that fails leaves the scores empty, never the log broken
            state.fitted, state.reason = None, f"its forest could not be fitted: {exc!r}"
        finally:
            state.checked_at, state.fitting = self._monotonic(), False
        if state.fitted is None and state.reason != before:
            logger.warning("outlier scores: %s v%d is not scored: %s", model, version, state.reason)


def _block(layout: Layout, inputs: Mapping[str, Any]) -> np.ndarray | None:
    """One request's feature rows in the reference's column order; None when they do not fit."""
    try:
        columns, _ = layout.columns({name: _rows(inputs[name]) for name in layout.inputs})
        return np.column_stack([np.asarray(columns[name], dtype=np.float64) for name in layout.features])
    except Exception:  # a missing tensor, a different width, text
        return None


def _rows(tensor: Any) -> np.ndarray:
    array = np.asarray(tensor)
    return array.reshape(1, -1) if array.ndim == 0 else array.reshape(len(array), -1)
