"""Content keys: the sha256 of the canonical JSON of everything that determines an output.

This is a contract: the same inputs give the same key, on any machine and any run,
and the key is how studio knows it already has (and already paid for) an artifact.
Changing `KEY_VERSION` or the canonical form changes every key, so every artifact
would be made again; do that only on purpose.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

KEY_VERSION = 1


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 kept as is: one text per value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def content_key(kind: str, spec: dict[str, Any]) -> str:
    payload = {"key_version": KEY_VERSION, "kind": kind, "spec": spec}
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


def derived_seed(*parts: object) -> int:
    """A stable 31-bit seed from names, so an unchanged panel keeps its seed across runs."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
