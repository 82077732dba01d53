"""The metadata database: engine set-up, transactions and migrations.

SQLite is the embedded default and runs in WAL mode so the inference server can read
desired state while the control plane writes. PostgreSQL is chosen by URL. Every state
change runs in one :meth:`Database.transaction`, so a killed process leaves either the
whole change or none of it.

Both servers call :meth:`Database.upgrade` on start. Nearly always the schema is already
current, and importing Alembic to find that out costs a third of a second and several MB
that a server keeps for its lifetime; so the check reads the head revision from the
migration files' text and the current one from ``alembic_version`` with one query, and
Alembic is imported only when there is something to migrate (or the history is not the
plain linear one the fast check understands).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from aiaas.errors import InvalidArgument, Unavailable
from aiaas.store.tables import StateRevisionRow

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["Database"]

_MIGRATIONS = Path(__file__).parent / "migrations"
_VERSION_TABLE = "alembic_version"
_REVISION_LINE = re.compile(r"^(down_revision|revision)\s*(?::[^=]*)?=\s*(.+?)\s*$", re.MULTILINE)
_QUOTED = re.compile(r"""^(['"])([^'"]+)\1$""")


@cache
def _linear_head() -> str | None:
    """The head revision of the migration files, read as text; ``None`` if it is not simple.

    Simple means what this project writes: one ``revision = "id"`` and one
    ``down_revision = "id"`` (or ``None``) per file, forming one chain. Anything else
    (merges, branches, computed ids) is left to Alembic itself.
    """
    revisions: dict[str, str | None] = {}
    for path in sorted((_MIGRATIONS / "versions").glob("*.py")):
        source = path.read_text(encoding="utf-8")
        found = {m.group(1): m.group(2) for m in _REVISION_LINE.finditer(source)}
        revision, down = _QUOTED.match(found.get("revision", "")), found.get("down_revision")
        if revision is None or down is None:
            return None
        parent = _QUOTED.match(down)
        if parent is None and down != "None":
            return None
        revisions[revision.group(2)] = parent.group(2) if parent is not None else None
    parents = [p for p in revisions.values() if p is not None]
    heads = set(revisions) - set(parents)
    if len(heads) != 1 or len(set(parents)) != len(parents) or not set(parents) <= set(revisions):
        return None
    return heads.pop()


def json_dumps(value: Any) -> str:
    """How JSON columns are written: strict JSON, with NaN and ±Infinity stored as null.

    Python's encoder writes them as the bare words ``NaN``/``Infinity``, which are not JSON:
    PostgreSQL refuses the row (a metric of NaN was a 500 there) while SQLite keeps text no
    strict parser reads back. The API has always shown them as null; now that is what is stored.
    """
    try:
        return json.dumps(value, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(value), allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


class Database:
    """A metadata database reached by SQLAlchemy URL.

    Example:
        >>> db = Database("sqlite:///aiaas-doc.db")
        >>> db.upgrade()
        >>> with db.transaction() as s:
        ...     _ = s.execute(text("select 1"))
    """

    def __init__(self, url: str) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise InvalidArgument(
                f"AIAAS_DATABASE_URL must be a SQLAlchemy URL such as sqlite:///path/aiaas.db "
                f"or postgresql+psycopg://user@host/db; got {url!r}",
                details={"field": "database_url"},
            ) from None
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        self.url = parsed
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 10}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(parsed, json_serializer=json_dumps, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: committed on success, rolled back on any error."""
        try:
            with self._sessions.begin() as session:
                yield session
        except IntegrityError:
            raise  # a constraint, not an outage: callers turn it into AlreadyExists or retry
        except (OperationalError, InterfaceError) as exc:
            raise Unavailable(f"metadata database unavailable: {exc.orig}") from exc
        except DatabaseError as exc:
            if type(exc) is not DatabaseError:
                raise
            # what SQLite raises for a damaged or replaced file ("file is not a database")
            raise Unavailable(f"metadata database unreadable: {exc.orig}") from exc

    def bump_revision(self, session: Session) -> None:
        """Mark that what should be served changed; call inside the changing transaction."""
        session.execute(update(StateRevisionRow).values(revision=StateRevisionRow.revision + 1))

    def revision(self) -> int:
        with self.transaction() as s:
            return int(s.scalar(select(StateRevisionRow.revision)) or 0)

    # -- migrations -------------------------------------------------------------------

    def _alembic_config(self) -> Config:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        cfg.set_main_option("sqlalchemy.url", self.url.render_as_string(hide_password=False))
        return cfg

    def head_revision(self) -> str | None:
        """The newest migration's revision id."""
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(self._alembic_config()).get_current_head()

    def current_revision(self) -> str | None:
        """The revision the database's schema is at; ``None`` before the first migration."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def is_current(self) -> bool:
        """Whether the schema is at the head revision, checked without importing Alembic.

        ``False`` also when it cannot tell cheaply (a history that is not one chain, several
        rows in ``alembic_version``); :meth:`upgrade` then asks Alembic.
        """
        head = _linear_head()
        if head is None:
            return False
        with self.engine.connect() as conn:
            if not inspect(conn).has_table(_VERSION_TABLE):
                return False
            rows = conn.execute(text(f"SELECT version_num FROM {_VERSION_TABLE}")).scalars().all()
        return rows == [head]

    def upgrade(self) -> None:
        """Apply pending migrations; safe when two processes start at once.

        A current schema costs one query (see :meth:`is_current`); only a schema that is
        behind takes the migration lock and loads Alembic.
        """
        if self.is_current():
            return

        with self._migration_lock():
            if self.current_revision() == self.head_revision():
                return
            self.migrate("head")

    def migrate(self, revision: str, *, down: bool = False) -> None:
        """Upgrade (or, with ``down``, downgrade) the schema to ``revision`` in one transaction.

        On SQLite, foreign keys are not enforced while the migrations run and are checked
        once before the commit. A migration that changes a table there rebuilds it (create a
        copy, drop the old one, rename), and dropping a parent table whose rows other tables
        reference fails with foreign keys on, although the rebuilt table holds the very same
        rows by the end: SQLite's own procedure for altering a table turns them off first.
        The pragma has no effect inside a transaction, so it is set before ``BEGIN``.
        """
        from alembic import command

        cfg = self._alembic_config()
        with self.engine.connect() as conn:
            if self.is_sqlite:
                conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
                conn.commit()
            try:
                with conn.begin():
                    cfg.attributes["connection"] = conn
                    (command.downgrade if down else command.upgrade)(cfg, revision)
                    if self.is_sqlite:
                        broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                        if broken:
                            raise RuntimeError(
                                f"migration to {revision} left rows without their parent: {broken[:5]}"
                            )
            finally:
                if self.is_sqlite:
                    conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                    conn.commit()

    @contextlib.contextmanager
    def _migration_lock(self) -> Iterator[None]:
        if self.is_sqlite:
            database = self.url.database
            if not database or database == ":memory:":
                yield
                return
            with open(f"{database}.migrate.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(lock, fcntl.LOCK_UN)
        else:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(7715001)"))
                try:
                    yield
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(7715001)"))
                    conn.commit()

    def dispose(self) -> None:
        self.engine.dispose()
