"""The documentation: a README a newcomer reads in ten minutes, and docs/ that build with no
broken link."""
from __future__ import annotations

import re
import subprocess
import sys

from conftest import REPO


def test_the_docs_build_strictly(tmp_path):
    """mkdocs --strict fails on a link to a missing page or anchor."""
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                          "--site-dir", str(tmp_path / "site")], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "site" / "how-it-works" / "index.html").is_file()


def test_the_readme_is_short_and_its_links_lead_somewhere():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) < 250
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme):
        if "://" not in target:
            assert (REPO / target).is_file(), target


def test_no_text_speaks_of_when_work_was_done_by_an_internal_label():
    """Measurements say a date, a machine and a command, never an internal work label."""
    texts = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    bad = [f"{p.name}: {m.group(0)}" for p in texts
           for m in re.finditer(r"\bsession (\d+|'s)", p.read_text(), re.I)]
    assert not bad, bad
