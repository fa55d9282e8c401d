"""MKL's code path: Paddle's bundled MKL runs generic kernels on AMD CPUs unless asked for AVX2 before its first call."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ocrdet.engine.mkl import AVX2, VARIABLE, cpu_vendor, prefer_avx2_on_amd


def test_cpu_vendor_reads_the_first_vendor_id(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nprocessor\t: 1\nvendor_id\t: GenuineIntel\n")
    assert cpu_vendor(info) == "AuthenticAMD"
    info.write_text("processor\t: 0\n")
    assert cpu_vendor(info) is None
    assert cpu_vendor(tmp_path / "absent") is None


def test_avx2_is_asked_for_on_amd_only_and_a_user_setting_wins() -> None:
    environ: dict = {}
    assert prefer_avx2_on_amd(environ, vendor="AuthenticAMD") is True
    assert environ == {VARIABLE: AVX2}
    intel: dict = {}
    assert prefer_avx2_on_amd(intel, vendor="GenuineIntel") is False  # 5 would take AVX-512 away
    assert intel == {}
    for own in ("", "4"):  # empty opts out: MKL then dispatches by vendor again
        environ = {VARIABLE: own}
        assert prefer_avx2_on_amd(environ, vendor="AuthenticAMD") is False
        assert environ == {VARIABLE: own}


def _flags() -> set:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def test_importing_ocrdet_gives_paddles_mkl_a_vector_code_path() -> None:
    """On any CPU with AVX2, MKL dispatches to AVX2 (5) or better after `import ocrdet` (generic 0 on AMD without)."""
    if "avx2" not in _flags():
        pytest.skip("the CPU has no AVX2 (or /proc/cpuinfo is unreadable)")
    env = {k: v for k, v in os.environ.items() if k != VARIABLE}
    code = (
        "import ocrdet, paddle\n"
        "from ocrdet.engine.mkl import mkl_code_path\n"
        "a = paddle.ones([64, 64]); paddle.matmul(a, a)\n"
        "print('path', mkl_code_path())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    path = out.stdout.split("path ")[-1].strip()
    if path == "None":
        pytest.skip("this Paddle build has no bundled MKL")
    assert int(path) >= 5, f"MKL code path {path} ({cpu_vendor()})"
