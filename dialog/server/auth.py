"""API keys: ``Authorization: Bearer KEY`` names the tenant; the request body never does."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

__all__ = ["KeyRing"]


class KeyRing:
    """Maps API keys to tenants without leaking, through timing, which key came close.

    Keys are kept as SHA-256 digests and every lookup compares the presented key's digest with
    every stored digest (``hmac.compare_digest``, no early exit), so the time taken depends on
    neither the key's length nor on how much of it matched.
    """

    def __init__(self, keys: Mapping[str, str]) -> None:
        if not keys:
            raise ValueError("at least one API key is needed")
        if any(not key or not tenant for key, tenant in keys.items()):
            raise ValueError("API keys and tenants must be non-empty")
        self._digests = [(_digest(key), tenant) for key, tenant in keys.items()]

    def __repr__(self) -> str:
        return f"KeyRing({len(self._digests)} keys)"

    def __len__(self) -> int:
        return len(self._digests)

    def tenant(self, key: str) -> str | None:
        """The tenant of ``key``, or None when no key matches."""
        presented = _digest(key)
        found: str | None = None
        for digest, tenant in self._digests:
            if hmac.compare_digest(presented, digest):
                found = tenant
        return found

    def tenant_for_header(self, authorization: str | None) -> str | None:
        """The tenant of an ``Authorization`` header value (``Bearer KEY``), or None."""
        if not authorization:
            return None
        scheme, _, key = authorization.strip().partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            return None
        return self.tenant(key)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
