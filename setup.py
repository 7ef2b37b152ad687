"""Build script for sluicegate.

By default the package is pure Python. With ``SLUICEGATE_COMPILE=1`` in the environment,
the modules the simulator spends its time in are also compiled to C extensions with mypyc
(a part of mypy), which makes the simulator two to four times as fast; the Python sources
stay the reference and behave the same. ``make demo`` and ``make test`` build this way.
See docs/performance.md.
"""

from __future__ import annotations

import os

from setuptools import setup

COMPILED = (
    "sluicegate/core/batcher.py",
    "sluicegate/core/limit.py",
    "sluicegate/core/mapping.py",
    "sluicegate/core/pool.py",
    "sluicegate/core/results.py",
    "sluicegate/core/scaling.py",
    "sluicegate/core/types.py",
    "sluicegate/sim/driver.py",
    "sluicegate/sim/models.py",
    "sluicegate/store/memory.py",
)
"""The modules compiled with ``SLUICEGATE_COMPILE=1``: the core's queue mapping and what it
calls per invocation, the memory store's engine, and the simulator's event loop."""


def compile_requested() -> bool:
    """Whether ``SLUICEGATE_COMPILE`` asks for the compiled build (build_support's
    backend reads the variable the same way)."""
    return os.environ.get("SLUICEGATE_COMPILE", "").strip().lower() in {"1", "true", "yes"}


def ext_modules() -> list[object]:
    if not compile_requested():
        return []
    from mypyc.build import mypycify

    # The build environment holds setuptools and mypy only: the optional dependencies
    # (redis, matplotlib) that modules outside COMPILED import are not there to be read.
    # Its own cache keeps the build apart from `make lint`'s mypy.
    options = ["--ignore-missing-imports", "--cache-dir", "build/mypyc-cache"]
    return list(mypycify([*options, *(f"src/{path}" for path in COMPILED)],
                         opt_level="3", debug_level="1", group_name="sluicegate"))


setup(ext_modules=ext_modules(), options={"build_ext": {"parallel": os.cpu_count() or 1}})
