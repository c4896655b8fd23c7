"""One "container" of the hammer test: its own engine on the shared Redis and calendar.

    python -m tests.hammer_worker REDIS_URL CALENDAR TENANT CONVERSATIONS TURNS SEED LOG

CALENDAR is a CalDAV URL, or ``redis`` for a RedisCalendar on the same Redis.

Sends random answers to random conversations and appends one JSON line per reply to LOG,
flushed at once, so a SIGKILL loses at most the turn in flight.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import sys

import redis

from dialog import DialogError, Engine, RedisCalendar
from dialog.calendar.caldav import CalDAVCalendar
from dialog.testing import FakeClock

ANSWERS = [
    ("yes", "text"),
    ("uh yeah sure", "voice"),
    ("go ahead", "text"),
    ("can we move it", "voice"),
    ("move it to 3pm", "text"),
    ("no", "text"),
    ("hmm", "voice"),
    ("not yet", "text"),
]
MONDAY_8AM = dt.datetime(2026, 11, 23, 8, tzinfo=dt.UTC)


def main(redis_url: str, caldav_url: str, tenant: str, conversations: int, turns: int, seed: int, log: str) -> None:
    rng = random.Random(seed)
    client = redis.Redis.from_url(redis_url)
    calendar = RedisCalendar(client) if caldav_url == "redis" else CalDAVCalendar(caldav_url)
    engine = Engine(client, calendar=calendar, clock=FakeClock(MONDAY_8AM))
    with open(log, "a", encoding="utf-8") as out:
        for _ in range(turns):
            conversation = f"c{rng.randrange(conversations)}"
            text, channel = rng.choice(ANSWERS)
            if rng.random() < 0.08:
                text, channel = f"schedule a call with Lead {conversation} tomorrow at 10am", "text"
            try:
                reply = engine.handle(conversation, text, tenant_id=tenant, channel=channel)
            except DialogError as exc:
                out.write(json.dumps({"conversation": conversation, "error": type(exc).__name__}) + "\n")
                out.flush()
                continue
            event = reply.event.idempotency_key if reply.event else None
            out.write(
                json.dumps(
                    {
                        "conversation": conversation,
                        "text": text,
                        "outcome": reply.outcome,
                        "state": reply.state,
                        "event": event,
                        "version": reply.version,
                    }
                )
                + "\n"
            )
            out.flush()


if __name__ == "__main__":
    url, cal, tenant, n, turns, seed, log = sys.argv[1:8]
    main(url, cal, tenant, int(n), int(turns), int(seed), log)
