"""The one jinja environment for every template the grader ships (``grader/templates``):
the HTML report and class overview (autoescaped), the starter submission and the
Gradescope scripts (plain text), with the filters they share."""
from __future__ import annotations

import functools
import json
import shlex

import jinja2

from .results import percent


@functools.lru_cache(maxsize=None)  # one per process: the templates never change
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("grader", "templates"),
        # HTML templates escape what they insert; code and scripts must not be escaped.
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",),
                                            default_for_string=False, default=False),
        trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda v, d=1: "-" if v is None else f"{100 * v:.{d}f}%"
    env.filters["threshold"] = percent
    env.filters["num"] = lambda v: "-" if v is None else f"{v:,}"
    env.filters["secs"] = lambda v: "-" if v is None else (
        f"{v:.0f} s" if v < 120 else f"{v / 60:.1f} min")
    env.filters["shell"] = shlex.quote
    env.filters["toml"] = json.dumps  # a JSON string is a valid TOML basic string
    return env


def render(template: str, **context) -> str:
    return environment().get_template(template).render(**context)
