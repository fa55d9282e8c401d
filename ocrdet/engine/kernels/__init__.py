"""CPU kernels for layers that Paddle runs slowly on the CPU, compiled on first use as Paddle custom operators.

- Paddle 3.3.1 runs a depthwise conv on the CPU as an im2col + GEMM per channel (one-row GEMMs): in a MobileNetV3
  student step at 640 crop, batch 8, its forward and gradients were ~29% of the time. `depthwise_conv.cc` computes
  them with direct loops over each channel's plane, 3-12x faster per layer (`scripts/bench_kernels.py`), to float32
  rounding of the same sums.
- The FPN necks' nearest-neighbour upsampling ran as a depthwise transposed conv (im2col-like col2im per channel);
  `upsample_nearest.cc` is a copy forward and a block sum backward.
- A regular stride-1 K x K conv (the DB head's and the necks' 3x3 and 9x9 convs, ResNet's 3x3s) ran as im2col + GEMM
  per sample, the im2col on one thread; `conv2d_same.cc` runs it as K*K shifted GEMMs of the padded batch (MKL, the
  library Paddle links), cache-blocked: 2.3-4.4x on the student's 96->24 3x3 convs.

The operators are built with Paddle's `cpp_extension` (g++ and Python headers are needed; ~25 s once per machine and
Paddle version) into a cache folder keyed by the source, Paddle, Python and the CPU's instruction flags (it is
compiled for this CPU: -march=native), under a file lock so that concurrent processes (sweep jobs, ranks) build it
once. Where it cannot be built the layers fall back to Paddle's own kernel with one warning. `use_cpu_kernels(False)`
(the Trainer's `cpu_kernels=false`) turns it off for the process.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Iterator

import paddle
from paddle import nn

log = logging.getLogger(__name__)

_LIBS = Path(paddle.__file__).parent / "libs"
# The same-padding conv calls MKL's GEMM, which Paddle's x86 wheels ship (libmklml_intel); without it, the other
# operators are built alone.
_MKL = "libmklml_intel.so"
SOURCES = tuple(source for source in sorted(Path(__file__).parent.glob("*.cc"))
                if source.name != "conv2d_same.cc" or (_LIBS / _MKL).exists())
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
    mkl = [f"-l:{_MKL}"] if (_LIBS / _MKL).exists() else []
    if (_LIBS / "libiomp5.so").exists():
        return [f"-L{_LIBS}", "-l:libiomp5.so", *mkl, f"-Wl,-rpath,{_LIBS}"]
    return ["-fopenmp", f"-L{_LIBS}", *mkl, f"-Wl,-rpath,{_LIBS}"] if mkl else ["-fopenmp"]


@functools.cache
def _build_key() -> str:
    key = hashlib.sha256()
    sources = [source.read_bytes() for source in SOURCES]
    for part in (*sources, paddle.__version__.encode(), sys.version.encode(), _cpu_flags().encode(),
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
                        name=_NAME, sources=[str(source) for source in SOURCES], extra_cxx_cflags=_CXXFLAGS,
                        extra_ldflags=_link_flags(), build_directory=str(folder), verbose=False,
                    )
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    except Exception as err:  # no compiler, no Python headers, a read-only cache: Paddle's kernels still work
        log.warning("ocrdet CPU kernels unavailable, using Paddle's own (slower) kernels: %s", err)
        warnings.warn(f"ocrdet CPU kernels unavailable, using Paddle's own kernels: {err}", RuntimeWarning)
        return None


_training_traces = 0


@contextlib.contextmanager
def tracing_training_program() -> Iterator[None]:
    """Calls of a compiled training step run inside this: a layer in eval mode that its trace meets (a frozen
    teacher) is part of training, not an export, and keeps ocrdet's operators and the training formulations."""
    global _training_traces
    _training_traces += 1
    try:
        yield
    finally:
        _training_traces -= 1


@paddle.jit.not_to_static  # plain Python when traced: to_static's converted copy would keep the counter it first saw
def exporting(layer: nn.Layer) -> bool:
    """Whether `layer` is being traced for an inference export: a static graph in eval mode outside a compiled
    training step. Exports hold only Paddle's own ops, which the predictor and paddle2onnx know, in the formulations
    its oneDNN kernels run fastest; a compiled training step keeps the dygraph ones."""
    return not paddle.in_dynamic_mode() and not layer.training and not _training_traces


@paddle.jit.not_to_static  # reads `_enabled` as it is now (see `exporting`)
def _runs_here(x: paddle.Tensor, for_export: bool) -> bool:
    """Enabled, a CPU float32 input, not an export; then the operators are built (once per process)."""
    if not _enabled or for_export or x.dtype != paddle.float32:
        return False
    on_cpu = x.place.is_cpu_place() if paddle.in_dynamic_mode() else paddle.get_device() == "cpu"
    return on_cpu and load_cpu_kernels() is not None


def depthwise_geometry_supported(layer: nn.Conv2D) -> bool:
    """Whether `layer` is a conv the depthwise operator has loops for: groups = channels, a square K x K kernel
    (K in KERNEL_SIZES), padding K // 2, stride 1 or 2, no dilation, NCHW, no bias."""
    k = layer._kernel_size
    return (layer._data_format == "NCHW" and layer.bias is None
            and layer._groups == layer._in_channels == layer._out_channels
            and k[0] == k[1] and k[0] in KERNEL_SIZES and list(layer._dilation) == [1, 1]
            and layer._stride[0] == layer._stride[1] and layer._stride[0] in STRIDES
            and list(layer._updated_padding) == [k[0] // 2, k[0] // 2] and layer._padding_algorithm == "EXPLICIT")


def fast_depthwise_applies(layer: nn.Conv2D, x: paddle.Tensor) -> bool:
    """Whether ocrdet's operator can run `layer` on `x`: a supported geometry, and `x` where the operator runs."""
    return depthwise_geometry_supported(layer) and _runs_here(x, exporting(layer))


def depthwise_conv2d(x: paddle.Tensor, weight: paddle.Tensor, stride: int) -> paddle.Tensor:
    """Depthwise conv of NCHW float32 `x` with `weight` [C, 1, K, K], padding K // 2, by ocrdet's CPU operator
    (forward and gradients). Callers check `fast_depthwise_applies` first."""
    return load_cpu_kernels().ocrdet_depthwise_conv(x, weight, int(stride))


def upsample_nearest(x: paddle.Tensor, factor: int, for_export: bool) -> paddle.Tensor | None:
    """`x` (NCHW) upsampled `factor` times by nearest neighbour on ocrdet's CPU operator (exact forward; the
    gradient sums each block), or None where the operator does not run (GPU, other dtypes, exports)."""
    if len(x.shape) != 4 or not _runs_here(x, for_export):
        return None
    return load_cpu_kernels().ocrdet_upsample_nearest(x, int(factor))


def same_conv_geometry_supported(layer: nn.Conv2D) -> bool:
    """Whether `layer` is a conv the same-padding operator runs: groups 1, a square odd K x K kernel with K >= 3,
    padding K // 2, stride 1, no dilation, NCHW (1x1 convs are already one GEMM per sample in Paddle)."""
    k = layer._kernel_size
    return (layer._data_format == "NCHW" and layer._groups == 1 and k[0] == k[1] and k[0] % 2 == 1 and k[0] >= 3
            and list(layer._stride) == [1, 1] and list(layer._dilation) == [1, 1]
            and list(layer._updated_padding) == [k[0] // 2, k[0] // 2] and layer._padding_algorithm == "EXPLICIT")


def fast_conv_applies(layer: nn.Conv2D, x: paddle.Tensor) -> bool:
    """Whether ocrdet's same-padding operator can run `layer` on `x` (see `same_conv_geometry_supported`)."""
    return same_conv_geometry_supported(layer) and _same_conv_runs(x, exporting(layer))


def _same_conv_runs(x: paddle.Tensor, for_export: bool) -> bool:
    return len(x.shape) == 4 and _runs_here(x, for_export) and hasattr(load_cpu_kernels(), "ocrdet_conv2d_same")


def conv2d_same(x: paddle.Tensor, weight: paddle.Tensor, for_export: bool) -> paddle.Tensor | None:
    """Stride-1 conv of NCHW `x` with `weight` [Cout, Cin, K, K] (K odd), padding K // 2, no bias, on ocrdet's CPU
    operator, or None where the operator does not run (GPU, other dtypes, exports)."""
    if not _same_conv_runs(x, for_export):
        return None
    return load_cpu_kernels().ocrdet_conv2d_same(x, weight)


class Conv2D(nn.Conv2D):
    """`nn.Conv2D` (same arguments, parameters and state-dict names) that runs a stride-1 'same' K x K conv on
    ocrdet's CPU operator where `fast_conv_applies`, and as `nn.Conv2D` elsewhere (GPU, exports, other geometries)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fast_geometry = same_conv_geometry_supported(self)  # fixed at construction: checked once

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = conv2d_same(x, self.weight, exporting(self)) if self._fast_geometry else None
        if y is None:
            return super().forward(x)
        return y if self.bias is None else y + self.bias.reshape([1, -1, 1, 1])


class DepthwiseConv2D(nn.Conv2D):
    """`nn.Conv2D` with groups = channels (same parameters and state-dict names) that runs on ocrdet's CPU
    operator where `fast_depthwise_applies`, and as `nn.Conv2D` elsewhere (GPU, exports, other shapes)."""

    def __init__(self, channels: int, kernel_size: int, stride: int = 1, bias_attr: Any = False) -> None:
        super().__init__(channels, channels, kernel_size, stride=stride, padding=(kernel_size - 1) // 2,
                         groups=channels, bias_attr=bias_attr)
        self._fast_geometry = depthwise_geometry_supported(self)  # fixed at construction: checked once

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        if self._fast_geometry and _runs_here(x, exporting(self)):
            return depthwise_conv2d(x, self.weight, self._stride[0])
        return super().forward(x)
