"""Paddle's CPU wheels bundle MKL 2019.0.5, which picks its code path by CPU vendor: on AMD it runs the generic SSE
kernels, about half the speed of its AVX2 ones (measured on an idle 2-core AMD EPYC: a 48x864x25600 sgemm at 18 vs
42 GFLOP/s; a student train step at 640/8 13.3 vs 5.8 s eager, 6.8 vs 5.5 s compiled). That MKL still honours `MKL_DEBUG_CPU_TYPE=5` (AVX2), read when its
first routine runs, so it is set at import, before any Paddle math; a value the user set (even empty) is kept.
"""
from __future__ import annotations

import ctypes
import functools
import os
from pathlib import Path
from typing import MutableMapping, Optional

VARIABLE = "MKL_DEBUG_CPU_TYPE"
AVX2 = "5"


def cpu_vendor(cpuinfo: Path = Path("/proc/cpuinfo")) -> Optional[str]:
    """The `vendor_id` of the first CPU (e.g. "AuthenticAMD"), or None where /proc/cpuinfo does not say."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def prefer_avx2_on_amd(environ: MutableMapping[str, str] = os.environ, vendor: Optional[str] = None) -> bool:
    """Ask MKL for its AVX2 kernels on an AMD CPU unless `MKL_DEBUG_CPU_TYPE` is set; True when set here.

    Intel CPUs are left alone (5 would take AVX-512 away from them); later MKL versions ignore the variable.
    """
    if VARIABLE in environ or (vendor or cpu_vendor()) != "AuthenticAMD":
        return False
    environ[VARIABLE] = AVX2
    return True


@functools.lru_cache(maxsize=None)  # fixed for the process; benchmarks print it with every figure
def mkl_code_path() -> Optional[int]:
    """The code path Paddle's bundled MKL dispatches to in this process (0: generic; 5: AVX2; higher: AVX-512),
    or None where Paddle has no MKL library (e.g. an OpenBLAS build).

    Loads the library Paddle ships (the same handle once Paddle has loaded it), so call it after `import paddle`.
    """
    import paddle

    libs = Path(paddle.__file__).parent / "libs"
    library = libs / "libmklml_intel.so"
    if not library.exists():
        return None
    try:
        ctypes.CDLL(str(libs / "libiomp5.so"), mode=ctypes.RTLD_GLOBAL)
        return int(ctypes.CDLL(str(library)).mkl_serv_cpu_detect())
    except (OSError, AttributeError):
        return None
