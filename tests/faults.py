"""Faults injected at the Redis client: a script that runs but whose reply never arrives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis

from dialog.store.redis_store import CAS_SCRIPT


class LossyRedis(redis.Redis):
    """A redis-py client that can lose the reply of the next compare-and-set.

    ``lose_next_reply(between)``: the next CAS script runs on the server, then ``between()``
    runs (another container writing meanwhile), then the client sees a timeout instead of the
    reply, and redis-py's own retry sends the script again, as it does after a real timeout.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cas_sha = self.register_script(CAS_SCRIPT).sha
        self._armed: list[Callable[[], object]] = []
        self.lost = 0

    def lose_next_reply(self, between: Callable[[], object] = lambda: None) -> None:
        self._armed.append(between)

    def _send_command_parse_response(self, conn: Any, command_name: str, *args: Any, **options: Any) -> Any:
        # redis-py leaves this (private) method unannotated
        result = super()._send_command_parse_response(conn, command_name, *args, **options)  # type: ignore[no-untyped-call]
        if command_name == "EVALSHA" and len(args) > 1 and args[1] == self._cas_sha and self._armed:
            between = self._armed.pop(0)
            between()
            self.lost += 1
            raise redis.TimeoutError("the reply was lost (injected)")
        return result


def lossy_client(url: str) -> LossyRedis:
    return LossyRedis.from_url(url)  # type: ignore[return-value]
