"""The portal's SQLite database: connections, tables, settings and organisations.

WAL mode; each request borrows a connection from a small pool, so a thread has one connection at
a time and the pool closes them all at shutdown. Writes run in ``BEGIN IMMEDIATE`` transactions,
so a read-check-write sequence (uniqueness, ``If-Match``) cannot interleave with another writer.
"""

from __future__ import annotations

import queue
import re
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

BUSY_TIMEOUT_MS = 30_000
POOL_SIZE = 16
ORG_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
#: names that would clash with the portal's own URLs
RESERVED_NAMES = frozenset(
    {
        "api",
        "scim",
        "static",
        "organisations",
        "healthz",
        "login",
        "logout",
        "auth",
        "mina-laromedel",
    }
)

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS organisations (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    token TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id INTEGER NOT NULL REFERENCES organisations(id),
    id TEXT NOT NULL UNIQUE,
    user_name_key TEXT NOT NULL,
    external_id TEXT,
    display_name TEXT,
    doc TEXT NOT NULL,
    version INTEGER NOT NULL,
    created TEXT NOT NULL,
    last_modified TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS users_user_name ON users(org_id, user_name_key);
CREATE INDEX IF NOT EXISTS users_external_id ON users(org_id, external_id);
CREATE INDEX IF NOT EXISTS users_org_seq ON users(org_id, seq);
CREATE TABLE IF NOT EXISTS user_emails (
    org_id INTEGER NOT NULL,
    user_id TEXT NOT NULL,
    value_key TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS user_emails_value ON user_emails(org_id, value_key);
CREATE INDEX IF NOT EXISTS user_emails_user ON user_emails(user_id);
CREATE TABLE IF NOT EXISTS groups (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id INTEGER NOT NULL REFERENCES organisations(id),
    id TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    display_name_key TEXT NOT NULL,
    external_id TEXT,
    doc TEXT NOT NULL,
    version INTEGER NOT NULL,
    created TEXT NOT NULL,
    last_modified TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS groups_display_name ON groups(org_id, display_name_key);
CREATE INDEX IF NOT EXISTS groups_external_id ON groups(org_id, external_id);
CREATE INDEX IF NOT EXISTS groups_org_seq ON groups(org_id, seq);
CREATE TABLE IF NOT EXISTS group_members (
    group_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    UNIQUE (group_id, user_id)
);
CREATE INDEX IF NOT EXISTS group_members_user ON group_members(user_id);
CREATE TABLE IF NOT EXISTS licences (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id INTEGER NOT NULL REFERENCES organisations(id),
    id TEXT NOT NULL UNIQUE,
    product TEXT NOT NULL,
    user_id TEXT,
    group_id TEXT,
    assigned_by TEXT NOT NULL,
    assigned_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS licences_org ON licences(org_id);
CREATE INDEX IF NOT EXISTS licences_user ON licences(user_id);
CREATE INDEX IF NOT EXISTS licences_group ON licences(group_id);
"""


def now() -> str:
    """The current time as xsd:dateTime in UTC with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_token() -> str:
    """A bearer token for an organisation; never starting with "-", so that it can follow an
    option on a command line (``--test-token TOKEN``; ``-`` alone there means standard input)."""
    return "p" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Organisation:
    id: int
    name: str
    token: str
    created: str


class Database:
    """The database file and a pool of connections to it."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._idle: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        with self.connection() as conn:
            conn.executescript(SCHEMA_SQL)

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """Borrow a connection for one request (autocommit; use ``write`` for changes)."""
        if self._closed:
            raise RuntimeError("the database is closed")
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = self._open()
            with self._lock:
                self._all.append(conn)
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.rollback()
            if self._idle.qsize() < POOL_SIZE and not self._closed:
                self._idle.put(conn)
            else:
                with self._lock:
                    self._all.remove(conn)
                conn.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A connection inside a ``BEGIN IMMEDIATE`` transaction, committed on success."""
        with self.connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    def close(self) -> None:
        self._closed = True
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()

    # --- settings and organisations ---------------------------------------------------------

    def setting(self, key: str) -> str | None:
        with self.connection() as conn:
            row = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    def set_setting(self, key: str, value: str) -> None:
        with self.write() as conn:
            conn.execute(
                "INSERT INTO settings(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def admin_token(self) -> str:
        """The admin token, made once and kept."""
        token = self.setting("admin_token")
        if token is None:
            token = new_token()
            self.set_setting("admin_token", token)
        return token

    def organisations(self) -> list[Organisation]:
        with self.connection() as conn:
            rows = conn.execute("SELECT * FROM organisations ORDER BY id").fetchall()
        return [_organisation(row) for row in rows]

    def organisation(self, name: str) -> Organisation | None:
        with self.connection() as conn:
            row = conn.execute("SELECT * FROM organisations WHERE name = ?", (name,)).fetchone()
        return None if row is None else _organisation(row)

    def create_organisation(self, name: str, token: str | None = None) -> Organisation:
        """A new organisation; ``ValueError`` for a bad name, ``KeyError`` when it exists."""
        check_org_name(name)
        with self.write() as conn:
            if conn.execute("SELECT 1 FROM organisations WHERE name = ?", (name,)).fetchone():
                raise KeyError(name)
            org_token, created = token or new_token(), now()
            cursor = conn.execute(
                "INSERT INTO organisations(name, token, created) VALUES (?, ?, ?)",
                (name, org_token, created),
            )
        assert cursor.lastrowid is not None
        return Organisation(cursor.lastrowid, name, org_token, created)

    def ensure_organisation(self, name: str, token: str | None = None) -> Organisation:
        """The organisation ``name``, created if missing; ``token`` replaces the kept token."""
        org = self.organisation(name)
        if org is None:
            return self.create_organisation(name, token)
        if token is not None and token != org.token:
            with self.write() as conn:
                conn.execute("UPDATE organisations SET token = ? WHERE id = ?", (token, org.id))
            org = Organisation(org.id, org.name, token, org.created)
        return org


def _organisation(row: sqlite3.Row) -> Organisation:
    return Organisation(row["id"], row["name"], row["token"], row["created"])


def check_org_name(name: str) -> None:
    if not ORG_NAME.match(name) or name in RESERVED_NAMES:
        raise ValueError(
            f"{name!r} cannot name an organisation: use 1-63 lowercase letters, digits, - or _, "
            f"starting with a letter or digit, and none of {', '.join(sorted(RESERVED_NAMES))}"
        )
