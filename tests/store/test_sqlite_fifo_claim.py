"""The SQLite FIFO claim: the group-hopping query returns what a plain scan would.

The claim hops from group to group on an index instead of scanning every visible
message (which made each receive read the whole queue while every group was in flight).
These tests pin it to the scan's answer and check that a version 3 file made before the
index existed gets it when opened.
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from sluicegate.core.config import QueueConfig
from sluicegate.store.base import SendEntry
from sluicegate.store.sqlite import _SQL_FIFO_CLAIM_SELECT, SqliteStore

SCAN = """
SELECT seq, sent_ts, message_id, body, md5, attributes, first_receive_ts, receive_count,
    sender_id, group_id, dedup_id
FROM messages AS m
WHERE queue = ?1 AND hidden = 0 AND group_id IS NOT NULL
    AND NOT EXISTS (
        SELECT 1 FROM messages AS x
        WHERE x.queue = ?1 AND x.hidden = 1 AND x.group_id = m.group_id
            AND x.receive_count > 0
    )
ORDER BY seq LIMIT ?2
"""
"""The claim as it was: every visible message in sequence order, busy groups skipped."""


@pytest.mark.parametrize("seed", range(8))
async def test_claim_returns_the_scans_rows(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    path = tmp_path / "fifo.db"
    async with SqliteStore(path) as store:
        await store.ensure_queue(QueueConfig("a.fifo", content_based_deduplication=True))
        await store.ensure_queue(QueueConfig("b.fifo", content_based_deduplication=True))
        groups = [f"g{i}" for i in range(rng.randint(1, 12))]
        for n in range(rng.randint(1, 120)):
            queue = rng.choice(["a.fifo", "b.fifo"])
            await store.send(queue, f"m{n}", group_id=rng.choice(groups))
        for _ in range(rng.randint(0, 6)):  # some groups in flight, some settled
            got = await store.receive("a.fifo", max_messages=rng.randint(1, 10))
            for m in got:
                if rng.random() < 0.5:
                    await store.delete("a.fifo", m.receipt_handle)
    conn = sqlite3.connect(path)
    try:
        (qid,) = conn.execute("SELECT id FROM queues WHERE name = 'a.fifo'").fetchone()
        for limit in (1, 3, 10, 1000):
            expected = conn.execute(SCAN, (qid, limit)).fetchall()
            assert conn.execute(_SQL_FIFO_CLAIM_SELECT, (qid, limit)).fetchall() == expected
        plan = " ".join(str(r) for r in conn.execute(
            f"EXPLAIN QUERY PLAN {_SQL_FIFO_CLAIM_SELECT}", (qid, 10)))
        assert "messages_fifo_groups" in plan
    finally:
        conn.close()


async def test_a_version_3_file_without_the_group_index_gets_it(tmp_path: Path) -> None:
    path = tmp_path / "old3.db"
    async with SqliteStore(path) as store:
        await store.ensure_queue(QueueConfig("a.fifo", content_based_deduplication=True))
        await store.send_batch("a.fifo", [SendEntry("x", group_id="g")])
    with sqlite3.connect(path) as conn:
        conn.execute("DROP INDEX messages_fifo_groups")
    conn.close()
    async with SqliteStore(path) as store:
        (m,) = await store.receive("a.fifo")
        assert m.body == "x"
    with sqlite3.connect(path) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    conn.close()
    assert "messages_fifo_groups" in names
