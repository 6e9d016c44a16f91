"""The one HTTP client factory for live collection: timeouts, User-Agent, retries, rate-limit waits.

Every wait (client-side pacing, rate-limit resets, backoff) goes through an injectable ``Clock`` so
tests run instantly and can assert the waits. Policy:

* 429: wait for ``Retry-After`` or the rate-limit reset header (``RateLimit-Reset`` on Bluesky,
  ``X-RateLimit-Reset`` on Mastodon), clamped to ``max_wait``; bounded number of retries.
* ``Remaining: 0`` on a good response: wait for the reset before the next request.
* 5xx, transport errors (timeouts, resets) and unparseable JSON bodies: exponential backoff with
  jitter, bounded.
* Any other 4xx: never retried; the platform client turns it into a specific error.

Reset times are read against the response's ``Date`` header when it has one, so a wrong local clock
cannot make us sleep for hours; a reset that still looks absurd is clamped with a warning.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Protocol

from .. import __version__
from ..errors import CollectError, RateLimitError

if TYPE_CHECKING:
    import httpx

USER_AGENT = f"followaudit/{__version__} (+https://github.com/followaudit/followaudit)"


class Clock(Protocol):
    """Time source for every wait. ``now()`` is epoch seconds."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class FakeClock:
    """A clock that only moves when slept on; records every sleep (for tests and dry runs)."""

    def __init__(self, start: float | None = None) -> None:
        self.t = time.time() if start is None else start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += max(0.0, seconds)


@dataclass
class HttpSettings:
    """Knobs for the client; defaults are polite for public APIs."""

    timeout: float = 20.0
    min_interval: float = 0.15  # client-side pacing: at most ~6.7 requests/s
    max_retries: int = 5  # for 5xx, transport errors and broken bodies
    max_rate_limit_retries: int = 8  # for 429
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    max_wait: float = 900.0  # longest single rate-limit wait we accept (15 min)
    user_agent: str = USER_AGENT


WaitCallback = Callable[[float, str], None]
WarnCallback = Callable[[str], None]
ErrorMapper = Callable[["httpx.Response"], Exception]


@dataclass
class Reply:
    """A finished request: the parsed JSON body (None for an allowed 4xx) and the response."""

    data: Any
    response: httpx.Response


@dataclass
class RateLimitState:
    """What the server last told us about its limits."""

    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None  # epoch seconds on our clock
    window: float | None = None


def _header(response: httpx.Response, *names: str) -> str | None:
    for name in names:
        value = response.headers.get(name)
        if value is not None and value.strip():
            return value.strip()
    return None


def _to_int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


def parse_reset(value: str, reference: float) -> float | None:
    """A reset header as epoch seconds.

    Accepts epoch seconds (Bluesky's xrpc-server), delta seconds (IETF RateLimit drafts),
    ISO 8601 (Mastodon) and HTTP dates (``Retry-After``). ``reference`` is "now" for deltas.
    """
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is not None:
        return number if number > 1e9 else reference + number
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


@dataclass
class ApiClient:
    """A thin wrapper over ``httpx.Client`` that applies the retry and rate-limit policy.

    ``calls`` counts requests per path (including retries), so tests can assert nothing redundant.
    """

    http: httpx.Client
    settings: HttpSettings = field(default_factory=HttpSettings)
    clock: Clock = field(default_factory=SystemClock)
    rng: random.Random = field(default_factory=random.Random)
    on_wait: WaitCallback | None = None
    on_warning: WarnCallback | None = None
    calls: Counter[str] = field(default_factory=Counter)
    rate: RateLimitState = field(default_factory=RateLimitState)
    waited: float = 0.0
    latency: float = 0.0  # moving average of request round trips (measured, never waited on)
    _last_request: float | None = None
    _warned_clock: bool = False

    def close(self) -> None:
        self.http.close()

    # -- waits -----------------------------------------------------------------------------------
    def _wait(self, seconds: float, reason: str) -> None:
        if seconds <= 0:
            return
        if self.on_wait is not None:
            self.on_wait(seconds, reason)
        self.waited += seconds
        self.clock.sleep(seconds)

    def _warn(self, message: str) -> None:
        if self.on_warning is not None:
            self.on_warning(message)

    def _backoff(self, attempt: int) -> float:
        # "equal jitter": half the exponential step is fixed, half random, so retries spread out
        step = min(self.settings.backoff_max, self.settings.backoff_base * 2**attempt)
        return step / 2 + self.rng.uniform(0, step / 2)

    def _reference_now(self, response: httpx.Response) -> float:
        """Now, as the server sees it when it sent a Date header; warns once on clock skew."""
        local = self.clock.now()
        date = _header(response, "Date")
        if date is None:
            return local
        try:
            server = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError, IndexError):
            return local
        if abs(server - local) > 120 and not self._warned_clock:
            self._warned_clock = True
            self._warn(
                f"local clock differs from the server's by {server - local:+.0f} s; "
                "reading rate-limit resets against the server's Date header"
            )
        return server

    def _reset_wait(self, response: httpx.Response) -> float | None:
        """Seconds until the limit resets, from Retry-After or the reset headers, clamped."""
        reference = self._reference_now(response)
        raw = _header(response, "Retry-After")
        if raw is None:
            raw = _header(response, "RateLimit-Reset", "X-RateLimit-Reset")
        if raw is None:
            return None
        reset = parse_reset(raw, reference)
        if reset is None:
            self._warn(f"unreadable rate-limit reset header {raw!r}; backing off instead")
            return None
        wait = reset - reference
        if wait > self.settings.max_wait:
            self._warn(
                f"rate-limit reset is {wait:.0f} s away (clock wrong?); waiting {self.settings.max_wait:.0f} s instead"
            )
            return self.settings.max_wait
        if wait < -5:
            self._warn(f"rate-limit reset lies {-wait:.0f} s in the past (clock wrong?); backing off instead")
            return None
        return max(wait, 0.0)

    def _record_limits(self, response: httpx.Response) -> None:
        limit = _to_int(_header(response, "RateLimit-Limit", "X-RateLimit-Limit"))
        remaining = _to_int(_header(response, "RateLimit-Remaining", "X-RateLimit-Remaining"))
        policy = _header(response, "RateLimit-Policy")
        if limit is None and remaining is None:
            return
        self.rate.limit = limit
        self.rate.remaining = remaining
        if policy and ";w=" in policy:
            self.rate.window = float(_to_int(policy.split(";w=", 1)[1].split(";")[0]) or 0) or None
        wait = self._reset_wait(response) if remaining is not None and remaining <= 0 else None
        self.rate.reset_at = self.clock.now() + wait if wait is not None else None

    def _pace(self) -> None:
        if self.rate.remaining is not None and self.rate.remaining <= 0 and self.rate.reset_at is not None:
            self._wait(self.rate.reset_at - self.clock.now(), "rate limit reached; waiting for reset")
            self.rate.remaining = None
            self.rate.reset_at = None
        if self._last_request is not None and self.settings.min_interval > 0:
            self._wait(self._last_request + self.settings.min_interval - self.clock.now(), "pacing")

    def eta(self, remaining_calls: int) -> float:
        """Seconds the remaining calls should take: pacing or observed latency, plus the limit windows
        the server's rate-limit headers say we will have to wait for."""
        seconds = remaining_calls * max(self.settings.min_interval, self.latency)
        limit, window = self.rate.limit, self.rate.window
        if limit and window and remaining_calls > (self.rate.remaining or 0):
            seconds = max(seconds, math.ceil((remaining_calls - (self.rate.remaining or 0)) / limit) * window)
        return seconds

    # -- requests --------------------------------------------------------------------------------
    def get(
        self,
        path: str,
        params: dict[str, Any] | list[tuple[str, Any]] | None = None,
        *,
        error: ErrorMapper,
        allow: tuple[int, ...] = (),
    ) -> Reply:
        """GET with the retry policy. A 4xx outside ``allow`` is raised as ``error(response)``."""
        import httpx  # deferred: an audit that collects nothing does not load the HTTP stack

        failures = 0
        limited = 0
        key = httpx.URL(path).path
        while True:
            self._pace()
            self._last_request = self.clock.now()
            self.calls[key] += 1
            started = time.perf_counter()
            try:
                response = self.http.get(path, params=params)
                elapsed = time.perf_counter() - started
                self.latency = elapsed if not self.latency else 0.8 * self.latency + 0.2 * elapsed
                if 300 <= response.status_code < 400:
                    raise CollectError(
                        f"{response.url.host} redirected {key} to {response.headers.get('Location', '?')}",
                        "pass --api-base with the address the server redirects to",
                    )
                if response.status_code < 400 and "json" not in response.headers.get("Content-Type", "json"):
                    raise CollectError(
                        f"{response.url.host} did not answer {key} with JSON "
                        f"(Content-Type {response.headers.get('Content-Type')})",
                        "check --api-base: it must be the platform's API host",
                    )
                # a truncated body is a transport fault: parse here so it is retried
                data = response.json() if response.status_code < 400 else None
            except (httpx.TransportError, json.JSONDecodeError, UnicodeDecodeError) as exc:
                failures += 1
                what = "timed out" if isinstance(exc, httpx.TimeoutException) else f"failed ({type(exc).__name__})"
                if failures > self.settings.max_retries:
                    raise CollectError(
                        f"request to {key} {what} {failures} times in a row",
                        "the server or network is unwell; run the same command again later to resume",
                    ) from None
                self._wait(self._backoff(failures - 1), f"request {what}; retrying")
                continue
            status = response.status_code
            if status == 429:
                limited += 1
                if limited > self.settings.max_rate_limit_retries:
                    raise RateLimitError(f"still rate limited by {response.url.host} after {limited - 1} waits")
                wait = self._reset_wait(response)
                if wait is None:
                    wait = self._backoff(limited - 1)
                self._wait(max(wait, 0.5), "rate limited (429); waiting for reset")
                continue
            if status >= 500:
                failures += 1
                if failures > self.settings.max_retries:
                    raise CollectError(
                        f"{response.url.host} answered {status} to {key} {failures} times in a row",
                        "the server is having trouble; run the same command again later to resume",
                    )
                wait = self._reset_wait(response) if status == 503 else None
                self._wait(wait if wait else self._backoff(failures - 1), f"server error {status}; retrying")
                continue
            if status >= 400 and status not in allow:
                raise error(response)
            self._record_limits(response)
            return Reply(data, response)


def make_client(
    base_url: str,
    *,
    token: str | None = None,
    settings: HttpSettings | None = None,
    clock: Clock | None = None,
    transport: httpx.BaseTransport | None = None,
    rng: random.Random | None = None,
    on_wait: WaitCallback | None = None,
    on_warning: WarnCallback | None = None,
) -> ApiClient:
    """Build the one kind of client every collector uses. ``token`` becomes a Bearer header only."""
    import httpx

    settings = settings or HttpSettings()
    headers = {"User-Agent": settings.user_agent, "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    http = httpx.Client(
        base_url=base_url.rstrip("/"),
        headers=headers,
        timeout=httpx.Timeout(settings.timeout),
        transport=transport,
        follow_redirects=False,
    )
    return ApiClient(
        http=http,
        settings=settings,
        clock=clock or SystemClock(),
        rng=rng or random.Random(),
        on_wait=on_wait,
        on_warning=on_warning,
    )


def error_text(response: httpx.Response) -> str:
    """The server's own error words, short, for messages (never headers: they may hold tokens)."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        return response.text[:200].strip()
    if isinstance(body, dict):
        parts = [str(body.get(k)) for k in ("error", "message", "error_description") if body.get(k)]
        return ": ".join(parts)[:300]
    return str(body)[:200]


def utc_now(clock: Clock) -> datetime:
    return datetime.fromtimestamp(clock.now(), UTC)
