"""The package's pure-Python sources, for checks that need them while the compiled build
is installed (setup.py: ``SLUICEGATE_COMPILE=1``, what ``make test`` installs).

Some checks spy on the core or the memory engine by replacing methods, which a compiled
class does not allow; and the two builds must give the same results. Both run code in a
new interpreter that imports :mod:`sluicegate` from a copy of its ``.py`` files.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import sluicegate
from sluicegate.build import BUILD

PACKAGE = Path(sluicegate.__file__).parent
CHILD = "SLUICEGATE_TEST_PURE_CHILD"
"""Set in the interpreter that runs on the pure-Python copy."""


def compiled() -> bool:
    """Whether the installed package is the compiled build."""
    return BUILD == "compiled"


def stale_extensions() -> list[str]:
    """Compiled modules whose Python source changed after they were built: their extension
    would run instead of the edit (``make test`` rebuilds them)."""
    stale = []
    for extension in PACKAGE.rglob("*.so"):
        source = extension.with_name(extension.name.split(".")[0] + ".py")
        if source.exists() and source.stat().st_mtime > extension.stat().st_mtime:
            stale.append(str(source.relative_to(PACKAGE.parent)))
    return sorted(stale)


def pure_copy(directory: Path) -> Path:
    """Copy the package's sources, without extension modules, into ``directory``; put the
    directory first on ``PYTHONPATH`` to import them."""
    shutil.copytree(PACKAGE, directory / "sluicegate",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    return directory


def run_pure(args: list[str], directory: Path,
             timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``python ARGS`` on the pure-Python copy made in ``directory``."""
    tests = Path(__file__).parent
    path = [str(pure_copy(directory)), str(tests)]
    env = {**os.environ, CHILD: "1",
           "PYTHONPATH": os.pathsep.join([*path, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=tests.parent, check=False)


def delegated(request: pytest.FixtureRequest, tmp_path: Path) -> bool:
    """For a test that spies by replacing methods: with the compiled build installed, run
    this very test again on the pure-Python sources, require it to pass, and return
    ``True`` (the caller then returns); with the pure build (or in that child), ``False``:
    the caller runs its checks itself."""
    if not compiled() or os.environ.get(CHILD):
        return False
    node = request.node.nodeid
    done = run_pure(["-m", "pytest", "-q", "-p", "no:cacheprovider", node], tmp_path)
    assert done.returncode == 0, (
        f"{node} failed on the pure-Python sources:\n{done.stdout}{done.stderr}")
    assert re.search(r"^1 passed\b", done.stdout, re.MULTILINE), done.stdout
    return True
