"""CPU kernels for layers that Paddle runs slowly on the CPU, compiled on first use as a Paddle custom operator.

Paddle 3.3.1 runs a depthwise conv on the CPU as an im2col + GEMM per channel (one-row GEMMs): in a MobileNetV3
student step at 640 crop, batch 8, its forward and gradients were ~29% of the time. `depthwise_conv.cc` computes
them with direct loops over each channel's plane, 3-12x faster per layer (`scripts/bench_kernels.py`), to float32
rounding of the same sums.

The operator is built with Paddle's `cpp_extension` (g++ and Python headers are needed; ~25 s once per machine and
Paddle version) into a cache folder keyed by the source, Paddle, Python and the CPU's instruction flags (it is
compiled for this CPU: -march=native), under a file lock so that concurrent processes (sweep jobs, ranks) build it
once. Where it cannot be built the layers fall back to Paddle's own kernel with one warning. `use_cpu_kernels(False)`
(the Trainer's `cpu_kernels=false`) turns it off for the process.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import paddle
from paddle import nn

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("depthwise_conv.cc")
_NAME = "ocrdet_cpu_kernels"
_CXXFLAGS = ["-O3", "-march=native", "-fopenmp"]
# Kernel sizes and strides the operator has loops for (templates in depthwise_conv.cc).
KERNEL_SIZES = (3, 5, 7, 9)
STRIDES = (1, 2)

_enabled = True


def use_cpu_kernels(enabled: bool) -> None:
    """Use ocrdet's CPU kernels (True, the default) or Paddle's own for the rest of the process."""
    global _enabled
    _enabled = bool(enabled)


def cpu_kernels_enabled() -> bool:
    return _enabled


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return ""


def _link_flags() -> list[str]:
    """Link the OpenMP runtime that Paddle itself loads (libiomp5, shared with MKL): a second runtime (GCC's
    libgomp) would keep its own spinning threads and oversubscribe the cores (measured 2-4x slower kernels)."""
    libs = Path(paddle.__file__).parent / "libs"
    if (libs / "libiomp5.so").exists():
        return [f"-L{libs}", "-l:libiomp5.so", f"-Wl,-rpath,{libs}"]
    return ["-fopenmp"]


@functools.cache
def _build_key() -> str:
    key = hashlib.sha256()
    for part in (SOURCE.read_bytes(), paddle.__version__.encode(), sys.version.encode(), _cpu_flags().encode(),
                 " ".join(_CXXFLAGS + _link_flags()).encode()):
        key.update(part)
    return key.hexdigest()[:16]


def build_directory() -> Path:
    """Where the operator is (or will be) built: `$OCRDET_KERNEL_CACHE`, else `$XDG_CACHE_HOME/ocrdet/kernels`
    (`~/.cache/ocrdet/kernels`), in a subfolder keyed by everything the binary depends on."""
    root = os.environ.get("OCRDET_KERNEL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ocrdet", "kernels"
    )
    return Path(root) / _build_key()


def load_cpu_kernels() -> Any | None:
    """The compiled operator module (building it if needed), or None where it cannot be built (warned once)."""
    return _load(str(build_directory()))


@functools.cache  # per folder: a process registers the operator once
def _load(folder_name: str) -> Any | None:
    folder = Path(folder_name)
    try:
        import fcntl  # POSIX only, as Paddle's cpp_extension

        from paddle.utils.cpp_extension import load

        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent processes wait for one build
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    built = folder / _NAME
                    if (built / f"{_NAME}.so").exists():
                        # The folder's key covers every input of the build: import it without `load`'s up-to-date
                        # check, which runs a setup.py in a subprocess (~2.3 s per process).
                        from paddle.utils.cpp_extension.extension_utils import _import_module_from_library

                        return _import_module_from_library(_NAME, str(built))
                    return load(
                        name=_NAME, sources=[str(SOURCE)], extra_cxx_cflags=_CXXFLAGS, extra_ldflags=_link_flags(),
                        build_directory=str(folder), verbose=False,
                    )
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    except Exception as err:  # no compiler, no Python headers, a read-only cache: Paddle's kernels still work
        log.warning("ocrdet CPU kernels unavailable, using Paddle's (slower) depthwise conv: %s", err)
        warnings.warn(f"ocrdet CPU kernels unavailable, using Paddle's depthwise conv: {err}", RuntimeWarning)
        return None


def depthwise_conv2d(x: paddle.Tensor, weight: paddle.Tensor, stride: int) -> paddle.Tensor:
    """Depthwise conv of NCHW float32 `x` with `weight` [C, 1, K, K], padding K // 2, by ocrdet's CPU operator
    (forward and gradients). Callers check `fast_depthwise_applies` first."""
    return load_cpu_kernels().ocrdet_depthwise_conv(x, weight, int(stride))


def fast_depthwise_applies(layer: nn.Conv2D, x: paddle.Tensor) -> bool:
    """Whether ocrdet's operator can run `layer` on `x`: enabled and built, a CPU float32 input, a depthwise conv
    with a square K x K kernel (K in KERNEL_SIZES), padding K // 2, stride 1 or 2, no dilation, NCHW, no bias; and
    not an inference export (a static graph in eval mode), which must hold only Paddle's own ops."""
    if not _enabled or not (paddle.in_dynamic_mode() or layer.training):
        return False
    k = layer._kernel_size
    on_cpu = x.place.is_cpu_place() if paddle.in_dynamic_mode() else paddle.get_device() == "cpu"
    if not (on_cpu and x.dtype == paddle.float32 and layer._data_format == "NCHW"
            and layer.bias is None and layer._groups == layer._in_channels == layer._out_channels
            and k[0] == k[1] and k[0] in KERNEL_SIZES and list(layer._dilation) == [1, 1]
            and layer._stride[0] == layer._stride[1] and layer._stride[0] in STRIDES
            and list(layer._updated_padding) == [k[0] // 2, k[0] // 2] and layer._padding_algorithm == "EXPLICIT"):
        return False
    return load_cpu_kernels() is not None


class DepthwiseConv2D(nn.Conv2D):
    """`nn.Conv2D` with groups = channels (same parameters and state-dict names) that runs on ocrdet's CPU
    operator where `fast_depthwise_applies`, and as `nn.Conv2D` elsewhere (GPU, exports, other shapes)."""

    def __init__(self, channels: int, kernel_size: int, stride: int = 1, bias_attr: Any = False) -> None:
        super().__init__(channels, channels, kernel_size, stride=stride, padding=(kernel_size - 1) // 2,
                         groups=channels, bias_attr=bias_attr)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        if fast_depthwise_applies(self, x):
            return depthwise_conv2d(x, self.weight, self._stride[0])
        return super().forward(x)
