"""The sections every kind of scenario shares, read from TOML.

``[function]`` (with ``[[function.errors]]``), the producers' arrival keys, ``[queue]``
and the messages' keys, ``[mapping]`` of a queue with ``[[mapping.pauses]]``,
``[downstream]`` and ``[account]``: queue scenarios, stream scenarios and topic
subscribers read them through these parsers, and :func:`check_with_core` lets the core's
configuration classes judge the AWS parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from sluicegate.core.adaptive import AdaptiveConfig
from sluicegate.core.breaker import BreakerConfig
from sluicegate.core.config import (
    AccountConfig,
    MappingConfig,
    as_filter_criteria,
    check_visibility_against_timeout,
)
from sluicegate.core.pool import ConcurrencyPool
from sluicegate.core.settings import QUEUE, SETTINGS
from sluicegate.errors import ConfigError
from sluicegate.sim.distributions import Fixed
from sluicegate.sim.schema import ScenarioError, Table, checked
from sluicegate.sim.specs import (
    DEFAULT_COLD_START,
    DEFAULT_FUNCTION_DURATION,
    DEFAULT_LATENCY_EXPONENT,
    DEFAULT_MESSAGE_SIZE,
    DEFAULT_OVERLOAD_ERRORS,
    DEFAULT_RAISE_AT,
    DOWNSTREAM_ERROR_KINDS,
    DOWNSTREAM_PER,
    ENVIRONMENT_IDLE_TIMEOUT,
    ERROR_KINDS,
    PRODUCER_KINDS,
    DownstreamSpec,
    ErrorWindow,
    FunctionSpec,
    Pause,
    ProducerSpec,
    QueueSpec,
)

if TYPE_CHECKING:
    from sluicegate.sim.scenario import Scenario


def parse_function(top: Table, default_name: str = "function") -> FunctionSpec:
    """``[function]`` and its ``[[function.errors]]`` (queue, stream and topic scenarios
    alike; a topic subscriber's function is named after the subscriber by default)."""
    return parse_function_table(top.sub("function"), default_name)


def parse_function_table(ft: Table, default_name: str) -> FunctionSpec:
    """One function table: its modelled durations, cold starts, idle timeout and error
    windows, with the Lambda settings a scenario gives (``name``, ``timeout``,
    ``reserved_concurrency``); a load file's ``[functions.NAME]`` is read by this too,
    after it refused those three (the App sets them)."""
    errors = []
    for et in ft.subs("errors"):
        start = et.get("start", 0.0, et.seconds)
        stop = et.get("stop", None, et.seconds)
        if stop is not None and stop < start:
            raise et.error("stop", et.data.get("stop"), f"a time >= start ({start:g} s)")
        rate = et.raw("rate")
        if rate is None:
            raise et.error("rate", None, "a probability 0-1")
        errors.append(ErrorWindow(
            start=start,
            stop=stop,
            rate=et.number(0.0, 1.0)("rate", rate),
            kind=et.get("kind", "raise", et.choice(ERROR_KINDS)),
            raise_at=et.get("raise_at", DEFAULT_RAISE_AT, et.number(0.0, 1.0)),
        ))
        et.finish()
    function = FunctionSpec(
        name=ft.get("name", default_name, ft.text),
        duration=ft.get("duration", Fixed(DEFAULT_FUNCTION_DURATION), ft.distribution),
        duration_per_record=ft.get("duration_per_record", 0.0, ft.seconds),
        cold_start=ft.get("cold_start", Fixed(DEFAULT_COLD_START), ft.distribution),
        timeout=ft.setting("timeout", convert=ft.seconds),
        reserved_concurrency=ft.setting("reserved_concurrency"),
        idle_timeout=ft.get("idle_timeout", ENVIRONMENT_IDLE_TIMEOUT, ft.positive_seconds),
        errors=tuple(errors),
    )
    ft.finish()
    return function


def producer_tables(top: Table) -> list[Table]:
    """The tables of ``[producer]`` or ``[[producers]]`` (not both)."""
    data = top.data
    if "producer" in data and data["producer"] is not None and data.get("producers"):
        raise ScenarioError("producer", data["producer"], "", top.context,
                            message="use [producer] or [[producers]], not both")
    return top.subs("producer") + top.subs("producers")


def parse_producer(pt: Table, *, batch_max: int, unit: str) -> ProducerSpec:
    """The arrival keys of one producer table (kind, rate, start, stop, size, interval,
    batch); the caller reads any others and calls ``finish``."""
    kind = pt.get("kind", "constant", pt.choice(PRODUCER_KINDS))
    start = pt.get("start", 0.0, pt.seconds)
    stop = pt.get("stop", None, pt.seconds)
    if stop is not None and stop < start:
        raise pt.error("stop", pt.data.get("stop"), f"a time >= start ({start:g} s)")
    rate = pt.get("rate", 0.0, pt.number(0.0, 1e7))
    size = pt.get("size", 0, pt.integer(0, 100_000_000))
    interval = pt.get("interval", 0.0, pt.seconds)
    batch = pt.get("batch", 1, pt.integer(1, batch_max))
    if kind == "burst":
        if size < 1:
            raise pt.error("size", pt.data.get("size"), "an integer >= 1 for a burst")
        if interval <= 0 and stop != start:
            raise pt.error("interval", pt.data.get("interval"),
                           "a duration > 0 for a burst (or stop = start for one burst)")
    elif rate <= 0:
        raise pt.error("rate", pt.data.get("rate"), f"{unit}/s > 0 for a {kind} producer")
    return ProducerSpec(kind, rate, start, stop, size, interval, batch)


def _bodies(table: Table) -> Callable[[str, Any], tuple[str, ...]]:
    def convert(name: str, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or not value or not all(
            isinstance(b, str) and b for b in value
        ):
            raise table.error(name, value, "a list of non-empty message bodies")
        return tuple(value)

    return convert


def _patterns(table: Table) -> Callable[[str, Any], tuple[Any, ...]]:
    def convert(name: str, value: Any) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise table.error(name, value, "a list of patterns (JSON strings or tables)")
        return tuple(value)

    return convert


def parse_pauses(mt: Table) -> tuple[Pause, ...]:
    """``[[mapping.pauses]]``, in time order."""
    pauses = []
    for pt in mt.subs("pauses"):
        at = pt.get("at", None, pt.seconds)
        if at is None:
            raise pt.error("at", None, "a time (when the mapping is disabled)")
        until = pt.get("until", None, pt.seconds)
        if until is not None and until < at:
            raise pt.error("until", pt.data.get("until"), f"a time >= at ({at:g} s)")
        pauses.append(Pause(at, until))
        pt.finish()
    return tuple(sorted(pauses, key=lambda p: p.at))


def parse_downstream(top: Table) -> DownstreamSpec | None:
    """``[downstream]``, or ``None`` when absent."""
    data = top.data
    downstream = None
    if data.get("downstream") is not None:
        dt = top.sub("downstream")
        concurrency = dt.get("concurrency", None, dt.integer(1, 10_000_000))
        rate = dt.get("rate", None, dt.number(0.0, 1e9, open_low=True))
        if (concurrency is None) == (rate is None):
            raise dt.error("concurrency", concurrency,
                           "exactly one of concurrency (requests at once) or rate "
                           "(requests/s)")
        downstream = DownstreamSpec(
            concurrency=concurrency,
            rate=rate,
            latency=dt.get("latency", Fixed(0.0), dt.distribution),
            latency_exponent=dt.get("latency_exponent", DEFAULT_LATENCY_EXPONENT,
                                    dt.number(0.0, 10.0)),
            overload_errors=dt.get("overload_errors", DEFAULT_OVERLOAD_ERRORS,
                                   dt.number(0.0, 1e6)),
            error_kind=dt.get("error_kind", "raise", dt.choice(DOWNSTREAM_ERROR_KINDS)),
            per=dt.get("per", "invocation", dt.choice(DOWNSTREAM_PER)),
        )
        dt.finish()
    else:
        top.used.add("downstream")

    return downstream


def parse_account(top: Table) -> AccountConfig:
    """``[account]``: the core's :class:`AccountConfig`."""
    at = top.sub("account")
    limit = at.setting("concurrency_limit")
    # at most concurrency_limit, which the core checks
    min_unreserved = at.setting("min_unreserved", convert=at.integer(0, 10_000_000))
    at.finish()
    account: AccountConfig = checked("account", top,
                                     lambda: AccountConfig(limit, min_unreserved))
    return account


MESSAGE_KEYS = ("message_size", "bodies", "groups", "hot_group_share")
"""``[queue]`` keys that describe the messages: a topic scenario's subscriber queues take
them from ``[topic]`` instead."""


def parse_queue(qt: Table, *, topic: QueueSpec | None = None,
                 default_name: str = "queue") -> QueueSpec:
    """``[queue]``, or a topic subscriber's queue table when ``topic`` is given: then
    ``topic`` holds the messages' keys (``message_size``, ``bodies``, FIFO groups) and the
    queue is FIFO when the topic is, unless the table says otherwise (which the topic's
    rules then refuse)."""
    if topic is not None:
        for key in MESSAGE_KEYS:
            if qt.data.get(key) is not None:
                raise ScenarioError(qt.key(key), qt.data[key], "", qt.context, message=(
                    f"{qt.key(key)}: a topic's subscribers receive its messages; set "
                    f"{key} in [topic]"))
            qt.used.add(key)
    messages = (parse_messages(qt) if topic is None
                else {key: getattr(topic, key) for key in MESSAGE_KEYS})
    queue = QueueSpec(
        name=qt.get("name", default_name, qt.text),
        backlog=qt.get("backlog", 0, qt.integer(0, 1_000_000_000)),
        visibility_timeout=qt.setting("visibility_timeout"),
        delay_seconds=qt.setting("delay_seconds"),
        max_receive_count=qt.setting("max_receive_count"),
        fifo=qt.get("fifo", topic is not None and topic.fifo, qt.boolean),
        **messages,
    )
    if topic is None and not queue.fifo:
        refuse_groups(qt, queue, "only with fifo = true")
    qt.finish()
    return queue


def parse_messages(t: Table) -> dict[str, Any]:
    """What the messages of a ``[queue]`` or ``[topic]`` carry: the :data:`MESSAGE_KEYS`."""
    return {
        "message_size": t.get("message_size", DEFAULT_MESSAGE_SIZE, t.integer(1, 262_144)),
        "bodies": t.get("bodies", (), _bodies(t)),
        "groups": t.get("groups", 1, t.integer(1, 1_000_000)),
        "hot_group_share": t.get("hot_group_share", 0.0, t.number(0.0, 1.0)),
    }


def refuse_groups(t: Table, spec: Any, expected: str) -> None:
    """Refuse FIFO group settings on a standard queue or topic (``spec``, parsed from
    ``t``)."""
    for key, default in (("groups", 1), ("hot_group_share", 0.0)):
        if getattr(spec, key) != default:
            raise ScenarioError(t.key(key), getattr(spec, key), expected, t.context)


def parse_mapping(mt: Table, queue: str, function: str
                  ) -> tuple[MappingConfig, tuple[Pause, ...]]:
    """``[mapping]`` of a queue (a queue scenario's, or a topic subscriber's) from
    ``queue`` to ``function``: the core's :class:`MappingConfig`, each setting read through
    its definition (:data:`~sluicegate.core.settings.SETTINGS`) and the whole judged by the
    core, and the mapping's ``[[mapping.pauses]]`` (the load's part)."""
    settings = {
        "batch_size": mt.setting("batch_size", QUEUE),
        "maximum_batching_window": mt.setting("maximum_batching_window"),
        "maximum_concurrency": mt.setting("maximum_concurrency"),
        "report_batch_item_failures": mt.setting("report_batch_item_failures"),
        "scaling": mt.setting("scaling"),
        "scaling_ceiling": mt.setting("scaling_ceiling"),
        "enabled": mt.setting("enabled"),
    }
    pauses = parse_pauses(mt)
    filter_criteria = mt.get("filter_criteria", (), _patterns(mt))
    breaker = parse_breaker(mt)
    adaptive = mt.get("adaptive", None, _adaptive(mt))
    mt.finish()
    mapping: MappingConfig = checked(mt.path, mt, lambda: MappingConfig(
        queue, function, **settings,
        filter_criteria=as_filter_criteria(list(filter_criteria), "queue"), breaker=breaker,
        adaptive=adaptive))
    return mapping, pauses


def parse_breaker(mt: Table) -> BreakerConfig | None:
    """``[mapping.breaker]``: a circuit breaker's settings (durations may be written
    ``"30s"``), validated by :class:`~sluicegate.core.breaker.BreakerConfig`; ``None``
    when absent."""
    if mt.data.get("breaker") is None:
        mt.raw("breaker")
        return None
    bt = mt.sub("breaker")
    settings: dict[str, Any] = {}
    for name in BreakerConfig.__dataclass_fields__:
        if name == "probe":
            continue  # a callable or a URL: the runtime's; the simulator has no downstream URL
        definition = SETTINGS[name]
        convert = bt.seconds if definition.unit == "s" else _as_is
        value = bt.get(name, None, convert)
        if value is not None:
            settings[name] = value
    bt.finish()
    config: BreakerConfig = checked(bt.path, bt, lambda: BreakerConfig(**settings))
    return config


def _as_is(name: str, value: Any) -> Any:
    return value


def _adaptive(t: Table) -> Callable[[str, Any], AdaptiveConfig]:
    """``[mapping] adaptive``: a table of the adaptive limit's parameters."""

    def convert(name: str, value: Any) -> AdaptiveConfig:
        if not isinstance(value, Mapping):
            raise t.error(name, value, "a table of the adaptive limit's parameters")
        try:
            return AdaptiveConfig.from_mapping(dict(value))
        except ConfigError as exc:
            raise t.error(f"{name}.{exc.parameter}", exc.value, exc.allowed) from None

    return convert


def parse_producers(top: Table) -> tuple[ProducerSpec, ...]:
    """``[producer]`` or ``[[producers]]`` of messages (sends of 1-10, SendMessageBatch)."""
    producers = []
    for pt in producer_tables(top):
        producers.append(parse_producer(pt, batch_max=10, unit="messages"))
        pt.finish()
    return tuple(producers)


def check_with_core(scenario: Scenario, top: Table, prefix: str = "") -> None:
    """Let the core's configuration classes validate the AWS parameters, so a scenario
    accepts what an App accepts and nothing else. ``prefix`` is the key path of the
    tables checked (a topic subscriber's ``subscribers[1].``), whose function's reserved
    concurrency the caller checks in a pool with every other function's."""
    queue = checked(f"{prefix}queue", top, scenario.queue_config)
    function = checked(f"{prefix}function", top, scenario.function_config)
    checked(f"{prefix}queue", top, lambda: check_visibility_against_timeout(queue, function))
    if not prefix:
        checked("function", top, lambda: ConcurrencyPool(scenario.account).register(function))


