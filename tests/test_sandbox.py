"""The sandbox holds when a student tries: every door of tests/submissions/escapes.py is
checked under each sandbox this machine can run (bubblewrap, and Landlock forced), and
without a sandbox the defence in depth still keeps an unearned pass from counting."""
from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

import grader
from grader import confine, landlock
from grader.errors import UsageError
from grader.results import FAILED

AVAILABLE = [k for k in ("bubblewrap", "landlock") if confine.detect(k).kind == k]
ESCAPE_FILE = Path("/tmp/grader-import-escape.txt")


@pytest.fixture
def bait():
    """A secret in the grading user's real home folder, as a TA's machine would have."""
    secret = f"s3cret{uuid.uuid4().hex[:12]}"
    path = Path.home() / f".grader-bait-{uuid.uuid4().hex[:8]}"
    path.write_text(secret)
    yield secret
    path.unlink(missing_ok=True)


def _reached(task) -> dict:
    layer = next(l for l in task.description["layers"] if l["name"].startswith("reached_"))
    return json.loads(bytes.fromhex(layer["name"][len("reached_"):]).decode())


@pytest.mark.skipif(not AVAILABLE, reason="neither bubblewrap nor Landlock can run here")
@pytest.mark.parametrize("kind", AVAILABLE)
def test_every_escape_is_contained(kind, synthetic_npz, submission, tmp_path, bait,
                                   loopback_server, monkeypatch):
    listener = loopback_server(47124)
    monkeypatch.setenv("GRADER_CIFAR10", str(synthetic_npz))  # in the grader's environment
    ESCAPE_FILE.unlink(missing_ok=True)
    out = tmp_path / "out"
    r = grader.check(submission("escapes.py"), tasks="fc", out=out, sandbox=kind)
    fc = r.task("fc")
    assert r.environment["sandbox"]["kind"] == kind
    reached = _reached(fc)
    assert reached["parent_proc"] is False  # not the grader's command line or environment
    assert reached["data_files"] == []  # so no test label either
    assert reached["secret"] is None and reached["home_files"] == []
    assert reached["network"] is False and listener == []
    assert not ESCAPE_FILE.exists()  # a private /tmp (bubblewrap) or a denied write
    assert fc.status == FAILED and fc.points == 0 and fc.test_accuracy < 0.3
    from grader.html_report import write_report
    report = write_report(r, out / "report.html")
    assert f"sandbox: {kind}" in report.read_text()
    for text in ((out / "results.json").read_text(), report.read_text()):
        assert bait not in text


@pytest.mark.skipif(not AVAILABLE, reason="neither bubblewrap nor Landlock can run here")
@pytest.mark.parametrize("kind", AVAILABLE)
def test_a_forked_builder_reaches_neither_its_server_nor_its_neighbours(
        kind, synthetic_npz, submission, tmp_path, bait, loopback_server, monkeypatch):
    """A class's builders are forked from one fork server, whose folder holds every
    builder's folder: each forked builder is held to its own (Landlock, under bubblewrap
    too), cannot signal the server, and every door of escapes.py stays shut; the server
    goes on forking the next submission's builder."""
    from grader import fork_server
    from grader.sandbox import SandboxLimits
    from grader.session import TrainerPool

    why_not = fork_server.possible(SandboxLimits(confinement=confine.detect(kind)))
    if why_not:
        pytest.skip(f"builders are not forked here: {why_not}")
    listener = loopback_server(47124)
    monkeypatch.setenv("GRADER_CIFAR10", str(synthetic_npz))
    ESCAPE_FILE.unlink(missing_ok=True)
    neighbour = f"n3ighbour{uuid.uuid4().hex[:12]}"
    server_root = tmp_path / "pool" / "builders-1"
    server_root.mkdir(parents=True)
    (server_root / "bait.txt").write_text(neighbour)
    pool = TrainerPool(tmp_path / "pool")
    try:
        runs = {name: grader.check(submission(name), tasks="fc", out=tmp_path / name,
                                   sandbox=kind, trainers=pool, data_cache=tmp_path / "b")
                for name in ("escapes.py", "good.py")}
    finally:
        pool.close()
    r = runs["escapes.py"]
    assert r.environment["sandbox"]["kind"] == kind
    assert r.environment["sandbox"]["forked"] is True
    reached = _reached(r.task("fc"))
    assert reached["neighbours"] is None and reached["neighbour_secret"] is None
    assert reached["signals_parent"] is False
    assert reached["parent_proc"] is False and reached["data_files"] == []
    assert reached["secret"] is None and reached["home_files"] == []
    assert reached["network"] is False and listener == []
    assert not ESCAPE_FILE.exists()
    assert r.task("fc").points == 0
    for text in ((tmp_path / "escapes.py" / "results.json").read_text(),):
        assert bait not in text and neighbour not in text
    good = runs["good.py"]
    assert good.environment["sandbox"]["forked"] is True
    assert good.task("fc").error_kind is None and good.task("fc").test_accuracy is not None
    assert list(server_root.glob("builder-*")) == []  # each builder's folder went with it


def test_a_builder_the_server_cannot_fork_is_started_afresh(tmp_path):
    """A fork that fails (the server gone, its process not found, the cgroup refused) is
    no failure of the submission: the builder starts as it would without a server, on
    pipes of its own, in the folder it was given (removed when it closes)."""
    from grader.sandbox import Child, SandboxLimits, wait_for_hello

    class Refuses:
        def fork(self, *args):
            return None

    folder = tmp_path / "builder"
    folder.mkdir()
    child = Child(folder, SandboxLimits(confinement=confine.detect("auto")), server=Refuses())
    try:
        hello = wait_for_hello(child, 120, "builder")
        assert child.forked is False and "forked" not in hello
        assert child.proc.pid != hello["pid"] or hello["sandbox"]["kind"] != "bubblewrap"
    finally:
        child.close()
    assert not folder.exists()


def test_forking_builders_needs_a_sandbox_scoped_signals_and_a_cgroup():
    from grader import fork_server
    from grader.sandbox import SandboxLimits

    assert fork_server.possible(SandboxLimits()) == "no sandbox"
    landlock7 = SandboxLimits(confinement=confine.Confinement("landlock", "forced", 7))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KERAS_BACKEND", "jax")
        assert "jax backend" in fork_server.possible(landlock7)
    old = confine.Confinement("landlock", "forced", landlock_abi=5)
    assert "does not scope signals" in fork_server.possible(SandboxLimits(confinement=old))


def test_without_a_sandbox_stolen_labels_reach_no_prediction(synthetic_npz, submission,
                                                             tmp_path, monkeypatch):
    """The thief reads the labels (nothing stops it here) and patches ``predict`` to answer
    from them, in the process that runs its code; the grader's trainer predicts with the
    model's own weights, so it scores at chance, and the run warns that it had no sandbox."""
    monkeypatch.setenv("GRADER_CIFAR10", str(synthetic_npz))
    ESCAPE_FILE.unlink(missing_ok=True)
    try:
        r = grader.check(submission("escapes.py"), tasks="fc", out=tmp_path, sandbox="none")
    finally:
        ESCAPE_FILE.unlink(missing_ok=True)
    fc = r.task("fc")
    assert str(synthetic_npz) in _reached(fc)["data_files"]
    assert fc.test_accuracy < 0.3 and fc.status == FAILED and fc.points == 0
    assert r.environment["sandbox"]["kind"] == "none"
    assert any(n.check == "sandbox" and "WITHOUT a sandbox" in n.message for n in r.notes)
    assert not r.passed


def test_an_honest_model_is_not_held(shared_trainers, synthetic_npz, submission, tmp_path):
    r = grader.check(submission("good.py"), data=synthetic_npz, **shared_trainers,
                     tasks="fc,cnn", out=tmp_path)
    for t in r.tasks:
        assert t.status == "passed", t.reason
        assert t.reinit_agreement is not None and t.reinit_agreement < 0.5
        assert not [f for f in t.findings if f.severity == "review"]


def test_a_class_is_not_graded_without_a_sandbox_unless_the_ta_says_so(synthetic_npz,
                                                                        submission, tmp_path):
    from grader.batch import grade_batch
    with pytest.raises(UsageError, match="Refusing to grade a class without a sandbox"):
        grade_batch([submission("good.py")], tmp_path / "out", data=synthetic_npz,
                    quick=True, tasks="fc", sandbox="none")
    rows = grade_batch([submission("good.py")], tmp_path / "out", data=synthetic_npz,
                       quick=True, tasks="fc", sandbox="none", allow_unsandboxed=True)
    assert len(rows) == 1 and rows[0].passed


def test_asking_for_a_sandbox_that_cannot_run_is_a_usage_error(synthetic_npz, submission,
                                                               monkeypatch):
    monkeypatch.setattr(confine, "bwrap_path", lambda: None)
    with pytest.raises(UsageError, match="--sandbox bubblewrap was asked for, but bubblewrap "
                                         "cannot run: bwrap is not installed"):
        grader.check(submission("good.py"), data=synthetic_npz, tasks="fc", quick=True,
                     sandbox="bubblewrap")


def test_doctor_reports_what_protects_this_machine(synthetic_npz):
    from click.testing import CliRunner

    from grader.cli import main
    r = CliRunner().invoke(main, ["doctor", "--data", str(synthetic_npz), "--json"])
    d = json.loads(r.output)
    items = {i["name"]: i for i in d["items"]}
    assert set(items) == {"sandbox", "network", "backend", "devices", "limits", "data"}
    assert items["sandbox"]["detail"].startswith(confine.detect().kind)
    from grader import cgroups
    assert items["limits"]["detail"] == cgroups.enforced()
    assert items["limits"]["detail"].startswith(("cgroup v", "polling only"))
    assert r.exit_code == (0 if d["ready"] else 1)
    r = CliRunner().invoke(main, ["doctor", "--data", "/nonexistent.npz", "--json"])
    d = json.loads(r.output)
    assert r.exit_code == 1 and not d["ready"]
    assert "which does not exist" in {i["name"]: i for i in d["items"]}["data"]["detail"]


def test_the_child_is_started_without_preexec_fn():
    """Forking into Python code is unsafe in a parent with threads (batch grading)."""
    source = (Path(grader.__file__).parent / "sandbox.py").read_text()
    assert "preexec_fn" not in source.replace("No ``preexec_fn``", "")


def test_a_path_inside_a_bound_folder_is_not_bound_again():
    """/usr/local/cuda is a symlink on most GPU machines: binding it again inside the
    read-only /usr made bubblewrap fail to start every child when a GPU was listed."""
    from grader.confine import AllowList, bwrap_argv

    allow = AllowList(execute=["/usr", "/lib"], read=["/usr/local/cuda", "/etc/passwd",
                                                     "/library"])
    argv = bwrap_argv(allow, Path("/tmp/work"), True)
    bound = [argv[i + 1] for i, a in enumerate(argv) if a == "--ro-bind-try"]
    assert bound == ["/usr", "/lib", "/etc/passwd", "/library"]


@pytest.fixture
def unix_server():
    """A pathname UNIX socket, as a database or Docker has, that answers who connects."""
    import os
    import socket
    import threading

    path = "/tmp/grader-probe-unix.sock"
    if os.path.exists(path):
        os.unlink(path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    os.chmod(path, 0o777)
    server.listen()
    server.settimeout(0.3)
    hits, stop = [], threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            hits.append(1)
            conn.sendall(b"SECRET-FROM-THE-SOCKET")
            conn.close()

    thread = threading.Thread(target=serve)
    thread.start()
    yield hits
    stop.set()
    thread.join()
    server.close()
    os.unlink(path)


@pytest.mark.skipif(not AVAILABLE, reason="neither bubblewrap nor Landlock can run here")
@pytest.mark.parametrize("kind", AVAILABLE)
def test_no_capability_unix_socket_shared_memory_or_pythonpath(kind, synthetic_npz,
                                                              submission, tmp_path,
                                                              unix_server, monkeypatch):
    """Landlock as root kept every capability, let connect() reach any pathname UNIX
    socket, granted the host's /dev/shm, and made PYTHONPATH's folders readable."""
    shm = Path("/dev/shm/grader-probe-from-child")
    shm.unlink(missing_ok=True)
    planted = Path("/tmp/grader-probe-pythonpath")
    planted.mkdir(exist_ok=True)
    (planted / "bait.txt").write_text("BAIT-ON-PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", str(planted))
    r = grader.check(submission("probes_privileges.py"), data=synthetic_npz, tasks="fc",
                     quick=True, sandbox=kind, out=tmp_path)
    fc = r.task("fc")
    out = fc.output_tail
    assert "PROBE CapEff 0000000000000000 CapBnd 0000000000000000" in out, out
    assert "PROBE unix-refused" in out and unix_server == [], out
    # Landlock grants no /dev/shm; bubblewrap's is the sandbox's own: the host's is untouched
    assert ("PROBE shm-refused" in out) == (kind == "landlock"), out
    assert not shm.exists(), out
    assert "BAIT-ON-PYTHONPATH" not in out and str(planted) not in out, out
    assert fc.error_kind is None, fc.reason  # probed, then built and trained


DEVICE_PROBE = r"""
import json, os, sys
from grader import landlock
granted = sys.argv[1] == "granted"
landlock.restrict(read=["/usr", "/lib", "/lib64", "/etc", sys.prefix, sys.base_prefix],
                  read_write=[], execute=[], devices=["/dev/zero"] if granted else [])
out = {}
for flags in ("r", "rw"):
    try:
        os.close(os.open("/dev/zero", os.O_RDONLY if flags == "r" else os.O_RDWR))
        out[flags] = True
    except PermissionError:
        out[flags] = False
print(json.dumps(out))
"""


@pytest.mark.skipif(not landlock.abi_version(), reason="this kernel has no Landlock")
def test_a_gpus_device_files_open_read_write_under_landlock():
    """CUDA opens /dev/nvidiactl and /dev/nvidia0 read-write: granted read-only, a child
    under Landlock on a GPU machine saw no GPU and trained on the CPU.  A device granted
    to the child now opens read-write; one not granted does not open at all."""
    import subprocess
    import sys

    def probe(which: str) -> dict:
        run = subprocess.run([sys.executable, "-c", DEVICE_PROBE, which], capture_output=True,
                             text=True, cwd=Path(__file__).parent.parent, check=True)
        return json.loads(run.stdout)

    assert probe("granted") == {"r": True, "rw": True}
    assert probe("not granted") == {"r": False, "rw": False}


def test_a_pool_asks_a_server_that_cannot_fork_only_once(tmp_path, monkeypatch):
    """A server that says it cannot fork (JAX, PyTorch, a GPU) is not started again for
    every submission of the class: each builder is started afresh, at no extra cost."""
    from grader import fork_server
    from grader.sandbox import SandboxLimits
    from grader.session import TrainerPool

    made = []

    class CannotFork:
        def __init__(self, root, limits, bundle, import_timeout_s):
            self.limits, self.bundle, self.usable = limits, bundle, None
            made.append(self)

        @property
        def alive(self):
            return self.usable is not False

        def ready(self):
            self.usable = False
            return False

        def close(self):
            pass

    monkeypatch.setattr(fork_server, "possible", lambda limits: None)
    monkeypatch.setattr(fork_server, "ForkServer", CannotFork)
    pool = TrainerPool(tmp_path)
    limits = SandboxLimits(confinement=confine.Confinement("landlock", "test", 7))
    first = pool.fork_server(limits, tmp_path / "bundle", 60)
    assert first is made[0] and not first.ready()
    assert pool.fork_server(limits, tmp_path / "bundle", 60) is None
    assert len(made) == 1
    pool.close()



def test_a_pool_keeps_at_most_max_idle_trainers_the_latest_returned(tmp_path):
    """A long-lived pool (a Ray worker's) graded with many sets of limits keeps a bounded
    number of idle trainers: the oldest returned are closed."""
    from grader.session import TrainerPool

    class Idle:
        alive = True

        def __init__(self, n):
            self.limits, self.bundle, self.closed = f"limits-{n}", None, False

        def close(self):
            self.closed = True

    pool = TrainerPool(tmp_path, max_idle=2)
    trainers = [Idle(n) for n in range(4)]
    for trainer in trainers:
        pool.give_back(trainer)
    assert [t.closed for t in trainers] == [True, True, False, False]
    assert pool.take("limits-3", None, 60) is trainers[3]
    pool.close()
    assert trainers[2].closed
    with pytest.raises(ValueError, match="max_idle=-1"):
        TrainerPool(tmp_path, max_idle=-1)
