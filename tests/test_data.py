import pickle
import tarfile

import numpy as np
import pytest

from grader.data import load_dataset, make_split
from grader.errors import DataError

from conftest import make_synthetic


def _write_official(folder, x_train, y_train, x_test, y_test):
    """The layout of the CIFAR-10 python release: pickled dicts, CHW planes."""
    folder.mkdir(parents=True)
    chunks = np.array_split(np.arange(len(x_train)), 5)
    batches = [(f"data_batch_{i + 1}", x_train[c], y_train[c]) for i, c in enumerate(chunks)]
    for name, x, y in batches + [("test_batch", x_test, y_test)]:
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": x.transpose(0, 3, 1, 2).reshape(len(x), 3072),
                         b"labels": [int(v) for v in y]}, f)


@pytest.fixture(scope="module")
def arrays():
    return make_synthetic(n_train=200, n_test=50)


def test_folder_archive_and_npz_load_the_same_pixels(tmp_path, arrays):
    folder = tmp_path / "cifar-10-batches-py"
    _write_official(folder, *arrays)
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    npz = tmp_path / "c.npz"
    np.savez(npz, x_train=arrays[0], y_train=arrays[1].reshape(-1, 1), x_test=arrays[2],
             y_test=arrays[3])
    loaded = [load_dataset(p) for p in (tmp_path, folder, archive, npz)]
    for ds in loaded:
        np.testing.assert_array_equal(ds.x_train, arrays[0])
        np.testing.assert_array_equal(ds.y_test, arrays[3])
        assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.int64
    assert len({ds.fingerprint for ds in loaded}) == 1


def test_fingerprint_changes_with_one_pixel(tmp_path, arrays):
    x_train = arrays[0].copy()
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    np.savez(a, x_train=x_train, y_train=arrays[1], x_test=arrays[2], y_test=arrays[3])
    x_train[0, 0, 0, 0] ^= 1
    np.savez(b, x_train=x_train, y_train=arrays[1], x_test=arrays[2], y_test=arrays[3])
    assert load_dataset(a).fingerprint != load_dataset(b).fingerprint


def test_env_var_is_used(tmp_path, arrays, monkeypatch):
    npz = tmp_path / "c.npz"
    np.savez(npz, x_train=arrays[0], y_train=arrays[1], x_test=arrays[2], y_test=arrays[3])
    monkeypatch.setenv("GRADER_CIFAR10", str(npz))
    assert load_dataset().source == str(npz)


def test_missing_path_names_the_three_ways(tmp_path):
    with pytest.raises(DataError, match="does not exist") as info:
        load_dataset(tmp_path / "nowhere")
    assert "--data" in info.value.hint and "GRADER_CIFAR10" in info.value.hint
    assert "load_data" in info.value.hint


def test_offline_without_data_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("GRADER_CIFAR10", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty-keras-home"))
    monkeypatch.setattr("grader.data._download", lambda: (_ for _ in ()).throw(
        DataError("No CIFAR-10 data given and the download failed: URLError: offline")))
    with pytest.raises(DataError, match="download failed"):
        load_dataset()


def test_npz_with_wrong_keys_or_shapes(tmp_path, arrays):
    bad = tmp_path / "bad.npz"
    np.savez(bad, images=arrays[0])
    with pytest.raises(DataError, match="lacks arrays x_train, y_train, x_test, y_test"):
        load_dataset(bad)
    grey = tmp_path / "grey.npz"
    np.savez(grey, x_train=arrays[0][..., 0], y_train=arrays[1], x_test=arrays[2],
             y_test=arrays[3])
    with pytest.raises(DataError, match=r"expected train images of shape \(N, 32, 32, 3\)"):
        load_dataset(grey)


def test_pickle_that_is_not_data_is_refused(tmp_path, arrays):
    folder = tmp_path / "cifar-10-batches-py"
    _write_official(folder, *arrays)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": Evil(), b"labels": []}, f)
    with pytest.raises(DataError, match="refusing to load builtins.print"):
        load_dataset(folder)


def test_split_is_fixed_shuffled_and_disjoint(tmp_path, arrays):
    npz = tmp_path / "c.npz"
    np.savez(npz, x_train=arrays[0], y_train=arrays[1], x_test=arrays[2], y_test=arrays[3])
    ds = load_dataset(npz)
    s1 = make_split(ds, 0.1, split_seed=7)
    s2 = make_split(ds, 0.1, split_seed=7)
    assert len(s1.x_val) == 20 and len(s1.x_train) == 180
    np.testing.assert_array_equal(s1.y_val, s2.y_val)
    assert len(np.unique(s1.y_val)) > 3  # shuffled, not one class
    rows = {r.tobytes() for r in s1.x_train}
    assert not any(r.tobytes() in rows for r in s1.x_val)
    quick = make_split(ds, 0.1, 7, train_samples=50, val_samples=10, test_samples=20)
    assert (len(quick.x_train), len(quick.x_val), len(quick.x_test)) == (50, 10, 20)
    np.testing.assert_array_equal(ds.x_test[quick.test_index], quick.x_test)
