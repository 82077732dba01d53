"""Guarded rollouts: a new version's traffic raised in steps, watched by guards, rolled back when one fires.

- :mod:`.plan`: the steps and guards a user gives, checked on their own (fields named).
- :mod:`.routing`: what a step, the promotion and a rollback do to a deployment's routes.
- :mod:`.service`: start (checked against the deployment and its model), list, show, abort.
- :mod:`.driver`: the control plane's loop, run in the alert evaluator's pass under its lease.

A guard is an alert rule scoped to the new version (:mod:`aiaas.alerts`): it is evaluated,
recorded and notified (webhooks, the log) like any rule, and the driver reads its state.

A rollout, and its guards' rules, belong to its deployment's project: the service is one
project's, and the driver moves each rollout through its own project's services.
"""

from __future__ import annotations

from aiaas.rollouts.driver import RolloutDriver, RolloutServices
from aiaas.rollouts.plan import MAX_BAKE_S, MAX_STEPS, check_guards, check_steps
from aiaas.rollouts.service import RolloutService, guard_rule

__all__ = [
    "MAX_BAKE_S",
    "MAX_STEPS",
    "RolloutDriver",
    "RolloutService",
    "RolloutServices",
    "check_guards",
    "check_steps",
    "guard_rule",
]
