"""hydra-submitit-launcher's launcher with the executor as a setting.

`cluster: slurm` submits each sweep job with sbatch (hydra-submitit's SlurmLauncher exactly); `cluster: local` runs
the same `hydra/launcher=slurm` config through submitit's LocalExecutor on this machine, one process per job, with
the SLURM-only options left out. The second is how a SLURM sweep's submission path (pickled jobs, submitit's job
environment, per-job logs in `<sweep dir>/.submitit/`) is tried on a machine without a cluster, e.g. in tests.
"""
from __future__ import annotations

from typing import Any

from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import BaseSubmititLauncher
from omegaconf import OmegaConf

CLUSTERS = ("slurm", "local")
# What submitit's local executor takes besides the generic queue keys (SLURM's own, `setup` included, are dropped:
# a local job runs in this interpreter).
LOCAL_ONLY = ("max_num_timeout",)


class SubmititLauncher(BaseSubmititLauncher):
    def __init__(self, cluster: str = "slurm", **params: Any) -> None:
        if cluster not in CLUSTERS:
            raise ValueError(f"hydra.launcher.cluster={cluster!r}: choose one of {list(CLUSTERS)}")
        self._EXECUTOR = cluster
        if cluster == "local":
            keep = set(OmegaConf.structured(BaseQueueConf).keys()) | set(LOCAL_ONLY)
            params = {k: v for k, v in params.items() if k in keep}
        super().__init__(**params)
