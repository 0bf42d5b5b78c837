"""The answers to the rubric's written questions, taken from a submission without running it.

Students answer in a notebook's Markdown cells under a heading ("## Q7", "**Question 7**"),
in a ``.py`` file's ``ANSWERS = {"Q7": "..."}``, or in a report beside the code
(``report.md``, ``report.txt``, ``report.pdf``; ``answers.*`` too).  Each question's
``patterns`` (rubric) find the line that starts its answer; the answer runs to the next
line that starts another question (or to the end).  A question with no answer found says
so.  Nothing here is a verdict: a TA grades the text on the desk (``grader review``).
"""
from __future__ import annotations

import ast
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from .rubric import Rubric, Written

MAX_ANSWER = 10_000  # characters kept of one answer
REPORTS = ("report", "answers")
REPORT_SUFFIXES = (".md", ".txt", ".pdf")
# A line that starts any question's answer, written or not ("## Q6", "Question 10:"): it
# ends the answer before it.
_ANY_QUESTION = re.compile(r"^\s*#*\s*\**\s*(q|question)\s*\d+\b", re.I)


@dataclass
class Answer:
    id: str
    title: str
    points: float
    text: str = ""
    where: str = ""  # "cell 4", "report.pdf", "ANSWERS in lab.py"
    found: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def _patterns(q: Written) -> list[re.Pattern]:
    if q.patterns:
        return [re.compile(r"^\s*(?:" + p + ")", re.I) for p in q.patterns]
    number = re.sub(r"\D", "", q.id)
    return [re.compile(rf"^\s*#*\s*\**\s*(q|question)\s*0*{number}\b", re.I)] if number else []


def answers_in_lines(lines: list[tuple[str, str]], rubric: Rubric) -> dict[str, tuple[str, str]]:
    """{question id: (answer, where)} from (line, where it is) pairs, in order."""
    found: dict[str, tuple[str, str]] = {}
    for q in rubric.written:
        patterns = _patterns(q)
        for i, (line, where) in enumerate(lines):
            m = next((p.match(line) for p in patterns if p.match(line)), None)
            if m is None:
                continue
            body = [line[m.end():].lstrip(" :.)-*#")]
            for nxt, _ in lines[i + 1:]:
                if _ANY_QUESTION.match(nxt):
                    break
                body.append(nxt)
            text = "\n".join(body).strip()[:MAX_ANSWER]
            if text:
                found[q.id] = (text, where)
                break
    return found


def _notebook_lines(path: Path) -> list[tuple[str, str]]:
    import nbformat

    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception:  # an unreadable notebook fails as a submission elsewhere
        return []
    out, code = [], 0
    for cell in nb.cells:
        if cell.cell_type == "code":
            code += 1
        elif cell.cell_type == "markdown":
            where = f"the Markdown cell after code cell {code}" if code else \
                "a Markdown cell before the first code cell"
            out += [(line, where) for line in str(cell.source).splitlines()]
    return out


def _answers_dict(path: Path) -> dict[str, str]:
    """``ANSWERS = {"Q1": "..."}`` at the top level of a .py file, read without running it."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, OSError, UnicodeDecodeError):
        return {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "ANSWERS" for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return {}
            if isinstance(value, dict):
                return {str(k): str(v)[:MAX_ANSWER] for k, v in value.items()
                        if isinstance(v, str)}
    return {}


def _report_text(path: Path) -> str:
    if path.suffix == ".pdf":
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError

        try:
            return "\n".join(page.extract_text() or "" for page in PdfReader(str(path)).pages)
        except (PdfReadError, OSError, ValueError):
            return ""
    return path.read_text(encoding="utf-8", errors="replace")


def reports_beside(path: Path) -> list[Path]:
    """Reports in the submission's own folder, never through a link out of it."""
    from .submission import inside

    folder = path.parent
    return [f for stem in REPORTS for suffix in REPORT_SUFFIXES
            for f in [folder / f"{stem}{suffix}"] if f.is_file() and inside(f, folder)]


def extract_answers(path: Path, rubric: Rubric) -> list[Answer]:
    """Each written question of ``rubric`` with its answer in the submission at ``path``
    (the notebook or script first, then a report beside it), or marked not found."""
    path = Path(path)
    answers = {q.id: Answer(q.id, q.title, q.points) for q in rubric.written}
    if not answers:
        return []
    sources: list[dict[str, tuple[str, str]]] = []
    if path.suffix == ".ipynb":
        sources.append(answers_in_lines(_notebook_lines(path), rubric))
    else:
        sources.append({k: (v, f"ANSWERS in {path.name}")
                        for k, v in _answers_dict(path).items()})
    for report in reports_beside(path):
        sources.append(answers_in_lines(
            [(line, report.name) for line in _report_text(report).splitlines()], rubric))
    for found in sources:
        for qid, (text, where) in found.items():
            a = answers.get(qid)
            if a is not None and not a.found:
                a.text, a.where, a.found = text, where, True
    return list(answers.values())
