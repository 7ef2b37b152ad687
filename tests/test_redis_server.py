"""The rule the Redis fixtures follow when no redis-server is installed: skip on a
developer's machine, fail in CI (``tests/redis_server.py``)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from redis_server import REDIS_BINARY, in_ci, require_redis_binary


@pytest.fixture
def empty_path(tmp_path: Path) -> str:
    """A PATH with no redis-server on it."""
    directory = tmp_path / "bin"
    directory.mkdir()
    return str(directory)


@pytest.mark.parametrize("value", ["true", "TRUE", "1", "yes"])
def test_a_missing_server_fails_in_ci(empty_path: str, value: str) -> None:
    with pytest.raises(pytest.fail.Exception, match=f"CI={value} says this is a CI run"):
        require_redis_binary({"CI": value, "PATH": empty_path})


@pytest.mark.parametrize("environ", [{}, {"CI": ""}, {"CI": "false"}, {"CI": "0"}])
def test_a_missing_server_skips_outside_ci(empty_path: str, environ: dict[str, str]) -> None:
    with pytest.raises(pytest.skip.Exception, match=f"no {REDIS_BINARY} binary on PATH"):
        require_redis_binary({**environ, "PATH": empty_path})


def test_a_server_on_path_is_used_in_ci_and_out(empty_path: str) -> None:
    binary = Path(empty_path) / REDIS_BINARY
    binary.write_text("#!/bin/sh\n")
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    for environ in ({"CI": "true"}, {}):
        assert require_redis_binary({**environ, "PATH": empty_path}) == str(binary)


def test_ci_is_read_from_the_process_environment_by_default(
    monkeypatch: pytest.MonkeyPatch, empty_path: str
) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("PATH", empty_path + os.pathsep + "/nonexistent")
    assert in_ci()
    with pytest.raises(pytest.fail.Exception):
        require_redis_binary()
    monkeypatch.delenv("CI")
    assert not in_ci()
    with pytest.raises(pytest.skip.Exception):
        require_redis_binary()
