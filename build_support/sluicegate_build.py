"""In-tree build backend: setuptools', plus mypy among the build requirements when
``SLUICEGATE_COMPILE=1`` asks for the compiled build (see setup.py)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403  (the backend's other hooks, unchanged)

MYPYC_REQUIREMENT = "mypy>=2.4"
"""What compiles the extension modules (mypyc ships with mypy)."""

FLAG = "SLUICEGATE_COMPILE"
"""The variable asking for the compiled build; its values are read as setup.py's
``compile_requested`` reads them (this backend runs before setup.py can be imported)."""


@contextmanager
def _pure() -> Iterator[bool]:
    """Ask setuptools for its own requirements with the compiled build off: it runs
    setup.py to find them, before mypy can be installed. Yields whether it was on."""
    saved = os.environ.pop(FLAG, None)
    try:
        yield (saved or "").strip().lower() in {"1", "true", "yes"}
    finally:
        if saved is not None:
            os.environ[FLAG] = saved


def _requires(hook: Callable[[Any], list[str]], config_settings: Any) -> list[str]:
    with _pure() as compiled:
        requires = list(hook(config_settings))
    return [*requires, MYPYC_REQUIREMENT] if compiled else requires


def get_requires_for_build_wheel(config_settings: dict[str, Any] | None = None) -> list[str]:
    return _requires(_setuptools.get_requires_for_build_wheel, config_settings)


def get_requires_for_build_editable(config_settings: dict[str, Any] | None = None) -> list[str]:
    return _requires(_setuptools.get_requires_for_build_editable, config_settings)


def prepare_metadata_for_build_wheel(metadata_directory: str,
                                     config_settings: dict[str, Any] | None = None) -> str:
    with _pure():  # the metadata do not depend on it: no need to compile twice
        return _setuptools.prepare_metadata_for_build_wheel(metadata_directory, config_settings)


def prepare_metadata_for_build_editable(metadata_directory: str,
                                        config_settings: dict[str, Any] | None = None) -> str:
    with _pure():
        return _setuptools.prepare_metadata_for_build_editable(metadata_directory,
                                                               config_settings)
