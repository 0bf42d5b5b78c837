"""CIFAR-10 from wherever a user has it, loaded once, checked, fingerprinted.

Sources, in the order they are tried: ``--data PATH`` (an extracted
``cifar-10-batches-py`` folder, the official ``cifar-10-python.tar.gz``, or an
``.npz`` with ``x_train, y_train, x_test, y_test``), the ``GRADER_CIFAR10``
environment variable (same forms), keras' own cache
(``~/.keras/datasets/cifar-10-batches-py``), and last a download through
``keras.datasets.cifar10.load_data()``.

The pickled batches are read with a restricted unpickler that only rebuilds
numpy arrays: a data file is input from the outside world too.
"""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataError

ENV_VAR = "GRADER_CIFAR10"
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCH = "test_batch"
_HOW_TO_SUPPLY = (
    f"Pass --data with a cifar-10-batches-py folder, a cifar-10-python.tar.gz archive or an .npz "
    f"(x_train, y_train, x_test, y_test); or set {ENV_VAR} to one of those; or go online once so "
    f"keras.datasets.cifar10.load_data() can download and cache it.")


@dataclass(frozen=True)
class Dataset:
    """The whole labelled dataset, uint8 images and int64 labels, in the grader's process."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    fingerprint: str

    def describe(self) -> dict:
        return {"source": self.source, "fingerprint": self.fingerprint,
                "n_train": int(len(self.x_train)), "n_test": int(len(self.x_test))}


@dataclass(frozen=True)
class Split:
    """The images a training run sees: train and validation with labels, test without."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    test_index: np.ndarray  # rows of Dataset.x_test, so the parent can look up labels


class _ArrayUnpickler(pickle.Unpickler):
    """Rebuilds dicts, lists, bytes and numpy arrays; refuses any other global."""

    _ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"),
                ("numpy.core.multiarray", "_reconstruct"),
                ("numpy._core.multiarray", "_reconstruct"),
                ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
                ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")


def _read_batch(raw: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        d = _ArrayUnpickler(io.BytesIO(raw), encoding="bytes").load()
        data = np.asarray(d[b"data"], dtype=np.uint8)
        labels = np.asarray(d[b"labels"], dtype=np.int64)
    except Exception as exc:  # any malformed pickle is the same user problem
        raise DataError(f"{where} is not a CIFAR-10 batch: {exc}", hint=_HOW_TO_SUPPLY) from None
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise DataError(f"{where}: expected data of shape (N, 3072) and N labels. "
                        f"Received: data.shape={data.shape}, {len(labels)} labels")
    # The official layout stores each image as three 32x32 planes (R, G, B).
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _from_batches(read, where: str) -> tuple[np.ndarray, ...]:
    parts = [_read_batch(read(name), f"{where}/{name}") for name in TRAIN_BATCHES]
    x_test, y_test = _read_batch(read(TEST_BATCH), f"{where}/{TEST_BATCH}")
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            x_test, y_test)


def _from_folder(path: Path):
    folder = path / "cifar-10-batches-py" if (path / "cifar-10-batches-py").is_dir() else path
    missing = [n for n in TRAIN_BATCHES + [TEST_BATCH] if not (folder / n).is_file()]
    if missing:
        raise DataError(f"{folder} is not a cifar-10-batches-py folder: missing {', '.join(missing)}.",
                        hint=_HOW_TO_SUPPLY)
    return _from_batches(lambda n: (folder / n).read_bytes(), str(folder))


def _from_archive(path: Path):
    try:
        with tarfile.open(path, "r:*") as tar:
            members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
            missing = [n for n in TRAIN_BATCHES + [TEST_BATCH] if n not in members]
            if missing:
                raise DataError(f"{path} holds no CIFAR-10 batches: missing {', '.join(missing)}.",
                                hint=_HOW_TO_SUPPLY)
            return _from_batches(lambda n: tar.extractfile(members[n]).read(), str(path))
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(f"Cannot read archive {path}: {exc}", hint=_HOW_TO_SUPPLY) from None


def _from_npz(path: Path):
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in z.files]
            if missing:
                raise DataError(f"{path} lacks arrays {', '.join(missing)}. "
                                f"Received arrays: {', '.join(z.files) or 'none'}",
                                hint="Save it with np.savez(path, x_train=..., y_train=..., "
                                     "x_test=..., y_test=...).")
            return tuple(z[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    except (OSError, ValueError) as exc:
        raise DataError(f"Cannot read {path} as an .npz: {exc}", hint=_HOW_TO_SUPPLY) from None


def _from_path(path: Path):
    if not path.exists():
        raise DataError(f"Data path does not exist: {path}", hint=_HOW_TO_SUPPLY)
    if path.is_dir():
        return _from_folder(path)
    if path.suffix == ".npz":
        return _from_npz(path)
    if path.name.endswith((".tar.gz", ".tgz", ".tar")):
        return _from_archive(path)
    raise DataError(f"Unrecognised data file: {path}. Expected a folder, a .tar.gz or an .npz.",
                    hint=_HOW_TO_SUPPLY)


def keras_cache_dir() -> Path:
    base = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    return base / "datasets" / "cifar-10-batches-py"


def _download():
    try:
        import keras
        (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
    except Exception as exc:  # offline, proxy, disk full: all mean "supply it yourself"
        raise DataError(f"No CIFAR-10 data given and the download failed: "
                        f"{type(exc).__name__}: {exc}", hint=_HOW_TO_SUPPLY) from None
    return x_train, y_train, x_test, y_test


def _check(arrays, source: str, input_shape, num_classes: int):
    x_train, y_train, x_test, y_test = arrays
    out = []
    for name, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        x = np.asarray(x)
        y = np.asarray(y).reshape(-1)
        if x.shape[1:] != tuple(input_shape):
            raise DataError(f"{source}: expected {name} images of shape (N, "
                            f"{', '.join(map(str, input_shape))}). Received: {x.shape}")
        if len(y) != len(x):
            raise DataError(f"{source}: {len(x)} {name} images but {len(y)} labels.")
        if x.dtype != np.uint8:
            if np.issubdtype(x.dtype, np.floating) and x.size and x.max() <= 1.0:
                x = x * 255.0
            x = np.clip(np.rint(x), 0, 255).astype(np.uint8)
        if not np.issubdtype(y.dtype, np.integer) or (y.size and (y.min() < 0 or
                                                                  y.max() >= num_classes)):
            raise DataError(f"{source}: {name} labels must be integers in [0, {num_classes}). "
                            f"Received: dtype={y.dtype}, range=[{y.min()}, {y.max()}]")
        out += [np.ascontiguousarray(x), y.astype(np.int64)]
    return out


def fingerprint(*arrays: np.ndarray) -> str:
    """A short content hash: two runs compare only when their data are the same pixels."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).data)  # the buffer itself: no 180 MB copy
    return h.hexdigest()[:16]


def load_dataset(source: str | Path | None = None, input_shape=(32, 32, 3),
                 num_classes: int = 10, dataset: str = "cifar10") -> Dataset:
    """Load the labelled dataset once, from the first source that has it."""
    if dataset != "cifar10":
        raise DataError(f"The data loader knows only 'cifar10'. Received: dataset={dataset!r}",
                        hint="Set dataset = \"cifar10\" in the rubric.")
    if source is None and os.environ.get(ENV_VAR):
        source = os.environ[ENV_VAR]
    if source is not None:
        path = Path(source).expanduser()
        arrays, desc = _from_path(path), str(path)
    elif keras_cache_dir().is_dir():
        arrays, desc = _from_folder(keras_cache_dir()), str(keras_cache_dir())
    else:
        arrays, desc = _download(), "keras.datasets.cifar10"
    x_train, y_train, x_test, y_test = _check(arrays, desc, input_shape, num_classes)
    return Dataset(x_train, y_train, x_test, y_test, source=desc,
                   fingerprint=fingerprint(x_train, y_train, x_test, y_test))


def make_split(ds: Dataset, validation_fraction: float, split_seed: int,
               train_samples: int | None = None, val_samples: int | None = None,
               test_samples: int | None = None) -> Split:
    """The fixed, shuffled validation split; optional subsets for ``--quick``."""
    order = np.random.default_rng(split_seed).permutation(len(ds.x_train))
    n_val = max(1, int(round(len(order) * validation_fraction)))
    val, train = order[:n_val], order[n_val:]
    if train_samples is not None:
        train = train[:train_samples]
    if val_samples is not None:
        val = val[:val_samples]
    test = np.arange(len(ds.x_test))
    if test_samples is not None and test_samples < len(test):
        test = np.sort(np.random.default_rng(split_seed + 1).permutation(len(test))[:test_samples])
    return Split(ds.x_train[train], ds.y_train[train], ds.x_train[val], ds.y_train[val],
                 ds.x_test[test], test)
