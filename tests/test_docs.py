"""Every code block of README.md and docs/*.md runs as written.

The blocks are found afresh on every run, so a block added to a document is tested
without touching this file. Each fenced block must say what it is:

- ``python``: run as a file with this interpreter, in the document's workspace (below).
  A block whose first line is ``# NAME.py`` is that file: it is written under that name
  (other blocks' commands use it, e.g. ``--app jobs.py``), and a later block whose first
  line is ``# NAME.py, continued`` is appended to it; the joined file runs once, as the
  test of its last block. A fragment that is neither runnable alone nor marked as a
  continuation fails. A block that defines ``test_*`` functions is run by pytest.
- ``sh`` (or ``bash``, ``shell``): run command by command (a trailing ``\\`` joins lines)
  with bash, ``-o pipefail``, in the workspace; ``sluicegate`` and ``python`` are this
  interpreter's environment's (its ``bin`` directory leads ``PATH``). A non-zero exit
  fails the test with the document's line, the command and its output.
- ``toml``: parsed; a scenario (a ``[queue]``, ``[stream]`` or ``[topic]`` table) is
  validated by the scenario loader. ``# NAME.toml`` on the first line writes it under
  that name, as for Python.
- ``json``: parsed (a ``--json`` output a user would feed to another program).
- ``text``: output, a synopsis or a listing; shown, never run. A fence without a
  language, or with another one, fails: every block is classified in the document.

The workspace: one temporary directory per document, holding a copy of ``examples/`` and
every named block of the document, shared by its blocks in document order (a command may
read what an earlier block's command stored in ``./sluicegate.db``). Running one block
alone first runs the document's earlier shell blocks.

Substitutions, the only places a command does not run exactly as written (each is in
:func:`_substitute`):

- ``redis://HOST:PORT`` is the test's own redis-server (``tests/redis_server.py``),
  whatever host and port the document names; the database number is kept.
- ``sluicegate run`` without ``--until-empty`` or ``--duration`` is meant to run until
  stopped: it gets ``--duration 3``.
- ``sluicegate simulate`` and ``sluicegate plan`` get ``--set duration=20s``: 20 simulated
  seconds instead of the scenario's minutes, so the pure-Python build finishes in
  seconds (the scenario, options and outputs are otherwise as written).
- ``make TARGET`` runs ``make -n TARGET`` in the project root: the target exists and
  its recipe expands (running it would build a virtualenv or run this suite).
- ``pip install`` installs nothing: each ``sluicegate[EXTRA]`` must name an extra this
  distribution declares, each ``-r FILE`` must exist in the project and hold valid
  requirements.
- ``python bench/SCRIPT.py ARGS`` runs ``SCRIPT.py --help`` from the project, and every
  ``--option`` of ``ARGS`` must appear in the help (a benchmark measures for minutes).
- ``.venv/bin/`` before a program is dropped: the program is this environment's.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import InvalidRequirement, Requirement

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent

COMMAND_TIMEOUT = 90.0
"""Seconds one command or Python block may take before it fails the test."""

RUN_BOUND = "--duration 3"
"""What a ``sluicegate run`` meant to run until stopped gets."""

SIMULATED_BOUND = "--set duration=20s"
"""What ``sluicegate simulate`` and ``plan`` get: 20 simulated seconds."""

PYTHON = ("python", "py")
SHELL = ("sh", "bash", "shell")
TOML = ("toml",)
JSON = ("json",)
TEXT = ("text",)

_FENCE = re.compile(r"^( {0,3})(```+|~~~+)\s*([\w+-]*)\s*$")
_NAMED = re.compile(r"^#\s*([\w./-]+\.(?:py|toml))(,?\s+continued\b.*)?\s*$")


@dataclass
class Block:
    """One fenced block of a document."""

    document: Path
    line: int  # of the opening fence, 1-based
    language: str
    text: str
    name: str | None = None  # "# NAME.py" / "# NAME.toml" on the first line
    continued: bool = False  # "# NAME.py, continued"

    @property
    def where(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"


def parse_blocks(path: Path) -> list[Block]:
    """The fenced blocks of a markdown file, in order."""
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        indent, fence, language = match.groups()
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not (lines[j].strip().startswith(fence[0] * len(fence))
                                      and lines[j].strip().strip(fence[0]) == ""):
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
            j += 1
        block = Block(path, i + 1, language.lower(), "\n".join(body) + "\n")
        named = _NAMED.match(body[0]) if body else None
        if named is not None:
            block.name, block.continued = named.group(1), named.group(2) is not None
        blocks.append(block)
        i = j + 1
    return blocks


@dataclass
class Unit:
    """What one test runs: a block, or a named file joined from its blocks."""

    document: Path
    index: int  # in the document's list of units
    kind: str  # "python", "shell", "toml", "text", "bad"
    blocks: list[Block]

    @property
    def block(self) -> Block:
        return self.blocks[-1]

    @property
    def text(self) -> str:
        return "".join(b.text for b in self.blocks)

    @property
    def id(self) -> str:
        return self.block.where


def _kind(language: str) -> str:
    for kind, names in (("python", PYTHON), ("shell", SHELL), ("toml", TOML), ("json", JSON),
                        ("text", TEXT)):
        if language in names:
            return kind
    return "bad"


def document_units(path: Path) -> list[Unit]:
    """A document's test units, in order: each block on its own, except the blocks of
    one named file, which make one unit at the place of the file's last block."""
    blocks = parse_blocks(path)
    files: dict[str, list[Block]] = {}
    for block in blocks:
        if block.name is not None:
            files.setdefault(block.name, []).append(block)
    units: list[Unit] = []
    for block in blocks:
        kind = _kind(block.language)
        if block.name is not None and kind in ("python", "toml"):
            joined = files[block.name]
            if block is not joined[-1]:
                continue
            units.append(Unit(path, len(units), kind, joined))
        else:
            units.append(Unit(path, len(units), kind, [block]))
    return units


def _all_units() -> list[Unit]:
    return [u for path in DOCUMENTS for u in document_units(path)]


def _slow(unit: Unit) -> bool:
    """Units that run the simulator take seconds each."""
    if unit.kind == "shell":
        return re.search(r"\bsluicegate\s+(simulate|plan)\b", unit.text) is not None
    return unit.kind == "python" and re.search(r"\bsimulate(_any)?\(", unit.text) is not None


def _params() -> Iterator[object]:
    for unit in _all_units():
        marks = [pytest.mark.slow] if _slow(unit) else []
        yield pytest.param(unit, id=unit.id, marks=marks)


# ---------------------------------------------------------------------- workspaces
@dataclass
class Workspace:
    """A document's directory: examples/, its named blocks, and the store its commands
    share."""

    document: Path
    path: Path
    done: set[int] = field(default_factory=set)


@pytest.fixture(scope="session")
def workspaces(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, Workspace]:
    return {}


def _workspace(workspaces: dict[Path, Workspace], document: Path,
               factory: pytest.TempPathFactory) -> Workspace:
    if document not in workspaces:
        path = factory.mktemp(document.stem)
        shutil.copytree(ROOT / "examples", path / "examples")
        for unit in document_units(document):
            if unit.block.name is not None and unit.kind in ("python", "toml"):
                target = path / unit.block.name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(unit.text, encoding="utf-8")
        workspaces[document] = Workspace(document, path)
    return workspaces[document]


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICEGATE_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONPATH", None)
    env["COLUMNS"] = "100"
    return env


def _fail(unit: Unit, what: str, result: subprocess.CompletedProcess[str] | None = None) -> None:
    detail = ""
    if result is not None:
        detail = (f"\nexit status {result.returncode}\n--- stdout\n{result.stdout[-3000:]}"
                  f"\n--- stderr\n{result.stderr[-3000:]}")
    pytest.fail(f"{unit.id}: {what}{detail}", pytrace=False)


def _exec(unit: Unit, argv: list[str], cwd: Path, what: str
          ) -> subprocess.CompletedProcess[str]:
    """Run ``argv``; a timeout fails the test with what was printed so far."""
    try:
        return subprocess.run(argv, cwd=cwd, env=_environment(), capture_output=True,
                              text=True, timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
        pytest.fail(f"{unit.id}: {what} still running after {COMMAND_TIMEOUT:g} s\n"
                    f"--- stdout\n{out[-3000:]}\n--- stderr\n{err[-3000:]}", pytrace=False)


# ---------------------------------------------------------------------- shell
def shell_commands(text: str) -> list[str]:
    """The commands of a shell block: lines joined at a trailing backslash; blank lines
    and comment lines left out."""
    commands: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = pending + raw
        if line.rstrip().endswith("\\"):
            pending = line.rstrip()[:-1] + " "
            continue
        pending = ""
        if line.strip() and not line.lstrip().startswith("#"):
            commands.append(line.strip())
    if pending.strip():
        commands.append(pending.strip())
    return commands


def _check_pip(unit: Unit, words: list[str]) -> None:
    """``pip install ...``: nothing installed; what it names must exist."""
    extras = set(metadata.metadata("sluicegate").get_all("Provides-Extra") or [])
    args = words[words.index("install") + 1:]
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-r":
            requirements = ROOT / args[i + 1]
            if not requirements.is_file():
                _fail(unit, f"pip install -r {args[i + 1]}: no such file in the project")
            for line in requirements.read_text().splitlines():
                line = line.split("#", 1)[0].strip()
                if line:
                    try:
                        Requirement(line)
                    except InvalidRequirement as exc:
                        _fail(unit, f"{args[i + 1]}: {line!r} is not a requirement: {exc}")
            i += 2
            continue
        if not arg.startswith("-"):
            requirement = Requirement(arg)
            if requirement.name == "sluicegate" and not requirement.extras <= extras:
                _fail(unit, f"pip install {arg}: sluicegate declares no extra "
                            f"{sorted(requirement.extras - extras)} (it has {sorted(extras)})")
        i += 1


def _check_bench(unit: Unit, workspace: Workspace, words: list[str]) -> None:
    """``python bench/SCRIPT.py ARGS``: the script's --help names every option used."""
    script, args = words[1], words[2:]
    result = _exec(unit, [sys.executable, str(ROOT / script), "--help"], workspace.path,
                   f"{script} --help")
    if result.returncode != 0:
        _fail(unit, f"{script} --help failed", result)
    for option in (a.split("=", 1)[0] for a in args if a.startswith("--")):
        if option not in result.stdout:
            _fail(unit, f"{script} has no option {option}", result)


def _substitute(command: str, redis_url: str | None) -> str:
    """The command as run (the module docstring lists each substitution and why), each
    part of a list or pipeline (``a && b``, ``a & b``, ``a | b``) on its own."""
    parts = re.split(r"(\s*(?:&&|\|\||[;&|])\s*)", command)
    return "".join(part if i % 2 else _substitute_one(part, redis_url)
                   for i, part in enumerate(parts))


def _substitute_one(command: str, redis_url: str | None) -> str:
    command = re.sub(r"^\.venv/bin/", "", command)
    if redis_url is not None:
        hostport = redis_url.removeprefix("redis://").rsplit("/", 1)[0]
        command = re.sub(r"(rediss?://)[^/\s'\"]+", lambda m: m.group(1) + hostport, command)
    if re.match(r"^sluicegate\s+run\b", command) and not re.search(
            r"--until-empty|--duration", command):
        command = re.sub(r"^sluicegate\s+run\b", f"sluicegate run {RUN_BOUND}", command)
    command = re.sub(r"^sluicegate\s+(simulate|plan)\b",
                     lambda m: f"sluicegate {m.group(1)} {SIMULATED_BOUND}", command)
    return re.sub(r"^make\s+", f"make -n -C {shlex.quote(str(ROOT))} ", command)


def _run_shell(unit: Unit, workspace: Workspace, request: pytest.FixtureRequest) -> None:
    redis_url = None
    if re.search(r"rediss?://", unit.text):
        server = request.getfixturevalue("redis_server")
        server.flushall()
        redis_url = server.url
    for command in shell_commands(unit.text):
        words = shlex.split(command, comments=True)
        program = words[0].removeprefix(".venv/bin/") if words else ""
        if program in ("pip", "pip3") or words[:3] in (["python", "-m", "pip"],
                                                         ["python3", "-m", "pip"]):
            _check_pip(unit, words)
            continue
        if program in ("python", "python3") and len(words) > 1 and words[1].startswith("bench/"):
            _check_bench(unit, workspace, words)
            continue
        run = _substitute(command, redis_url)
        result = _exec(unit, ["bash", "-o", "pipefail", "-c", run], workspace.path, command)
        if result.returncode != 0:
            shown = command if run == command else f"{command}\n(run as: {run})"
            _fail(unit, f"command failed:\n{shown}", result)


# ---------------------------------------------------------------------- python, toml
def _run_python(unit: Unit, workspace: Workspace) -> None:
    if unit.block.name is not None:
        path = workspace.path / unit.block.name
    else:
        path = workspace.path / f"block_{unit.block.line}.py"
        path.write_text(unit.text, encoding="utf-8")
    if re.search(r"^(async\s+)?def test_", unit.text, re.MULTILINE):
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)]
    else:
        argv = [sys.executable, str(path)]
    result = _exec(unit, argv, workspace.path, f"the Python block ({path.name})")
    if result.returncode != 0:
        _fail(unit, f"the Python block ({path.name}) failed", result)


SCENARIO_TABLES = ("queue", "stream", "topic")


def _check_toml(unit: Unit, workspace: Workspace) -> None:
    from sluicegate.errors import SluicegateError
    from sluicegate.sim import load_any_scenario

    try:
        data = tomllib.loads(unit.text)
    except tomllib.TOMLDecodeError as exc:
        _fail(unit, f"not TOML: {exc}")
    if any(table in data for table in SCENARIO_TABLES):
        source: Path | str = (workspace.path / unit.block.name if unit.block.name
                              else unit.text)
        try:
            load_any_scenario(source)
        except SluicegateError as exc:
            _fail(unit, f"the scenario does not load: {exc}")


# ---------------------------------------------------------------------- the tests
def _run(unit: Unit, workspace: Workspace, request: pytest.FixtureRequest) -> None:
    if unit.kind == "bad":
        language = unit.block.language or "no language"
        _fail(unit, f"a fence with {language!r}: say what the block is: python, sh, toml, "
                    "json or text (output, synopses and listings)")
    elif unit.kind == "shell":
        _run_shell(unit, workspace, request)
    elif unit.kind == "python":
        _run_python(unit, workspace)
    elif unit.kind == "toml":
        _check_toml(unit, workspace)
    elif unit.kind == "json":
        try:
            json.loads(unit.text)
        except json.JSONDecodeError as exc:
            _fail(unit, f"not JSON: {exc}")
    workspace.done.add(unit.index)


@pytest.mark.parametrize("unit", list(_params()))
def test_block_runs_as_written(unit: Unit, workspaces: dict[Path, Workspace],
                               tmp_path_factory: pytest.TempPathFactory,
                               request: pytest.FixtureRequest) -> None:
    workspace = _workspace(workspaces, unit.document, tmp_path_factory)
    for earlier in document_units(unit.document)[:unit.index]:
        if earlier.kind == "shell" and earlier.index not in workspace.done:
            _run(earlier, workspace, request)
    _run(unit, workspace, request)


def test_every_document_has_blocks() -> None:
    """The extractor finds the blocks it should (a broken fence pattern would find none
    and pass everything)."""
    units = {u.id: u for u in _all_units()}
    quickstart = [u for u in units.values() if u.block.name == "jobs.py"]
    assert len(quickstart) == 1 and "def handle(" in quickstart[0].text
    assert any(u.kind == "shell" and "sluicegate run jobs.py --until-empty" in u.text
               for u in units.values())
    assert {u.kind for u in units.values()} >= {"python", "shell", "toml", "text"}


def test_fragment_and_continuation_are_told_apart(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "```python\n# app.py\nx = 1\n```\n\ntext\n\n```python\n# app.py, continued\n"
        "print(x)\n```\n\n```sh\nsluicegate queues \\\n  --json  # all\n```\n\n```\nbare\n```\n"
    )
    units = document_units(doc)
    assert [u.kind for u in units] == ["python", "shell", "bad"]
    assert units[0].text == "# app.py\nx = 1\n# app.py, continued\nprint(x)\n"
    assert units[0].block.line == 8
    assert [c.split() for c in shell_commands(units[1].text)] == [
        ["sluicegate", "queues", "--json", "#", "all"]]


def test_substitutions() -> None:
    url = "redis://127.0.0.1:5555/0"
    assert _substitute("sluicegate queues --store redis://cache:6379/2", url) == (
        "sluicegate queues --store redis://127.0.0.1:5555/2")
    assert _substitute("sluicegate run app.py", None) == f"sluicegate run {RUN_BOUND} app.py"
    assert _substitute("sluicegate run app.py --until-empty", None) == (
        "sluicegate run app.py --until-empty")
    assert _substitute("sluicegate plan x.toml", None) == f"sluicegate plan {SIMULATED_BOUND} x.toml"
    assert _substitute(".venv/bin/sluicegate queues", None) == "sluicegate queues"
    assert _substitute("sluicegate run a.py & sluicegate run a.py --until-empty", None) == (
        f"sluicegate run {RUN_BOUND} a.py & sluicegate run a.py --until-empty")
    assert _substitute("printf x | sluicegate send q --file -", None) == (
        "printf x | sluicegate send q --file -")


def test_quickstart_ends_in_seconds(tmp_path: Path) -> None:
    """The quickstart's App, send and run, in an empty directory: the message is
    processed (not dead-lettered after minutes of retries) and the run ends at once."""
    import time

    units = [u for u in document_units(ROOT / "README.md")
             if u.block.name == "jobs.py" or "--app jobs.py" in u.text]
    app, commands = units[0], units[1]
    (tmp_path / "jobs.py").write_text(app.text, encoding="utf-8")
    started = time.monotonic()
    outputs = []
    for command in shell_commands(commands.text):
        result = _exec(commands, ["bash", "-o", "pipefail", "-c", command], tmp_path, command)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    elapsed = time.monotonic() - started
    assert "processing order {'id': 1}" in outputs[-1]
    assert "processed 1 message " in outputs[-1] and "dead-lettered 0" in outputs[-1]
    assert elapsed < 15, f"the quickstart took {elapsed:.1f} s"
