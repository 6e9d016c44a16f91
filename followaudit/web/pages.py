"""What makes a follower-table page cheap to serve: rendered pages kept as bytes, and table rows
rendered without a template.

Measured at 1M followers (benchmarks/bench_web.py): the Jinja loop over 50 rows cost ~2 ms per page,
nine tenths of the server's time on it; ``rows_html`` writes the same rows in ~0.3 ms. A page asked
again (a reload, the back button, many readers of one audit) is sent from ``PageCache`` by the
ASGI layer itself, before routing, at the cost of one dictionary look-up.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from typing import Any

import polars as pl
from jinja2.utils import url_quote
from markupsafe import Markup, escape
from starlette.requests import Request

from ..render.html import num

PAGE_CACHE_SHARE = 16  # rendered pages may use 1/16 of the web cache budget (64 MiB of 1 GiB)


class PageCache:
    """Rendered 200 responses by (path, raw query string), least recently used dropped past a byte budget.

    Only pages that depend on nothing but the workspace (read-only while served) and their address
    are put here; ``forget`` drops a snapshot's pages when a review changes its report.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.nbytes = 0
        self._pages: OrderedDict[tuple[str, bytes], tuple[bytes, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._pages)

    def get(self, path: str, query: bytes) -> tuple[bytes, bytes] | None:
        """(media type, body) of a kept page, or None."""
        with self._lock:
            found = self._pages.get((path, query))
            if found is not None:
                self._pages.move_to_end((path, query))
            return found

    def put(self, path: str, query: bytes, body: bytes, media_type: str) -> None:
        size = len(body) + len(path) + len(query)
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._pages.pop((path, query), None)
            if old is not None:
                self.nbytes -= len(old[1]) + len(path) + len(query)
            self._pages[(path, query)] = (media_type.encode("latin-1"), body)
            self.nbytes += size
            while self.nbytes > self.max_bytes:
                (p, q), (_, b) = self._pages.popitem(last=False)
                self.nbytes -= len(b) + len(p) + len(q)

    def forget(self, snapshot: int) -> None:
        """Drop every kept page of one snapshot (its report, its tables)."""
        mine = re.compile(rf"^/snapshots/{int(snapshot)}(?:\.json|/|$)")
        with self._lock:
            for key in [k for k in self._pages if mine.match(k[0])]:
                p, q = key
                self.nbytes -= len(self._pages.pop(key)[1]) + len(p) + len(q)


TABLE_PATH = re.compile(r"^/snapshots/([0-9]+)/followers(\.json)?$")


class ServeCached:
    """ASGI middleware: a GET of a kept page is answered here, without routing or a handler; a GET
    of a follower table goes straight to ``table`` (an async function of the request, the snapshot
    number and whether the JSON twin is asked, returning a Response, errors included), skipping
    FastAPI's routing and parameter validation (~0.35 ms of the ~1.3 ms such a page cost)."""

    def __init__(self, app: Any, pages: PageCache, table: Any = None) -> None:
        self.app = app
        self.pages = pages
        self.table = table

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            found = self.pages.get(scope["path"], scope.get("query_string", b""))
            if found is not None:
                media_type, body = found
                headers = [(b"content-type", media_type), (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            found_table = TABLE_PATH.match(scope["path"]) if self.table is not None else None
            if found_table is not None:
                response = await self.table(Request(scope, receive), int(found_table[1]), bool(found_table[2]))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _days(values: pl.Series) -> list[str | None]:
    """Dates as render.html's ``day`` writes them (the UTC date; None when missing), for a whole
    page at once (a Series operation: a tenth of the cost of a select or of ``day`` per cell)."""
    dtype = values.dtype
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        values = values.dt.convert_time_zone("UTC")
    if isinstance(dtype, pl.Datetime | pl.Date):
        values = values.dt.strftime("%Y-%m-%d")
    return values.cast(pl.String).to_list()


def rows_html(rows: pl.DataFrame, snapshot: int) -> Markup:
    """The ``<tr>`` rows of the follower table (what followers.html showed with a Jinja loop):
    every user string escaped, follower ids URL-quoted in links. A loop over one page's rows."""
    if not rows.height:
        return Markup('<tr><td colspan="10">No follower matches these filters.</td></tr>\n')
    cols = [rows[c].to_list() for c in (
        "follow_rank", "follower_id", "handle", "display_name", "label", "probability", "reasons",
        "followers_count", "following_count", "posts_count",
    )]
    base = f"/snapshots/{int(snapshot)}/followers/"
    out = []
    for rank, fid, handle, name, label, prob, reasons, n_followers, n_following, n_posts, created, last in zip(
        *cols, _days(rows["created_at"]), _days(rows["last_active_at"]), strict=True
    ):
        p = "" if prob is None else f' <span class="muted">({prob:.2f})</span>'
        why = "; ".join(escape(r) for r in reasons or ())
        lab = escape(label)
        out.append(
            f'<tr><td class="num">{num(rank)}</td>\n'
            f'<td><a class="follower-link" href="{escape(base + url_quote(fid))}">{escape(handle or fid)}</a></td>\n'
            f'<td>{escape(name or "")}</td><td class="label-{lab}">{lab}{p}</td>\n'
            f'<td class="muted">{why}</td><td>{created or "—"}</td>\n'
            f'<td class="num">{num(n_followers)}</td><td class="num">{num(n_following)}</td><td class="num">{num(n_posts)}</td><td>{last or "—"}</td></tr>\n'
        )
    return Markup("".join(out))
