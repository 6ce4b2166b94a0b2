"""The one reading of trace and span filters, for the REST API and the web UI alike.

Both hand over the query string's pairs (``tag`` and ``metadata`` may repeat); empty values are
ignored, and every value that cannot be used is reported with the name of its field. The API
answers 400 with the problems; a page shows them above an empty list.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from assay.errors import UserError
from assay.store.listing import Filters

#: Relative time windows (``range=1h``): kept relative in a shared URL.
RANGES = {"15m": 900, "1h": 3600, "24h": 86_400, "7d": 7 * 86_400, "30d": 30 * 86_400}
STATUSES = ("ok", "error", "unset")
SCORE_SOURCES = ("human", "llm", "code")
TEXT_FIELDS = (
    "name",
    "type",
    "model",
    "session_id",
    "user_id",
    "trace_id",
    "score",
    "score_label",
    "disagreement",
    "q",
    "prompt",
)
#: Largest prompt version (a 32-bit column).
MAX_PROMPT_VERSION = 2**31 - 1
#: Durations and costs cannot be negative; score bounds can.
NUMBER_FIELDS = {
    "min_duration_ms": 0.0,
    "max_duration_ms": 0.0,
    "min_cost": 0.0,
    "max_cost": 0.0,
    "min_score": None,
    "max_score": None,
}
MAX_TEXT_CHARS = 500
#: Every field :func:`parse_filters` reads; a filter object (a rule's, an automation's) with
#: another key is refused rather than quietly matching everything.
FILTER_FIELDS = (
    *TEXT_FIELDS,
    "status",
    "score_source",
    "tag",
    "metadata",
    "range",
    "since",
    "until",
    "prompt_version",
    *NUMBER_FIELDS,
)
#: Times and durations are stored as 64-bit nanoseconds: from 1677 to 2262.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: The longest duration a filter can name, in milliseconds (2^63 ns, about 292 years).
MAX_DURATION_MS = INT64_MAX / 1e6
#: Fields whose numbers have an upper bound besides being finite.
NUMBER_MAXIMUMS = {"min_duration_ms": MAX_DURATION_MS, "max_duration_ms": MAX_DURATION_MS}


@dataclass(frozen=True)
class FilterProblem:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class InvalidFilters(UserError):
    """One or more filter values cannot be used; the message names each field."""

    def __init__(self, problems: list[FilterProblem]) -> None:
        super().__init__("; ".join(str(problem) for problem in problems))
        self.problems = problems


def parse_time(text: str) -> int | None:
    """Epoch nanoseconds, or an ISO-8601 time (UTC unless it says otherwise); None if neither
    (or if it lies outside the nanosecond range the store keeps, 1677 to 2262)."""
    text = text.strip()
    if text.lstrip("-").isdigit():
        if len(text) > 20:
            return None
        value = int(text)
    else:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            seconds = moment.timestamp()
        except (ValueError, OverflowError):  # year 1 west of UTC is before year 1
            return None
        value = int(seconds * 1_000_000_000) if math.isfinite(seconds) else INT64_MAX + 1
    return value if INT64_MIN <= value <= INT64_MAX else None


def _number(text: str, minimum: float | None, maximum: float | None = None) -> float | str:
    """The number, or what is wrong with it."""
    shown = repr(text[:40])
    try:
        value = float(text)
    except ValueError:
        return f"{shown} is not a number"
    if not math.isfinite(value):
        return f"{shown} is not a finite number"
    if minimum is not None and value < minimum:
        return f"{shown} is below {minimum:g}"
    if maximum is not None and value > maximum:
        return f"{shown} is above {maximum:g}"
    return value


def _split(
    pairs: Iterable[tuple[str, str]], found: Filters, problems: list[FilterProblem]
) -> dict[str, str]:
    """Take the repeatable keys (tag, metadata) into ``found``; the rest, last value wins."""
    single: dict[str, str] = {}
    for key, raw in pairs:
        value = raw.strip()
        if not value:
            continue
        if key == "tag":
            found.tags.append(value)
        elif key == "metadata":
            name, sep, wanted = value.partition("=")
            if sep and name:
                found.metadata.append((name, wanted))
            else:
                problems.append(FilterProblem("metadata", f"{value!r} must look like key=value"))
        else:
            single[key] = value
    return single


def _times(
    single: dict[str, str], found: Filters, problems: list[FilterProblem], now_ns: int | None
) -> None:
    if "range" in single:
        window = RANGES.get(single["range"])
        if window is None:
            problems.append(
                FilterProblem("range", f"{single['range']!r} is not one of {', '.join(RANGES)}")
            )
        else:
            found.since = (now_ns or time.time_ns()) - window * 1_000_000_000
    for key in ("since", "until"):  # an explicit time wins over the window
        if key in single:
            moment = parse_time(single[key])
            if moment is None:
                problems.append(
                    FilterProblem(
                        key,
                        f"{single[key][:40]!r} is not a time between 1677 and 2262; use ISO "
                        "8601 (2026-01-31T12:00:00Z) or nanoseconds since the epoch",
                    )
                )
            else:
                setattr(found, key, moment)


def _prompt_version(single: dict[str, str], found: Filters, problems: list[FilterProblem]) -> None:
    """``prompt_version=N``: calls made with that version of the ``prompt`` named too."""
    if "prompt_version" not in single:
        return
    text = single["prompt_version"]
    if not (text.isdigit() and 1 <= int(text) <= MAX_PROMPT_VERSION):
        problems.append(
            FilterProblem("prompt_version", f"{text[:40]!r} is not a version (1, 2, ...)")
        )
    elif found.prompt is None:
        problems.append(FilterProblem("prompt_version", "name the prompt too (prompt=NAME)"))
    else:
        found.prompt_version = int(text)


def parse_filters(
    pairs: Iterable[tuple[str, str]], *, now_ns: int | None = None
) -> tuple[Filters, list[FilterProblem]]:
    """The filters in a query string's pairs, and the problems with the values that were not
    used. Unknown keys (sort, cursor, limit, ...) are left to the caller."""
    problems: list[FilterProblem] = []
    found = Filters()
    single = _split(pairs, found, problems)
    for key in TEXT_FIELDS:
        if key in single:
            setattr(found, key, single[key][:MAX_TEXT_CHARS])
    if "status" in single:
        if single["status"] in STATUSES:
            found.status = single["status"]
        else:
            problems.append(
                FilterProblem("status", f"{single['status']!r} is not ok, error or unset")
            )
    if "score_source" in single:
        if single["score_source"] in SCORE_SOURCES:
            found.score_source = single["score_source"]
        else:
            problems.append(
                FilterProblem(
                    "score_source", f"{single['score_source'][:40]!r} is not human, llm or code"
                )
            )
    _times(single, found, problems, now_ns)
    _prompt_version(single, found, problems)
    for key, minimum in NUMBER_FIELDS.items():
        if key in single:
            number = _number(single[key], minimum, NUMBER_MAXIMUMS.get(key))
            if isinstance(number, str):
                problems.append(FilterProblem(key, number))
            else:
                setattr(found, key, number)
    return found, problems


def require_filters(pairs: Iterable[tuple[str, str]]) -> Filters:
    """The filters, or :class:`InvalidFilters` naming every value that cannot be used."""
    found, problems = parse_filters(pairs)
    if problems:
        raise InvalidFilters(problems)
    return found
