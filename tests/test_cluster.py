"""``grader grade --executor ray`` on a real two-node Ray cluster on this machine, inside
a network namespace with only the loopback (``unshare -n``).  No mocks: each scenario
starts its own cluster (tests/raycluster.py), runs the real command, and stops every
process it started by PID."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import every_core, make_synthetic

HERE = Path(__file__).resolve().parent


def _why_not() -> str | None:
    try:
        import ray
    except ImportError:
        return "ray is not installed (pip install -e '.[test]')"
    from raycluster import RAY_VERSION
    if ray.__version__ != RAY_VERSION:
        return f"ray {ray.__version__} installed, the tests pin {RAY_VERSION}"
    for tool in ("unshare", "ip", "ray"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    if probe.returncode != 0:
        return "cannot make a network namespace here (unshare -n needs root or user namespaces)"
    from grader import confine
    if confine.detect("auto").kind == "none":
        return "no sandbox on this machine: the cluster tests grade in one"
    return None


pytestmark = [pytest.mark.cluster,
              pytest.mark.skipif(_why_not() is not None, reason=str(_why_not()))]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("data") / "synthetic.npz"
    x_train, y_train, x_test, y_test = make_synthetic()
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return str(path)


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory, data) -> dict:
    """Every scenario, run once on one cluster (cluster_scenarios.py); each test checks
    its own scenario's facts."""
    work = tmp_path_factory.mktemp("cluster")
    with every_core():  # two nodes and a driver
        run = subprocess.run(["unshare", "-n", sys.executable,
                              str(HERE / "cluster_scenarios.py"), str(work), data],
                             capture_output=True, text=True, timeout=1500)
    assert run.returncode == 0, run.stderr[-4000:]
    facts = json.loads(run.stdout.strip().splitlines()[-1])
    assert facts["only_loopback"], "the cluster tests must run with only the loopback"
    return facts


def scenario(scenarios: dict, name: str) -> dict:
    f = scenarios[name]
    assert "error" not in f, f.get("error")
    return f


def test_a_class_graded_on_the_cluster_gets_the_results_of_a_local_run(scenarios):
    f = scenario(scenarios, "same_as_local")
    assert f["ray_rc"] == 0 and f["local_rc"] == 0, f["stderr"]
    assert len(f["ray"]) == 2 and f["ray"] == f["local"]
    assert all(v["status"] == "passed" for v in f["ray"].values())
    # both nodes graded: two Ray node ids on this one host
    assert len(f["nodes"]) == 2 and all("(ray " in n for n in f["nodes"]), f["nodes"]
    assert all(r["device"].startswith("cpu: ") for r in f["ray_rows"])


def test_a_node_killed_while_grading_loses_no_submission(scenarios):
    f = scenario(scenarios, "node_dies")
    assert f["killed"], "the second node never started grading"
    assert f["rc"] == 0, f["stderr"]
    assert len(f["rows"]) == 2 and len(f["results"]) == 2
    assert all(r["status"] == "passed" for r in f["rows"]), f["rows"]
    # every submission graded once; the killed node finished nothing, so every result
    # (the one it was grading included, retried) came from the node that is left
    assert len({r["student"] for r in f["rows"]}) == 2
    assert len({r["node"] for r in f["rows"]}) == 1, f["rows"]


def test_a_killed_driver_is_resumed_and_only_the_rest_is_graded(scenarios):
    f = scenario(scenarios, "driver_dies")
    assert f["first"], "no result arrived before the driver was killed"
    assert f["unchanged"], "a result finished before the kill was graded again"
    assert f["rc"] == 0, f["stderr"]
    left = f["n_students"] - len(f["first"])
    assert f"{len(f['first'])} already graded (cached), {left} to grade" in \
        f["stderr"], f["stderr"]
    assert len(f["graded"]) == f["n_students"] == len(f["rows"])


def test_a_submission_cannot_reach_the_cluster_that_grades_it(scenarios):
    f = scenario(scenarios, "hostile")
    tail = next(t for name, t in f["tails"].items() if name.startswith("mallory"))
    assert "ENV-RAY: none" in tail, tail
    assert "SOCKET-FAILED" in tail and "SOCKET-CONNECTED" not in tail, tail
    # ray.init either raises or, failing to reach the head, ends the child's process
    assert "RAY-CONNECTED" not in tail, tail
    assert "RAY-FAILED" in tail or "Failed to connect to GCS" in tail, tail
    assert "PARENT-ENV-READ: True" not in tail, tail
    assert len(f["rows"]) == 2 and all(r["status"] in ("passed", "failed") for r in f["rows"])
    other = next(r for r in f["rows"] if r["student"] == "student0")
    assert other["status"] == "passed"
