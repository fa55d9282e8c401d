"""Process-wide setup done once, centrally: quiet third-party warnings."""
from __future__ import annotations

import logging
import warnings


def quiet_warnings() -> None:
    # Paddle warns about ccache on every import; it is irrelevant to users of a wheel.
    warnings.filterwarnings("ignore", message="No ccache found")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    # Paddle 3 says this on every BatchNorm call in training mode; it describes standard BN behaviour.
    warnings.filterwarnings("ignore", message="When training, we now always track global mean and variance")
    warnings.filterwarnings("ignore", message="There are some unused values in state_dict")
    # MLflow announces its SQLite schema set-up (new store, every sweep job) at INFO level; errors still show.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
