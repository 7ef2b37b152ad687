"""An App whose handler runs in a process environment and sets its function's reserved
concurrency through ``context.limits`` (tests/runtime/test_live.py)."""

from __future__ import annotations

from typing import Any

import sluicegate

app = sluicegate.App()
app.queue("q", visibility_timeout=60)


@app.function(name="selfset", timeout=20, isolation="process")
def selfset(event: object, context: Any) -> None:
    current = context.limits.function.get()
    context.limits.function.set(reserved_concurrency=3, expected_version=current.version,
                                why="from a process")


app.map("q", "selfset", batch_size=1)
