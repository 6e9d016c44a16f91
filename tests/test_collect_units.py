"""Unit tests for live collection: sample size, sampling, address parsing, config, HTTP policy."""

from __future__ import annotations

import json
import math
from statistics import NormalDist

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from followaudit import __version__, config
from followaudit.errors import CollectError, InputError, NotFoundError, RateLimitError
from followaudit.estimate.sample_design import draw_sample, sample_size
from followaudit.sources.bluesky import normalize_actor
from followaudit.sources.http import FakeClock, HttpSettings, make_client, parse_reset
from followaudit.sources.mastodon import parse_acct

Z95 = NormalDist().inv_cdf(0.975)


# -- sample size -------------------------------------------------------------------------------
def test_sample_size_known_values() -> None:
    assert sample_size(0.05) == 385  # 1.96² · 0.25 / 0.05² = 384.1
    assert sample_size(0.05, 1000) == 278  # 384.1 / (1 + 383.1 / 1000) = 277.7
    assert sample_size(0.02, 20000) == 2144  # 2400.9 / (1 + 2399.9 / 20000) = 2143.7
    assert sample_size(0.01, 50) == 50  # never more than the population
    assert sample_size(0.05, 0) == 0


def test_sample_size_confidence_changes_z() -> None:
    assert sample_size(0.05, confidence=0.99) == math.ceil(NormalDist().inv_cdf(0.995) ** 2 * 0.25 / 0.0025)


@pytest.mark.parametrize("bad", [0, -0.1, 0.5, 1.2])
def test_sample_size_rejects_bad_precision(bad: float) -> None:
    with pytest.raises(InputError):
        sample_size(bad, 1000)


@settings(max_examples=200, deadline=None)
@given(h=st.floats(0.005, 0.2), population=st.integers(2, 5_000_000))
def test_sample_size_meets_precision_with_fpc(h: float, population: int) -> None:
    n = sample_size(h, population)
    assert 1 <= n <= population
    fpc = (population - n) / (population - 1)
    assert Z95 * math.sqrt(0.25 / n * fpc) <= h + 1e-9
    if n > 1:  # and it is the smallest such n
        fpc1 = (population - n + 1) / (population - 1)
        assert Z95 * math.sqrt(0.25 / (n - 1) * fpc1) > h - 1e-9


def test_draw_sample_is_seeded_uniform_not_latest() -> None:
    a = draw_sample(20000, 1000, seed=7)
    assert a == draw_sample(20000, 1000, seed=7)
    assert a != draw_sample(20000, 1000, seed=8)
    assert len(set(a)) == 1000 and a == sorted(a) and 0 <= a[0] and a[-1] < 20000
    # uniform over the whole list: the mean position is near the middle, not near 0 (the newest)
    mean = sum(a) / len(a)
    assert abs(mean - 9999.5) < 4 * 20000 / math.sqrt(12 * 1000)
    assert a[0] < 200 and a[-1] > 19800


# -- addresses ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [
        ("@Gargron@mastodon.social", ("Gargron", "mastodon.social")),
        ("gargron@Mastodon.Social", ("gargron", "mastodon.social")),
        ("https://fosstodon.org/@ada", ("ada", "fosstodon.org")),
        ("https://fosstodon.org/@ada/", ("ada", "fosstodon.org")),
        ("https://mastodon.social/@bob@hachyderm.io", ("bob", "hachyderm.io")),
        ("@target@127.0.0.1", ("target", "127.0.0.1")),
    ],
)
def test_parse_acct(text: str, expected: tuple[str, str]) -> None:
    assert parse_acct(text) == expected


@pytest.mark.parametrize("text", ["ada", "@ada", "https://fosstodon.org/ada", "ada@", "not an address"])
def test_parse_acct_rejects(text: str) -> None:
    with pytest.raises(NotFoundError) as info:
        parse_acct(text)
    assert "@user@instance" in info.value.hint


def test_normalize_actor() -> None:
    assert normalize_actor("@Alice.bsky.social") == "alice.bsky.social"
    assert normalize_actor("did:plc:AbC") == "did:plc:AbC"
    assert normalize_actor("https://bsky.app/profile/alice.bsky.social/post/3k") == "alice.bsky.social"
    with pytest.raises(NotFoundError):
        normalize_actor("  ")


# -- config ------------------------------------------------------------------------------------
def test_token_belongs_to_one_instance(tmp_path, monkeypatch) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[mastodon.tokens]\n"fosstodon.org" = "per-instance"\n[http]\nmin_interval = 0.5\nbogus = 1\n')
    monkeypatch.setenv("FOLLOWAUDIT_CONFIG", str(path))
    monkeypatch.delenv("FOLLOWAUDIT_MASTODON_TOKEN", raising=False)
    monkeypatch.delenv("FOLLOWAUDIT_MASTODON_INSTANCE", raising=False)
    assert config.config_path() == path
    assert config.mastodon_token("fosstodon.org") == "per-instance"
    assert config.mastodon_token("other.social") is None  # never another instance's token
    assert config.http_settings() == {"min_interval": 0.5}
    # the environment token needs its instance named beside it ...
    monkeypatch.setenv("FOLLOWAUDIT_MASTODON_TOKEN", "from-env")
    with pytest.raises(InputError, match="FOLLOWAUDIT_MASTODON_INSTANCE is not"):
        config.mastodon_token("fosstodon.org")
    # ... and then applies to that instance only
    monkeypatch.setenv("FOLLOWAUDIT_MASTODON_INSTANCE", "https://Mastodon.Social/")
    assert config.mastodon_token("mastodon.social") == "from-env"
    assert config.mastodon_token("fosstodon.org") == "per-instance"
    assert config.mastodon_token("evil.example") is None


def test_global_config_token_is_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("FOLLOWAUDIT_MASTODON_TOKEN", raising=False)
    for text in ('mastodon_token = "s3cr3t-global"\n', '[mastodon]\ntoken = "s3cr3t-global"\n'):
        path = tmp_path / "config.toml"
        path.write_text(text)
        monkeypatch.setenv("FOLLOWAUDIT_CONFIG", str(path))
        with pytest.raises(InputError, match="global Mastodon token") as info:
            config.mastodon_token("mastodon.social")
        line = info.value.one_line()
        assert "[mastodon.tokens]" in line and "s3cr3t" not in line


def test_token_goes_only_to_its_instance_over_https(monkeypatch) -> None:
    conf = {"mastodon": {"tokens": {"a.social": "tok-a", "127.0.0.1": "tok-local"}}}
    assert config.token_for("a.social", "https://a.social", conf) == ("tok-a", None)
    token, note = config.token_for("a.social", "https://b.social", conf)
    assert token is None and "not sent to b.social" in note
    with pytest.raises(InputError, match="plain http"):
        config.token_for("a.social", "http://a.social", conf)
    assert config.token_for("127.0.0.1", "http://127.0.0.1:8080", conf) == ("tok-local", None)
    assert config.token_for("b.social", "https://b.social", conf) == (None, None)


def test_missing_and_broken_config(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("FOLLOWAUDIT_MASTODON_TOKEN", raising=False)
    monkeypatch.setenv("FOLLOWAUDIT_CONFIG", str(tmp_path / "absent.toml"))
    assert config.load_config() == {} and config.mastodon_token("x.social") is None
    bad = tmp_path / "bad.toml"
    bad.write_text("mastodon_token = \n")
    monkeypatch.setenv("FOLLOWAUDIT_CONFIG", str(bad))
    with pytest.raises(InputError):
        config.load_config()


# -- HTTP policy -------------------------------------------------------------------------------
NOW = 1_763_870_000.0


def client_for(handler, **settings_kw):
    clock = FakeClock(NOW)
    warnings: list[str] = []
    waits: list[tuple[float, str]] = []
    defaults = {"min_interval": 0.0}
    defaults.update(settings_kw)
    api = make_client(
        "https://api.test", settings=HttpSettings(**defaults), clock=clock, transport=httpx.MockTransport(handler),
        on_warning=warnings.append, on_wait=lambda s, r: waits.append((s, r)),
    )
    return api, clock, warnings, waits


def fail(response: httpx.Response) -> Exception:
    return CollectError(f"status {response.status_code}")


def sequence(*responses):
    """A handler answering with the given (status, headers, body) in turn; records requests."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = responses[min(len(seen) - 1, len(responses) - 1)]
        if isinstance(item, Exception):
            raise item
        status, headers, body = item
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.Response(status, headers=headers, content=content)

    handler.seen = seen  # type: ignore[attr-defined]
    return handler


def test_user_agent_and_token_header() -> None:
    handler = sequence((200, {}, {"ok": True}))
    api = make_client("https://api.test", token="s3cret", transport=httpx.MockTransport(handler), clock=FakeClock(NOW))
    assert api.get("/x", error=fail).data == {"ok": True}
    request = handler.seen[0]
    assert request.headers["User-Agent"].startswith(f"followaudit/{__version__}")
    assert request.headers["Authorization"] == "Bearer s3cret"
    assert "s3cret" not in repr(api.settings)


def test_backoff_on_5xx_is_bounded_and_jittered() -> None:
    handler = sequence((503, {}, {}), (502, {}, {}), (500, {}, {}), (200, {}, {"ok": 1}))
    api, clock, _, waits = client_for(handler, backoff_base=1.0, backoff_max=60.0)
    assert api.get("/x", error=fail).data == {"ok": 1}
    assert len(handler.seen) == 4
    assert [r for _, r in waits] == ["server error 503; retrying", "server error 502; retrying", "server error 500; retrying"]
    for attempt, seconds in enumerate(clock.sleeps):
        step = min(60.0, 2**attempt)
        assert step / 2 <= seconds <= step


def test_5xx_forever_stops_with_one_error() -> None:
    handler = sequence((503, {}, {}))
    api, clock, _, _ = client_for(handler, max_retries=3)
    with pytest.raises(CollectError, match="503 to /x 4 times"):
        api.get("/x", error=fail)
    assert len(handler.seen) == 4 and len(clock.sleeps) == 3


@pytest.mark.parametrize("status", [400, 403, 404, 410])
def test_other_4xx_never_retried(status: int) -> None:
    handler = sequence((status, {}, {"error": "nope"}))
    api, clock, _, _ = client_for(handler)
    with pytest.raises(CollectError, match=f"status {status}"):
        api.get("/x", error=fail)
    assert len(handler.seen) == 1 and clock.sleeps == []


def test_allowed_4xx_is_returned() -> None:
    handler = sequence((400, {}, {"error": "BlockedActor"}))
    api, _, _, _ = client_for(handler)
    reply = api.get("/x", error=fail, allow=(400,))
    assert reply.data is None and reply.response.status_code == 400


def test_transport_errors_and_truncated_json_are_retried() -> None:
    handler = sequence(httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), (200, {}, b'{"followers": [{"di'), (200, {}, {"ok": 2}))
    api, clock, _, waits = client_for(handler)
    assert api.get("/x", error=fail).data == {"ok": 2}
    assert len(handler.seen) == 4 and len(clock.sleeps) == 3
    assert "timed out" in waits[1][1]


def test_retry_after_seconds_and_http_date() -> None:
    date = "Sun, 23 Nov 2025 03:53:20 GMT"  # == NOW
    handler = sequence((429, {"Retry-After": "7"}, {}), (429, {"Retry-After": "Sun, 23 Nov 2025 03:53:32 GMT", "Date": date}, {}), (200, {}, {}))
    api, clock, warnings, _ = client_for(handler)
    api.get("/x", error=fail)
    assert clock.sleeps == [7.0, pytest.approx(12.0)]  # 12 s after the server's Date (read against it)
    assert warnings == []


def test_bluesky_reset_header_epoch_and_mastodon_iso() -> None:
    handler = sequence(
        (429, {"RateLimit-Limit": "3000", "RateLimit-Remaining": "0", "RateLimit-Reset": str(int(NOW) + 40)}, {}),
        (429, {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "2025-11-23T03:55:00.000Z"}, {}),
        (200, {}, {}),
    )
    api, clock, _, waits = client_for(handler)
    api.get("/x", error=fail)
    assert clock.sleeps == [pytest.approx(40.0), pytest.approx(100.0 - 40.0)]
    assert all("429" in r for _, r in waits)


def test_wrong_clock_is_clamped_with_warning() -> None:
    far = str(int(NOW) + 10 * 86400)
    handler = sequence((429, {"RateLimit-Reset": far}, {}), (429, {"RateLimit-Reset": str(int(NOW) - 3600)}, {}), (200, {}, {}))
    api, clock, warnings, _ = client_for(handler, max_wait=900.0)
    api.get("/x", error=fail)
    assert clock.sleeps[0] == 900.0
    assert 0.5 <= clock.sleeps[1] <= 2.0  # reset in the past: backoff instead
    assert any("clock wrong" in w and "900" in w for w in warnings)
    assert any("in the past" in w for w in warnings)


def test_date_header_protects_against_local_clock_skew() -> None:
    # the local clock is an hour fast; the server's Date and reset agree on a 30 s wait
    handler = sequence((429, {"Date": "Sun, 23 Nov 2025 03:53:20 GMT", "RateLimit-Reset": str(int(NOW) + 30)}, {}), (200, {}, {}))
    api, clock, warnings, _ = client_for(handler)
    clock.t += 3600
    api.get("/x", error=fail)
    assert clock.sleeps == [pytest.approx(30.0)]
    assert any("local clock differs" in w for w in warnings)


def test_rate_limited_forever_raises() -> None:
    handler = sequence((429, {"Retry-After": "1"}, {}))
    api, clock, _, _ = client_for(handler, max_rate_limit_retries=4)
    with pytest.raises(RateLimitError):
        api.get("/x", error=fail)
    assert len(handler.seen) == 5 and clock.sleeps == [1.0] * 4


def test_remaining_zero_waits_before_next_request_and_pacing() -> None:
    handler = sequence(
        (200, {"RateLimit-Limit": "10", "RateLimit-Remaining": "0", "RateLimit-Reset": str(int(NOW) + 20)}, {}),
        (200, {"RateLimit-Limit": "10", "RateLimit-Remaining": "9", "RateLimit-Reset": str(int(NOW) + 320)}, {}),
        (200, {}, {}),
    )
    api, clock, _, waits = client_for(handler, min_interval=0.25)
    for _ in range(3):
        api.get("/x", error=fail)
    assert clock.sleeps[0] == pytest.approx(20.0)
    assert waits[0][1] == "rate limit reached; waiting for reset"
    assert clock.sleeps[1:] == [pytest.approx(0.25)]
    assert api.calls["/x"] == 3


def test_eta_uses_pacing_and_limits() -> None:
    handler = sequence((200, {"RateLimit-Limit": "100", "RateLimit-Remaining": "10", "RateLimit-Policy": "100;w=300"}, {}))
    api, _, _, _ = client_for(handler, min_interval=0.1)
    api.get("/x", error=fail)
    api.latency = 0.02  # measured round trips; below the pacing interval here
    assert api.eta(5) == pytest.approx(0.5)  # within the budget: pacing only
    assert api.eta(250) == 3 * 300  # 240 beyond the budget -> three more windows


def test_parse_reset_formats() -> None:
    assert parse_reset("1763870400", NOW) == 1763870400
    assert parse_reset("30", NOW) == NOW + 30
    assert parse_reset("2025-11-23T04:00:00.000Z", NOW) == 1763870400
    assert parse_reset("Sun, 23 Nov 2025 04:00:00 GMT", NOW) == 1763870400
    assert parse_reset("soon", NOW) is None


def test_redirects_and_non_json_answers_stop_at_once() -> None:
    handler = sequence((301, {"Location": "https://elsewhere.test/x"}, b""))
    api, clock, _, _ = client_for(handler)
    with pytest.raises(CollectError, match="redirected /x to https://elsewhere.test/x") as info:
        api.get("/x", error=fail)
    assert "--api-base" in info.value.hint and len(handler.seen) == 1
    handler = sequence((200, {"Content-Type": "text/html"}, b"<html>hello</html>"))
    api, clock, _, _ = client_for(handler)
    with pytest.raises(CollectError, match="did not answer /x with JSON"):
        api.get("/x", error=fail)
    assert len(handler.seen) == 1 and clock.sleeps == []
