"""What TAs decide on the desk, kept in an SQLite database in the class's output folder.

Every decision is a row appended the moment it is made (WAL journal, synchronous commits):
a closed tab, a killed server or a crash loses nothing, and several TAs at once never
overwrite each other.  The latest row for a (student, kind, item) is the decision; each
row records who made it and when, and the submission it was made on, so a decision on a
submission that has changed since is *stale* and shown again.

Kinds: ``written`` (a written question: points, the rubric items ticked, a comment, or
not answered) and ``held`` (a task held for review: accepted, with its points, or
rejected, with a reason).
"""
from __future__ import annotations

import datetime as _dt
import json
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError

DB_FILE = "desk.sqlite"
KINDS = ("written", "held")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    student TEXT NOT NULL,
    kind TEXT NOT NULL,
    item TEXT NOT NULL,
    submission_sha256 TEXT NOT NULL,
    payload TEXT NOT NULL,
    ta TEXT NOT NULL,
    at TEXT NOT NULL
)"""


@dataclass(frozen=True)
class Decision:
    student: str
    kind: str
    item: str
    submission_sha256: str
    payload: dict
    ta: str
    at: str
    id: int = 0

    def to_dict(self) -> dict:
        return {"id": self.id, "student": self.student, "kind": self.kind, "item": self.item,
                "submission_sha256": self.submission_sha256, "payload": self.payload,
                "ta": self.ta, "at": self.at}


def _validate(kind: str, payload: dict, max_points: float) -> dict:
    """The payload as stored: only known fields, points within the item's."""
    if kind not in KINDS:
        raise UsageError(f"Unknown decision kind {kind!r}. Expected one of: {', '.join(KINDS)}")
    if not isinstance(payload, dict):
        raise UsageError("A decision is an object.")
    if kind == "written":
        state = payload.get("state")
        if state not in ("graded", "not_answered"):
            raise UsageError(f"A written decision is graded or not_answered. Received: {state!r}")
        points = 0.0 if state == "not_answered" else payload.get("points")
        if isinstance(points, bool) or not isinstance(points, (int, float)) or \
                not 0 <= points <= max_points:
            raise UsageError(f"Points must be between 0 and {max_points:g}. Received: {points!r}")
        items = payload.get("items", [])
        if not isinstance(items, list) or not all(isinstance(i, int) for i in items):
            raise UsageError("items must be a list of item numbers.")
        return {"state": state, "points": float(points), "items": sorted(set(items)),
                "comment": str(payload.get("comment", ""))[:5000]}
    decision = payload.get("decision")
    if decision not in ("accepted", "rejected"):
        raise UsageError(f"A held task is accepted or rejected. Received: {decision!r}")
    reason = str(payload.get("reason", "")).strip()[:5000]
    if decision == "rejected" and not reason:
        raise UsageError("A rejection needs a reason: the student reads it.")
    return {"decision": decision, "reason": reason,
            "points": float(max_points) if decision == "accepted" else 0.0}


class DecisionStore:
    """The desk's decisions for one class output folder."""

    def __init__(self, out: str | Path):
        self.path = Path(out) / DB_FILE
        with closing(self._connect()) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)
            db.commit()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.execute("PRAGMA synchronous=FULL")
        return db

    def record(self, student: str, kind: str, item: str, submission_sha256: str,
               payload: dict, ta: str, max_points: float) -> Decision:
        """Append one decision, committed before this returns."""
        ta = str(ta or "").strip()[:100]
        if not ta:
            raise UsageError("Every decision records who made it: give your name.")
        stored = _validate(kind, payload, max_points)
        at = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        with closing(self._connect()) as db:
            cur = db.execute("INSERT INTO decisions (student, kind, item, submission_sha256, "
                             "payload, ta, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (student, kind, item, submission_sha256, json.dumps(stored), ta,
                              at))
            return Decision(student, kind, item, submission_sha256, stored, ta, at,
                            cur.lastrowid)

    def latest(self) -> dict[tuple[str, str, str], Decision]:
        """The decision in force for each (student, kind, item): the last one made."""
        with closing(self._connect()) as db:
            rows = db.execute("SELECT id, student, kind, item, submission_sha256, payload, ta, "
                              "at FROM decisions ORDER BY id").fetchall()
        return {(student, kind, item): Decision(student, kind, item, sha, json.loads(payload),
                                                ta, at, id_)
                for id_, student, kind, item, sha, payload, ta, at in rows}
