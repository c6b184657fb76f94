# SPDX-License-Identifier: Apache-2.0
"""Datasets for the LightNorm training study, read from local files only (no downloads).

- Fashion-MNIST: the four gzipped (or plain) IDX files of the real Zalando dataset. Looked up in
  ``data_dir`` if given, else in ``$LIGHTNORM_FASHION_MNIST_DIR``, else in the Debian package
  ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``). 60 000 train / 10 000 test
  images, 1 x 28 x 28 uint8, labels 0..9.
- CIFAR-10 / CIFAR-100: the standard python-pickle batches in a user-given folder
  (``data_batch_1`` .. ``data_batch_5`` + ``test_batch``; ``train`` + ``test``), or its parent
  holding ``cifar-10-batches-py`` / ``cifar-100-python``. 3 x 32 x 32 uint8. The folder comes
  from ``data_dir`` or ``$LIGHTNORM_CIFAR10_DIR`` / ``$LIGHTNORM_CIFAR100_DIR``.

Everything missing raises :class:`FileNotFoundError` naming the path that was looked for.
The arrays stay uint8 here; :func:`to_tensors` scales them to float32 with the per-channel
mean/std of the training split.
"""

from __future__ import annotations

import gzip
import os
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "DATASETS",
    "FASHION_MNIST_DEFAULT_DIR",
    "Dataset",
    "batches",
    "load_cifar",
    "load_dataset",
    "load_fashion_mnist",
    "read_idx",
    "write_idx",
]

FASHION_MNIST_DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
DATASETS = ("fashion-mnist", "cifar10", "cifar100")
_ENV = {
    "fashion-mnist": "LIGHTNORM_FASHION_MNIST_DIR",
    "cifar10": "LIGHTNORM_CIFAR10_DIR",
    "cifar100": "LIGHTNORM_CIFAR100_DIR",
}

# IDX type codes (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT"): big-endian data.
_IDX_DTYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


@dataclass(frozen=True)
class Dataset:
    """A classification dataset held in memory.

    Attributes:
        name: one of :data:`DATASETS`.
        x_train, x_test: uint8 images, shape (N, C, H, W).
        y_train, y_test: int64 labels, shape (N,), in [0, num_classes).
        num_classes: number of classes.
    """

    name: str
    x_train: npt.NDArray[np.uint8]
    y_train: npt.NDArray[np.int64]
    x_test: npt.NDArray[np.uint8]
    y_test: npt.NDArray[np.int64]
    num_classes: int

    @property
    def in_channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.x_train.shape[2])

    def subset(self, limit_train: int | None = None, limit_test: int | None = None) -> Dataset:
        """The first ``limit_train`` / ``limit_test`` examples of a fixed (seed 0) permutation.

        The permutation does not depend on the training seed, so every run of a study trains on
        the same subset. ``None`` keeps the split whole.
        """
        x_tr, y_tr, x_te, y_te = self.x_train, self.y_train, self.x_test, self.y_test
        if limit_train is not None:
            idx = _fixed_subset(len(y_tr), limit_train, "limit_train")
            x_tr, y_tr = x_tr[idx], y_tr[idx]
        if limit_test is not None:
            idx = _fixed_subset(len(y_te), limit_test, "limit_test")
            x_te, y_te = x_te[idx], y_te[idx]
        return Dataset(self.name, x_tr, y_tr, x_te, y_te, self.num_classes)

    def channel_stats(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Per-channel mean and std of the training images, scaled to [0, 1]."""
        x = self.x_train.astype(np.float64) / 255.0
        return x.mean(axis=(0, 2, 3)), x.std(axis=(0, 2, 3))


def _fixed_subset(n: int, limit: int, name: str) -> npt.NDArray[np.int64]:
    if limit < 1:
        raise ValueError(f"{name} must be >= 1, got {limit}")
    perm = np.random.default_rng(0).permutation(n)
    return np.sort(perm[: min(limit, n)])


# ---------------------------------------------------------------------------------------------
# IDX
# ---------------------------------------------------------------------------------------------


def _read_maybe_gzip(path: Path) -> bytes:
    raw = path.read_bytes()
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def read_idx(path: str | os.PathLike[str]) -> npt.NDArray[Any]:
    """Read an IDX file (gzipped or not) into a numpy array of its native shape.

    Header: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions d, then d big-endian uint32 sizes;
    the data follows in C order, big-endian. Raises FileNotFoundError naming ``path`` if it is
    missing and ValueError on a malformed header or a size mismatch.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    raw = _read_maybe_gzip(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic {raw[:4]!r})")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX type code 0x{code:02x}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[code]
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if len(raw) - header != count * dtype.itemsize:
        raise ValueError(
            f"{path}: IDX payload has {len(raw) - header} bytes, shape {shape} needs "
            f"{count * dtype.itemsize}"
        )
    data = np.frombuffer(raw, dtype=dtype, count=count, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def write_idx(
    path: str | os.PathLike[str], array: npt.ArrayLike, compress: bool | None = None
) -> None:
    """Write ``array`` as an IDX file (gzipped when ``compress`` or the name ends in .gz)."""
    path = Path(path)
    arr = np.asarray(array)
    codes = [
        c
        for c, dt in _IDX_DTYPES.items()
        if dt.kind == arr.dtype.kind and dt.itemsize == arr.dtype.itemsize
    ]
    if not codes:
        raise ValueError(f"dtype {arr.dtype} has no IDX type code")
    code, dt = codes[0], _IDX_DTYPES[codes[0]]
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    payload = header + np.ascontiguousarray(arr, dtype=dt).tobytes()
    if compress is None:
        compress = path.suffix == ".gz"
    if compress:
        payload = gzip.compress(payload, mtime=0)
    path.write_bytes(payload)


def _find_idx(directory: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(
        f"Fashion-MNIST file not found: {directory / (stem + '.gz')} (nor {directory / stem}); "
        "install the Debian package dataset-fashion-mnist or pass --data-dir / "
        f"${_ENV['fashion-mnist']}"
    )


def load_fashion_mnist(data_dir: str | os.PathLike[str] | None = None) -> Dataset:
    """The real Fashion-MNIST: 60 000 train and 10 000 test images (N, 1, 28, 28), labels 0..9."""
    directory = _resolve_dir("fashion-mnist", data_dir, FASHION_MNIST_DEFAULT_DIR)
    arrays = {
        key: read_idx(_find_idx(directory, stem)) for key, stem in FASHION_MNIST_FILES.items()
    }
    for split in ("train", "test"):
        x, y = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(
                f"Fashion-MNIST {split}: images {x.shape} and labels {y.shape} do not match"
            )
    return Dataset(
        name="fashion-mnist",
        x_train=arrays["train_images"][:, None].astype(np.uint8),
        y_train=arrays["train_labels"].astype(np.int64),
        x_test=arrays["test_images"][:, None].astype(np.uint8),
        y_test=arrays["test_labels"].astype(np.int64),
        num_classes=10,
    )


# ---------------------------------------------------------------------------------------------
# CIFAR (python pickle batches)
# ---------------------------------------------------------------------------------------------

_CIFAR = {
    # name: (sub-folder of the official archive, train files, test files, label key, classes)
    "cifar10": (
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        b"labels",
        10,
    ),
    "cifar100": ("cifar-100-python", ("train",), ("test",), b"fine_labels", 100),
}

# What a CIFAR batch pickle may reference: a dict of bytes/str/list/ndarray. Anything else
# (arbitrary callables) is refused, so a hostile file in the data folder cannot run code.
_PICKLE_ALLOWED = {
    ("_codecs", "encode"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
}


class _CifarUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("numpy.core"):  # pickles written by numpy < 2
            module = "numpy._core" + module[len("numpy.core") :]
        if (module, name) not in _PICKLE_ALLOWED:
            raise pickle.UnpicklingError(f"CIFAR batch references {module}.{name}: refused")
        return super().find_class(module, name)


def _read_cifar_batch(
    path: Path, label_key: bytes
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    if not path.is_file():
        raise FileNotFoundError(f"CIFAR batch file not found: {path}")
    with open(path, "rb") as f:
        batch = _CifarUnpickler(f, encoding="bytes").load()
    if not isinstance(batch, dict) or b"data" not in batch or label_key not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise ValueError(f"{path}: expected a dict with b'data' and {label_key!r}, got {keys}")
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[label_key], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path}: b'data' must be uint8 (N, 3072), got {data.dtype} {data.shape}")
    if labels.shape != (data.shape[0],):
        raise ValueError(f"{path}: {data.shape[0]} images but labels of shape {labels.shape}")
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar(name: str, data_dir: str | os.PathLike[str] | None = None) -> Dataset:
    """CIFAR-10 (``name="cifar10"``) or CIFAR-100 (fine labels) from the python pickle batches."""
    if name not in _CIFAR:
        raise ValueError(f"unknown CIFAR dataset {name!r}; choose from {sorted(_CIFAR)}")
    sub, train_files, test_files, label_key, classes = _CIFAR[name]
    directory = _resolve_dir(name, data_dir, None)
    if not (directory / train_files[0]).is_file() and (directory / sub).is_dir():
        directory = directory / sub
    parts = {}
    for split, files in (("train", train_files), ("test", test_files)):
        xs, ys = zip(*(_read_cifar_batch(directory / f, label_key) for f in files), strict=True)
        parts[split] = (np.concatenate(xs), np.concatenate(ys))
    for split, (_, y) in parts.items():
        if y.size and (y.min() < 0 or y.max() >= classes):
            raise ValueError(f"{name} {split}: labels outside [0, {classes})")
    return Dataset(name, *parts["train"], *parts["test"], num_classes=classes)


# ---------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------


def _resolve_dir(name: str, data_dir: str | os.PathLike[str] | None, default: Path | None) -> Path:
    if data_dir is not None:
        chosen = Path(data_dir)
    elif os.environ.get(_ENV[name]):
        chosen = Path(os.environ[_ENV[name]])
    elif default is not None:
        chosen = default
    else:
        raise FileNotFoundError(
            f"{name}: no data folder given; pass --data-dir or set ${_ENV[name]} "
            "(a folder of the standard python-pickle batches; nothing is downloaded)"
        )
    if not chosen.is_dir():
        raise FileNotFoundError(f"{name} data folder not found: {chosen}")
    return chosen


def load_dataset(name: str, data_dir: str | os.PathLike[str] | None = None) -> Dataset:
    """Load one of :data:`DATASETS` from local files."""
    if name == "fashion-mnist":
        return load_fashion_mnist(data_dir)
    if name in _CIFAR:
        return load_cifar(name, data_dir)
    raise ValueError(f"unknown dataset {name!r}; choose from {list(DATASETS)}")


def batches(
    n: int, batch_size: int, rng: np.random.Generator | None = None, drop_last: bool = False
) -> Iterator[npt.NDArray[np.int64]]:
    """Index arrays of mini-batches over ``range(n)``, in a random order when ``rng`` is given."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = rng.permutation(n) if rng is not None else np.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield order[start : start + batch_size]
