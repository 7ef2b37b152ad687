"""The live-limits commands of the ``sluicegate`` CLI: ``limits``, ``limits set``,
``pause``, ``resume``, ``breakers`` (``trip``, ``reset``) and ``control``.

They read and write the store's live settings (:mod:`sluicegate.core.live`,
:mod:`sluicegate.store.live`); every running ``sluicegate run`` on the store applies a
change within a second. Names are checked against what runtimes declared in the store
(every ``sluicegate run`` declares its App's mappings, functions and breakers), or
against ``--app APP`` when given. Writes are recorded as ``cli:USER`` with ``--why``.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import signal
import time
from typing import TYPE_CHECKING, Any

from sluicegate.core.live import (
    LIVE_SETTINGS,
    breaker_scope,
    function_scope,
    mapping_scope,
    parse_live_value,
)
from sluicegate.errors import ConfigError, InputError
from sluicegate.store.base import Store
from sluicegate.store.live import LiveSettings, SettingsChange

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["add_parsers", "breakers", "control", "limits", "pause_resume"]


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the commands to the CLI's subparsers."""
    limits = sub.add_parser(
        "limits", parents=[common],
        help="show live limits, or set them: limits set MAPPING maximum_concurrency=20")
    limits.add_argument("words", nargs="*", metavar="set MAPPING SETTING=VALUE",
                        help="'set', a mapping (queue->function, or its queue), then "
                             "settings: " + ", ".join(LIVE_SETTINGS) + " (VALUE 'unset' "
                             "gives the App's back)")
    limits.add_argument("--json", action="store_true", help="print JSON")
    limits.add_argument("--history", action="store_true",
                        help="show the changes (when, who, old -> new, why)")
    limits.add_argument("--why", default="", metavar="TEXT", help="reason kept in the history")
    limits.add_argument("--app", metavar="APP", help="check names against this App too")
    for name, verb in (("pause", "stop a mapping receiving (AWS's Enabled=false)"),
                       ("resume", "let a paused mapping receive again")):
        p = sub.add_parser(name, parents=[common], help=verb)
        p.add_argument("mapping", metavar="MAPPING", help="queue->function, or its queue")
        p.add_argument("--why", default="", metavar="TEXT", help="reason kept in the history")
        p.add_argument("--app", metavar="APP", help="check names against this App too")
    brk = sub.add_parser("breakers", parents=[common],
                         help="show breakers' live state, or: breakers trip|reset NAME")
    brk.add_argument("words", nargs="*", metavar="trip|reset NAME",
                     help="'trip NAME' opens the breaker by hand, 'reset NAME' closes it")
    brk.add_argument("--json", action="store_true", help="print JSON")
    brk.add_argument("--why", default="", metavar="TEXT", help="reason kept in the history")
    brk.add_argument("--app", metavar="APP", help="check names against this App too")
    ctl = sub.add_parser("control", parents=[common],
                         help="run an App's app.control rules (one process runs them)")
    ctl.add_argument("app", metavar="APP", help="path/to/file.py or module:attr")
    ctl.add_argument("--lease-ttl", type=float, default=10.0, metavar="SECONDS",
                     help="how long a killed controller keeps the rules (default 10)")
    ctl.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this long")
    ctl.add_argument("--log-level", default="WARNING", help="logging level (default WARNING)")


def who() -> str:
    """``cli:USER``: the writer of a change made with the CLI."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "operator"
    return f"cli:{user}"


# ---------------------------------------------------------------------- names
async def _declared(store: Store, spec: str | None) -> dict[str, Any]:
    from sluicegate.runtime.live import declared_app, read_declared

    declared = await read_declared(store)
    if spec is not None:
        from sluicegate.loader import load_app

        app = load_app(spec)
        mine = declared_app(app, getattr(app, "breakers", {}) or {})
        declared["mappings"].update(mine["mappings"])
        declared["functions"].update(mine["functions"])
        declared["breakers"] = sorted(set(declared["breakers"]) | set(mine["breakers"]))
        declared["account"] = mine["account"]
    return declared


def _resolve(declared: dict[str, Any], text: str) -> tuple[str, dict[str, Any]]:
    """The mapping ``text`` names (its name, or its source's when that has one mapping).

    Raises:
        InputError: one line naming the known mappings.
    """
    mappings: dict[str, Any] = declared["mappings"]
    if text in mappings:
        return text, mappings[text]
    by_source = [(n, m) for n, m in mappings.items() if m.get("source") == text]
    if len(by_source) == 1:
        return by_source[0]
    known = ", ".join(sorted(mappings)) or "none yet"
    if len(by_source) > 1:
        raise InputError(f"{text!r} has several mappings: name one of "
                         f"{', '.join(n for n, _ in by_source)}")
    raise InputError(f"unknown mapping {text!r} (known: {known}; a mapping is known once "
                     "sluicegate run ran its App on this store, or with --app APP)")


# ---------------------------------------------------------------------- limits
async def limits(args: argparse.Namespace, store: Store) -> int:
    """``sluicegate limits``: list, ``--history``, or ``set``."""
    words = list(args.words)
    if words:
        if words[0] != "set":
            raise InputError(f"limits {words[0]!r}: expected 'set MAPPING SETTING=VALUE...' "
                             "or nothing")
        if len(words) < 3:
            raise InputError("limits set needs a mapping and at least one SETTING=VALUE")
        return await _set(store, args, words[1], words[2:])
    if args.history:
        return await _history(store, args)
    return await _list(store, args)


async def _set(store: Store, args: argparse.Namespace, name: str, pairs: list[str]) -> int:
    declared = await _declared(store, args.app)
    mapping, info = _resolve(declared, name)
    context = f"mapping {mapping}"
    mapping_changes: dict[str, Any] = {}
    function_changes: dict[str, Any] = {}
    for pair in pairs:
        setting, sep, text = pair.partition("=")
        if not sep or not setting:
            raise InputError(f"{pair!r} must be SETTING=VALUE (settings: "
                             f"{', '.join(LIVE_SETTINGS)})")
        if setting not in LIVE_SETTINGS:
            raise InputError(f"{setting!r} cannot be set live (settings: "
                             f"{', '.join(LIVE_SETTINGS)})")
        value = parse_live_value(setting, text, context)
        if setting == "maximum_concurrency" and info.get("kind") == "stream":
            raise ConfigError(setting, value, "a queue mapping's setting (a stream mapping "
                              "is bounded by its shards and parallelization factor)", context)
        if setting == "reserved_concurrency":
            account = declared.get("account")
            if value is not None and isinstance(account, dict):
                most = int(account["concurrency_limit"]) - int(account["min_unreserved"])
                if value > most:
                    raise ConfigError(setting, value, f"at most {most:,}: more would leave "
                                      "the account less unreserved concurrency than its "
                                      f"minimum of {account['min_unreserved']}",
                                      f"function {info.get('function')}")
            function_changes[setting] = value
        else:
            mapping_changes[setting] = value
    return await _write(store, args, mapping, str(info.get("function", "")),
                        mapping_changes, function_changes)


async def _write(store: Store, args: argparse.Namespace, mapping: str, function: str,
                 mapping_changes: dict[str, Any], function_changes: dict[str, Any]) -> int:
    by = who()
    lines: list[str] = []
    for scope, changes in ((mapping_scope(mapping), mapping_changes),
                           (function_scope(function), function_changes)):
        if not changes:
            continue
        before = await store.get_settings(scope)
        write = await store.write_settings(scope, changes, by=by, why=args.why)
        for setting, value in changes.items():
            old = before.values.get(setting)
            lines.append(f"{scope.partition(':')[2]}: {setting} {_shown(old)} -> "
                         f"{_shown(value)} (version {write.settings.version})")
    for line in lines:
        print(line)
    print("running processes apply it within a second")
    return 0


def _shown(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _ago(at: float | None, now: float) -> str:
    if at is None:
        return "-"
    seconds = max(0.0, now - at)
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.0f}h ago"


def _value(app: Any, live: Any, present: bool) -> dict[str, Any]:
    return {"app": app, "live": live if present else None, "set": present,
            "effective": live if present else app}


async def _rows(store: Store, declared: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
    revision, scopes = await store.list_settings()
    by_scope = {s.scope: s for s in scopes}
    rows: list[dict[str, Any]] = []
    names = set(declared["mappings"]) | {s.scope.partition(":")[2] for s in scopes
                                         if s.scope.startswith("mapping:")}
    for name in sorted(names):
        info = declared["mappings"].get(name, {})
        function = info.get("function")
        m = by_scope.get(mapping_scope(name)) or LiveSettings(mapping_scope(name))
        f = (by_scope.get(function_scope(function)) or LiveSettings(function_scope(function))
             if function else LiveSettings(""))
        fn_info = declared["functions"].get(function, {}) if function else {}
        rows.append({
            "mapping": name,
            "function": function,
            "kind": info.get("kind"),
            "maximum_concurrency": _value(info.get("maximum_concurrency"),
                                          m.values.get("maximum_concurrency"),
                                          "maximum_concurrency" in m.values),
            "enabled": _value(info.get("enabled", True), m.values.get("enabled"),
                              "enabled" in m.values),
            "reserved_concurrency": _value(fn_info.get("reserved_concurrency"),
                                           f.values.get("reserved_concurrency"),
                                           "reserved_concurrency" in f.values),
            "version": m.version,
            "function_version": f.version,
            "changed_at": max((x for x in (m.changed_at, f.changed_at) if x is not None),
                              default=None),
            "changed_by": (m if (m.changed_at or 0) >= (f.changed_at or 0) else f).changed_by,
        })
    return revision, rows


async def _list(store: Store, args: argparse.Namespace) -> int:
    declared = await _declared(store, args.app)
    revision, rows = await _rows(store, declared)
    if args.json:
        print(json.dumps({"revision": revision, "mappings": rows}, indent=2))
        return 0
    if not rows:
        print("no mappings known to this store yet (run an App on it, or pass --app APP)")
        return 0
    from sluicegate.tables import print_table

    print_table(_limits_table(rows, time.time()))
    return 0


def _cell(v: dict[str, Any], unset: str) -> str:
    effective = v["effective"]
    text = unset if effective is None else _shown(effective)
    return f"{text} (live)" if v["set"] else text


def _limits_table(rows: list[dict[str, Any]], now: float) -> Table:
    """``sluicegate limits``: one row per mapping; ``(live)`` marks a live value."""
    from rich.table import Table

    table = Table("mapping", "max concurrency", "enabled", "reserved", "changed", box=None)
    for r in rows:
        changed = "-"
        if r["changed_at"] is not None:
            changed = f"{_ago(r['changed_at'], now)} by {r['changed_by']}"
        table.add_row(r["mapping"], _cell(r["maximum_concurrency"], "no limit"),
                      _cell(r["enabled"], "true"), _cell(r["reserved_concurrency"], "none"),
                      changed)
    return table


def _change_text(change: SettingsChange) -> str:
    return ", ".join(f"{name} {_shown(change.old.get(name))} -> {_shown(value)}"
                     for name, value in change.new.items())


async def _history(store: Store, args: argparse.Namespace) -> int:
    history = await store.settings_history(limit=1000)
    if args.json:
        print(json.dumps({"history": [json.loads(h.to_json()) for h in history]}, indent=2))
        return 0
    if not history:
        print("no live limits were ever changed on this store")
        return 0
    from rich.table import Table

    from sluicegate.tables import print_table

    table = Table("when (UTC)", "what", "change", "by", "why", box=None)
    for h in history:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(h.at))
        table.add_row(when, h.scope, _change_text(h), h.by, h.why or "-")
    print_table(table)
    return 0


# ---------------------------------------------------------------------- pause / resume
async def pause_resume(args: argparse.Namespace, store: Store) -> int:
    """``sluicegate pause MAPPING`` / ``sluicegate resume MAPPING``."""
    declared = await _declared(store, args.app)
    mapping, info = _resolve(declared, args.mapping)
    enabled = args.command == "resume"
    return await _write(store, args, mapping, str(info.get("function", "")),
                        {"enabled": enabled}, {})


# ---------------------------------------------------------------------- breakers
async def breakers(args: argparse.Namespace, store: Store) -> int:
    """``sluicegate breakers``: list, or ``trip NAME`` / ``reset NAME``."""
    words = list(args.words)
    declared = await _declared(store, args.app)
    _, scopes = await store.list_settings()
    live = {s.scope.partition(":")[2]: s for s in scopes if s.scope.startswith("breaker:")}
    names = sorted(set(declared["breakers"]) | set(live))
    if words:
        if words[0] not in ("trip", "reset") or len(words) != 2:
            raise InputError("breakers takes nothing, 'trip NAME' or 'reset NAME'")
        action, name = words
        if name not in names:
            raise InputError(f"unknown breaker {name!r} (known: {', '.join(names) or 'none'};"
                             " a breaker is known once sluicegate run ran its App on this "
                             "store, or with --app APP)")
        state = "open" if action == "trip" else "closed"
        changes: dict[str, Any] = {"state": state}
        if action == "trip":
            changes["reason"] = args.why or "tripped by hand"
        write = await store.write_settings(breaker_scope(name), changes, by=who(),
                                           why=args.why)
        print(f"breaker {name}: {state} (version {write.settings.version}); running "
              "processes apply it within a second")
        return 0
    from sluicegate.runtime.live import breaker_state

    observed: dict[str, Any] = {}
    for n in names:
        raw = await store.read_shared(breaker_state(n))
        try:
            observed[n] = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            observed[n] = None
    rows = [{"breaker": n,
             "observed": observed[n],
             "state": live[n].values.get("state") if n in live else None,
             "reason": live[n].values.get("reason") if n in live else None,
             "version": live[n].version if n in live else 0,
             "changed_at": live[n].changed_at if n in live else None,
             "changed_by": live[n].changed_by if n in live else ""} for n in names]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no breakers known to this store")
        return 0
    from rich.table import Table

    from sluicegate.tables import print_table

    now = time.time()
    table = Table("breaker", "state", "set by hand", "reason", "changed", box=None)
    for r in rows:
        changed = "-" if r["changed_at"] is None else (
            f"{_ago(float(r['changed_at']), now)} by {r['changed_by']}")
        seen = r["observed"]
        state = "-" if not isinstance(seen, dict) else (
            f"{seen.get('state')} {_ago(float(seen.get('at') or now), now)}")
        table.add_row(str(r["breaker"]), state, str(r["state"] or "-"),
                      str(r["reason"] or "-"), changed)
    print_table(table)
    return 0


# ---------------------------------------------------------------------- control
async def control(args: argparse.Namespace, store: Store) -> int:
    """``sluicegate control APP``: run the App's rules while holding its lease."""
    from sluicegate.cluster.coordinator import default_worker_id
    from sluicegate.loader import load_app
    from sluicegate.runtime.controller import Controller

    level = getattr(logging, str(args.log_level).upper(), None)
    if not isinstance(level, int):
        raise InputError(f"--log-level {args.log_level!r} is not a logging level")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.lease_ttl <= 0:
        raise InputError(f"--lease-ttl {args.lease_ttl:g} must be above 0")
    if args.duration is not None and args.duration <= 0:
        raise InputError(f"--duration {args.duration:g} must be above 0")
    app = load_app(args.app)
    if not app.controls:
        raise InputError(f"{args.app!r} has no rules (app.control(...))")
    controller = Controller(app, store, holder=default_worker_id(), ttl=args.lease_ttl)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, controller.stop)
    timer = loop.call_later(args.duration, controller.stop) if args.duration else None
    try:
        await controller.run()
    finally:
        if timer is not None:
            timer.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    print(f"controller {controller.holder}: {controller.writes} changes written")
    return 0
