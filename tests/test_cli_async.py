"""sluicegate invoke and sluicegate put-events: happy paths and bad input (one line, a
non-zero exit, nothing half-written)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from sluicegate.cli import main

APP = textwrap.dedent(
    """
    import sluicegate

    app = sluicegate.App(async_time_scale=0.01)
    app.queue("out")
    orders = app.event_bus("orders")

    @app.function
    def greet(event, context):
        if "name" not in event:
            raise KeyError("name")
        return {"greeting": "hello " + event["name"]}

    app.rule(orders, {"source": ["shop"]}, targets=["queue:out"], input_path="$.detail")
    """
)


@pytest.fixture
def app(tmp_path: Path) -> str:
    path = tmp_path / "cli_app.py"
    path.write_text(APP)
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_invoke_runs_the_handler_now_and_prints_its_response(
        app: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "invoke", "greet", '{"name": "ada"}', "--app", app)
    assert code == 0
    assert json.loads(out) == {"greeting": "hello ada"}


def test_invoke_reports_a_function_error_on_one_line_and_fails(
        app: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "invoke", "greet", "{}", "--app", app)
    assert code != 0
    assert json.loads(out) == {"errorMessage": "'name'", "errorType": "KeyError"}
    assert "sluicegate: greet failed (Unhandled): KeyError: 'name'" in err


@pytest.mark.parametrize(("argv", "message"), [
    (["invoke", "greet", "{bad"], "PAYLOAD is not JSON"),
    (["invoke", "nope", "{}"], "no function 'nope' in the App (functions: greet)"),
    (["invoke", "greet", "{}", "--file", "missing.json"], "PAYLOAD or --file, not both"),
    (["invoke", "greet", "--file", "/nonexistent/e.json"], "cannot read"),
    (["invoke", "greet", "{}", "--async", "--store", "memory://"],
     "would lose what it writes"),
    (["put-events", "nope", '{"a": 1}', "--source", "s", "--detail-type", "t"],
     "event bus 'nope' is not defined"),
    (["put-events", "orders", '{"a": 1}'], "DETAIL needs --source and --detail-type"),
    (["put-events", "orders", "[1]", "--source", "s", "--detail-type", "t"],
     "is not a JSON object"),
    (["put-events", "orders"], "no events"),
])
def test_bad_input_is_one_line_and_a_non_zero_exit(
        app: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
        message: str) -> None:
    code, _, err = run(capsys, *argv, "--app", app,
                       *([] if "--store" in argv else
                         ["--store", f"sqlite:///{tmp_path / 's.db'}"]))
    assert code != 0
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_invoke_async_and_put_events_write_durably_for_a_running_app(
        app: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = f"sqlite:///{tmp_path / 's.db'}"
    code, out, _ = run(capsys, "invoke", "greet", '{"name": "bo"}', "--async", "--app", app,
                       "--store", store)
    assert code == 0 and "(202)" in out
    entries = tmp_path / "entries.json"
    entries.write_text(json.dumps(
        [{"Source": "shop", "DetailType": "Order", "Detail": {"n": n}} for n in range(12)]
        + [{"Source": "shop", "DetailType": "Order", "Detail": "not json"}]))
    code, out, err = run(capsys, "put-events", "orders", "--file", str(entries),
                         "--app", app, "--store", store)
    assert code != 0  # one entry refused, the others put
    assert out.strip() == "put 12 events on orders; 1 refused"
    assert "entry refused" in err
    code, _, _ = run(capsys, "run", app, "--until-empty", "--store", store, "--status",
                     "none")
    assert code == 0
    code, out, _ = run(capsys, "queues", "--store", store, "--json")
    counts = {q["name"]: q["visible"] for q in json.loads(out)}
    assert counts == {"out": 12}  # the internal queue and the bus are empty: not listed
