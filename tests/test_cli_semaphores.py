"""``sluicegate semaphores`` and ``sluicegate callback``: what they print, piped, and how
they refuse bad input (one line, exit 2)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from sluicegate.cli import main
from sluicegate.core.config import QueueConfig
from sluicegate.store import open_store
from sluicegate.store.semaphores import ParkedBatch


async def _fill(url: str) -> None:
    async with open_store(url) as store:
        await store.ensure_queue(QueueConfig("q"))
        await store.acquire_semaphore("db", "t1", limit=2, ttl=60, timeout=0,
                                      info="host:4121 orders->store_order")
        await store.acquire_semaphore("db", "t2", limit=2, ttl=60, timeout=0,
                                      info="host:4188 report 6f1c2d0e")
        await store._semaphore_acquire("db", "t3", 2, 60, True, "", "host:4190 orders->x")
        await store.acquire_semaphore("partner-api", "t4", limit=1, ttl=60, timeout=0)
        await store.send("q", "hello")
        (message,) = await store.receive("q", visibility_timeout=30)
        await store.park(ParkedBatch("tok", "q->f", "q", {message.message_id:
                                                          message.receipt_handle}, 30.0),
                         ttl=30)


def test_semaphores_lists_holders_within_80_columns_and_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    asyncio.run(_fill(url))
    assert main(["semaphores", "--store", url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert lines[0].split() == ["semaphore", "held", "waiting", "holder", "fence", "for", "(s)"]
    assert lines[1].split()[:6] == ["db", "2/2", "1", "host:4121", "orders->store_order", "1"]
    assert lines[3].split()[:3] == ["partner-api", "1/1", "0"]
    assert main(["semaphores", "--store", url, "--json"]) == 0
    db, api = json.loads(capsys.readouterr().out)
    assert [h["fencing_token"] for h in db["holders"]] == [1, 2]
    assert [w["info"] for w in db["waiters"]] == ["host:4190 orders->x"]
    assert api["limit"] == 1


def test_callback_completes_once_and_refuses_bad_input_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    asyncio.run(_fill(url))
    assert main(["callback", "tok", "heartbeat", "--store", url]) == 0
    assert capsys.readouterr().out == "q->f: kept 1 message hidden\n"
    assert main(["callback", "tok", "success", "--store", url, "--output", "{oops"]) == 2
    assert capsys.readouterr().err.startswith("sluicegate: error: --output is not JSON")
    assert main(["callback", "tok", "failure", "--store", url, "--output", '"Rejected"']) == 0
    assert capsys.readouterr().out == "q->f: 1 message back in q\n"
    assert main(["callback", "tok", "success", "--store", url]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "task token 'tok' is unknown" in err
    assert main(["callback", "tok", "success", "--store", "memory://"]) == 2
    assert "memory://" in capsys.readouterr().err
