"""Grading a class on a Ray cluster: ``grader grade --executor ray``.

The unit of work is one submission, as for the local executor and the result cache.
The driver (the ``grader grade`` process) skips what is graded already, sends each
remaining submission as bytes (the file and the sibling modules it imports) to a Ray
task with its resource request, and writes each answer into ``OUT`` as it arrives, so a
driver that is killed loses nothing finished and a rerun grades only what is missing.

The dataset crosses the network once per node: the driver puts it in Ray's object store
once, and the first task on a node copies it to a node-local file named by its
fingerprint (atomic, under a lock) that later tasks there read; ``--data-dir`` names a
copy every node has already (checked by fingerprint).  The Ray worker is only the
grader's parent process: the student's code runs in the sandboxed child, started with
a scrubbed environment (no ``RAY_*`` variable) and no network, as everywhere else.

A task lost with its node is retried elsewhere (``max_retries``); a student's error is
a result, never an exception, so it is never retried.  Ray is imported only here.
"""
from __future__ import annotations

import dataclasses
import fcntl
import functools
import math
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__, atomic, confine, scratch
from .errors import DataError, GraderError, UsageError
from .rows import Entry, Row, failed_row, grade_one
from .session import TrainerPool

# The files of a student's output folder, written by the driver; results.json last, so
# that a folder with results.json is complete (the result cache's test).
OUTPUT_FILES = ("report.html", "gradescope.json", "junit.xml", "results.json")
# Beyond the submission's own time limit: start-up, import, report, transfer.
TIME_SLACK_S = 300.0


@dataclass(frozen=True)
class RayOptions:
    """Where and with what each submission runs.  ``address``: a running cluster's
    HOST:PORT (None starts a local one); ``data_dir``: a dataset path every node has."""

    address: str | None = None
    gpus_per_task: float = 0.0
    cpus_per_task: float = 1.0
    max_retries: int = 3
    data_dir: str | None = None
    allow_unsandboxed: bool = False  # grade on a node where no sandbox can run

    def __post_init__(self):
        if self.address is not None and (":" not in self.address or
                                         not self.address.rsplit(":", 1)[1].isdigit()):
            raise UsageError(f"--ray-address must be HOST:PORT, the head node's address. "
                             f"Received: {self.address!r}",
                             hint="The head prints it: `ray start --head --port 6379` -> "
                                  "HEAD_IP:6379.")
        if self.gpus_per_task < 0 or self.cpus_per_task <= 0:
            raise UsageError(f"--gpus-per-task must be >= 0 and --cpus-per-task > 0. "
                             f"Received: {self.gpus_per_task}, {self.cpus_per_task}")
        if self.max_retries < 0:
            raise UsageError(f"--max-retries must be >= 0. Received: {self.max_retries}")


def _ray():
    try:
        import ray
    except ImportError:
        raise UsageError("--executor ray needs Ray, which is not installed.",
                         hint="pip install 'keras-lab-grader[ray]' on the driver and on every node "
                              "(the same versions of grader and Ray everywhere).") from None
    return ray


def submission_files(path: Path) -> dict[str, bytes]:
    """The submission and the modules beside it that it imports, by relative path: what
    a node needs to grade it, and nothing else of the folder (other students' files)."""
    from .submission import load_submission

    sub = load_submission(path)
    return {**sub.siblings, path.name: sub.path.read_bytes()}


def node_cache() -> Path:
    """This node's folder for the dataset copy and the arrays handed to children."""
    root = os.environ.get("GRADER_NODE_CACHE") or \
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "grader" / "node"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def node_dataset(box: list, fingerprint: str, source: str, data_dir: str | None,
                 input_shape, num_classes: int, dataset_name: str):
    """The dataset on this node: ``data_dir`` when given (its fingerprint checked), else the
    node-local copy, fetched from the object store by the first task on the node."""
    from .data import load_dataset

    if data_dir:
        ds = load_dataset(data_dir, input_shape, num_classes, dataset_name)
        if ds.fingerprint != fingerprint:
            raise DataError(f"--data-dir {data_dir} on node {platform.node()} is another "
                            f"dataset (fingerprint {ds.fingerprint}, the driver's "
                            f"{fingerprint}).", hint="Give every node the same copy, or "
                                                     "leave out --data-dir.")
        return ds
    cache = node_cache()
    path = cache / f"dataset-{fingerprint}.npz"
    with open(cache / f"dataset-{fingerprint}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.is_file():
            ds = _ray().get(box[0])
            fd, tmp = tempfile.mkstemp(dir=cache, prefix=".dataset-", suffix=".npz")
            with os.fdopen(fd, "wb") as f:
                np.savez(f, x_train=ds.x_train, y_train=ds.y_train, x_test=ds.x_test,
                         y_test=ds.y_test)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
    ds = load_dataset(path, input_shape, num_classes, dataset_name)
    if ds.fingerprint != fingerprint:  # a corrupt copy: fetch it again next time
        path.unlink(missing_ok=True)
        raise DataError(f"The node-local copy {path} does not match the driver's dataset.")
    return dataclasses.replace(ds, source=source)


@functools.cache
def worker_pool():
    """This Ray worker process's pool.  Ray runs a job's tasks one after another in the
    same worker process, so its trainers and the builders' fork server are kept from one
    submission to the next, as a local batch keeps them; they end with the worker (each
    dies with its parent), and a later run sweeps their folder (``scratch.held``)."""
    return TrainerPool(scratch.held("grader-ray-pool-") / "pool")


def grade_remote(job: dict, box: list) -> dict:
    """A Ray task: one submission graded on this node.  Returns the row and the output
    files (bytes); never raises for the submission (a student's error is a result)."""
    from .options import GradeOptions

    ray = _ray()
    started = time.time()
    node = {"node_id": ray.get_runtime_context().get_node_id(), "hostname": platform.node()}
    if job["grader_version"] != __version__:
        raise GraderError(f"Node {platform.node()} runs grader {__version__}, the driver "
                          f"{job['grader_version']}: install the same version everywhere.")
    rubric = job["rubric"]
    dataset = node_dataset(box, job["fingerprint"], job["source"], job["data_dir"],
                           rubric.input_shape, rubric.num_classes, rubric.dataset)
    options = GradeOptions.from_dict(job["options"])
    confinement = confine.detect(options.sandbox)  # runs a bubblewrap probe: once
    if not job["allow_unsandboxed"] and confinement.kind == "none":
        raise GraderError(f"Node {platform.node()} cannot run a sandbox: "
                          f"{confinement.why}. Install bubblewrap "
                          f"there, or pass --allow-unsandboxed (only for code you trust).")
    gpus = ray.get_gpu_ids()
    if gpus:
        options = options.replace(gpu=",".join(str(g) for g in gpus))
    with scratch.folder("grader-ray-") as tmp:
        for rel, data in job["files"].items():
            dest = tmp / "submission" / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        entry = Entry(job["student"], tmp / "submission" / job["name"])
        reference = None
        if job.get("reference") is not None:
            reference = tmp / "reference.json"
            reference.write_bytes(job["reference"])
        out = tmp / "out"
        folder = out / job["folder"]
        if job.get("earlier") is not None:  # a partial run of the same job: resume it
            atomic.write_bytes(folder / "results.json", job["earlier"])
        row = grade_one(entry, out, options, rubric=rubric, dataset=dataset,
                        data_cache=node_cache() / "bundles", formats=job["formats"],
                        reference=reference, node=node, confinement=confinement,
                        trainers=worker_pool())
        files = {name: (folder / name).read_bytes() for name in OUTPUT_FILES
                 if (folder / name).is_file()}
    row = dataclasses.replace(row, path=job["path"])
    return {"row": dataclasses.asdict(row), "files": files, "node": node,
            "seconds": time.time() - started}


def run(todo, out: Path, options, *, rubric, dataset, formats, ray_options: RayOptions,
        progress, folder_of):
    """Grade ``todo`` (batch entries) on the cluster; yield (entry, row) as each arrives,
    after its files are written into ``out``."""
    from .reference import default_path

    ray = _ray()
    if not ray.is_initialized():
        try:
            if ray_options.address:
                ray.init(address=ray_options.address, include_dashboard=False,
                         log_to_driver=False, configure_logging=False)
            else:
                ray.init(include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise UsageError(f"Cannot connect to the Ray cluster at "
                             f"{ray_options.address or '(a new local one)'}: {exc}",
                             hint="Start the head with `ray start --head --port 6379` and "
                                  "give --ray-address HEAD_IP:6379.") from None
    remote = ray.remote(num_cpus=ray_options.cpus_per_task,
                        num_gpus=ray_options.gpus_per_task,
                        max_retries=ray_options.max_retries,
                        retry_exceptions=False)(grade_remote)
    box = [ray.put(dataset) if not ray_options.data_dir else None]
    ref_path = default_path(rubric)
    reference = ref_path.read_bytes() if ref_path.is_file() else None
    limit = ((options.submission_timeout_s or rubric.limits.submission_timeout_s)
             + TIME_SLACK_S) * (ray_options.max_retries + 1)
    pending = list(todo)
    running: dict = {}  # ObjectRef -> (entry, submitted at)

    def capacity() -> int:
        res = ray.cluster_resources()
        slots = res.get("CPU", 1) / ray_options.cpus_per_task
        if ray_options.gpus_per_task:
            slots = min(slots, res.get("GPU", 0) / ray_options.gpus_per_task)
        return max(1, math.floor(slots))

    while pending or running:
        while pending and len(running) < capacity():
            e = pending.pop(0)
            folder = folder_of(e.student)
            earlier = out / folder / "results.json"
            job = {"student": e.student, "name": e.path.name, "path": str(e.path),
                   "folder": folder, "files": submission_files(e.path),
                   "options": options.to_dict(), "rubric": rubric,
                   "fingerprint": dataset.fingerprint, "source": dataset.source,
                   "data_dir": ray_options.data_dir, "formats": list(formats),
                   "reference": reference, "grader_version": __version__,
                   "allow_unsandboxed": ray_options.allow_unsandboxed,
                   "earlier": earlier.read_bytes() if earlier.is_file() else None}
            progress.started(e)
            running[remote.remote(job, box)] = (e, time.monotonic())
        done, _ = ray.wait(list(running), num_returns=1, timeout=5.0)
        for ref in done:
            e, _ = running.pop(ref)
            try:
                answer = ray.get(ref)
            except Exception as exc:  # the node died past its retries, or a grader bug
                yield e, failed_row(e, "crashed", f"{type(exc).__name__} on the cluster: "
                                                   f"{str(exc).splitlines()[0][:300]}",
                                     rubric, options, 0.0)
                continue
            folder = out / folder_of(e.student)
            for name in OUTPUT_FILES:  # results.json last: the folder is then complete
                if name in answer["files"]:
                    atomic.write_bytes(folder / name, answer["files"][name])
            yield e, Row(**answer["row"])
        now = time.monotonic()
        for ref, (e, since) in list(running.items()):
            if now - since > limit:
                ray.cancel(ref, force=True)
                running.pop(ref)
                yield e, failed_row(e, "crashed", f"cancelled: still running after "
                                                   f"{limit:.0f} s on the cluster",
                                     rubric, options, now - since)


def shutdown_local() -> None:
    """Stop the local cluster this process started (never one it connected to)."""
    ray = _ray()
    if ray.is_initialized():
        ray.shutdown()

