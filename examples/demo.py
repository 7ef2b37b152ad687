"""The demo job: an orders queue drained into a slow, fragile downstream.

``make demo`` sends 3,000 messages to ``orders`` and runs this App until the queue is
empty. The handler is an ordinary Lambda handler: it calls the downstream once per
record and reports the records that failed as ``batchItemFailures``, so only those are
retried. A few orders are poison (they fail every time) and end in ``orders-dlq`` after
three receives. The mapping's maximum concurrency keeps the downstream, which handles
8 calls at a time and slows down beyond that, from being flooded.
"""

from __future__ import annotations

import json
import random
import threading
import time

import sluicegate

DOWNSTREAM_CAPACITY = 8
"""Calls the downstream serves at once; more queue up and wait."""

CALL_SECONDS = 0.02
"""Time one downstream call takes when it is not overloaded."""

TRANSIENT_FAILURE_RATE = 0.03
"""Share of calls that fail once for no reason (a flaky network)."""

POISON_EVERY = 97
"""Orders whose number is a multiple of this always fail."""


class FragileDownstream:
    """A dependency that serves a few calls at a time and fails now and then."""

    def __init__(self) -> None:
        self._slots = threading.BoundedSemaphore(DOWNSTREAM_CAPACITY)
        self._random = random.Random(7)
        self._lock = threading.Lock()

    def write(self, order: dict[str, int]) -> None:
        with self._slots:
            time.sleep(CALL_SECONDS)
            with self._lock:
                flaky = self._random.random() < TRANSIENT_FAILURE_RATE
        if order.get("n", 0) % POISON_EVERY == POISON_EVERY - 1:
            raise ValueError(f"order {order} is malformed")
        if flaky:
            raise ConnectionError("downstream reset the connection")


downstream = FragileDownstream()
app = sluicegate.App()
orders = app.queue("orders", visibility_timeout=3, dead_letter_queue="orders-dlq",
                   max_receive_count=3)


@app.function(timeout=2)
def process(event, context):
    failures = []
    for record in event["Records"]:
        try:
            downstream.write(json.loads(record["body"]))
        except (ValueError, ConnectionError):
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


app.map(orders, process, batch_size=10, maximum_concurrency=20,
        report_batch_item_failures=True, scaling="aws")
