"""`followaudit collect …` end to end against the local server, then `followaudit audit`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from servers.fake_platform import TARGET_HANDLE, FakePlatform

from followaudit.cli import main
from followaudit.store import Store


def run(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


@pytest.fixture
def fp():
    with FakePlatform(2_000, hidden=12) as platform:
        yield platform


@pytest.fixture(autouse=True)
def no_user_config(tmp_path, monkeypatch):
    monkeypatch.setenv("FOLLOWAUDIT_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.delenv("FOLLOWAUDIT_MASTODON_TOKEN", raising=False)


def test_collect_bluesky_sample_then_audit(fp, tmp_path, capsys) -> None:
    db = str(tmp_path / "w.duckdb")
    code, out, err = run(capsys, "collect", "bluesky", TARGET_HANDLE, "--api-base", fp.url, "--db", db,
                         "--sample", "400", "--seed", "11", "--pace", "0", "--posts", "10")
    assert code == 0, err
    assert "followers reported by the platform: 2,012" in out
    assert "followers enumerated: 2,000 (12 reported but not listed" in out
    assert "uniform random sample of 400 out of 2,000 (seed 11)" in out
    # getProfile 1 + getFollowers ceil(2000/100) + getProfiles ceil(400/25) + getRelationships ceil(400/30) + posts 1
    assert "requests: 52;" in out
    assert "posts collected: 10" in out
    code, out, err = run(capsys, "audit", "1", "--db", db, "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    design = report["sample_design"]
    assert (design["kind"], design["n"], design["population"], design["seed"]) == ("uniform", 400, 2000, 11)
    assert report["followers_audited"] == 400 and report["followers_reported"] == 2012
    for share in report["shares"].values():
        assert share["low"] <= share["share"] <= share["high"]
        assert "finite-population" in share["method"]


def test_collect_mastodon_token_hint_and_env_token(tmp_path, capsys, monkeypatch) -> None:
    db = str(tmp_path / "w.duckdb")
    with FakePlatform(300, token="sekrit") as platform:
        code, out, err = run(capsys, "collect", "mastodon", "@target@127.0.0.1", "--api-base", platform.url, "--db", db, "--pace", "0")
        assert code == 1 and out == ""
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: 127.0.0.1 refused the request (401")
        assert "FOLLOWAUDIT_MASTODON_TOKEN" in lines[0]
        monkeypatch.setenv("FOLLOWAUDIT_MASTODON_TOKEN", "sekrit")
        code, out, err = run(capsys, "collect", "mastodon", "https://127.0.0.1/@target", "--api-base", platform.url, "--db", db, "--pace", "0")
        assert code == 1 and len(err.strip().splitlines()) == 1 and "FOLLOWAUDIT_MASTODON_INSTANCE" in err
        monkeypatch.setenv("FOLLOWAUDIT_MASTODON_INSTANCE", "127.0.0.1")
        code, out, err = run(capsys, "collect", "mastodon", "https://127.0.0.1/@target", "--api-base", platform.url, "--db", db, "--pace", "0")
        assert code == 0, err
        assert "profiles stored: 300" in out
    with Store(db, read_only=True) as store:
        assert "sekrit" not in str(store.query("SELECT * FROM snapshots").rows())
    code, report, log = run(capsys, "audit", "target@127.0.0.1", "--db", db, "--format", "json")
    assert code == 0, log
    # not in any report, log line or byte of the workspace file
    assert "sekrit" not in report + log + err + out
    assert b"sekrit" not in Path(db).read_bytes()


def test_collect_token_from_config_file(tmp_path, capsys, monkeypatch) -> None:
    conf = tmp_path / "config.toml"
    conf.write_text('[mastodon.tokens]\n"127.0.0.1" = "from-file"\n[http]\nmin_interval = 0\n')
    monkeypatch.setenv("FOLLOWAUDIT_CONFIG", str(conf))
    with FakePlatform(100, token="from-file") as platform:
        code, out, err = run(capsys, "collect", "mastodon", "target@127.0.0.1", "--api-base", platform.url, "--db", str(tmp_path / "w.duckdb"))
    assert code == 0, err


@pytest.mark.parametrize(
    "args, fault, message",
    [
        (["--sample", "10", "--precision", "0.05"], None, "--sample and --precision both given"),
        ([], "repeat_cursor", "pagination does not advance"),
        (["--max-retries-unused"], None, "No such option"),
    ],
)
def test_collect_errors_are_one_line(fp, tmp_path, capsys, args, fault, message) -> None:
    if fault:
        setattr(fp.faults, fault, True)
    code, out, err = run(capsys, "collect", "bluesky", TARGET_HANDLE, "--api-base", fp.url, "--db", str(tmp_path / "w.duckdb"), "--pace", "0", *args)
    assert code != 0 and message in err
    assert "Traceback" not in err


def test_hidden_followers_message(tmp_path, capsys) -> None:
    with FakePlatform(50, hide_collections=True) as platform:
        code, _, err = run(capsys, "collect", "mastodon", "@target@127.0.0.1", "--api-base", platform.url, "--db", str(tmp_path / "w.duckdb"))
    assert code == 1 and "hides its follower list" in err and "only its owner can audit it" in err


def test_rerun_of_complete_snapshot_is_not_recollected(fp, tmp_path, capsys) -> None:
    db = str(tmp_path / "w.duckdb")
    args = ["collect", "bluesky", TARGET_HANDLE, "--api-base", fp.url, "--db", db, "--pace", "0", "--sample", "50", "--seed", "1"]
    assert run(capsys, *args)[0] == 0
    before = fp.requests
    code, out, err = run(capsys, *args)
    assert code == 0 and "already complete" in err and fp.requests == before + 1
    assert run(capsys, *args, "--fresh")[0] == 0
    with Store(db, read_only=True) as store:
        assert store.list_snapshots().height == 2
