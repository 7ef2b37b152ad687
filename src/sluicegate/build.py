"""Which build of sluicegate is installed: :data:`BUILD`.

Kept out of the package's top level: telling the builds apart means importing a module
that the compiled build compiles (the core's queue mapping), which ``import sluicegate``
alone need not do, and it is a question for ``sluicegate --version``, benchmarks and
tests rather than for an App.
"""

from __future__ import annotations

import importlib.machinery
from typing import Final, Literal

__all__ = ["BUILD"]


def _build() -> Literal["compiled", "pure Python"]:
    from sluicegate.core import mapping

    loader = getattr(mapping, "__loader__", None)
    return "compiled" if isinstance(loader, importlib.machinery.ExtensionFileLoader) else "pure Python"


BUILD: Final = _build()
"""``"compiled"`` when the core, the memory engine and the simulator's loop run as C
extensions (the compiled build: setup.py, ``SLUICEGATE_COMPILE=1``; what ``make``
installs), else ``"pure Python"``. Both behave the same; the compiled one simulates two to
four times as fast (docs/performance.md)."""
