"""Credentials in URIs (`https://user:token@host`, `?password=...`) kept out of everything ocrdet writes: MLflow
params, logs, `.states`, the run's `.hydra/*.yaml`. The tracking client itself still gets the real URI."""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

MASK = "***"
# scheme://userinfo@ : everything between "//" and the last "@" before the host is a credential
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/@\s'\"]+)@")
# query parameters that carry secrets
_QUERY = re.compile(r"(?P<key>[?&](?:password|passwd|pwd|token|access_token|secret|api_key|apikey|key)=)[^&\s'\"]+",
                    re.IGNORECASE)


def redact_text(text: str) -> str:
    """`text` with URI credentials replaced by ***."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    return _QUERY.sub(lambda m: f"{m['key']}{MASK}", text)


def redact(value: Any) -> Any:
    """`redact_text` applied to every string in nested dicts/lists/tuples."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact(v) for v in value)
    return value


def redact_files(paths: list[Path]) -> None:
    """Rewrite files (Hydra's config.yaml, overrides.yaml, hydra.yaml) in place when they hold a credential."""
    for path in paths:
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            clean = redact_text(text)
            if clean != text:
                path.write_text(clean, encoding="utf-8")


class RedactingFilter(logging.Filter):
    """Masks credentials in every record a handler writes (the message is formatted first)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def install_log_redaction() -> None:
    """Add the filter to the root logger's handlers (Hydra's console and train.log file handlers), once each."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
