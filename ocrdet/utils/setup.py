"""Process-wide setup done once, centrally: quiet third-party warnings."""
from __future__ import annotations

import logging
import os
import warnings


def quiet_warnings() -> None:
    # Paddle's C++ side logs through glog, read once when paddle loads (so call this before importing paddle). Its
    # warnings are for Paddle's developers, e.g. "Paddle static graph(PIR) not support input out tensor" on every
    # export; errors still show. GLOG_minloglevel=0 in the environment brings them back.
    os.environ.setdefault("GLOG_minloglevel", "2")
    # Paddle warns about ccache on every import; it is irrelevant to users of a wheel.
    warnings.filterwarnings("ignore", message="No ccache found")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    # Paddle 3 says this on every BatchNorm call in training mode; it describes standard BN behaviour.
    warnings.filterwarnings("ignore", message="When training, we now always track global mean and variance")
    warnings.filterwarnings("ignore", message="There are some unused values in state_dict")
    # MLflow announces its SQLite schema set-up (new store, every sweep job) at INFO level; errors still show.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)


def setup_cli() -> None:
    """`quiet_warnings`, then import Paddle and drop the handler its import puts on the root logger
    (`paddle.distributed.utils.log_utils`): Hydra sets up the command's own logging, and with Paddle's handler
    beside it every line of `--info` (and any log line before a job starts) was printed twice."""
    quiet_warnings()
    root = logging.getLogger()
    before = list(root.handlers)
    import paddle  # noqa: F401
    import paddle.distributed  # noqa: F401

    for handler in root.handlers[:]:
        if handler not in before:
            root.removeHandler(handler)
