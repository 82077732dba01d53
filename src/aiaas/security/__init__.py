"""Authentication and authorization: API keys, their cache, the first admin key, role rules.

Authentication is on by default (``AIAAS_AUTH``). Keys (:mod:`.keys`) are random, shown once
and stored hashed (:mod:`aiaas.store.keys`); each server checks them against an in-memory
:class:`KeyCache` refreshed from the database, so the inference server never calls the
control plane or the database per request. :mod:`.bootstrap` makes the first admin key;
:mod:`.access` holds the role rules; :class:`KeyService` makes, lists and revokes keys.
"""

from __future__ import annotations

from aiaas.entities.security import ANONYMOUS, ApiKey, Principal, Role
from aiaas.security.access import READ_METHODS, control_plane_refusal, inference_refusal
from aiaas.security.bootstrap import ADMIN_KEY_NAME, ensure_admin_key, read_key_file, write_key_file
from aiaas.security.cache import KeyCache
from aiaas.security.keys import KEY_PREFIX, NewKey, bearer_token, generate_key, hash_key, key_id_of
from aiaas.security.service import DEFAULT_PROJECT, KeyService

__all__ = [
    "ADMIN_KEY_NAME",
    "ANONYMOUS",
    "DEFAULT_PROJECT",
    "KEY_PREFIX",
    "READ_METHODS",
    "ApiKey",
    "KeyCache",
    "KeyService",
    "NewKey",
    "Principal",
    "Role",
    "bearer_token",
    "control_plane_refusal",
    "ensure_admin_key",
    "generate_key",
    "hash_key",
    "inference_refusal",
    "key_id_of",
    "read_key_file",
    "write_key_file",
]
