"""Execution environments in the runtime's process (the default isolation).

Each environment runs one invocation at a time and has its own instance of the handler's
module and of the user modules it imports; environments are counted, reused warmest
first, reaped when idle and retired after a timeout. The handlers live in files written
to a temporary directory and loaded as the CLI loads them, or imported as a package.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sluicegate
from sluicegate.core.config import FunctionConfig
from sluicegate.loader import load_app
from sluicegate.runtime.driver import Runtime
from sluicegate.runtime.environments import ModuleInvoker
from sluicegate.runtime.invoker import Invoker
from sluicegate.runtime.metrics import ALL_MAPPINGS, Metrics
from sluicegate.store import open_store
from sluicegate.store.base import SendEntry

FUNCTION = FunctionConfig("envs", timeout=1)

# --------------------------------------------------------------------------- files

POWERTOOLS_APP = '''
"""The aws-lambda-powertools SQS batch handler as its documentation writes it."""
import json
import time

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)

import sluicegate

LEDGER = {ledger!r}

app = sluicegate.App()
app.queue("orders", visibility_timeout=2, dead_letter_queue="orders-dlq", max_receive_count=2)

processor = BatchProcessor(event_type=EventType.SQS)


def note(**fields):
    with open(LEDGER, "a") as ledger:
        ledger.write(json.dumps(fields) + "\\n")


def record_handler(record):
    order = record.json_body["order"]
    time.sleep(0.002)  # long enough for invocations to overlap
    if order % 10 == 0:
        raise ValueError(f"order {{order}} cannot be processed")
    note(order=order)


@app.function(timeout=1)
def lambda_handler(event, context):
    ids = [json.loads(r["body"])["order"] for r in event["Records"]]
    try:
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    except Exception:
        note(raised=ids)
        raise


app.map("orders", lambda_handler, batch_size=10, report_batch_item_failures=True)
'''

HELPERS = '''
"""A user module: its module-level state must belong to one environment."""
active = 0
peak = 0
'''

COUNTER_APP = '''
"""Handlers whose module-level counters must never see two invocations at once."""
import asyncio
import time

import helpers
import sluicegate

app = sluicegate.App()
app.queue("sync-jobs", visibility_timeout=5)
app.queue("async-jobs", visibility_timeout=5)
active = 0  # the async handler's, in this module


@app.function(timeout=2)
def sync_worker(event, context):
    helpers.active += 1
    helpers.peak = max(helpers.peak, helpers.active)
    try:
        if helpers.active != 1:
            raise RuntimeError(f"{helpers.active} invocations share helpers.active")
        time.sleep(0.01)
    finally:
        helpers.active -= 1


@app.function(timeout=2)
async def async_worker(event, context):
    global active
    active += 1
    try:
        if active != 1:
            raise RuntimeError(f"{active} invocations share the module's counter")
        await asyncio.sleep(0.01)
    finally:
        active -= 1


app.map("sync-jobs", sync_worker, batch_size=1, maximum_concurrency=4, scaling="fixed")
app.map("async-jobs", async_worker, batch_size=1, maximum_concurrency=4, scaling="fixed")
'''

PACKAGE = {
    "__init__.py": "",
    "helpers.py": '''
import itertools

_ids = itertools.count(1)


class State:
    def __init__(self):
        self.calls = 0


state = State()
loaded = next(_ids)
''',
    "util/__init__.py": "from .. import helpers as parent_helpers\n",
    "util/lazy.py": '''
from __future__ import annotations

from dataclasses import dataclass

from ..helpers import state


@dataclass
class Line:  # string annotations: dataclasses looks the module up by name
    sku: str
''',
    "handlers.py": '''
import time

from . import helpers
from .helpers import state
from .util import parent_helpers
from shop import helpers as absolute_helpers
import shop.helpers


def handler(event, context):
    from .util.lazy import state as lazily_imported  # a lazy, relative import
    import shop.util.lazy as lazy_module  # a lazy, absolute one
    state.calls += 1
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("raise"):
        raise SystemExit(3)
    return {
        "state": id(state),
        "calls": state.calls,
        "same": (
            helpers.state is state
            and parent_helpers is helpers
            and absolute_helpers is helpers
            and shop.helpers is helpers
            and lazily_imported is state
            and lazy_module.state is state
        ),
    }


async def async_handler(event, context):
    import asyncio
    state.calls += 1
    await asyncio.sleep(event.get("sleep", 0))
    return {"state": id(state), "calls": state.calls}
''',
}


def run(coro: Any) -> Any:
    async def main() -> Any:
        return await coro

    return asyncio.run(main())


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The package ``shop`` (a user package on ``sys.path``), imported once here."""
    root = tmp_path_factory.mktemp("envs")
    for name, text in PACKAGE.items():
        path = root / "shop" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module("shop.handlers")
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n == "shop" or n.startswith("shop.")]:
            del sys.modules[name]


# --------------------------------------------------------------------------- the runtime


@pytest.mark.slow  # two visibility timeouts of 2 s before the failing ones dead-letter
def test_the_powertools_batch_handler_gets_aws_results_by_default(tmp_path: Path) -> None:
    pytest.importorskip("aws_lambda_powertools")
    ledger = tmp_path / "ledger.jsonl"
    app_file = tmp_path / "powertools_orders.py"
    app_file.write_text(textwrap.dedent(POWERTOOLS_APP.format(ledger=str(ledger))))
    app = load_app(str(app_file))

    async def main() -> Any:
        store = open_store(f"sqlite:///{tmp_path / 'orders.db'}")
        await store.open()
        try:
            runtime = Runtime(app, store)
            await runtime.prepare()
            for start in range(0, 100, 10):
                await store.send_batch(
                    "orders",
                    [SendEntry(json.dumps({"order": n})) for n in range(start, start + 10)],
                )
            summary = await runtime.run(until_empty=True)
            counts = {name: await store.counts(name) for name in app.queues}
            return summary, counts, runtime.metrics.totals()
        finally:
            await store.close()

    summary, counts, totals = run(main())
    lines = [json.loads(line) for line in ledger.read_text().splitlines()]
    processed = Counter(line["order"] for line in lines if "order" in line)
    raised = [line["raised"] for line in lines if "raised" in line]
    good = [n for n in range(100) if n % 10]
    assert processed == Counter(good)  # each good order exactly once
    assert summary.processed == 90
    assert counts["orders-dlq"].visible == 10
    assert counts["orders"].total == 0
    # A batch fails as a whole only when every record in it failed (Powertools raises
    # then); never one holding a good order.
    assert all(n % 10 == 0 for ids in raised for n in ids)
    assert totals.cold_starts >= 1
    assert app.functions["lambda_handler"].config.isolation == "module"


@pytest.mark.parametrize("function", ["sync_worker", "async_worker"])
def test_module_level_counters_never_see_two_invocations_at_once(
    tmp_path: Path, function: str
) -> None:
    (tmp_path / "helpers.py").write_text(HELPERS)
    app_file = tmp_path / f"counter_app_{function}.py"
    app_file.write_text(textwrap.dedent(COUNTER_APP))
    app = load_app(str(app_file))
    queue = {"sync_worker": "sync-jobs", "async_worker": "async-jobs"}[function]
    for mapping in app.mappings:
        if mapping.function != function:
            object.__setattr__(mapping, "enabled", False)

    async def main() -> Any:
        store = open_store(f"sqlite:///{tmp_path / 'counter.db'}")
        await store.open()
        try:
            runtime = Runtime(app, store)
            await runtime.prepare()
            for _ in range(4):
                await store.send_batch(queue, [SendEntry("{}") for _ in range(10)])
            summary = await runtime.run(until_empty=True)
            invoker = next(r.invoker for r in runtime.runners if r.function.name == function)
            return summary, invoker, runtime.metrics.totals()
        finally:
            await store.close()

    summary, invoker, totals = run(main())
    assert summary.processed == 40
    assert sum(m.errors for m in summary.mappings) == 0
    assert isinstance(invoker, ModuleInvoker) and invoker.reloadable
    # Invocations did overlap, in environments of their own: several were started,
    # each counted once in the metrics.
    assert 1 < invoker.cold_starts <= 4
    assert totals.cold_starts == invoker.cold_starts == summary.cold_starts
    # The original modules were never used by an invocation.
    assert sys.modules["helpers"].peak == 0


# --------------------------------------------------------------------------- user modules


def test_each_environment_has_its_own_user_modules(shop: Any) -> None:
    invoker = ModuleInvoker(shop.handler, function=FUNCTION, max_workers=3)

    async def main() -> list[Any]:
        try:
            together = await asyncio.gather(
                *(invoker.invoke({"sleep": 0.05}, invoker.new_context()) for _ in range(3))
            )
            again = await invoker.invoke({}, invoker.new_context())
            return [*together, again]
        finally:
            invoker.close()

    results = run(main())
    assert all(r.ok for r in results), [r.error_text for r in results]
    responses = [r.response for r in results]
    assert all(r["same"] for r in responses)  # every way of importing found the copy
    assert len({r["state"] for r in responses[:3]}) == 3  # one state per environment
    assert responses[3]["calls"] == 2  # a warm environment kept its state
    assert responses[3]["state"] in {r["state"] for r in responses[:3]}
    assert invoker.cold_starts == 3
    original = sys.modules["shop.helpers"]
    assert original.state.calls == 0 and id(original.state) not in {
        r["state"] for r in responses
    }
    assert original.loaded == 1  # each copy has its own module-level counter too


def test_a_user_module_is_copied_third_party_and_stdlib_are_shared(shop: Any) -> None:
    from sluicegate.runtime import environments

    assert environments.is_user_module("shop.helpers")
    assert not environments.is_user_module("json")
    assert not environments.is_user_module("pytest")
    assert not environments.is_user_module("sluicegate.app")


def test_a_scripts_main_block_does_not_run_again_in_environments(tmp_path: Path) -> None:
    script = tmp_path / "script_app.py"
    marker = tmp_path / "mains.txt"
    script.write_text(textwrap.dedent(f'''
        from __future__ import annotations

        import asyncio
        from dataclasses import dataclass

        import sluicegate
        from sluicegate.runtime.environments import ModuleInvoker
        from sluicegate.core.config import FunctionConfig

        seen = []


        @dataclass
        class Seen:  # string annotations: dataclasses looks the module up by name
            count: int


        def handler(event, context):
            seen.append(event)
            return {{"name": __name__, "seen": Seen(len(seen)).count}}

        async def main():
            invoker = ModuleInvoker(handler, function=FunctionConfig("f"), max_workers=2)
            try:
                results = await asyncio.gather(
                    *(invoker.invoke({{}}, invoker.new_context()) for _ in range(2))
                )
            finally:
                invoker.close()
            print([r.response for r in results], len(seen), invoker.reloadable)

        if __name__ == "__main__":
            with open({str(marker)!r}, "a") as f:
                f.write("main\\n")
            asyncio.run(main())
    '''))
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert out.strip() == (
        "[{'name': '__mp_main__', 'seen': 1}, {'name': '__mp_main__', 'seen': 1}] 0 True"
    )
    assert marker.read_text() == "main\n"


# --------------------------------------------------------------------------- lifecycle


def test_cold_starts_warm_reuse_warmest_first_and_idle_reaping(shop: Any) -> None:
    now = [1000.0]
    cold: list[int] = []
    invoker = ModuleInvoker(
        shop.handler,
        function=FUNCTION,
        max_workers=3,
        clock=lambda: now[0],
        idle_timeout=60,
        on_cold_start=lambda: cold.append(1),
    )

    async def main() -> dict[str, Any]:
        try:
            # Three at once, ending in this order: the 0.01 s one first, the 0.1 s one last.
            three = await asyncio.gather(
                *(
                    invoker.invoke({"sleep": s}, invoker.new_context())
                    for s in (0.1, 0.05, 0.01)
                )
            )
            warm = await invoker.invoke({}, invoker.new_context())
            after = (invoker.cold_starts, invoker.environments, invoker.pool.idle)
            now[0] += 59  # still warm
            still = await invoker.invoke({}, invoker.new_context())
            now[0] += 60  # the other two have been idle for 119 s; the warmest for 60
            reaped = await invoker.invoke({}, invoker.new_context())
            return {
                "three": three,
                "warm": warm,
                "after": after,
                "still": still,
                "reaped": reaped,
                "end": (invoker.cold_starts, invoker.environments),
            }
        finally:
            invoker.close()

    out = run(main())
    states = [r.response["state"] for r in out["three"]]
    # The last one released (the 0.1 s one) is the warmest: reused first.
    assert out["warm"].response == {"state": states[0], "calls": 2, "same": True}
    assert out["after"] == (3, 3, 3)
    assert out["still"].response["state"] == states[0]
    # Every environment had been idle for 60 s or more: all reaped, a cold start.
    assert out["reaped"].response["calls"] == 1
    assert out["reaped"].response["state"] not in states
    assert out["end"] == (4, 1)
    assert len(cold) == 4


def test_a_timeout_retires_the_environment(shop: Any) -> None:
    invoker = ModuleInvoker(shop.handler, function=FUNCTION, max_workers=1, timeout=0.1)

    async def main() -> Any:
        try:
            first = await invoker.invoke({}, invoker.new_context())
            late = await invoker.invoke({"sleep": 0.3}, invoker.new_context())
            gone = invoker.environments
            after = await invoker.invoke({}, invoker.new_context())
            return first, late, gone, after, invoker.cold_starts, invoker.zombies
        finally:
            invoker.close()

    first, late, gone, after, cold_starts, zombies = run(main())
    assert late.timed_out and gone == 0
    # A new environment, although max_workers=1 and the old one's thread still runs.
    assert after.ok and after.response["calls"] == 1
    assert after.response["state"] != first.response["state"]
    assert cold_starts == 2 and zombies == 1


def test_an_async_timeout_and_an_exit_retire_the_environment(shop: Any) -> None:
    invoker = ModuleInvoker(shop.async_handler, function=FUNCTION, max_workers=1, timeout=0.1)
    exiting = ModuleInvoker(shop.handler, function=FUNCTION, max_workers=1)

    async def main() -> Any:
        try:
            first = await invoker.invoke({}, invoker.new_context())
            late = await invoker.invoke({"sleep": 0.3}, invoker.new_context())
            after = await invoker.invoke({}, invoker.new_context())
            exited = await exiting.invoke({"raise": True}, exiting.new_context())
            await exiting.invoke({}, exiting.new_context())
            return first, late, after, exited, invoker.cold_starts, exiting.cold_starts
        finally:
            invoker.close()
            exiting.close()

    first, late, after, exited, cold_starts, exit_cold_starts = run(main())
    assert first.ok and late.timed_out and after.ok
    assert after.response["calls"] == 1 and cold_starts == 2
    assert isinstance(exited.error, SystemExit) and exit_cold_starts == 2


def test_a_failing_init_fails_the_invocation_and_the_next_one_retries(tmp_path: Path) -> None:
    flag = tmp_path / "broken"
    flag.write_text("yes")
    path = tmp_path / "flaky_init.py"
    path.write_text(textwrap.dedent(f'''
        import os
        if os.path.exists({str(flag)!r}):
            raise RuntimeError("cannot connect")

        def handler(event, context):
            return "ok"
    '''))
    sys.path.insert(0, str(tmp_path))
    try:
        flag.rename(tmp_path / "off")
        module = importlib.import_module("flaky_init")
        (tmp_path / "off").rename(flag)
        invoker = ModuleInvoker(module.handler, function=FUNCTION, max_workers=1)

        async def main() -> Any:
            try:
                failed = await invoker.invoke({}, invoker.new_context())
                flag.unlink()
                ok = await invoker.invoke({}, invoker.new_context())
                return failed, ok
            finally:
                invoker.close()

        failed, ok = run(main())
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("flaky_init", None)
    assert failed.function_error
    assert failed.error_text.startswith(
        "Runtime.ImportModuleError: Unable to import flaky_init.handler: RuntimeError"
    )
    assert ok.ok and ok.response == "ok" and invoker.cold_starts == 2


# --------------------------------------------------------------------------- fallback


def test_a_handler_defined_in_a_function_is_shared_one_invocation_at_a_time() -> None:
    lock = threading.Lock()
    state = {"active": 0, "peak": 0}

    def handler(event: Any, context: Any) -> int:
        with lock:
            state["active"] += 1
            state["peak"] = max(state["peak"], state["active"])
        threading.Event().wait(0.02)
        with lock:
            state["active"] -= 1
        return 1

    invoker = ModuleInvoker(handler, function=FUNCTION, max_workers=2)
    assert not invoker.reloadable

    async def main() -> Any:
        try:
            return await asyncio.gather(
                *(invoker.invoke({}, invoker.new_context()) for _ in range(6))
            )
        finally:
            invoker.close()

    results = run(main())
    assert all(r.ok for r in results)
    assert state["peak"] == 2  # two environments, each one invocation at a time
    assert invoker.cold_starts == 2


def test_the_default_isolation_is_environments_and_shared_is_the_old_mode() -> None:
    app = sluicegate.App()
    app.queue("q")

    @app.function
    def a(event: Any, context: Any) -> None:
        return None

    @app.function(isolation="shared")
    def b(event: Any, context: Any) -> None:
        return None

    @app.function(isolation="thread")
    def c(event: Any, context: Any) -> None:
        return None

    app.map("q", a)
    app.map("q", b)
    app.map("q", c)
    runtime = Runtime(app, open_store("memory://"))
    invokers = {f: runtime._invoker_for(app.functions[f]) for f in "abc"}
    assert isinstance(invokers["a"], ModuleInvoker)
    assert type(invokers["b"]) is Invoker and type(invokers["c"]) is Invoker
    for invoker in invokers.values():
        invoker.close()


def test_cold_starts_are_counted_per_mapping_or_in_the_aggregate_only() -> None:
    now = [100.0]
    metrics = Metrics(clock=lambda: now[0])
    metrics.cold_started("orders")
    metrics.cold_started("orders", 2)
    metrics.cold_started(None)  # a function with several mappings
    now[0] += 1
    assert metrics.last_complete("orders").cold_starts == 3  # type: ignore[union-attr]
    assert metrics.last_complete(ALL_MAPPINGS).cold_starts == 4  # type: ignore[union-attr]
    assert metrics.totals("orders").cold_starts == 3
    assert metrics.totals().cold_starts == 4
