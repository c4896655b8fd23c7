"""The ``dialog`` command: chat with the engine, or watch the demo. Reads DIALOG_* variables here only."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import socket
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import redis

from dialog import diagrams, embedded, voice_cli
from dialog.calendar.base import Calendar
from dialog.calendar.config import calendar_from_url, load_tenants
from dialog.calendar.memory import InMemoryCalendar
from dialog.calendar.redis_calendar import RedisCalendar
from dialog.engine import Engine
from dialog.errors import DialogError
from dialog.results import Reply
from dialog.store.cluster import cluster_from_url, is_cluster_url
from dialog.store.keys import DEFAULT_TTL_SECONDS


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        result: int = args.run(args)
        return result
    except DialogError as exc:
        print(f"dialog: {exc}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as exc:
        extra = EXTRAS.get((exc.name or "").partition(".")[0])
        if extra is None:
            raise
        print(f"dialog {args.command}: needs the {extra} extra: pip install 'durable-dialog[{extra}]'", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


# Optional modules and the extra that brings each (a missing one is a one-line message).
EXTRAS = {
    "pygraphviz": "diagrams",
    "caldav": "caldav",
    "icalendar": "caldav",
    "fastapi": "server",
    "uvicorn": "server",
    "prometheus_client": "server",
    "starlette": "server",
    "pocketsphinx": "voice",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dialog", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    chat = sub.add_parser("chat", help="talk to the engine, one line a turn")
    _store_options(chat)
    chat.add_argument("--conversation", default="chat", help="conversation id (default: chat)")
    chat.add_argument("--tenant", default="default", help="tenant id (default: default)")
    chat.add_argument("--channel", choices=("text", "voice"), default="text")
    chat.set_defaults(run=_chat)

    demo = sub.add_parser("demo", help="a scripted conversation surviving an engine restart")
    _store_options(demo)
    demo.set_defaults(run=_demo)

    recover = sub.add_parser("recover", help="settle confirmations left outstanding by turns that stopped mid-way")
    recover.add_argument("--tenant", default=None, help="only this tenant (default: all)")
    recover.add_argument(
        "--every",
        type=_duration,
        default=None,
        metavar="DURATION",
        help="sweep again after each DURATION (30s, 2m, 1h) until interrupted; a failed sweep is logged and retried",
    )
    _store_options(recover)
    recover.set_defaults(run=_recover)

    trim = sub.add_parser("trim", help="retention: remove booked events (in Redis) that ended long ago")
    trim.add_argument("--older-than", type=_age, required=True, metavar="AGE", help="e.g. 90d, 12h")
    trim.add_argument("--tenant", default=None, help="only this tenant (default: all)")
    _store_options(trim)
    trim.set_defaults(run=_trim)

    diagram = sub.add_parser("diagram", help="draw the state machine, or one live conversation")
    diagram.add_argument("--format", choices=diagrams.FORMATS, default="mermaid")
    diagram.add_argument("-o", "--output", type=Path, help="file to write (default: standard output)")
    diagram.add_argument("--conversation", help="draw this conversation: its state, last transition, proposal")
    diagram.add_argument("--tenant", default="default")
    _store_options(diagram)
    diagram.set_defaults(run=_diagram)

    voice = voice_cli.add_parser(sub)
    _store_options(voice)
    voice.set_defaults(run=_voice)

    serve = sub.add_parser(
        "serve", help="the HTTP service (needs durable-dialog[server]; configured by DIALOG_* variables)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to bind (default: 8000)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default: 1)")
    serve.set_defaults(run=_serve)
    return parser


def _store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("DIALOG_REDIS_URL"),
        help="Redis URL (default: $DIALOG_REDIS_URL, else an embedded server kept in $DIALOG_HOME)",
    )


def _calendar(client: Any) -> Calendar:
    """The calendar the environment names: DIALOG_CALENDAR_URL unset, a RedisCalendar on ``client``
    (the default); ``memory://`` this process's memory; a CalDAV URL. DIALOG_TENANTS_FILE: schedules."""
    tenants_file = os.environ.get("DIALOG_TENANTS_FILE")
    return calendar_from_url(
        os.environ.get("DIALOG_CALENDAR_URL") or None,
        username=os.environ.get("DIALOG_CALENDAR_USER") or None,
        password=os.environ.get("DIALOG_CALENDAR_PASSWORD") or None,
        schedules=load_tenants(tenants_file) if tenants_file else None,
        client=client,
    )


def _engine(args: argparse.Namespace, out: TextIO, calendar: Calendar | None = None) -> Engine:
    """An engine on the Redis the arguments name; its calendar from the environment unless given."""
    ttl = int(os.environ.get("DIALOG_TTL_SECONDS", DEFAULT_TTL_SECONDS))
    url = args.redis_url
    if url:
        client = cluster_from_url(url) if is_cluster_url(url) else redis.Redis.from_url(url)
    else:
        client, what = embedded.client(_home())
        if "fakeredis" in what:
            print(f"warning: {what}", file=out)
    return Engine(client, calendar=calendar or _calendar(client), ttl_seconds=ttl)


def _home() -> Path:
    return Path(os.environ.get("DIALOG_HOME", str(embedded.DEFAULT_DATA_DIR)))


def _chat(args: argparse.Namespace, stdin: TextIO = sys.stdin, out: TextIO = sys.stdout) -> int:
    engine = _engine(args, out)
    interactive = stdin.isatty()
    print(
        f"dialog chat: conversation {args.conversation!r}, tenant {args.tenant!r}, {args.channel}. "
        "/history shows its turns; Ctrl-D to leave.",
        file=out,
    )
    while True:
        if interactive:
            print("you> ", end="", file=out, flush=True)
        line = stdin.readline()
        if not line:
            if interactive:
                print(file=out)  # Ctrl-D: leave the shell's prompt on a line of its own
            return 0
        if not line.strip():
            continue
        if line.strip() == "/history":
            _print_history(engine, args, out)
            continue
        try:
            reply = engine.handle(args.conversation, line.rstrip("\n"), tenant_id=args.tenant, channel=args.channel)
        except DialogError as exc:
            print(f"error: {exc}", file=out)
            continue
        print(f"dialog> {reply.text}   [{reply.state} / {reply.outcome}]", file=out, flush=True)


def _print_history(engine: Engine, args: argparse.Namespace, out: TextIO) -> None:
    """`/history` in dialog chat: the conversation's applied turns, oldest first."""
    try:
        entries = engine.history(args.conversation, tenant_id=args.tenant)
    except DialogError as exc:
        print(f"error: {exc}", file=out)
        return
    for e in entries:
        event = f" event={e.event_id}" if e.event_id else ""
        print(
            f"  v{e.version} {e.at:%Y-%m-%d %H:%M:%S} [{e.channel}] {e.text!r}: "
            f"{e.state_from} --{e.trigger}--> {e.state} ({e.outcome}){event}",
            file=out,
        )
    if not entries:
        print("  (no history)", file=out)


def _voice(args: argparse.Namespace) -> int:
    """`dialog voice`: dialog/voice_cli.py."""
    return voice_cli.run(_engine(args, sys.stdout), args)


def _demo(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Three "containers" share one Redis: a proposal and a booking survive restarts; a booked call moves."""
    tenant = f"demo-{uuid.uuid4().hex[:8]}"  # a calendar of its own: earlier demos' bookings stay apart
    conversation, other = "dana", "fox"
    say = _Narrator(out, f"{tenant}/{conversation}")
    memory = InMemoryCalendar() if os.environ.get("DIALOG_CALENDAR_URL") == "memory://" else None

    def container() -> Engine:
        return _engine(args, out, memory)  # with memory://, one calendar stands in for all of them

    first = container()
    say.note(f"Container A ({_where(first)}, {type(first.calendar).__name__}) proposes a call, on the text channel.")
    ask = "Schedule a call with Dana Scully tomorrow at 10am"
    say.turn("A", "text", ask, first.handle(conversation, ask, tenant_id=tenant))
    first.close()
    first.redis.close()
    say.note("Container A is gone (restart). Nothing of the proposal lives in process memory.")

    second = container()
    snap = second.snapshot(conversation, tenant_id=tenant)
    state, version = (snap.state, snap.version) if snap else (None, None)
    say.note(f"Container B loads it from Redis: state={state}, version={version}.")
    for who, engine, channel, text in (("B", second, "voice", "uh can we move it"), ("C", container(), "text", "yes")):
        say.turn(who, channel, text, engine.handle(conversation, text, tenant_id=tenant, channel=channel))
    say.turn("B", "voice", "yes", second.handle(conversation, "yes", tenant_id=tenant, channel="voice"))
    second.close()
    second.redis.close()

    fresh = container()
    say.note("Container D starts after every other one stopped, and is asked for the booked time.")
    ask = "Schedule a call with Fox Mulder tomorrow at 10:30am"
    say.turn("D", "text", ask, fresh.handle(other, ask, tenant_id=tenant))
    say.note("Dana's booked call is moved by voice.")
    for text in ("can we move the call to 3pm", "yes"):
        say.turn("D", "voice", text, fresh.handle(conversation, text, tenant_id=tenant, channel="voice"))
    events = fresh.calendar.events(tenant)
    say.note(f"Calendar: {len(events)} event(s): " + "; ".join(f"{e.lead} {e.start:%a %d %b %H:%M %Z}" for e in events))
    offered = fresh.snapshot(other, tenant_id=tenant)
    once = len(events) == 1 and events[0].start.hour == 15
    return 0 if once and offered is not None and offered.proposal is not None else 1


def _recover(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    engine = _engine(args, sys.stderr)
    if args.every is None:
        _sweep(engine, args.tenant, out)
        return 0
    try:
        while True:
            try:
                _sweep(engine, args.tenant, out)
            except DialogError as exc:  # Redis away: say so, and try again next time
                print(f"dialog recover: this sweep failed: {exc}", file=sys.stderr, flush=True)
            time.sleep(args.every)
    except KeyboardInterrupt:
        return 0


def _sweep(engine: Engine, tenant: str | None, out: TextIO) -> None:
    settled = engine.recover(tenant_id=tenant)
    for reply in settled:
        print(f"{reply.tenant_id}/{reply.conversation_id}: {reply.outcome} (v{reply.version})", file=out)
    print(f"settled {len(settled)} outstanding confirmation(s)", file=out, flush=True)


def _trim(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    engine = _engine(args, sys.stderr)
    calendar = engine.calendar
    if not isinstance(calendar, RedisCalendar):
        kind = type(calendar).__name__
        print(f"dialog trim: the calendar is a {kind}; trim applies to RedisCalendar", file=sys.stderr)
        return 2
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=args.older_than)
    removed = calendar.trim(args.tenant, before=cutoff)
    print(f"removed {removed} event(s) that ended before {cutoff:%Y-%m-%d %H:%M} UTC", file=out)
    return 0


def _age(text: str) -> float:
    """``90d``, ``12h``, ``30m``: how old an event must be to be trimmed (at least 1 hour)."""
    units = {"d": 86400, "h": 3600, "m": 60}
    try:
        seconds = float(text[:-1]) * units[text[-1]]
    except (KeyError, ValueError, IndexError):
        raise argparse.ArgumentTypeError(f"not an age: {text!r} (try 90d, 12h)") from None
    if seconds < 3600:
        raise argparse.ArgumentTypeError(f"{text!r}: at least 1h, so calls still to come are never trimmed")
    return seconds


_UNITS = {"s": 1, "m": 60, "h": 3600}


def _duration(text: str) -> float:
    """``30s``, ``2m``, ``1h`` or plain seconds, at least 1 s."""
    number, unit = (text[:-1], text[-1]) if text[-1:] in _UNITS else (text, "s")
    try:
        seconds = float(number) * _UNITS[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (try 30s, 2m, 1h)") from None
    if not 1 <= seconds <= 24 * 3600:
        raise argparse.ArgumentTypeError(f"{text!r}: between 1s and 24h")
    return seconds


def _diagram(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    view = None
    if args.conversation is not None:
        snapshot = _engine(args, sys.stderr).snapshot(args.conversation, tenant_id=args.tenant)
        if snapshot is None:
            print(f"dialog: no conversation {args.conversation!r} for tenant {args.tenant!r}", file=sys.stderr)
            return 1
        view = diagrams.live(snapshot)
    data = diagrams.render(args.format, view)
    if args.output is not None:
        args.output.write_bytes(data)
        print(f"wrote {args.output} ({len(data):,} bytes)", file=sys.stderr)
    elif args.format == "png":
        print("dialog: PNG is binary; pass -o FILE", file=sys.stderr)
        return 2
    else:
        out.write(data.decode())
    return 0


def _serve(args: argparse.Namespace) -> int:
    """Run uvicorn on ``dialog.server.app:app_from_env``, once per worker (factory mode)."""
    try:
        import uvicorn

        from dialog.server import config
    except ImportError as exc:
        print(
            f"dialog serve: needs the server extra: pip install 'durable-dialog[server]' ({exc.name} is missing)",
            file=sys.stderr,
        )
        return 2
    if args.workers < 1:
        print("dialog: --workers must be at least 1", file=sys.stderr)
        return 2
    config.prepare()  # check the configuration once, and share one store across the workers
    with _nodelay_listener(uvicorn.Config):
        uvicorn.run(
            "dialog.server.app:app_from_env",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            access_log=False,  # the app logs requests as JSON, without query strings (the page's ?key=)
            log_level="info",
        )
    return 0


@contextlib.contextmanager
def _nodelay_listener(config_class: Any) -> Iterator[None]:
    """Make the listener uvicorn binds for ``--workers N`` report IPPROTO_TCP.

    uvicorn creates it with proto 0; accepted connections inherit that, and asyncio sets
    TCP_NODELAY only on sockets that say TCP, so every keep-alive response waited ~40 ms on the
    client's delayed ACK (measured: 44 ms a request with 2 workers, 2 ms with 1; uvicorn issue
    #3149). Re-wrapping the same descriptor fixes the metadata; nothing else changes.
    """
    original = config_class.bind_socket

    def bind_socket(self: Any) -> socket.socket:
        sock: socket.socket = original(self)
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto != socket.IPPROTO_TCP:
            sock = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
        return sock

    config_class.bind_socket = bind_socket
    try:
        yield
    finally:
        config_class.bind_socket = original


class _Narrator:
    def __init__(self, out: TextIO, conversation: str) -> None:
        self.out = out
        print(f"dialog demo: conversation {conversation!r}\n", file=out)

    def note(self, text: str) -> None:
        print(f"-- {text}", file=self.out)

    def turn(self, container: str, channel: str, text: str, reply: Reply) -> None:
        print(f"   [{container}/{channel}] user:   {text}", file=self.out)
        print(f"   [{container}/{channel}] dialog: {reply.text}", file=self.out)
        print(f"   state={reply.state} outcome={reply.outcome} version={reply.version}\n", file=self.out)


def _where(engine: Engine) -> str:
    pool = getattr(engine.redis, "connection_pool", None)
    kwargs: dict[str, Any] = getattr(pool, "connection_kwargs", {})
    if "port" in kwargs:
        return f"Redis at {kwargs.get('host', '127.0.0.1')}:{kwargs['port']}"
    return "fakeredis"


if __name__ == "__main__":
    raise SystemExit(main())
