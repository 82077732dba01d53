"""The retraining loop: a deployment's policy retrains its model when drift or live accuracy
crosses a threshold, and the result reaches the traffic only through evaluation and a canary.

- :mod:`.policy`: the policy a user gives, checked on its own (fields named).
- :mod:`.service`: set (checked against the deployment, its served version and the datasets),
  show, delete, and the runs' history.
- :mod:`.driver`: the control plane's loop, run in the alert evaluator's pass under its lease:
  trigger → training job (warm start) → version → held-out evaluation → guarded canary
  (:mod:`aiaas.rollouts`) → promoted, rolled back, or discarded with the reason.
- :mod:`.evaluation`: the candidate against the served version on the same held-out rows.
- :mod:`.feedback_data`: the prediction log joined with its feedback, as a dataset version.
"""

from __future__ import annotations

from aiaas.retraining.driver import RetrainingDriver
from aiaas.retraining.evaluation import Evaluation, score_version, verdict
from aiaas.retraining.feedback_data import feedback_dataset, feedback_rows
from aiaas.retraining.policy import DEFAULT_STEPS, TRIGGERS, check_policy
from aiaas.retraining.service import RetrainingService, job_spec

__all__ = [
    "DEFAULT_STEPS",
    "TRIGGERS",
    "Evaluation",
    "RetrainingDriver",
    "RetrainingService",
    "check_policy",
    "feedback_dataset",
    "feedback_rows",
    "job_spec",
    "score_version",
    "verdict",
]
