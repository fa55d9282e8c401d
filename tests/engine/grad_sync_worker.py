"""One rank of tests/engine/test_grad_sync.py, started by `paddle.distributed.launch` with two gloo processes.

Rank 0 has gradients from one finite micro-batch; rank 1 had none (its micro-batches were non-finite, so its
gradients are None). Each rank writes what `all_reduce_gradients` left it to <out>/rank<N>.json."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import paddle
import paddle.distributed as dist

from ocrdet.engine.distributed import all_reduce_gradients, init_process_group

init_process_group()
rank = dist.get_rank()
params = [paddle.create_parameter([2, 3], "float32"), paddle.create_parameter([4], "float32")]
if rank == 0:
    params[0].grad = paddle.arange(6, dtype="float32").reshape([2, 3])
    params[1].grad = paddle.full([4], 2.0)
total = all_reduce_gradients(params, contributed=1 if rank == 0 else 0)
result = {"total": total, "grads": [p.grad.numpy().tolist() for p in params]}
Path(sys.argv[1], f"rank{rank}.json").write_text(json.dumps(result))
