"""Results in the formats courses already use: Gradescope, JUnit XML, GitHub Actions.

All are renderings of ``Results``; nothing here grades.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

from . import atomic
from .plain_text import github_message, github_property, printable, xml_text
from .results import CHECKED, ERROR, FAILED, PASSED, SKIPPED, Results, percent

QUICK_NOTICE = ("QUICK CHECK ONLY, NOT A GRADE: every builder ran, the structure checks ran and "
                "each model trained one short epoch on a subset. No accuracy was measured and no "
                "points are given.")

FORMATS = ("gradescope", "junit", "github")


def gradescope(results: Results) -> dict:
    """Gradescope's autograder results.json: ``tests[]`` with score, max_score, status, name,
    number, output, visibility; plus execution_time and a test-accuracy leaderboard.

    A quick run is a pre-check: its tests carry no score, the total is 0 and a visible
    line says it is not a grade."""
    tests = []
    graded = results.graded

    def test(item, output: str) -> dict:
        entry = {"status": "passed" if item.status in (PASSED, CHECKED) else "failed",
                 "name": f"{item.question} {item.title}" + ("" if graded else " (quick check)"),
                 "number": item.question.lstrip("Q"), "output": output,
                 "visibility": "visible"}
        if graded:
            entry.update(score=item.points, max_score=item.max_points)
        return entry

    for t in results.tasks:
        lines = [t.reason] + [f"- {f.message}" for f in t.findings if not f.ok]
        if t.test_accuracy is not None:
            lines.append(f"Test accuracy: {percent(t.test_accuracy, 2)}")
        tests.append(test(t, "\n".join(lines)))
    for c in results.comparisons:
        tests.append(test(c, c.reason))
    # The leaderboard shows the last task of the rubric with an accuracy: the lab's
    # questions build up to the student's own design.
    final = next((t for t in reversed(results.tasks) if t.test_accuracy is not None), None)
    total_s = sum(t.timings.get("total_s", 0.0) for t in results.tasks)
    about = (f"Graded by grader {results.grader_version}, rubric {results.rubric['id']} "
             f"{results.rubric['version']}, seed {results.seed}, on "
             f"{(results.environment.get('device') or {}).get('name', 'unknown')}.")
    out = {"score": results.points if graded else 0.0, "execution_time": round(total_s, 1),
           "output": about if graded else QUICK_NOTICE + " " + about, "tests": tests}
    if graded and final is not None and final.test_accuracy is not None:
        out["leaderboard"] = [{"name": f"{final.question} test accuracy",
                               "value": round(100 * final.test_accuracy, 2), "order": "desc"}]
    return out


def junit(all_results: list[tuple[str, Results]]) -> str:
    """One <testsuite> per submission, one <testcase> per task and comparison.  Names and
    reasons come from students: characters XML cannot hold are shown as escapes."""
    suites = ET.Element("testsuites", name="grader")
    for student, r in all_results:
        student = xml_text(student)
        items = [(t.question, t.id, t.status, xml_text(t.reason), t.timings.get("total_s", 0.0))
                 for t in r.tasks] + [(c.question, c.id, c.status, xml_text(c.reason), 0.0)
                                      for c in r.comparisons]
        suite = ET.SubElement(
            suites, "testsuite", name=student, tests=str(len(items)),
            failures=str(sum(s == FAILED for _, _, s, _, _ in items)),
            errors=str(sum(s == ERROR for _, _, s, _, _ in items)),
            skipped=str(sum(s == SKIPPED for _, _, s, _, _ in items)),
            time=f"{sum(x[4] for x in items):.1f}")
        props = ET.SubElement(suite, "properties")
        for name, value in (("mode", r.mode), ("graded", str(r.graded).lower()),
                            ("points", "" if r.points is None else f"{r.points:g}"),
                            ("max_points", "" if r.max_points is None else f"{r.max_points:g}")):
            ET.SubElement(props, "property", name=name, value=value)
        for question, tid, status, reason, secs in items:
            case = ET.SubElement(suite, "testcase", classname=student, name=f"{question} {tid}",
                                 time=f"{secs:.1f}")
            if status in (FAILED, ERROR):
                ET.SubElement(case, "failure" if status == FAILED else "error",
                              message=reason[:500], type=status).text = reason
            elif status == SKIPPED:
                ET.SubElement(case, "skipped", message=reason[:500])
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode")


def github(results: Results, echo=print) -> None:
    """Error annotations on the submission's lines and a Markdown job summary."""
    path = results.submission.get("path", "")
    try:
        rel = os.path.relpath(path)
    except ValueError:
        rel = path
    for t in results.tasks:
        if t.status in (FAILED, ERROR):
            frames = (t.error or {}).get("frames") or []
            last = frames[-1].get("line") if frames and isinstance(frames[-1], dict) else None
            line = f",line={last}" if isinstance(last, int) and \
                results.submission.get("kind") != "notebook" else ""
            title = github_property(f"{t.question} {t.id} {t.status}")
            echo(f"::error file={github_property(rel)}{line},title={title}::"
                 f"{github_message(t.reason)}")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        rows = "\n".join(f"| {t.question} | {t.id} | {t.status} | "
                         f"{'-' if t.test_accuracy is None else percent(t.test_accuracy, 2)} | "
                         + (f"{t.points:g}/{t.max_points:g}" if results.graded else "not graded")
                         + " |" for t in results.tasks)
        head = (f"{results.points:g} / {results.max_points:g} points" if results.graded else
                "quick check only, not a grade")
        with open(summary, "a") as f:
            name = printable(results.submission["name"]).replace("|", "\\|") \
                .replace("<", "&lt;").replace(">", "&gt;")
            f.write(f"### {name}: {head}\n\n"
                    f"| Q | task | verdict | test accuracy | points |\n|---|---|---|---|---|\n"
                    f"{rows}\n\n")


def write_formats(results: Results, out: Path, formats, student: str | None = None,
                  echo=print) -> None:
    for fmt in formats:
        if fmt == "gradescope":
            atomic.write_json(Path(out) / "gradescope.json", gradescope(results))
        elif fmt == "junit":
            atomic.write_text(Path(out) / "junit.xml",
                              junit([(student or results.submission["name"], results)]))
    if "github" in formats or os.environ.get("GITHUB_ACTIONS") == "true":
        github(results, echo)
