"""The benchmarks' side of `paddleocr_reference.py`: start it in PaddleOCR's environment, send it one unit of work
at a time, read its own timing back; and the machine line every figure is printed with."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import ocrdet
from ocrdet.engine.mkl import VARIABLE as MKL_VARIABLE, AVX2 as MKL_AVX2, mkl_code_path

SCRIPTS = Path(__file__).resolve().parent
REPO = SCRIPTS.parent
DEFAULT_CHECKOUT = REPO.parent / "shared" / "reference" / "PaddleOCR"
DEFAULT_PYTHON = "/work/ppocr_venv/bin/python"
ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile")


def machine() -> str:
    """CPU model, the vector extensions that change Paddle's kernels, cores and load: printed with every figure,
    since the machine kind changes between sessions and other jobs share it."""
    model, flags = "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == "unknown CPU":
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    isa = ",".join(f for f in ISA_FLAGS if f in flags) or "-"
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    return f"[{model}; {isa}; {os.cpu_count()} cores; load {load}; MKL path {mkl_code_path()}]"


# glibc's tunables for ocrdet.engine.memory.keep_freed_memory's setting (no per-block mappings, no trimming),
# given to PaddleOCR's process from outside, as glibc reads them at start-up.
KEEP_FREED_MEMORY_TUNABLES = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=18446744073709551615"


def reference_environment(mkl: str = "shipped", malloc: str = "shipped") -> Dict[str, str]:
    """The environment PaddleOCR's process runs in: ours without our venv, and MKL's dispatch as PaddleOCR ships
    (`shipped`: the variable ocrdet sets on AMD removed, a user's own value kept) or AVX2 (`avx2`); glibc's allocator
    as it ships or (`malloc="keep"`) keeping freed memory as ocrdet's training process does."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    if malloc == "keep":
        env["GLIBC_TUNABLES"] = KEEP_FREED_MEMORY_TUNABLES
    if mkl == "avx2":
        env[MKL_VARIABLE] = MKL_AVX2
    elif ocrdet.MKL_AVX2_SET_HERE:
        env.pop(MKL_VARIABLE, None)
    return env


class ReferenceProcess:
    """PaddleOCR's code in its own interpreter, answering one command per line (see paddleocr_reference.py)."""

    def __init__(
        self, args: Sequence[str], python: str = DEFAULT_PYTHON, checkout: Path | str = DEFAULT_CHECKOUT,
        mkl: str = "shipped", malloc: str = "shipped",
    ):
        if not Path(python).exists():
            raise FileNotFoundError(f"reference interpreter {python} not found: pass --reference-python")
        if not (Path(checkout) / "ppocr").is_dir():
            raise FileNotFoundError(f"{checkout} is not a PaddleOCR checkout: pass the path to --reference")
        env = reference_environment(mkl, malloc)
        print(f"reference: PaddleOCR's code from {checkout}, {MKL_VARIABLE}={env.get(MKL_VARIABLE, '(unset)')}, "
              f"GLIBC_TUNABLES={env.get('GLIBC_TUNABLES', '(unset)')}", flush=True)
        self.process = subprocess.Popen(
            [python, str(SCRIPTS / "paddleocr_reference.py"), *args, "--checkout", str(Path(checkout).resolve())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
        )
        self._expect("ready")

    def _expect(self, word: str) -> List[str]:
        line = self.process.stdout.readline()
        if not line.startswith(word):
            self.close()
            raise RuntimeError(f"PaddleOCR reference process: expected {word!r}, got {line!r} (its stderr is above)")
        return line.split()[1:]

    def request(self, command: str) -> List[str]:
        """Send `command`, return the answer's fields after its first word."""
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._expect(command.split()[0])

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.write("quit\n")
                self.process.stdin.flush()
                self.process.wait(timeout=30)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.process.kill()

    def __enter__(self) -> "ReferenceProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def add_reference_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--reference", choices=["paddleocr", "none"], default="paddleocr",
        help="time PaddleOCR's own code in the same run, interleaved with ocrdet's (none: ocrdet only)",
    )
    parser.add_argument("--paddleocr", default=str(DEFAULT_CHECKOUT), help="PaddleOCR checkout (its configs and ppocr)")
    parser.add_argument("--reference-python", default=DEFAULT_PYTHON, help="the interpreter of PaddleOCR's environment")
    parser.add_argument(
        "--reference-mkl", choices=["shipped", "avx2"], default="shipped",
        help="PaddleOCR's MKL dispatch: as it ships (generic kernels on AMD CPUs) or AVX2 as ocrdet sets it on AMD",
    )
    parser.add_argument(
        "--reference-malloc", choices=["shipped", "keep"], default="shipped",
        help="PaddleOCR's glibc allocator: as it ships or keeping freed memory as ocrdet's training process does "
             "(ocrdet.engine.memory.keep_freed_memory, through GLIBC_TUNABLES)",
    )
