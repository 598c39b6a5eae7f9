"""Operators' sessions in the pipeline UI: a random id in an HttpOnly, SameSite=Strict cookie, and a
CSRF token per session that every action must send back (SQLite, so a restart keeps them)."""

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipelines.ui.database import connect

SESSION_HOURS = 12


@dataclass(frozen=True)
class Session:
    session_id: str
    operator: str
    csrf_token: str
    from_shell: bool = False
    """A shell's request with the announced server's token (`pipelines.ui.control`), not a signed-in
    browser: no other site's page can make a browser send that header, so it needs no CSRF token."""


class SessionStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        with connect(path) as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS sessions (session_id TEXT PRIMARY KEY, operator TEXT NOT NULL, "
                "csrf_token TEXT NOT NULL, expires_at TEXT NOT NULL)"
            )

    def open(self, operator: str) -> Session:
        session = Session(secrets.token_urlsafe(32), operator, secrets.token_urlsafe(32))
        expires = datetime.now(UTC) + timedelta(hours=SESSION_HOURS)
        with connect(self.path) as db:
            db.execute("DELETE FROM sessions WHERE expires_at < ?", (datetime.now(UTC).isoformat(),))
            db.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?)",
                (session.session_id, operator, session.csrf_token, expires.isoformat()),
            )
        return session

    def find(self, session_id: str | None) -> Session | None:
        """The session, unless it is unknown or expired."""
        if not session_id:
            return None
        with connect(self.path) as db:
            row = db.execute(
                "SELECT session_id, operator, csrf_token FROM sessions WHERE session_id = ? AND expires_at > ?",
                (session_id, datetime.now(UTC).isoformat()),
            ).fetchone()
        return Session(*row) if row else None

    def close(self, session_id: str) -> None:
        with connect(self.path) as db:
            db.execute("DELETE FROM sessions WHERE session_id = ?", (session_id,))

    def close_all(self, operator: str) -> None:
        """End every session of an operator (removed, or given a new password)."""
        with connect(self.path) as db:
            db.execute("DELETE FROM sessions WHERE operator = ?", (operator,))
