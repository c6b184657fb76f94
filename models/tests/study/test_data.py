"""lightnorm.study.data: IDX and CIFAR-pickle readers on files written here, the real Fashion-MNIST,
and errors that name the missing path."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest

from lightnorm.study import data as D

SEED = 20251125
print(f"[test_data] SEED={SEED}")


# ---------------------------------------------------------------------------------------------
# IDX
# ---------------------------------------------------------------------------------------------


def test_read_idx_hand_written_header(tmp_path):
    # 2 images of 2x3, uint8 (type 0x08), written byte by byte from the IDX definition
    payload = bytes([0, 0, 0x08, 3]) + (2).to_bytes(4, "big") + (2).to_bytes(4, "big")
    payload += (3).to_bytes(4, "big") + bytes(range(12))
    raw = tmp_path / "imgs-idx3-ubyte"
    raw.write_bytes(payload)
    gz = tmp_path / "imgs-idx3-ubyte.gz"
    gz.write_bytes(gzip.compress(payload))
    expected = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    for path in (raw, gz):
        got = D.read_idx(path)
        assert got.dtype == np.uint8 and got.shape == (2, 2, 3)
        np.testing.assert_array_equal(got, expected)


def test_read_idx_big_endian_int32_labels(tmp_path):
    payload = bytes([0, 0, 0x0C, 1]) + (3).to_bytes(4, "big")
    payload += b"".join(v.to_bytes(4, "big", signed=True) for v in (1, -2, 70000))
    path = tmp_path / "labels-idx1"
    path.write_bytes(payload)
    np.testing.assert_array_equal(D.read_idx(path), [1, -2, 70000])


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("name", ["x-idx", "x-idx.gz"])
def test_write_then_read_idx_roundtrip(tmp_path, dtype, name):
    rng = np.random.default_rng(SEED)
    arr = (rng.standard_normal((3, 4, 5)) * 50).astype(dtype)
    D.write_idx(tmp_path / name, arr)
    got = D.read_idx(tmp_path / name)
    assert got.dtype == np.dtype(dtype) and got.shape == arr.shape
    np.testing.assert_array_equal(got, arr)


def test_read_idx_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01\x00")
    with pytest.raises(ValueError, match="not an IDX file"):
        D.read_idx(bad)
    short = tmp_path / "short"
    short.write_bytes(bytes([0, 0, 0x08, 1]) + (5).to_bytes(4, "big") + b"\x00\x01")
    with pytest.raises(ValueError, match="payload"):
        D.read_idx(short)
    code = tmp_path / "code"
    code.write_bytes(bytes([0, 0, 0x07, 1]) + (1).to_bytes(4, "big") + b"\x00")
    with pytest.raises(ValueError, match="type code"):
        D.read_idx(code)


def test_missing_idx_file_names_the_path(tmp_path):
    missing = tmp_path / "nope-idx1-ubyte.gz"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        D.read_idx(missing)


def _write_fake_fashion(folder: Path, n_train: int = 6, n_test: int = 4) -> None:
    rng = np.random.default_rng(SEED)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        D.write_idx(
            folder / f"{split}-images-idx3-ubyte.gz",
            rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
        )
        D.write_idx(
            folder / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, n, dtype=np.uint8)
        )


def test_fashion_mnist_from_a_given_folder_and_env(tmp_path, monkeypatch):
    _write_fake_fashion(tmp_path / "fm")
    ds = D.load_fashion_mnist(tmp_path / "fm")
    assert ds.x_train.shape == (6, 1, 28, 28) and ds.x_test.shape == (4, 1, 28, 28)
    assert ds.y_train.dtype == np.int64 and ds.num_classes == 10 and ds.in_channels == 1
    monkeypatch.setenv("LIGHTNORM_FASHION_MNIST_DIR", str(tmp_path / "fm"))
    ds2 = D.load_dataset("fashion-mnist")
    np.testing.assert_array_equal(ds2.x_train, ds.x_train)


def test_fashion_mnist_missing_folder_or_file_names_the_path(tmp_path):
    missing = tmp_path / "no-such-dir"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        D.load_fashion_mnist(missing)
    _write_fake_fashion(tmp_path / "fm")
    (tmp_path / "fm" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"t10k-labels-idx1-ubyte\.gz"):
        D.load_fashion_mnist(tmp_path / "fm")


@pytest.mark.skipif(
    not (D.FASHION_MNIST_DEFAULT_DIR / "train-images-idx3-ubyte.gz").is_file(),
    reason="Debian package dataset-fashion-mnist not installed (make tools installs it)",
)
def test_real_fashion_mnist_shapes_and_labels():
    ds = D.load_fashion_mnist(D.FASHION_MNIST_DEFAULT_DIR)
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (10000, 1, 28, 28)
    assert ds.y_train.shape == (60000,) and ds.y_test.shape == (10000,)
    for y in (ds.y_train, ds.y_test):
        assert y.min() == 0 and y.max() == 9
    # balanced classes: 6000 / 1000 images each
    assert set(np.bincount(ds.y_train).tolist()) == {6000}
    assert set(np.bincount(ds.y_test).tolist()) == {1000}
    assert 0.25 < ds.channel_stats()[0][0] < 0.32  # mean pixel of Fashion-MNIST ~ 0.286


# ---------------------------------------------------------------------------------------------
# CIFAR python pickle batches
# ---------------------------------------------------------------------------------------------


def _cifar_batch(path: Path, n: int, label_key: bytes, classes: int, rng) -> tuple:
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = rng.integers(0, classes, n).tolist()  # a python list, as in the official files
    batch = {
        b"batch_label": b"fake batch",
        label_key: labels,
        b"data": data,
        b"filenames": [b"x.png"] * n,
    }
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)
    return data, labels


def test_cifar10_reader_on_generated_batches(tmp_path):
    rng = np.random.default_rng(SEED)
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    parts = [_cifar_batch(root / f"data_batch_{i}", 3, b"labels", 10, rng) for i in range(1, 6)]
    test = _cifar_batch(root / "test_batch", 2, b"labels", 10, rng)
    for folder in (root, tmp_path):  # the batch folder itself or its parent
        ds = D.load_cifar("cifar10", folder)
        assert ds.x_train.shape == (15, 3, 32, 32) and ds.x_test.shape == (2, 3, 32, 32)
        assert ds.num_classes == 10 and ds.in_channels == 3 and ds.image_size == 32
        # row layout: 1024 red, then green, then blue values, each 32x32 row-major
        np.testing.assert_array_equal(ds.x_train[0, 1].ravel(), parts[0][0][0, 1024:2048])
        np.testing.assert_array_equal(ds.x_train[3], parts[1][0][0].reshape(3, 32, 32))
        np.testing.assert_array_equal(ds.y_train, sum((p[1] for p in parts), []))
        np.testing.assert_array_equal(ds.y_test, test[1])


def test_cifar100_reader_uses_fine_labels(tmp_path, monkeypatch):
    rng = np.random.default_rng(SEED)
    folder = tmp_path / "c100"
    folder.mkdir()
    train = _cifar_batch(folder / "train", 5, b"fine_labels", 100, rng)
    _cifar_batch(folder / "test", 3, b"fine_labels", 100, rng)
    monkeypatch.setenv("LIGHTNORM_CIFAR100_DIR", str(folder))
    ds = D.load_dataset("cifar100")
    assert ds.num_classes == 100 and ds.x_train.shape == (5, 3, 32, 32)
    np.testing.assert_array_equal(ds.y_train, train[1])


def test_cifar_missing_batch_names_the_path(tmp_path):
    rng = np.random.default_rng(SEED)
    for i in range(1, 5):  # data_batch_5 missing
        _cifar_batch(tmp_path / f"data_batch_{i}", 2, b"labels", 10, rng)
    _cifar_batch(tmp_path / "test_batch", 2, b"labels", 10, rng)
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "data_batch_5")):
        D.load_cifar("cifar10", tmp_path)
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nothing")):
        D.load_cifar("cifar10", tmp_path / "nothing")


def test_cifar_without_folder_says_how_to_give_one(monkeypatch):
    monkeypatch.delenv("LIGHTNORM_CIFAR10_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="LIGHTNORM_CIFAR10_DIR"):
        D.load_dataset("cifar10")


def test_cifar_pickle_with_foreign_callable_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"data": Evil(), b"labels": []}, f, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="refused"):
        D._read_cifar_batch(tmp_path / "test_batch", b"labels")


def test_cifar_bad_shape_is_reported(tmp_path):
    with open(tmp_path / "b", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, f, protocol=2)
    with pytest.raises(ValueError, match="3072"):
        D._read_cifar_batch(tmp_path / "b", b"labels")


# ---------------------------------------------------------------------------------------------
# subsets and batches
# ---------------------------------------------------------------------------------------------


def test_subset_is_fixed_and_independent_of_training_seed(tmp_path):
    _write_fake_fashion(tmp_path, n_train=50, n_test=20)
    ds = D.load_fashion_mnist(tmp_path)
    a, b = ds.subset(10, 5), ds.subset(10, 5)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert len(a.y_train) == 10 and len(a.y_test) == 5
    assert len(ds.subset(1000).y_train) == 50  # a limit above N keeps everything
    with pytest.raises(ValueError, match="limit_train"):
        ds.subset(0)


def test_batches_cover_everything_once():
    idx = np.concatenate(list(D.batches(10, 3, np.random.default_rng(SEED))))
    assert sorted(idx.tolist()) == list(range(10))
    assert [len(b) for b in D.batches(10, 3, drop_last=True)] == [3, 3, 3]
