"""``sluicegate.loops``: the event loop ``sluicegate run`` and ``sluicegate.run`` use."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

from sluicegate import loops

HAS_UVLOOP = importlib.util.find_spec("uvloop") is not None


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


@pytest.mark.skipif(not HAS_UVLOOP, reason="uvloop is not installed on this platform")
def test_runs_on_uvloop_where_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(loops.LOOP_ENV, raising=False)
    assert loops.loop_name() == "uvloop"
    assert loops.run(_loop_module()) == "uvloop"


@pytest.mark.parametrize("value", ["asyncio", " AsyncIO "])
def test_the_environment_chooses_asyncios_loop(monkeypatch: pytest.MonkeyPatch,
                                               value: str) -> None:
    monkeypatch.setenv(loops.LOOP_ENV, value)
    assert loops.loop_name() == "asyncio"
    assert loops.run(_loop_module()) == "asyncio"


def test_an_app_runs_to_its_end_on_the_default_loop(tmp_path: object) -> None:
    import sluicegate
    from sluicegate.store import SendEntry, SqliteStore

    app = sluicegate.App()
    app.queue("q")
    seen: list[str] = []

    @app.function
    async def handle(event: dict, context: object) -> None:
        seen.append(type(asyncio.get_running_loop()).__module__.split(".")[0])

    app.map("q", handle, batch_size=1)
    path = f"{tmp_path}/loops.db"

    async def fill() -> None:
        async with SqliteStore(path) as store:
            await store.ensure_queue(app.queues["q"])
            await store.send_batch("q", [SendEntry(str(n)) for n in range(5)])

    asyncio.run(fill())
    summary = sluicegate.run(app, f"sqlite:///{path}", until_empty=True)
    assert summary.processed == 5
    assert set(seen) == {loops.loop_name()}


def test_an_unknown_loop_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from sluicegate.cli import main
    from sluicegate.errors import ConfigError

    monkeypatch.setenv(loops.LOOP_ENV, "uvlop")
    with pytest.raises(ConfigError, match="SLUICEGATE_LOOP"):
        loops.loop_name()
    assert main(["queues", "--store", "memory://"]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "SLUICEGATE_LOOP" in err and "'uvlop'" in err
