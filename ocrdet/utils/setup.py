"""Process-wide setup done once, centrally: quiet third-party warnings."""
from __future__ import annotations

import warnings


def quiet_warnings() -> None:
    # Paddle warns about ccache on every import; it is irrelevant to users of a wheel.
    warnings.filterwarnings("ignore", message="No ccache found")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
