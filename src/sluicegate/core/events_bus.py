"""EventBridge's event envelope: PutEvents entries in, events out, per-entry errors like AWS.

An event on a bus has EventBridge's shape (user guide "Amazon EventBridge events")::

    {"version": "0", "id": "<uuid>", "detail-type": "...", "source": "...",
     "account": "<12 digits>", "time": "2024-01-01T00:00:00Z", "region": "us-east-1",
     "resources": [...], "detail": {...}}

:func:`put_events` turns the entries of one PutEvents call into such events, validating
them as PutEvents does: a call of 1 to 10 entries whose total size (AWS's entry-size
rule, :func:`entry_size`) stays within the limit is accepted as a whole, and then each
entry either becomes an event (with an id) or gets an ``ErrorCode`` and ``ErrorMessage``;
one bad entry never fails the others. A call that breaks the call-level rules raises
:class:`~sluicegate.errors.InputError`, as AWS answers it with a ValidationException.

Everything here is pure: the time (``now``), the account, the region and the source of
new event ids are passed in. The runtime's defaults for account and region live in
:mod:`sluicegate.runtime.events` (``default_account_id()``, ``default_region()``); pass
them from there.

Choices where AWS is vague or silent:

- ``Time`` may be an ISO 8601 / RFC 3339 string (``2016-01-14T01:02:03Z``, any offset),
  epoch seconds, or an aware ``datetime``; events always carry it as UTC with a ``Z`` and
  whole seconds, as EventBridge writes ``time``. An entry without it gets ``now``.
- ``EventBusName`` may be a name or an event bus ARN; the accepted event records the
  bus's name (``default`` when none is given). Whether that bus exists is the caller's
  question.
- ``TraceHeader`` is accepted and not used. Any other key is refused for the call (an
  AWS SDK refuses an unknown parameter before sending).
- The size limit defaults to 256 KiB (:data:`MAX_REQUEST_BYTES`); AWS has raised it since
  (newer pages say 1 MiB), so it is a parameter.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sluicegate.errors import InputError

__all__ = [
    "DEFAULT_EVENT_BUS",
    "EVENT_VERSION",
    "MAX_DETAIL_TYPE_LENGTH",
    "MAX_ENTRIES_PER_CALL",
    "MAX_REQUEST_BYTES",
    "SCHEDULED_EVENT_DETAIL_TYPE",
    "SCHEDULED_EVENT_SOURCE",
    "AcceptedEvent",
    "PutEventsResult",
    "PutEventsResultEntry",
    "batches",
    "entry_size",
    "event_bus_arn",
    "iso8601",
    "make_event",
    "parse_time",
    "put_events",
    "rule_arn",
    "scheduled_event",
    "scheduled_event_id",
]

EVENT_VERSION = "0"
"""``version`` of every event EventBridge delivers."""

DEFAULT_EVENT_BUS = "default"
"""The bus an entry without ``EventBusName`` goes to."""

MAX_ENTRIES_PER_CALL = 10
"""Entries in one PutEvents call."""

MAX_REQUEST_BYTES = 256 * 1024
"""Total entry size of one PutEvents call (:func:`entry_size` summed), in bytes."""

MAX_DETAIL_TYPE_LENGTH = 128
"""Characters of an entry's ``DetailType``."""

SCHEDULED_EVENT_SOURCE = "aws.events"
"""``source`` of the events a scheduled rule sends."""

SCHEDULED_EVENT_DETAIL_TYPE = "Scheduled Event"
"""``detail-type`` of the events a scheduled rule sends."""

_ENTRY_KEYS = frozenset(
    {"Source", "DetailType", "Detail", "Resources", "Time", "EventBusName", "TraceHeader"}
)
_TIME_BYTES = 14
"""What a given ``Time`` adds to an entry's size (AWS's entry-size rule)."""

_BUS_ARN = re.compile(r"^arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus/(.+)$")
_SCHEDULE_NAMESPACE = uuid.UUID("6f5d3e2a-8c1b-4f7e-9a0d-2b4c6e8f0a13")
"""Namespace of :func:`scheduled_event_id`'s name-based UUIDs (any fixed UUID does)."""


# --------------------------------------------------------------------------- time and ARNs


def iso8601(t: float) -> str:
    """Epoch seconds as EventBridge writes ``time``: UTC, whole seconds, ``Z``.

    >>> iso8601(1452733323.9)
    '2016-01-14T01:02:03Z'
    """
    moment = _dt.datetime.fromtimestamp(math.floor(t), _dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> float:
    """A PutEvents ``Time`` as epoch seconds.

    Parameters:
        value: an ISO 8601 / RFC 3339 string with a ``Z`` or an offset (a string
            without one is read as UTC), epoch seconds (int or float), or an aware
            ``datetime`` (a naive one is read as UTC).

    Returns:
        Epoch seconds.

    Raises:
        ValueError: anything else.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a time: {value!r}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"not a time: {value!r}")
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("z", "Z")):
            text = text[:-1] + "+00:00"
        moment = _dt.datetime.fromisoformat(text)
    elif isinstance(value, _dt.datetime):
        moment = value
    else:
        raise ValueError(f"not a time: {value!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.UTC)
    return moment.timestamp()


def event_bus_arn(name: str, *, region: str, account: str) -> str:
    """``arn:aws:events:{region}:{account}:event-bus/{name}``."""
    return f"arn:aws:events:{region}:{account}:event-bus/{name}"


def rule_arn(name: str, *, bus: str = DEFAULT_EVENT_BUS, region: str, account: str) -> str:
    """A rule's ARN: ``...:rule/{name}`` on the default bus, ``...:rule/{bus}/{name}`` on
    another (EventBridge's form)."""
    where = name if bus == DEFAULT_EVENT_BUS else f"{bus}/{name}"
    return f"arn:aws:events:{region}:{account}:rule/{where}"


# --------------------------------------------------------------------------- events


def make_event(
    *,
    source: str,
    detail_type: str,
    detail: Mapping[str, Any],
    time: float,
    event_id: str,
    account: str,
    region: str,
    resources: Iterable[str] = (),
) -> dict[str, Any]:
    """An event in EventBridge's shape, keys in EventBridge's order.

    Parameters:
        source: ``source``.
        detail_type: ``detail-type``.
        detail: ``detail``, a JSON object.
        time: epoch seconds, written as :func:`iso8601`.
        event_id: ``id``.
        account: the 12-digit account id.
        region: the region name.
        resources: ``resources`` (ARNs).

    Returns:
        A new dict.
    """
    return {
        "version": EVENT_VERSION,
        "id": event_id,
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": iso8601(time),
        "region": region,
        "resources": list(resources),
        "detail": dict(detail),
    }


def scheduled_event_id(rule: str, tick: float) -> str:
    """The id of the event a scheduled rule sends for one tick: a name-based UUID of the
    rule's ARN and the tick's epoch second, the same in every process, so that two
    processes that both fire a tick produce one event id (and a duplicate is plain)."""
    return str(uuid.uuid5(_SCHEDULE_NAMESPACE, f"{rule}@{math.floor(tick)}"))


def scheduled_event(
    *, rule: str, tick: float, account: str, region: str, event_id: str | None = None
) -> dict[str, Any]:
    """The event a scheduled rule sends for one tick (user guide, "Creating a rule that
    runs on a schedule"): ``detail-type`` "Scheduled Event", ``source`` "aws.events",
    ``resources`` the rule's ARN, ``detail`` ``{}``, ``time`` the tick.

    Parameters:
        rule: the rule's ARN (:func:`rule_arn`).
        tick: the tick's scheduled time, epoch seconds.
        account: the account id.
        region: the region.
        event_id: defaults to :func:`scheduled_event_id` of the rule and tick.
    """
    return make_event(
        source=SCHEDULED_EVENT_SOURCE,
        detail_type=SCHEDULED_EVENT_DETAIL_TYPE,
        detail={},
        time=tick,
        event_id=event_id if event_id is not None else scheduled_event_id(rule, tick),
        account=account,
        region=region,
        resources=[rule],
    )


# --------------------------------------------------------------------------- PutEvents


@dataclass(frozen=True, slots=True)
class PutEventsResultEntry:
    """One entry of a PutEvents answer: an event id, or an error code and message."""

    event_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None

    @property
    def ok(self) -> bool:
        return self.error_code is None

    def to_aws(self) -> dict[str, str]:
        """``{"EventId": ...}`` or ``{"ErrorCode": ..., "ErrorMessage": ...}``."""
        if self.error_code is None:
            assert self.event_id is not None
            return {"EventId": self.event_id}
        return {"ErrorCode": self.error_code, "ErrorMessage": self.error_message or ""}


@dataclass(frozen=True, slots=True)
class AcceptedEvent:
    """An entry that became an event: its position in the call, its bus, the event."""

    index: int
    bus: str
    event: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PutEventsResult:
    """The answer to one PutEvents call, and the events it accepted.

    Attributes:
        entries: one per request entry, in order.
        accepted: the accepted events, in order, each with its bus; what a bus routes.
        ingestion_time: epoch seconds at which the call was accepted (every accepted
            event's ingestion time).
    """

    entries: tuple[PutEventsResultEntry, ...]
    accepted: tuple[AcceptedEvent, ...]
    ingestion_time: float

    @property
    def failed_entry_count(self) -> int:
        return sum(1 for entry in self.entries if not entry.ok)

    def to_aws(self) -> dict[str, Any]:
        """PutEvents' response: ``{"FailedEntryCount": n, "Entries": [...]}``."""
        return {
            "FailedEntryCount": self.failed_entry_count,
            "Entries": [entry.to_aws() for entry in self.entries],
        }


def _utf8(text: Any) -> int:
    return len(text.encode("utf-8")) if isinstance(text, str) else 0


def entry_size(entry: Mapping[str, Any]) -> int:
    """A PutEvents entry's size as EventBridge counts it (user guide, "Calculating PutEvents
    event entry size"): 14 bytes for a ``Time``, plus the UTF-8 bytes of ``Source``,
    ``DetailType``, ``Detail`` and each of ``Resources``."""
    size = _TIME_BYTES if entry.get("Time") is not None else 0
    size += _utf8(entry.get("Source")) + _utf8(entry.get("DetailType"))
    size += _utf8(entry.get("Detail"))
    resources = entry.get("Resources")
    if isinstance(resources, (list, tuple)):
        size += sum(_utf8(resource) for resource in resources)
    return size


def batches(
    entries: Iterable[Mapping[str, Any]],
    *,
    max_entries: int = MAX_ENTRIES_PER_CALL,
    max_bytes: int = MAX_REQUEST_BYTES,
) -> Iterator[list[Mapping[str, Any]]]:
    """Split entries, in order, into PutEvents calls that respect both call limits.

    An entry too large for a call of its own gets a call of its own (which
    :func:`put_events` then refuses, naming it).
    """
    batch: list[Mapping[str, Any]] = []
    size = 0
    for entry in entries:
        this = entry_size(entry) if isinstance(entry, Mapping) else 0
        if batch and (len(batch) >= max_entries or size + this > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(entry)
        size += this
    if batch:
        yield batch


def _bus_name(value: Any) -> str:
    if value is None or value == "":
        return DEFAULT_EVENT_BUS
    found = _BUS_ARN.match(value)
    return found.group(1) if found else value


def _invalid(name: str, reason: str) -> PutEventsResultEntry:
    return PutEventsResultEntry(
        error_code="InvalidArgument",
        error_message=f"Parameter {name} is not valid. Reason: {reason}",
    )


def _check_entry(
    entry: Mapping[str, Any],
) -> tuple[PutEventsResultEntry | None, dict[str, Any] | None, float | None]:
    """An entry's error, or its parsed detail and time (``None`` when not given)."""
    for name in ("Source", "DetailType", "Detail"):
        value = entry.get(name)
        if value is None or value == "":
            return _invalid(name, f"{name} is a required argument."), None, None
        if not isinstance(value, str):
            return _invalid(name, f"{name} must be a string."), None, None
    source = entry["Source"]
    if source.startswith("aws."):
        return (
            PutEventsResultEntry(
                error_code="NotAuthorizedForSourceException",
                error_message="Not authorized for the source.",
            ),
            None,
            None,
        )
    if len(entry["DetailType"]) > MAX_DETAIL_TYPE_LENGTH:
        reason = f"DetailType is longer than {MAX_DETAIL_TYPE_LENGTH} characters."
        return _invalid("DetailType", reason), None, None
    try:
        detail = json.loads(entry["Detail"])
    except (ValueError, RecursionError):
        detail = None
    if not isinstance(detail, dict):
        return (
            PutEventsResultEntry(error_code="MalformedDetail", error_message="Detail is malformed."),
            None,
            None,
        )
    resources = entry.get("Resources")
    if resources is not None and (
        not isinstance(resources, (list, tuple))
        or not all(isinstance(resource, str) for resource in resources)
    ):
        return _invalid("Resources", "Resources must be a list of strings."), None, None
    time: float | None = None
    if entry.get("Time") is not None:
        try:
            time = parse_time(entry["Time"])
        except ValueError:
            return _invalid("Time", "Time must be an ISO 8601 timestamp."), None, None
    bus = entry.get("EventBusName")
    if bus is not None and not isinstance(bus, str):
        return _invalid("EventBusName", "EventBusName must be a string."), None, None
    return None, detail, time


def put_events(
    entries: Sequence[Mapping[str, Any]],
    *,
    now: float,
    account: str,
    region: str,
    new_id: Callable[[], str],
    max_bytes: int = MAX_REQUEST_BYTES,
) -> PutEventsResult:
    """Validate one PutEvents call and build its events.

    Parameters:
        entries: the call's ``Entries``: dicts with ``Source``, ``DetailType``,
            ``Detail`` (JSON text of an object), and optionally ``Resources``, ``Time``,
            ``EventBusName``, ``TraceHeader``.
        now: epoch seconds of the call: the ingestion time, and the ``time`` of entries
            without ``Time``.
        account: the account id every event carries.
        region: the region every event carries.
        new_id: called once per accepted entry for its event id (``lambda:
            str(uuid.uuid4())`` in the runtime, a seeded source in the simulator).
        max_bytes: the call's total entry-size limit.

    Returns:
        The answer (one result entry per request entry, in order) and the accepted
        events. Per-entry failures, as AWS reports them: ``InvalidArgument`` (a missing
        or ill-typed ``Source``, ``DetailType`` or ``Detail``, a ``DetailType`` over 128
        characters, a bad ``Time`` or ``Resources``), ``MalformedDetail`` (``Detail`` not
        a JSON object), ``NotAuthorizedForSourceException`` (a ``Source`` starting with
        ``aws.``, which only AWS services may send).

    Raises:
        InputError: for the whole call, as AWS refuses it: no entries, more than 10, an
            entry that is not an object or has an unknown key, or a total size above
            ``max_bytes``.
    """
    if isinstance(entries, (str, bytes, Mapping)) or not isinstance(entries, Sequence):
        raise InputError("PutEvents entries must be a list of entry objects")
    if not entries:
        raise InputError("PutEvents needs at least one entry")
    if len(entries) > MAX_ENTRIES_PER_CALL:
        raise InputError(
            f"PutEvents takes at most {MAX_ENTRIES_PER_CALL} entries per call, got "
            f"{len(entries)}"
        )
    total = 0
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise InputError(f"PutEvents entry {index} is not an object: {entry!r}")
        unknown = sorted(set(entry) - _ENTRY_KEYS)
        if unknown:
            raise InputError(
                f"PutEvents entry {index} has unknown key(s) {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(sorted(_ENTRY_KEYS))}"
            )
        total += entry_size(entry)
    if total > max_bytes:
        raise InputError(
            f"PutEvents entries total {total:,} bytes, over the limit of {max_bytes:,} "
            "(send fewer or smaller entries per call)"
        )
    results: list[PutEventsResultEntry] = []
    accepted: list[AcceptedEvent] = []
    for index, entry in enumerate(entries):
        error, detail, time = _check_entry(entry)
        if error is not None:
            results.append(error)
            continue
        assert detail is not None
        event_id = new_id()
        event = make_event(
            source=entry["Source"],
            detail_type=entry["DetailType"],
            detail=detail,
            time=now if time is None else time,
            event_id=event_id,
            account=account,
            region=region,
            resources=entry.get("Resources") or (),
        )
        results.append(PutEventsResultEntry(event_id=event_id))
        accepted.append(AcceptedEvent(index, _bus_name(entry.get("EventBusName")), event))
    return PutEventsResult(tuple(results), tuple(accepted), now)
