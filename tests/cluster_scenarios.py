"""The cluster scenarios of tests/test_cluster.py, on one two-node Ray cluster.

Run as ``unshare -n python tests/cluster_scenarios.py WORKDIR DATA [SCENARIO ...]``:
inside a network namespace with only the loopback, it starts the cluster, runs the
scenarios in order with the real ``grader grade`` command (each in its own folder, the one
that kills a node last: the others need both nodes), stops every process it started by
PID, and prints one JSON line, the facts of each scenario, for the tests to check.
Starting a cluster costs about 10 s; the scenarios share one.
"""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from raycluster import Cluster, loopback_up, only_loopback  # noqa: E402

# A small FC model that passes Q2 on the synthetic data in three short epochs.
TINY = '''import keras
from keras import layers

TRAINING = {"fc": {"epochs": 3, "batch_size": 32}}


def build_fc_model(input_shape=(32, 32, 3), num_classes=10):
    return keras.Sequential([keras.Input(shape=input_shape), layers.Flatten(),
                             layers.Dense(64, activation="relu"),
                             layers.Dense(num_classes, activation="softmax")])
'''


def make_class(root: Path, n: int = 2, extra: dict[str, str] | None = None) -> Path:
    folder = root / "class"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"student{i}.py").write_text(TINY + f"\n# student {i}\n")
    for name, text in (extra or {}).items():
        (folder / name).write_text(text)
    return folder


def grade_argv(folder: Path, out: Path, data: str, *more: str) -> list[str]:
    return [sys.executable, "-m", "grader.cli", "grade", str(folder), "--out", str(out),
            "--data", data, "--tasks", "fc", *more]


def rows(out: Path) -> list[dict]:
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def results(out: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(out.glob("*/results.json"))}


def task_facts(res: dict) -> dict:
    """What must be the same wherever a submission is graded."""
    fc = res["tasks"][0]
    return {"status": fc["status"], "test_accuracy": fc["test_accuracy"],
            "params": fc["params_total"], "history": fc["history"],
            "confusion": fc["confusion_matrix"]}


def child_pids(node_pids: list[int]) -> list[int]:
    out = []
    for pid in node_pids:
        try:
            # A started builder, a trainer, or the builders' fork server (a forked builder
            # keeps its server's command line): the node is grading a submission.
            if b"grader.child." in Path(f"/proc/{pid}/cmdline").read_bytes():
                out.append(pid)
        except OSError:
            pass
    return out


def same_as_local(work: Path, data: str, cluster: Cluster) -> dict:
    folder = make_class(work)
    ray_out, local_out = work / "ray", work / "local"
    r = subprocess.run(grade_argv(folder, ray_out, data, "--executor", "ray",
                                  "--ray-address", cluster.address),
                       capture_output=True, text=True)
    l_ = subprocess.run(grade_argv(folder, local_out, data, "--jobs", "2"),
                        capture_output=True, text=True)
    ray_res, local_res = results(ray_out), results(local_out)
    return {"ray_rc": r.returncode, "local_rc": l_.returncode, "stderr": r.stderr[-3000:],
            "ray": {k: task_facts(v) for k, v in ray_res.items()},
            "local": {k: task_facts(v) for k, v in local_res.items()},
            "nodes": sorted({row["node"] for row in rows(ray_out)}),
            "ray_rows": rows(ray_out)}


def node_dies(work: Path, data: str, cluster: Cluster) -> dict:
    folder = make_class(work)
    out = work / "out"
    driver = subprocess.Popen(grade_argv(folder, out, data, "--executor", "ray",
                                         "--ray-address", cluster.address,
                                         "--max-retries", "3"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = cluster.nodes[1]
    killed_at = None
    end = time.monotonic() + 300
    while time.monotonic() < end and driver.poll() is None:
        if child_pids(second.pids()):  # the second node is grading a submission now
            second.kill()
            killed_at = time.time()
            break
        time.sleep(0.2)
    try:
        stdout, stderr = driver.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        driver.kill()
        stdout, stderr = driver.communicate()
    return {"rc": driver.returncode, "killed": killed_at is not None,
            "stderr": stderr[-3000:], "rows": rows(out) if (out / "grades.csv").exists()
            else [], "results": sorted(results(out))}


def driver_dies(work: Path, data: str, cluster: Cluster) -> dict:
    folder = make_class(work, n=3)  # two graded at once, one left for the resumed driver
    out = work / "out"
    argv = grade_argv(folder, out, data, "--executor", "ray", "--ray-address", cluster.address)
    driver = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = None
    end = time.monotonic() + 300
    while time.monotonic() < end and driver.poll() is None:
        done = sorted(out.glob("*/results.json"))
        if done:
            first = {p.parent.name: p.read_bytes() for p in done}
            os.kill(driver.pid, signal.SIGKILL)
            break
        time.sleep(0.1)
    driver.wait()
    before = {name: data_ for name, data_ in first.items()} if first else {}
    again = subprocess.run(argv, capture_output=True, text=True)
    after = results(out)
    return {"first": sorted(before), "rc": again.returncode, "stderr": again.stderr[-3000:],
            "unchanged": all((out / n / "results.json").read_bytes() == b
                             for n, b in before.items()),
            "graded": sorted(after), "rows": rows(out),
            "n_students": len(list(folder.iterdir()))}


HOSTILE = '''"""Tries to reach the Ray cluster that grades it."""
import os
import socket
import keras
from keras import layers

PORT = {port}
TRAINING = {{"fc": {{"epochs": 1}}}}  # what it reaches is the point, not what it learns


def build_fc_model(input_shape=(32, 32, 3), num_classes=10):
    ray_env = sorted(k for k in os.environ if k.startswith("RAY"))
    print("ENV-RAY:", ray_env or "none", flush=True)
    try:
        with open(f"/proc/{{os.getppid()}}/environ", "rb") as f:
            print("PARENT-ENV-READ:", b"RAY" in f.read(), flush=True)
    except OSError as exc:
        print("PARENT-ENV-FAILED:", type(exc).__name__, flush=True)
    try:
        s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
        print("SOCKET-CONNECTED", flush=True)
        s.close()
    except OSError as exc:
        print("SOCKET-FAILED:", type(exc).__name__, flush=True)
    try:
        # give up in a second or two, not 15 s: what it reaches is the point, not how long
        # it waits
        os.environ["RAY_gcs_rpc_server_reconnect_timeout_s"] = "1"
        os.environ["RAY_gcs_rpc_server_connect_timeout_s"] = "1"
        import ray
        ray.init(address=f"127.0.0.1:{{PORT}}", log_to_driver=False)
        print("RAY-CONNECTED:", ray.cluster_resources(), flush=True)
    except BaseException as exc:
        print("RAY-FAILED:", type(exc).__name__, flush=True)
    return keras.Sequential([keras.Input(shape=input_shape), layers.Flatten(),
                             layers.Dense(num_classes, activation="softmax")])
'''


def hostile(work: Path, data: str, cluster: Cluster) -> dict:
    folder = make_class(work, n=1, extra={
        "mallory.py": HOSTILE.format(port=cluster.port)})
    out = work / "out"
    r = subprocess.run(grade_argv(folder, out, data, "--executor", "ray",
                                  "--ray-address", cluster.address),
                       capture_output=True, text=True)
    res = results(out)
    tails = {name: "\n".join(t["output_tail"] for t in v["tasks"]) for name, v in res.items()}
    return {"rc": r.returncode, "stderr": r.stderr[-3000:], "rows": rows(out),
            "tails": tails}


SCENARIOS = {"same_as_local": same_as_local, "node_dies": node_dies,
             "driver_dies": driver_dies, "hostile": hostile}


def main() -> None:
    work, data = Path(sys.argv[1]), sys.argv[2]
    names = sys.argv[3:] or list(SCENARIOS)
    names.sort(key=lambda n: n == "node_dies")  # it takes a node down: last
    loopback_up()
    facts = {"only_loopback": only_loopback()}
    started = time.monotonic()
    with Cluster(work / "cluster", nodes=2, cpus=1) as cluster:
        facts["cluster_start_s"] = round(time.monotonic() - started, 1)
        for name in names:
            (work / name).mkdir(parents=True)
            started = time.monotonic()
            try:
                facts[name] = SCENARIOS[name](work / name, data, cluster)
            except Exception as exc:  # one scenario's failure is its test's, not all four
                facts[name] = {"error": f"{type(exc).__name__}: {exc}"}
            facts[name]["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(facts))


if __name__ == "__main__":
    main()
