"""One definition per setting: the configuration classes read their defaults and ranges
from sluicegate.core.settings."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from sluicegate.core.adaptive import AdaptiveConfig
from sluicegate.core.async_events import AsyncConfig
from sluicegate.core.breaker import BreakerConfig
from sluicegate.core.config import (
    AccountConfig,
    FunctionConfig,
    MappingConfig,
    QueueConfig,
    SemaphoreConfig,
)
from sluicegate.core.scaling import AwsScaling
from sluicegate.core.settings import ASYNC, FIFO, QUEUE, SETTINGS, STREAM, setting
from sluicegate.core.streams import StreamConfig, StreamMappingConfig
from sluicegate.errors import ConfigError

NOT_SETTINGS = {"name", "queue", "function", "stream", "dead_letter_queue", "on_failure",
                "filter_criteria", "starting_position_timestamp",
                "content_based_deduplication", "semaphores", "probe", "breaker", "adaptive",
                "on_success", "dead_letter"}
"""Fields that are names, references or structured values, not numbers or choices."""

CLASSES: list[tuple[type, dict[str, Any], str, str | None]] = [
    (QueueConfig, {"name": "q"}, "queue", QUEUE),
    (StreamConfig, {"name": "s"}, "stream", STREAM),
    (FunctionConfig, {"name": "f"}, "function", None),
    (AccountConfig, {}, "account", None),
    (MappingConfig, {"queue": "q", "function": "f"}, "mapping", QUEUE),
    (StreamMappingConfig, {"stream": "s", "function": "f"}, "stream_mapping", STREAM),
    (SemaphoreConfig, {"name": "db"}, "semaphore", None),
    (BreakerConfig, {}, "breaker", None),
    (AdaptiveConfig, {}, "adaptive", None),
    (AsyncConfig, {"function": "f"}, "async", ASYNC),
]


@pytest.mark.parametrize(("cls", "required", "owner", "kind"), CLASSES)
def test_every_setting_of_a_config_class_is_defined_once(
    cls: type, required: dict[str, Any], owner: str, kind: str | None
) -> None:
    built = cls(**required)
    for f in dataclasses.fields(cls):
        if f.name in NOT_SETTINGS:
            continue
        definition = SETTINGS[f.name]
        assert owner in definition.owners, (cls.__name__, f.name)
        assert getattr(built, f.name) == definition.default_for(kind), (cls.__name__, f.name)


def test_every_setting_names_an_owner_that_has_it() -> None:
    fields = {owner: {f.name for f in dataclasses.fields(cls)}
              for cls, _, owner, _ in CLASSES}
    for definition in SETTINGS.values():
        for owner in definition.owners:
            assert definition.name in fields[owner], (definition.name, owner)
        assert definition.doc
        assert definition.type in ("int", "float", "bool", "choice")


def test_defaults_and_ranges_by_source_kind() -> None:
    batch = SETTINGS["batch_size"]
    assert batch.default_for(QUEUE) == 10
    assert batch.default_for(FIFO) == 10
    assert batch.default_for(STREAM) == 100
    assert batch.range_for(QUEUE) == (1, 10_000)
    assert batch.range_for(FIFO) == (1, 10)
    assert batch.range_for(STREAM) == (1, 10_000)
    retention = SETTINGS["retention_period"]
    assert retention.default_for(QUEUE) == 345_600
    assert retention.range_for(STREAM) == (86_400, 31_536_000)
    assert SETTINGS["maximum_concurrency"].range_for() == (2, 1000)
    assert SETTINGS["maximum_concurrency"].unset == "no limit"
    assert SETTINGS["maximum_record_age"].unit == "s"


def test_unknown_setting_is_named() -> None:
    with pytest.raises(KeyError, match="no setting 'batchsize'"):
        setting("batchsize")


def test_check_messages() -> None:
    with pytest.raises(ConfigError, match=r"allowed 2-1,000"):
        SETTINGS["maximum_concurrency"].check(1, "mapping q->f")
    assert SETTINGS["maximum_concurrency"].check(None, "mapping q->f") is None
    with pytest.raises(ConfigError, match=r"allowed 0-300 s"):
        SETTINGS["maximum_batching_window"].check(301, "mapping q->f")
    with pytest.raises(ConfigError, match=r"-1 \(no limit\) or 60-604,800 s"):
        SETTINGS["maximum_record_age"].check(59, "mapping s->f")
    assert SETTINGS["maximum_record_age"].check(-1, "mapping s->f") == -1
    with pytest.raises(ConfigError, match="'aws' or 'fixed'"):
        SETTINGS["scaling"].check("auto", "mapping q->f")
    with pytest.raises(ConfigError, match="true or false"):
        SETTINGS["enabled"].check(1, "mapping q->f")


@pytest.mark.parametrize("value", [1, 1001])
def test_the_three_validators_of_maximum_concurrency_agree(value: int) -> None:
    with pytest.raises(ConfigError, match="2-1,000"):
        MappingConfig("q", "f", maximum_concurrency=value)
    with pytest.raises(ConfigError, match="2-1,000"):
        AwsScaling(value, False)
    with pytest.raises(ConfigError, match="2-1,000"):
        SETTINGS["maximum_concurrency"].check(value, "x")
