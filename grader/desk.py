"""``grader review OUT``: the TA's desk, a local web page for a graded class.

A small Flask application on 127.0.0.1, reachable only with the random token in its URL.
It serves one page (``templates/desk.html.j2``) and a JSON API over what ``grader grade``
wrote and what TAs decide (``classroom.py``, ``decisions.py``): grade written questions
one question at a time with the measured numbers beside each answer, and accept or
reject held tasks.  Every decision is saved when it is made, in ``OUT/desk.sqlite``.
"""
from __future__ import annotations

import hmac
import secrets
import threading
from pathlib import Path

from .classroom import evidence, load_class, total
from .decisions import DecisionStore
from .errors import GraderError
from .rendering import render
from .rubric import Rubric
from .similarity import read_pairs


def class_data(out: Path, rubric: Rubric) -> dict:
    """Everything the page shows, as JSON: the questions, and per student the answers,
    held tasks, evidence and the decisions in force (stale ones flagged)."""
    students = []
    for s in load_class(out):
        written = {}
        for q in rubric.written:
            a = s.answer(q.id) or {}
            d = s.decision("written", q.id)
            written[q.id] = {"text": a.get("text", ""), "where": a.get("where", ""),
                             "found": bool(a.get("found")),
                             "evidence": evidence(s.results, q.evidence),
                             "decision": d.to_dict() if d else None, "stale": s.stale(d)}
        held = []
        for t in s.held():
            d = s.decision("held", t.id)
            held.append({"id": t.id, "question": t.question, "reason": t.reason,
                         "points": t.max_points,
                         "test_accuracy": getattr(t, "test_accuracy", None),
                         "decision": d.to_dict() if d else None, "stale": s.stale(d)})
        students.append({"student": s.student, "folder": s.folder, "sha256": s.sha256,
                         "graded": s.results is not None, "written": written, "held": held,
                         "total": total(s, rubric) if s.results is not None else None})
    questions = [{"id": q.id, "title": q.title, "points": q.points,
                  "items": [{"points": i.points, "description": i.description}
                            for i in q.items]} for q in rubric.written]
    return {"questions": questions, "students": students, "similar": read_pairs(out)}


def create_app(out: str | Path, rubric: Rubric, token: str):
    from flask import Flask, abort, jsonify, request

    out = Path(out)
    store = DecisionStore(out)
    app = Flask(__name__)

    @app.before_request
    def need_token():
        given = request.args.get("token") or request.headers.get("X-Desk-Token") or ""
        if not hmac.compare_digest(given, token):
            abort(403)

    @app.after_request
    def headers(resp):
        resp.headers["Content-Security-Policy"] = (
            "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src "
            "'unsafe-inline'; connect-src 'self'; img-src data:; form-action 'none'")
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.get("/")
    def page():
        return render("desk.html.j2", title=rubric.title)

    @app.get("/api/class")
    def api_class():
        return jsonify(class_data(out, rubric))

    @app.post("/api/decide")
    def api_decide():
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return jsonify({"error": "Expected a JSON object."}), 400
        student, kind, item = body.get("student"), body.get("kind"), body.get("item")
        match = next((s for s in load_class(out) if s.student == student), None)
        if match is None or match.results is None:
            return jsonify({"error": f"No graded student {student!r}."}), 400
        if kind == "written":
            q = next((q for q in rubric.written if q.id == item), None)
            max_points = q.points if q else None
        else:
            t = next((t for t in match.held() if t.id == item), None)
            max_points = t.max_points if t else None
        if max_points is None:
            return jsonify({"error": f"Nothing to decide: {kind} {item!r}."}), 400
        try:
            d = store.record(student, kind, item, match.sha256, body.get("payload"),
                             body.get("ta"), max_points)
        except GraderError as exc:
            return jsonify({"error": exc.message}), 400
        return jsonify(d.to_dict())

    return app


class DeskServer:
    """The desk served on 127.0.0.1 in a background thread (``url`` carries the token)."""

    def __init__(self, out: str | Path, rubric: Rubric, port: int = 0, host: str = "127.0.0.1"):
        from werkzeug.serving import make_server

        self.token = secrets.token_urlsafe(24)
        self.server = make_server(host, port, create_app(out, rubric, self.token),
                                  threaded=True)
        self.url = f"http://{host}:{self.server.server_port}/?token={self.token}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "DeskServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)
