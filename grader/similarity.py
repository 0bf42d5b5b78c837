"""Similar work across a graded class: ``OUT/similarity.csv``.

Two signals, each a reason for a TA to look, never a verdict:

- the code: copydetect's winnowing fingerprints (the method of MOSS) of the code the
  grader takes from each submission, with the rubric's starter as boilerplate, so the
  functions every student is handed do not count as copying;
- the student's own design (the rubric's last task, Q10): identical layers, configuration,
  optimizer, loss, epochs and batch size.  The lab prescribes the earlier models, so the
  same CNN in Q4, Q6 or Q8 is expected and never flagged alone.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from . import atomic
from .classroom import Student, load_class
from .errors import GraderError
from .plain_text import csv_cell
from .reference import task_signature
from .rubric import Rubric
from .starter import render_py
from .submission import load_submission

SIMILARITY_FILE = "similarity.csv"
# copydetect's defaults: 25-character noise threshold, window of one (every k-gram hash).
NOISE_THRESHOLD, GUARANTEE_THRESHOLD = 25, 1
COLUMNS = ["student_a", "student_b", "code_similarity", "same_own_design", "matched_a",
           "matched_b"]


def _code(s: Student) -> str | None:
    """The student's own code: a script as written, a notebook's code cells in order."""
    try:
        sub = load_submission(s.file)
    except GraderError:
        return None
    if not sub.is_notebook:
        return sub.path.read_text(encoding="utf-8")
    import nbformat

    nb = nbformat.read(str(sub.path), as_version=4)
    return "\n\n".join(str(c.source) for c in nb.cells if c.cell_type == "code")


def _fingerprint(name: str, code: str, boilerplate):
    from copydetect import CodeFingerprint

    return CodeFingerprint(name, NOISE_THRESHOLD, GUARANTEE_THRESHOLD, boilerplate,
                           fp=io.StringIO(code), language="python")


def _snippet(fp, slices) -> str:
    """The longest stretch of ``fp``'s code that the other file shares."""
    if len(slices[0]) == 0:
        return ""
    longest = max(range(len(slices[0])), key=lambda i: slices[1][i] - slices[0][i])
    return fp.raw_code[int(slices[0][longest]):int(slices[1][longest])][:400]


def similar_pairs(out: str | Path, rubric: Rubric, threshold: float = 0.6) -> list[dict]:
    """Pairs whose code is at least ``threshold`` similar, or whose own designs (the
    rubric's last task) are identical; the most similar first."""
    from copydetect import compare_files

    students = [s for s in load_class(out) if s.results is not None]
    import numpy as np

    starter = _fingerprint("starter.py", render_py(rubric, "lab.py"), None)
    boilerplate = np.array(sorted(starter.hashes), dtype=np.int64)
    own = rubric.tasks[-1].id
    prints, designs = {}, {}
    for s in students:
        code = _code(s)
        if code is not None:
            prints[s.student] = _fingerprint(s.student, code, boilerplate)
        t = s.results.task(own)
        if t is not None and t.description:
            designs[s.student] = task_signature(t)
    names = [s.student for s in students]
    pairs = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            score, matched = 0.0, ("", "")
            if a in prints and b in prints:
                _, sims, slices = compare_files(prints[a], prints[b])
                score = float(max(sims))
                matched = (_snippet(prints[a], slices[0]), _snippet(prints[b], slices[1]))
            same = a in designs and designs.get(a) == designs.get(b)
            if score >= threshold or same:
                pairs.append({"student_a": a, "student_b": b,
                              "code_similarity": round(score, 3), "same_own_design": same,
                              "matched_a": matched[0], "matched_b": matched[1]})
    return sorted(pairs, key=lambda p: (-p["code_similarity"], p["student_a"]))


def write_pairs(out: str | Path, pairs: list[dict]) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(COLUMNS)
    for p in pairs:
        w.writerow([csv_cell(p[c] if not isinstance(p[c], bool) else ("yes" if p[c] else "no"))
                    for c in COLUMNS])
    return atomic.write_text(Path(out) / SIMILARITY_FILE, buf.getvalue())


def read_pairs(out: str | Path) -> list[dict]:
    path = Path(out) / SIMILARITY_FILE
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
