"""Counted nouns in what sluicegate prints: ``1 message``, ``2 messages``.

Every line the CLI, the run's status and summary, and the simulator's reports print with
a count goes through :func:`plural`, so none says "1 messages" or "1 shards". Names are
printed quoted (``'orders'``) and never given a possessive, which would read
``'orders''s``: messages say "the maximum of queue 'orders'" instead.
"""

from __future__ import annotations

__all__ = ["plural"]

_IRREGULAR = {"entry": "entries", "query": "queries", "process": "processes"}
"""Plurals that are not the noun plus ``s``."""


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``count`` and ``noun``, the noun in the plural unless ``count`` is 1.

    Parameters:
        count: how many.
        noun: the singular (``message``, ``shard``, ``dead-lettered message``).
        many: the plural, when it is not the noun plus ``s`` (a few irregular ones are
            known: ``entries``, ``processes``).

    Returns:
        ``1 message``, ``0 messages``, ``2 processes``.
    """
    if count == 1:
        return f"{count} {noun}"
    if many is None:
        head, _, last = noun.rpartition(" ")
        many = (head + " " if head else "") + _IRREGULAR.get(last, last + "s")
    return f"{count} {many}"
