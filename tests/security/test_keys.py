"""API keys below the servers: their form, the header parser, the store, the cache, the first admin key."""

from __future__ import annotations

import datetime as dt
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiaas.entities.security import Principal, Role
from aiaas.errors import InvalidArgument, NotFound, Unauthenticated
from aiaas.security import (
    KeyCache,
    KeyService,
    bearer_token,
    ensure_admin_key,
    generate_key,
    hash_key,
    key_id_of,
    read_key_file,
    write_key_file,
)
from aiaas.store import Database
from aiaas.store.keys import KeyStore

ADMIN = Principal(key_id="", name="admin", project=None, role=Role.admin)


@pytest.fixture
def store(migrated_database_url: str) -> Iterator[KeyStore]:
    db = Database(migrated_database_url)
    try:
        yield KeyStore(db)
    finally:
        db.dispose()


def test_a_key_is_random_recognisable_and_stored_as_its_hash() -> None:
    one, two = generate_key(), generate_key()
    assert one.key != two.key and one.key_id != two.key_id
    assert one.key.startswith(f"aiaas_{one.key_id}_") and key_id_of(one.key) == one.key_id
    assert one.secret_hash == hash_key(one.key) and len(one.secret_hash) == 64
    assert one.key not in one.secret_hash and one.last4 == one.key[-4:]


@pytest.mark.parametrize(
    ("header", "why"),
    [
        (None, "missing"),
        ("", "missing"),
        ("   ", "missing"),
        ("Bearer", "not an aiaas API key"),
        ("Bearer ", "not an aiaas API key"),
        ("aiaas_0123456789ab_abcdefghijklmnopqrstuvwxyz", "Bearer scheme"),
        ("Basic dXNlcjpwYXNz", "Bearer scheme"),
        ("Token aiaas_0123456789ab_abcdefghijklmnopqrstuvwxyz", "Bearer scheme"),
        ("Bearer not-a-key", "not an aiaas API key"),
        ("Bearer aiaas_0123456789ab_abcdefghijklmnopqrstuvwxyz extra", "not an aiaas API key"),
        ("Bearer clé", "not ASCII"),
        ("Bearer ключ", "not ASCII"),
        ("Bearer caf\xe9".encode("latin-1"), "not ASCII"),
        ("Bearer " + "a" * 10_000, "longer than"),
        (b"Bearer \xff\xfe", "not ASCII"),
    ],
)
def test_a_malformed_authorization_header_is_unauthenticated_never_another_error(
    header: str | bytes | None, why: str
) -> None:
    with pytest.raises(Unauthenticated, match=why) as raised:
        bearer_token(header)
    assert raised.value.details["field"] == "authorization"


def test_the_scheme_is_case_insensitive() -> None:
    key = generate_key().key
    assert bearer_token(f"bearer {key}") == key == bearer_token(f"BEARER  {key} ".encode())


def test_keys_are_made_listed_without_secret_and_revoked(store: KeyStore) -> None:
    service = KeyService(store)
    key, secret = service.create(ADMIN, name="ci", role=Role.developer)
    assert key.project == "default" and key_id_of(secret) == key.key_id
    assert [k.key_id for k in service.list(ADMIN)] == [key.key_id]
    assert secret not in repr(service.list(ADMIN)), "a listed key never holds its secret"
    revoked = service.revoke(ADMIN, key.key_id)
    assert revoked.revoked_at is not None
    assert service.list(ADMIN) == [] and [k.key_id for k in service.list(ADMIN, include_revoked=True)] == [
        key.key_id
    ]
    with pytest.raises(NotFound, match="no API key 'nope'"):
        service.revoke(ADMIN, "nope")


def test_the_rules_of_who_makes_which_key(store: KeyStore) -> None:
    service = KeyService(store)
    with pytest.raises(InvalidArgument, match="needs the deployments") as raised:
        service.create(ADMIN, name="i", role=Role.inference)
    assert raised.value.details["field"] == "deployments"
    with pytest.raises(InvalidArgument, match="for role 'inference' only"):
        service.create(ADMIN, name="d", role=Role.developer, deployments=["iris"])
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    with pytest.raises(InvalidArgument, match="not in the future") as raised:
        service.create(ADMIN, name="old", role=Role.viewer, expires_at=past)
    assert raised.value.details["field"] == "expires_at"
    with pytest.raises(InvalidArgument, match="name must be"):
        service.create(ADMIN, name="bad name", role=Role.viewer)
    project_admin = Principal(key_id="p", name="p", project="team-a", role=Role.admin)
    with pytest.raises(NotFound, match="team-b") as refused:  # as if team-b did not exist
        service.create(project_admin, name="x", role=Role.viewer, project="team-b")
    assert "team-a" not in refused.value.message
    other, _ = service.create(ADMIN, name="b", role=Role.viewer, project="team-b")
    assert service.list(project_admin) == [], "a project admin sees its project's keys only"
    with pytest.raises(NotFound):
        service.revoke(project_admin, other.key_id)


def test_the_cache_accepts_usable_keys_and_refuses_revoked_expired_and_unknown(store: KeyStore) -> None:
    service = KeyService(store)
    now = [dt.datetime.now(dt.UTC)]
    cache = KeyCache(store.usable, clock=lambda: now[0])
    soon = now[0] + dt.timedelta(hours=1)
    key, secret = service.create(
        ADMIN, name="scoped", role=Role.inference, deployments=["iris"], expires_at=soon
    )
    cache.refresh()
    principal = cache.authenticate(f"Bearer {secret}")
    assert principal.key_id == key.key_id and principal.deployments == frozenset({"iris"})
    assert principal.may_call("iris") and not principal.may_call("other")
    wrong_secret = secret[:-4] + ("AAAA" if not secret.endswith("AAAA") else "BBBB")
    with pytest.raises(Unauthenticated, match="unknown or revoked"):
        cache.authenticate(f"Bearer {wrong_secret}")
    with pytest.raises(Unauthenticated, match="unknown or revoked"):
        cache.authenticate(f"Bearer {generate_key().key}")
    now[0] = soon
    with pytest.raises(Unauthenticated, match="expired"):
        cache.authenticate(f"Bearer {secret}")
    now[0] = soon - dt.timedelta(minutes=1)
    service.revoke(ADMIN, key.key_id)
    assert cache.authenticate(f"Bearer {secret}").key_id == key.key_id, "until the next reload"
    cache.refresh()
    with pytest.raises(Unauthenticated, match="unknown or revoked"):
        cache.authenticate(f"Bearer {secret}")


def test_the_first_admin_key_is_made_once_and_written_for_its_owner_only(
    store: KeyStore, tmp_path: Path
) -> None:
    path = tmp_path / "admin.key"
    made = ensure_admin_key(store, path)
    assert made is not None and path.read_text().strip() == made
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_admin_key(store, path) is None, "made once"
    (admin,) = store.all()
    assert admin.role is Role.admin and admin.project is None and admin.key_id == key_id_of(made)


def test_a_key_written_before_the_first_start_is_adopted_unless_others_may_read_it(
    store: KeyStore, tmp_path: Path
) -> None:
    chosen = generate_key().key
    path = tmp_path / "admin.key"
    path.write_text(chosen)
    path.chmod(0o644)
    assert read_key_file(path) is None, "a key others may read is not trusted"
    assert ensure_admin_key(store, path, create=False) is None and store.all() == []
    write_key_file(path, chosen)
    assert ensure_admin_key(store, path, create=False) is None
    cache = KeyCache(store.usable)
    cache.refresh()
    assert cache.authenticate(f"Bearer {chosen}").role is Role.admin
