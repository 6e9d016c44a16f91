"""The local web app: browse audits the way datasette browses a database.

Every page has a ``.json`` twin; the report twin is exactly the Report's documented JSON schema. The
workspace is opened read-only. Pages are server-rendered with autoescaping Jinja2 and carry no
script at all, so the Content-Security-Policy forbids every script source.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import PackageLoader
from markupsafe import Markup, escape
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import FollowauditError, InputError, SnapshotNotFoundError
from ..render.html import environment, num, render_html
from ..render.jsonout import render_json
from .data import MAX_PER_PAGE, SORTABLE, FollowerQuery, ReadDB, cache_budget, freeze_long_lived
from .pages import PAGE_CACHE_SHARE, PageCache, ServeCached, rows_html
from .review_routes import add_review_routes

log = logging.getLogger("followaudit.web")

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class SecurityHeaders:
    """ASGI middleware: the CSP and friends on every response (pure ASGI, no per-request task)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                present = {k for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [h for h in self.headers if h[0] not in present]
            await send(message)

        await self.app(scope, receive, send_with_headers)


HTML = "text/html; charset=utf-8"
# Where followers.html leaves a page's own parts; "<" never survives escaping, so no user string can
# make one of these.
SLOTS = {name: Markup(f"<followaudit-slot {name}>") for name in ("json_url", "page_no", "rows_html", "pager")}
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})


def allowed_hosts(host: str) -> frozenset[str] | None:
    """Host names a browser may use to reach a server listening on ``host``; None = any IP literal.

    A page on another site can make a browser resolve its own name to 127.0.0.1 (DNS rebinding)
    and read the app; the Host header then still names that site, so it is refused.
    """
    name = host.strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return LOOPBACK_NAMES
    if name in ("0.0.0.0", "::", ""):
        return None
    return frozenset({name})


def _host_name(value: str) -> str:
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostCheck:
    """ASGI middleware: 421 for a Host header that is not the address the app serves."""

    def __init__(self, app: Any, hosts: frozenset[str] | None) -> None:
        self.app = app
        self.hosts = hosts

    def allowed(self, host: str) -> bool:
        name = _host_name(host)
        if self.hosts is None:  # listening on every interface: IP addresses and this machine's names
            return _is_ip(name) or name in LOOPBACK_NAMES or name in {socket.gethostname().lower(), socket.getfqdn().lower()}
        return name in self.hosts

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
            if not self.allowed(host):
                body = json.dumps(error_body(f"unknown Host {host!r}", 421, "open the app at the address it prints")).encode()
                headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": 421, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def json_bytes(data: Any) -> bytes:
    return json.dumps(data, default=_json_default, ensure_ascii=False).encode()


def json_response(data: Any, status: int = 200) -> Response:
    return Response(json_bytes(data), status_code=status, media_type="application/json")


def error_body(message: str, status: int, hint: str | None = None) -> dict[str, Any]:
    """The one JSON error shape: ``{"ok": false, "error": ..., "hint": ..., "status": ...}``."""
    return {"ok": False, "error": message, "hint": hint or None, "status": status}


def _status_for(exc: FollowauditError) -> int:
    if isinstance(exc, SnapshotNotFoundError):
        return 404
    if isinstance(exc, InputError):
        return 400
    return 500


def _params(request: Request) -> dict[str, str]:
    """Query parameters with empty values dropped (an unset form field is not a filter)."""
    return {k: v for k, v in request.query_params.items() if v != ""}


def _int(params: dict[str, str], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise InputError(f"{name} must be a whole number, not {raw!r}") from None


def create_app(db_path: str | Path, review: bool = False, host: str | None = None,
               cache_mb: float | None = None) -> FastAPI:
    """The web app over the workspace at ``db_path``, opened read-only (writable for reviews with ``review``).

    ``host`` is the address it listens on: requests naming another Host are refused (DNS
    rebinding). None (in-process use, no socket) skips the check. Audits and rendered pages are
    cached in memory up to ``cache_mb`` MiB together (default: ``$FOLLOWAUDIT_WEB_CACHE_MB``, else
    1024), pages taking at most 1/16 of it.
    """
    budget = cache_budget(cache_mb)
    pages = PageCache(budget // PAGE_CACHE_SHARE)
    db = ReadDB(db_path, writable=review, cache_bytes=budget - pages.max_bytes, warm_after_build=True)
    env = environment(PackageLoader("followaudit.web", "templates"))
    env.auto_reload = False  # the installed templates do not change: no stat() per render

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:  # served (uvicorn), not in-process use
        db.freeze_gc = True
        freeze_long_lived()
        yield

    app = FastAPI(title="followaudit", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.db = db
    app.state.pages = pages
    # innermost first: a kept page is sent after the Host check and with the security headers
    app.add_middleware(ServeCached, pages=pages, table=lambda *args: table_route(*args))
    app.add_middleware(SecurityHeaders)
    if host is not None:
        app.add_middleware(HostCheck, hosts=allowed_hosts(host))

    def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = env.get_template(template).render(request_path=request.url.path, db_path=db.path.name, writable=db.writable, **context)
        return HTMLResponse(html, status_code=status)

    def keep(request: Request, body: bytes, media_type: str) -> Response:
        """A 200 response that ``ServeCached`` sends again for the same address without routing."""
        pages.put(request.scope["path"], request.scope.get("query_string", b""), body, media_type)
        return Response(body, media_type=media_type)

    def is_json(request: Request) -> bool:
        return request.url.path.endswith(".json")

    def error(request: Request, status: int, message: str, hint: str | None = None) -> Response:
        if is_json(request):
            response = json_response(error_body(message, status, hint), status)
        else:
            response = page(request, "error.html", status=status, status_code=status, message=message, hint=hint)
        response.headers.update(SECURITY_HEADERS)  # 500s are sent outside the middleware stack
        return response

    def error_for(request: Request, exc: Exception) -> Response:
        if isinstance(exc, FollowauditError):
            return error(request, _status_for(exc), exc.message, exc.hint)
        if isinstance(exc, StarletteHTTPException):
            message = "page not found" if exc.status_code == 404 else str(exc.detail)
            return error(request, exc.status_code, message, "start from the index page, /" if exc.status_code == 404 else None)
        log.exception("error serving %s", request.url.path, exc_info=exc)
        return error(request, 500, f"internal error ({type(exc).__name__})", "the server log has the details")

    async def handled(request: Request, exc: Exception) -> Response:
        return error_for(request, exc)

    for kind in (FollowauditError, StarletteHTTPException, Exception):  # error_for tells them apart
        app.add_exception_handler(kind, handled)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error(request, 400, f"bad request: {where}: {first.get('msg', 'invalid')}")

    # -- index ------------------------------------------------------------------------------------
    def index_data() -> dict[str, Any]:
        rows = db.snapshots().to_dicts()
        accounts: dict[tuple[Any, Any], list[dict[str, Any]]] = {}
        for row in rows:
            accounts.setdefault((row["platform"], row["account"]), []).append(row)
        return {
            "ok": True,
            "database": db.path.name,
            "snapshots": rows,
            "accounts": [
                {"platform": p, "account": a, "snapshots": [r["snapshot_id"] for r in snaps]}
                for (p, a), snaps in accounts.items()
            ],
        }

    # The snapshot list cannot change while the server has the workspace open (reviews add no
    # snapshot, labels or followers): counting followers per snapshot (~25 ms at 1M) runs once.
    @app.get("/index.json")
    def index_json(request: Request) -> Response:
        return keep(request, json_bytes(index_data()), "application/json")

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request) -> Response:
        return keep(request, page(request, "index.html", data=index_data()).body, HTML)

    # -- report -----------------------------------------------------------------------------------
    # The report routes are async: a rendered report is kept in the page cache (``keep``) and sent
    # again from the event loop without routing or a hop to a worker thread (on 2 cores that hop,
    # and the GIL hand-over it costs, was most of the latency under load). Building it runs in a
    # worker thread.
    @app.get("/snapshots/{sid:int}.json")
    async def report_json(request: Request, sid: int) -> Response:
        method = _params(request).get("method")
        db.snapshot_id(sid)
        audit = await run_in_threadpool(db.audit, sid, method)
        return keep(request, render_json(audit.result.report).encode(), "application/json")

    @app.get("/snapshots/{sid:int}", response_class=HTMLResponse)
    async def report_page(request: Request, sid: int) -> Response:
        method = _params(request).get("method")
        db.snapshot_id(sid)
        await run_in_threadpool(db.audit, sid, method)
        return keep(request, report_html(request, sid, method).encode(), HTML)

    def report_html(request: Request, sid: int, method: str | None) -> str:
        audit = db.audit(sid, method)
        suffix = f"?{urlencode({'method': method})}" if method else ""
        links = {
            "followers": f"/snapshots/{sid}/followers",
            "json": f"/snapshots/{sid}.json{suffix}",
            "report_file": f"/snapshots/{sid}/report.html{suffix}",
        }
        charts = {name: f"/snapshots/{sid}/charts/{name}.svg{suffix}" for name in audit.charts}
        return env.get_template("report_page.html").render(
            request_path=request.url.path, db_path=db.path.name, writable=db.writable, report=audit.result.report, charts=charts,
            links=links, stored=audit.stored,
        )

    @app.get("/snapshots/{sid:int}/charts/{name}.svg")
    def chart(request: Request, sid: int, name: str) -> Response:
        audit = db.audit(db.snapshot_id(sid), _params(request).get("method"))
        if name not in audit.charts:
            raise StarletteHTTPException(404)
        return Response(audit.charts[name], media_type="image/svg+xml", headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/snapshots/{sid:int}/report.html")
    def report_file(request: Request, sid: int) -> Response:
        audit = db.audit(db.snapshot_id(sid), _params(request).get("method"))
        html = render_html(audit.result.report, charts=audit.charts)
        return HTMLResponse(html, headers={"Content-Disposition": f'attachment; filename="followaudit-snapshot-{sid}.html"'})

    # -- follower table ---------------------------------------------------------------------------
    def follower_query(params: dict[str, str]) -> FollowerQuery:  # validated before any query runs
        return FollowerQuery(
            label=params.get("label"), reason=params.get("reason"), burst=params.get("burst"), q=params.get("q"),
            sort=params.get("sort", "follow_rank"), order=params.get("order", "asc"),
            page=_int(params, "page", 1), per_page=_int(params, "per_page", 50),
        ).validate()

    # The table routes are async too: a page that needs only a slice or a gather of kept rows is
    # answered on the event loop; one that must compute a mask or a sort order first goes to a
    # worker thread, so it does not hold up the pages that need nothing computed.
    async def table_call(sid: int, fq: FollowerQuery, method: str | None, build: Any, *args: Any) -> bytes:
        db.snapshot_id(sid)
        if db.page_ready(sid, fq, method):
            return build(*args)
        return await run_in_threadpool(build, *args)

    @app.get("/snapshots/{sid:int}/followers.json")
    async def followers_json(request: Request, sid: int) -> Response:
        params = _params(request)
        fq = follower_query(params)

        def build() -> bytes:
            return json_bytes({"ok": True, **db.followers_page(sid, fq, params.get("method"))})

        return keep(request, await table_call(sid, fq, params.get("method"), build), "application/json")

    @app.get("/snapshots/{sid:int}/followers", response_class=HTMLResponse)
    async def followers_page(request: Request, sid: int) -> Response:
        params = _params(request)
        fq = follower_query(params)
        return keep(request, await table_call(sid, fq, params.get("method"), followers_html, request, sid, params, fq), HTML)

    async def table_route(request: Request, sid: int, as_json: bool) -> Response:  # see ServeCached
        try:
            return await (followers_json if as_json else followers_page)(request, sid)
        except Exception as exc:
            return error_for(request, exc)

    def followers_html(request: Request, sid: int, params: dict[str, str], fq: FollowerQuery) -> bytes:
        """The table page: the view's chrome (head, filter form, menus, column links), rendered once
        per view and kept with the pages, with this page's slots filled in."""
        data, rows = db.followers_frame(sid, fq, params.get("method"))

        def url(**changes: Any) -> str:
            merged = {**params, **{k: v for k, v in changes.items()}}
            merged = {k: v for k, v in merged.items() if v not in (None, "")}
            return f"/snapshots/{sid}/followers?{urlencode(merged)}" if merged else f"/snapshots/{sid}/followers"

        path = f"/snapshots/{sid}/followers"
        view = b"\x00view " + urlencode(sorted((k, v) for k, v in params.items() if k != "page")).encode()
        found = pages.get(path, view)
        if found is None:
            audit = db.audit(sid, params.get("method"))
            html = env.get_template("followers.html").render(
                request_path=path, db_path=db.path.name, writable=db.writable, data=data, report=audit.result.report,
                params=params, url=url, reasons=db.reason_counts(sid, params.get("method")), sortable=list(SORTABLE),
                max_per_page=MAX_PER_PAGE, **SLOTS,
            )
            found = (b"", html.encode())
            pages.put(path, view, found[1], "")
        json_url = f"/snapshots/{sid}/followers.json" + (f"?{urlencode(params)}" if params else "")
        fill = {
            "json_url": escape(json_url), "page_no": num(data["page"]), "rows_html": rows_html(rows, sid),
            "pager": env.get_template("_pager.html").render(data=data, url=url),
        }
        body = found[1]
        for name, value in fill.items():
            body = body.replace(SLOTS[name].encode(), str(value).encode(), 1)
        return body

    # -- one follower -----------------------------------------------------------------------------
    @app.get("/snapshots/{sid:int}/followers/{fid}")
    def follower_page(request: Request, sid: int, fid: str) -> Response:
        params = _params(request)
        if fid.endswith(".json"):
            data = db.follower(db.snapshot_id(sid), fid[: -len(".json")], params.get("method"))
            return json_response({"ok": True, **data})
        data = db.follower(db.snapshot_id(sid), fid, params.get("method"))
        return page(request, "follower.html", data=data, report=db.audit(sid, params.get("method")).result.report)

    # -- comparison -------------------------------------------------------------------------------
    @app.get("/compare")
    def compare_form(request: Request) -> Response:
        params = _params(request)
        a, b = _int(params, "a", 0), _int(params, "b", 0)
        if not a or not b:
            raise InputError("choose two snapshots to compare", "pass ?a=ID&b=ID, e.g. /compare?a=1&b=2")
        return RedirectResponse(f"/compare/{a}/{b}", status_code=303)

    @app.get("/compare/{a:int}/{b:int}.json")
    def compare_json(request: Request, a: int, b: int) -> Response:
        params = _params(request)
        data = db.compare(db.snapshot_id(a), db.snapshot_id(b), _int(params, "page", 1), _int(params, "per_page", 100))
        return json_response({"ok": True, **data})

    @app.get("/compare/{a:int}/{b:int}", response_class=HTMLResponse)
    def compare_page(request: Request, a: int, b: int) -> Response:
        params = _params(request)
        page_no = _int(params, "page", 1)
        data = db.compare(db.snapshot_id(a), db.snapshot_id(b), page_no, _int(params, "per_page", 100))
        return page(request, "compare.html", data=data, a=a, b=b, page_no=page_no)

    # -- the review page (web/review_routes.py) ---------------------------------------------------
    def forget(sid: int) -> None:  # a recorded review changes the snapshot's report
        db.forget(sid)
        pages.forget(sid)

    add_review_routes(app, db, page, forget, json_response)
    return app
