"""Live limits from the command line: ``limits`` (table, ``--json``, ``--history``),
``limits set``, ``pause``/``resume``, ``breakers`` (``trip``/``reset``) and ``control``:
80 columns on a terminal, whole cells when piped, one-line errors for bad input."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from sluicegate.cli import main
from sluicegate.runtime.live import declare, declared_app
from sluicegate.store import open_store

APP = textwrap.dedent(
    """
    import sluicegate

    app = sluicegate.App(name="limits-demo")
    app.queue("customer-notifications-eu-west-1", visibility_timeout=30)
    app.queue("orders")
    app.stream("clicks")

    @app.function(reserved_concurrency=20)
    def process(event, context):
        pass

    @app.function
    def notify(event, context):
        pass

    app.map("orders", process, maximum_concurrency=10)
    app.map("customer-notifications-eu-west-1", notify)
    app.map("clicks", process)
    app.control("orders", maximum_concurrency=sluicegate.control.schedule(
        {"00:00-24:00": 12}, default=12))
    """
)


@pytest.fixture
def app_file(tmp_path: Path) -> Path:
    path = tmp_path / "limits_app.py"
    path.write_text(APP)
    return path


@pytest.fixture
def store_url(tmp_path: Path, app_file: Path) -> str:
    """A store on which a runtime declared the App (as ``sluicegate run`` does)."""
    url = f"sqlite:///{tmp_path / 'limits.db'}"

    async def run() -> None:
        from sluicegate.loader import load_app

        async with open_store(url) as store:
            await declare(store, declared_app(load_app(str(app_file)), ["db"]))

    asyncio.run(run())
    return url


def cli(*args: str) -> int:
    return main(list(args))


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sluicegate: error: "), err
    assert "Traceback" not in err
    return err


def test_set_then_list_then_history(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("limits", "set", "orders", "maximum_concurrency=20", "reserved_concurrency=5",
               "--why", "black friday", "--store", store_url) == 0
    out = capsys.readouterr().out
    assert "orders->process: maximum_concurrency unset -> 20 (version 1)" in out
    assert "process: reserved_concurrency unset -> 5 (version 1)" in out
    assert cli("limits", "--store", store_url) == 0
    out = capsys.readouterr().out
    (row,) = [line for line in out.splitlines() if line.startswith(" orders->process")]
    assert "20 (live)" in row and "5 (live)" in row and "by cli:" in row
    (other,) = [line for line in out.splitlines() if "customer-notifications" in line]
    assert "no limit" in other
    assert cli("limits", "--history", "--store", store_url) == 0
    out = capsys.readouterr().out
    assert "maximum_concurrency unset -> 20" in out and "black friday" in out


def test_json(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("pause", "orders->process", "--store", store_url) == 0
    capsys.readouterr()
    assert cli("limits", "--json", "--store", store_url) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = {r["mapping"]: r for r in doc["mappings"]}
    assert rows["orders->process"]["enabled"] == {"app": True, "live": False, "set": True,
                                                  "effective": False}
    assert rows["orders->process"]["maximum_concurrency"]["effective"] == 10
    assert rows["orders->process"]["reserved_concurrency"]["app"] == 20
    assert doc["revision"] == 1
    assert cli("resume", "orders", "--store", store_url, "--why", "fixed") == 0
    capsys.readouterr()
    assert cli("limits", "--history", "--json", "--store", store_url) == 0
    history = json.loads(capsys.readouterr().out)["history"]
    assert [(h["new"], h["why"]) for h in history] == [({"enabled": False}, ""),
                                                      ({"enabled": True}, "fixed")]


def test_80_columns_on_a_terminal_and_whole_cells_when_piped(
    store_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("limits", "set", "customer-notifications-eu-west-1", "maximum_concurrency=900",
               "--why", "a reason long enough to need wrapping on a narrow terminal",
               "--store", store_url) == 0
    capsys.readouterr()
    # piped: natural width, every cell whole on its line
    for args in (["limits"], ["limits", "--history"], ["breakers"]):
        assert cli(*args, "--store", store_url) == 0
        out = capsys.readouterr().out
        assert "\x1b[" not in out
    assert cli("limits", "--history", "--store", store_url) == 0
    piped = capsys.readouterr().out
    assert any("a reason long enough to need wrapping on a narrow terminal" in line
               for line in piped.splitlines())
    # a terminal of 80 columns: nothing wider, nothing cut
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setenv("COLUMNS", "80")
    for args in (["limits"], ["limits", "--history"], ["breakers"]):
        assert cli(*args, "--store", store_url) == 0
        out = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)
        assert max(len(line) for line in out.splitlines()) <= 80, out
        assert "…" not in out
        if args == ["limits"]:
            assert "customer-notifications-eu-west-1" in out.replace("\n", "")


def test_breakers_trip_and_reset(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("breakers", "--store", store_url) == 0
    assert " db " in capsys.readouterr().out + " "
    assert cli("breakers", "trip", "db", "--why", "db failover", "--store", store_url) == 0
    assert "breaker db: open (version 1)" in capsys.readouterr().out
    assert cli("breakers", "--json", "--store", store_url) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["breaker"], row["state"], row["reason"]) == ("db", "open", "db failover")
    assert cli("breakers", "reset", "db", "--store", store_url) == 0
    assert "breaker db: closed (version 2)" in capsys.readouterr().out
    # the state a runtime's breaker last reported shows beside what was set by hand
    seen = {"state": "half_open", "previous": "open", "reason": "", "by": "breaker",
            "at": time.time(), "worker": "w1"}

    async def publish() -> None:
        async with open_store(store_url) as store:
            await store.write_shared("breaker-state:db", json.dumps(seen))

    asyncio.run(publish())
    assert cli("breakers", "--store", store_url) == 0
    (row,) = [line for line in capsys.readouterr().out.splitlines()
              if line.startswith(" db ")]
    assert "half_open" in row and "closed" in row
    assert cli("breakers", "--json", "--store", store_url) == 0
    (row_json,) = json.loads(capsys.readouterr().out)
    assert row_json["observed"]["state"] == "half_open"


@pytest.mark.parametrize(("args", "message"), [
    (["limits", "set", "nowhere", "maximum_concurrency=5"], "unknown mapping 'nowhere'"),
    (["limits", "set", "orders", "maximum_concurrency=1"], "allowed an integer 2-1,000"),
    (["limits", "set", "orders", "maximum_concurrency=lots"], "'lots'"),
    (["limits", "set", "orders", "batch_size=5"], "'batch_size' cannot be set live"),
    (["limits", "set", "orders", "enabled"], "must be SETTING=VALUE"),
    (["limits", "set", "orders"], "at least one SETTING=VALUE"),
    (["limits", "set", "clicks", "maximum_concurrency=5"], "a queue mapping's setting"),
    (["limits", "set", "orders", "reserved_concurrency=-1"], "0-1,000,000"),
    (["limits", "set", "orders", "reserved_concurrency=901"], "at most 900"),
    (["limits", "show"], "expected 'set MAPPING"),
    (["pause", "nowhere"], "unknown mapping"),
    (["breakers", "trip", "nope"], "unknown breaker 'nope'"),
    (["breakers", "open", "db"], "'trip NAME' or 'reset NAME'"),
])
def test_bad_input_is_one_line_and_changes_nothing(
    store_url: str, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert cli(*args, "--store", store_url) == 2
    assert message in error_line(capsys)
    assert cli("limits", "--history", "--json", "--store", store_url) == 0
    assert json.loads(capsys.readouterr().out) == {"history": []}


def test_names_come_from_an_app_when_given(tmp_path: Path, app_file: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert cli("pause", "orders", "--store", url, "--app", str(app_file)) == 0
    assert "enabled unset -> false" in capsys.readouterr().out
    assert cli("limits", "--store", url) == 0
    # nothing ran on it yet: the mapping is listed for its live value alone
    assert "false (live)" in capsys.readouterr().out


def test_a_memory_store_is_refused_for_changes(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("pause", "orders", "--store", "memory://") == 2
    assert "memory://" in error_line(capsys)


def test_control_runs_the_rules_for_a_while(store_url: str, app_file: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("control", str(app_file), "--store", store_url, "--duration", "0.5") == 0
    assert "1 changes written" in capsys.readouterr().out

    async def read() -> Any:
        async with open_store(store_url) as store:
            return await store.get_settings("mapping:orders->process")

    settings = asyncio.run(read())
    assert settings.values == {"maximum_concurrency": 12}
    assert settings.changed_by == "controller:orders->process:maximum_concurrency"


def test_control_refuses_an_app_without_rules(tmp_path: Path, store_url: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "norules.py"
    path.write_text("import sluicegate\napp = sluicegate.App()\n")
    assert cli("control", str(path), "--store", store_url) == 2
    assert "has no rules" in error_line(capsys)
