"""Profile student (or CML) train steps with `paddle.profiler` on CPU and print the top ops by total time.

Each line: `op <name>: <total ms> ms <share>% <calls> calls` (ms per profiled step), largest first; then the step time.
The benchmark setting is 640 crop, batch 8; the defaults are smaller so a profile takes well under a minute, and the
op mix is the same (every op scales with the pixel count).

    python scripts/profile_train_step.py [--crop 320] [--batch 2] [--steps 2] [--top 20] [--onednn 1]
"""
from __future__ import annotations

import argparse
import time
from typing import List, Optional, Sequence, Tuple

import paddle
import paddle.profiler as profiler
from paddle.profiler.profiler_statistic import StatisticData

from bench_train import MODES, build_train_step, set_cpu_threads
from ocrdet.utils.setup import quiet_warnings


def top_ops(prof: profiler.Profiler, steps: int, top: int) -> List[Tuple[str, float, float, int]]:
    """(op name, ms per step, share of all op time, calls per step) for the `top` ops by total CPU time.

    Shares are of the summed time of top-level ops: an op's time includes the kernels it calls, not its children ops.
    """
    data = StatisticData(prof.profiler_result.get_data(), prof.profiler_result.get_extra_info())
    items = data.event_summary.items
    total = sum(item.cpu_time for item in items.values()) or 1
    ranked = sorted(items.values(), key=lambda item: item.cpu_time, reverse=True)[:top]
    return [(i.name, i.cpu_time / 1e6 / steps, i.cpu_time / total, i.call // steps) for i in ranked]


def main(argv: Optional[Sequence[str]] = None) -> List[Tuple[str, float, float, int]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=MODES, default="student")
    parser.add_argument("--crop", type=int, default=320)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=2, help="profiled steps after one warm-up step")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--onednn", type=int, default=1, help="FLAGS_use_mkldnn for dygraph (1/0)")
    parser.add_argument("--threads", type=int, default=2, help="CPU math threads (Paddle's default is 1)")
    args = parser.parse_args(argv)
    quiet_warnings()
    paddle.set_device("cpu")
    set_cpu_threads(args.threads)
    paddle.set_flags({"FLAGS_use_mkldnn": bool(args.onednn)})

    step = build_train_step(args.mode, args.crop, args.batch)
    step.run(0)  # warm-up outside the profile: kernel selection and first allocations
    # on_trace_ready: no chrome trace written to ./profiler_log; the table below is the output.
    prof = profiler.Profiler(targets=[profiler.ProfilerTarget.CPU], on_trace_ready=lambda _: None)
    prof.start()
    start = time.perf_counter()
    for i in range(args.steps):
        step.run(i + 1)
        prof.step()
    elapsed = (time.perf_counter() - start) / args.steps
    prof.stop()

    ops = top_ops(prof, args.steps, args.top)
    print(f"profile {args.mode} crop {args.crop} batch {args.batch} onednn {args.onednn}: top {len(ops)} ops")
    for name, ms, share, calls in ops:
        print(f"op {name}: {ms:.1f} ms {100 * share:.1f}% {calls} calls")
    print(f"step_time_profiled: {elapsed:.3f} s/step")
    return ops


if __name__ == "__main__":
    main()
