"""Loading `.pdparams`/`.pdopt`/`.states` without executing code from the file.

`pickle` (which `paddle.load` uses) calls whatever callable a file names, so a crafted checkpoint runs commands on
load. Paddle's own files reference only numpy's array reconstructors; PaddleOCR's released weights the same (under
numpy 1.x's `numpy.core` or 2.x's `numpy._core` module names). The unpickler below resolves those and nothing else:
any other global is refused before it is called, naming the file and the global.
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

# (module, name) pairs a legitimate file references: numpy arrays, dtypes and scalars; OrderedDict (older Paddle
# state dicts); `_codecs.encode`, which protocol-2 pickles use to store bytes (it only encodes a string).
ALLOWED_GLOBALS = frozenset(
    {
        *((core, name) for core in ("numpy.core.multiarray", "numpy._core.multiarray") for name in ("_reconstruct", "scalar")),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("collections", "OrderedDict"),
        ("_codecs", "encode"),
    }
)


class UnsafePickleError(pickle.UnpicklingError):
    """The file references a callable outside ALLOWED_GLOBALS: refused before anything ran."""


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, source: str) -> None:
        super().__init__(file, encoding="latin1")  # as paddle.load: Python 2 era files hold latin1 str
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise UnsafePickleError(
            f"{self.source}: refers to {module}.{name}, which a weights/optimizer/states file never needs; refused "
            "without running it (only arrays, numbers, strings and plain containers are loaded)"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self.source}: holds a persistent reference {pid!r}; refused")


def safe_loads(data: bytes, source: str) -> Any:
    """Unpickle `data` admitting only arrays, numbers, strings and plain containers; `source` names it in errors."""
    return _RestrictedUnpickler(io.BytesIO(data), source).load()


def safe_load_file(path: str | Path) -> Any:
    """`safe_loads` of a file's content."""
    return safe_loads(Path(path).read_bytes(), str(path))


def safe_paddle_load(path: str | Path) -> Any:
    """`paddle.load` of a pickled file, after the same bytes passed the restricted unpickler: Paddle's own
    post-processing (ndarray -> Tensor with its saved name, big-parameter slices) applies, and no code from the file
    ever runs. Reading the bytes once means the checked content is the loaded content."""
    import paddle

    data = Path(path).read_bytes()
    safe_loads(data, str(path))
    return paddle.load(io.BytesIO(data))
