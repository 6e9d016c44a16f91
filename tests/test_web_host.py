"""DNS rebinding: the served web app answers only requests that name the address it listens on."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from webdb import build_demo_db, served

from followaudit.web import create_app
from followaudit.web.app import allowed_hosts


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    path = tmp_path_factory.mktemp("host") / "web.duckdb"
    build_demo_db(path)
    app = create_app(path, host="127.0.0.1")
    with served(app) as url:
        yield int(url.rsplit(":", 1)[1])
    app.state.db.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_own_addresses_are_served(port: int, host: str) -> None:
    response = httpx.get(f"http://127.0.0.1:{port}/index.json", headers={"Host": f"{host}:{port}"})
    assert response.status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1.evil.example", ""])
def test_a_rebound_name_is_refused(port: int, host: str) -> None:
    # what a browser sends after evil.example's DNS answer was switched to 127.0.0.1
    response = httpx.get(f"http://127.0.0.1:{port}/index.json", headers={"Host": host})
    assert response.status_code == 421
    assert response.json()["ok"] is False and "unknown Host" in response.json()["error"]
    assert "snapshots" not in response.text


def test_allowed_hosts() -> None:
    assert "localhost" in allowed_hosts("127.0.0.1")
    assert allowed_hosts("audit.lan") == frozenset({"audit.lan"})
    assert allowed_hosts("0.0.0.0") is None
