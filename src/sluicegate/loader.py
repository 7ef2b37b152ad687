"""Finding the App a user points the CLI at: ``path/to/file.py`` or ``module:attr``."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from sluicegate.app import App
from sluicegate.errors import AppLoadError, SluicegateError

__all__ = ["load_app"]


def load_app(spec: str) -> App:
    """Import the App named by ``spec``.

    ``spec`` is a Python file (``examples/demo.py``, optionally ``examples/demo.py:app``)
    or a module path (``mypkg.jobs:app``; the attribute defaults to ``app``). Without an
    attribute, the module's single ``App`` instance is used.

    Returns:
        The App, with ``source`` set to ``spec`` so that process isolation can import it
        again in its execution environments.

    Raises:
        AppLoadError: the file or module cannot be found or imported, or holds no App;
            the message says which: a directory named instead of a file (with the
            Python files in it), a missing attribute (with the module's Apps), an
            attribute that is not an App (and what it is).
        ConfigError: the App's definitions are invalid (raised while importing it).
    """
    target, _, attr = spec.partition(":")
    if (target.endswith(".py") or "/" in target or "\\" in target
            or (Path(target).is_dir() and not (Path(target) / "__init__.py").exists())):
        module = _import_file(Path(target))
    else:
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))
        try:
            module = importlib.import_module(target)
        except SluicegateError:
            raise
        except ModuleNotFoundError as exc:
            raise AppLoadError(f"cannot import {target!r}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - any import failure is the user's to see
            raise AppLoadError(f"importing {target!r} failed: {type(exc).__name__}: {exc}") from None
    app = _find_app(module, spec, attr)
    app.source = spec
    return app


def _import_file(path: Path) -> ModuleType:
    if path.is_dir():
        files = sorted(p.name for p in path.glob("*.py"))
        hint = (f" ({', '.join(files[:5])}{', ...' if len(files) > 5 else ''})" if files
                else " (it holds none)")
        raise AppLoadError(f"{str(path)!r} is a directory: name the Python file that defines "
                           f"the App{hint}, or module:attr")
    if not path.exists():
        raise AppLoadError(f"app file {str(path)!r} does not exist")
    if not path.is_file():
        raise AppLoadError(f"app file {str(path)!r} is not a regular file")
    name = f"sluicegate_app_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise AppLoadError(f"cannot load {str(path)!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    parent = str(path.resolve().parent)
    if parent not in sys.path:
        sys.path.insert(0, parent)
    try:
        spec.loader.exec_module(module)
    except SluicegateError:
        raise
    except Exception as exc:  # noqa: BLE001 - any import failure is the user's to see
        sys.modules.pop(name, None)
        raise AppLoadError(
            f"importing {str(path)!r} failed: {type(exc).__name__}: {exc}"
        ) from None
    return module


def _find_app(module: ModuleType, spec: str, attr: str) -> App:
    if attr:
        if not hasattr(module, attr):
            names = sorted(k for k, v in vars(module).items() if isinstance(v, App))
            known = f"its Apps: {', '.join(names)}" if names else "it defines no sluicegate.App"
            raise AppLoadError(f"{spec!r}: {spec.rpartition(':')[0]!r} has no attribute "
                               f"{attr!r} ({known})")
        found = getattr(module, attr)
        if not isinstance(found, App):
            kind = "function" if callable(found) else type(found).__name__
            raise AppLoadError(f"{spec!r}: {attr!r} is a {kind}, not a sluicegate.App")
        return found
    default = getattr(module, "app", None)
    if isinstance(default, App):
        return default
    apps = [v for v in vars(module).values() if isinstance(v, App)]
    if len(apps) == 1:
        return apps[0]
    if not apps:
        raise AppLoadError(f"{spec!r} defines no sluicegate.App")
    raise AppLoadError(f"{spec!r} defines several Apps; name one as {spec}:NAME")
