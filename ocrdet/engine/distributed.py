"""Multi-process helpers: process group set-up, rank-sharded evaluation sampling and summing metric state.

Ranks are started by `paddle.distributed.launch` (see `ocrdet.cli.launch`); with one process everything here is a no-op.
"""
from __future__ import annotations

import math
import warnings
from typing import Iterator, Sequence

import numpy as np
import paddle
import paddle.distributed as dist


def world_size() -> int:
    return dist.get_world_size()


def rank() -> int:
    return dist.get_rank()


def init_process_group() -> None:
    """Join the process group started by paddle.distributed.launch (gloo on CPU, NCCL on GPU)."""
    if world_size() > 1 and not dist.is_initialized():
        dist.init_parallel_env()


def sum_across_ranks(values: np.ndarray) -> np.ndarray:
    """Element-wise sum of a small array over all ranks (metric counts), returned on every rank."""
    if world_size() == 1:
        return values
    tensor = paddle.to_tensor(np.asarray(values, dtype=np.float64))
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.numpy()


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


class ShardBatchSampler(paddle.io.BatchSampler):
    """Evaluation batches of this rank's shard: sample i goes to rank i % world, with no padding, so every sample is
    scored exactly once (paddle's DistributedBatchSampler pads shards with repeated samples, which would count some
    samples twice in the metric)."""

    def __init__(self, dataset_size: int, batch_size: int) -> None:
        self.indices = list(range(rank(), dataset_size, world_size()))
        self.batch_size = batch_size

    def __iter__(self) -> Iterator[list[int]]:
        for start in range(0, len(self.indices), self.batch_size):
            yield self.indices[start : start + self.batch_size]

    def __len__(self) -> int:
        return math.ceil(len(self.indices) / self.batch_size)


def broadcast_running_stats(model: paddle.nn.Layer) -> None:
    """Give every rank rank 0's non-trained tensors (BatchNorm running statistics drift apart per rank), so a
    sharded evaluation scores one model: the one rank 0 saves."""
    if world_size() == 1:
        return
    with paddle.no_grad():
        for tensor in model.parameters():
            if tensor.stop_gradient:
                dist.broadcast(tensor, src=0)


def broadcast_parameters(model: paddle.nn.Layer) -> None:
    """Give every rank rank 0's parameters and buffers (what DataParallel does when it wraps a model), for ranks
    that train without that wrapper."""
    if world_size() == 1:
        return
    with paddle.no_grad():
        for tensor in model.state_dict().values():
            dist.broadcast(tensor, src=0)


def all_reduce_gradients(parameters: Sequence[paddle.Tensor], contributed: int) -> int:
    """Average the gradients of `parameters` over the ranks, as DataParallel's backward hooks do, for steps whose
    backward runs outside them (a compiled program): once per optimizer step, in one all-reduce of a flat float32
    buffer that also carries `contributed` (this rank's finite micro-batches), whose sum over the ranks is returned.
    A rank with no gradient for a parameter (every micro-batch non-finite) takes part with zeros, so no rank ever
    waits on another, and all ranks make the same step-or-skip decision from the same sum."""
    if world_size() == 1:
        return contributed
    pieces = [
        (p.grad if p.grad is not None else paddle.zeros_like(p)).astype("float32").flatten() for p in parameters
    ]
    flat = paddle.concat([*pieces, paddle.to_tensor([float(contributed)], dtype="float32")])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    total = int(round(float(flat[-1])))
    offset = 0
    with paddle.no_grad():
        for param, piece in zip(parameters, pieces):
            size = int(piece.shape[0])
            mean = (flat[offset : offset + size] / world_size()).reshape(param.shape).astype(param.dtype)
            offset += size
            if param.grad is None:
                param.grad = mean
            else:
                param.grad.set_value(mean)
    return total


def sync_batchnorm(model: paddle.nn.Layer, ranks: int, accelerator: str) -> paddle.nn.Layer:
    """`model` with its BatchNorm layers as SyncBatchNorm (batch statistics over all ranks) when several GPU ranks
    train; unchanged otherwise. The converted layers keep the same Parameter objects and state-dict names, so the
    optimizer, checkpoints and PaddleOCR weights are unaffected. Paddle has no CPU kernel for SyncBatchNorm: on CPU
    ranks the statistics stay per rank and a warning says so."""
    if ranks <= 1:
        return model
    if accelerator != "gpu":
        warnings.warn(
            "trainer.sync_batchnorm: Paddle's SyncBatchNorm has no CPU kernel; BatchNorm statistics stay per rank",
            stacklevel=2,
        )
        return model
    return paddle.nn.SyncBatchNorm.convert_sync_batchnorm(model)
