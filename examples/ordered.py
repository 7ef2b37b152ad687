"""Ordered sources: per-account payments on a FIFO queue, clicks on a partitioned stream.

Payments of one account must be applied in order; different accounts may run in
parallel. Each account is a message group of ``payments.fifo``: sluicegate delivers one
batch of a group at a time, and ``process_fifo_batch(..., skip_group_on_error=True)``
stops only the failing account's group when a payment fails, so the others keep flowing.

Clicks are partitioned by user on a 4-shard stream read with a parallelization factor of
5: up to 20 batches at once, each user's clicks in order. A malformed click is isolated
by bisection, retried twice, then reported to ``click-failures`` with AWS's on-failure
record, and the shard moves on.

Try it::

    sluicegate send payments.fifo '{"account": "a1", "amount": 5}' --group-id a1 --app examples/ordered.py
    sluicegate put clicks '{"user": "u1", "page": "/"}' --partition-key u1 --app examples/ordered.py
    sluicegate run examples/ordered.py --until-empty
    sluicegate streams
"""

from __future__ import annotations

import base64
import json
import threading
from collections import defaultdict

import sluicegate
from sluicegate.partial import process_fifo_batch

app = sluicegate.App()

app.queue("payments.fifo", visibility_timeout=30, content_based_deduplication=True,
          dead_letter_queue="payments-dlq.fifo",
          max_receive_count=5)
app.stream("clicks", shard_count=4)
app.queue("click-failures")

balances: dict[str, int] = defaultdict(int)
page_views: dict[str, int] = defaultdict(int)
_lock = threading.Lock()


def apply_payment(record: dict) -> None:
    payment = json.loads(record["body"])
    if payment["amount"] < 0:
        raise ValueError(f"negative amount for {payment['account']}")
    with _lock:
        balances[payment["account"]] += payment["amount"]


@app.function(timeout=10)
def payments(event, context):
    return process_fifo_batch(event, apply_payment, skip_group_on_error=True)


@app.function(timeout=10)
def clicks(event, context):
    for record in event["Records"]:
        click = json.loads(base64.b64decode(record["kinesis"]["data"]))
        with _lock:
            page_views[click["page"]] += 1


app.map("payments.fifo", payments, batch_size=10, report_batch_item_failures=True,
        maximum_concurrency=10)
app.map("clicks", clicks, batch_size=100, parallelization_factor=5,
        bisect_batch_on_function_error=True, maximum_retry_attempts=2,
        on_failure="click-failures")
