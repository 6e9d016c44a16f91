"""The web review page: one follower at a time, keys f / i / r / c / u, progress k of n.

Recording answers writes to the workspace, so it needs ``followaudit serve --review`` (the workspace
is then opened for writing); otherwise the page says so and the POST is refused. The POST carries a
per-process token (HMAC of the snapshot) and must come from the same origin. The model's label and
reasons appear only after the answer (the page after the POST shows them for the follower just
answered). Keys work through one small script served from the app itself: this page's CSP allows
``script-src 'self'`` and nothing else; every button also has an ``accesskey`` without the script.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from .. import review as rv
from ..errors import InputError
from .data import ReadDB

REVIEW_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; script-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
MAX_FORM_BYTES = 4096
REVIEWER_RE = re.compile(r"^[\w .@-]{1,40}$")
KEY_SCRIPT = """// followaudit review page: single keys press the matching button (f i r c u).
document.addEventListener("keydown", function (e) {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  var t = e.target && e.target.tagName;
  if (t === "INPUT" || t === "TEXTAREA" || t === "SELECT") return;
  var b = document.getElementById("key-" + e.key.toLowerCase());
  if (b && !b.disabled) { e.preventDefault(); b.click(); }
});
"""


def _reviewer(params: dict[str, str]) -> str:
    name = (params.get("reviewer") or "web").strip()
    if not REVIEWER_RE.match(name):
        raise InputError("reviewer names are 1–40 letters, digits, spaces or . @ - _", "e.g. ?reviewer=anna")
    return name


def add_review_routes(app: FastAPI, db: ReadDB, page: Any, forget: Any, json_response: Any) -> None:
    """Register the review page, its ``.json`` twin, its POST endpoint and its key script."""
    secret = secrets.token_bytes(32)

    def token(sid: int) -> str:
        return hmac.new(secret, f"review:{sid}".encode(), hashlib.sha256).hexdigest()

    def state(sid: int, reviewer: str, n: int | None) -> dict[str, Any]:
        with db.lock():
            subject = rv.subject_for(db.store, str(db.snapshot_id(sid)))
            design = db.store.review_design(subject.scope, subject.subject_id)
            if db.writable:
                design = rv.ensure_sample(db.store, subject, n=n)
            if design is None:
                return {"ok": True, "snapshot": sid, "writable": db.writable, "design": None, "next": None,
                        "progress": {"done": 0, "total": 0, "prefix": 0}, "reviewer": reviewer}
            item = rv.next_item(db.store, subject, reviewer)
            return {
                "ok": True, "snapshot": sid, "writable": db.writable, "reviewer": reviewer,
                "design": rv.design_summary(design, subject), "progress": rv.progress(db.store, subject, reviewer),
                "next": item, "account": subject.account, "platform": subject.platform,
            }

    def reveal(sid: int, follower_id: str | None, reviewer: str) -> dict[str, Any] | None:
        """What the reviewer said about the follower just answered, and the model's label, now shown."""
        if not follower_id:
            return None
        with db.lock():
            subject = rv.subject_for(db.store, str(sid))
            answers = db.store.subject_reviews(subject.scope, subject.subject_id, subject.platform, subject.account)
            mine = answers.filter((answers["reviewer"] == reviewer) & (answers["follower_id"] == follower_id))
            if mine.height == 0:
                return None
            model = rv.model_labels(db.store, subject, [follower_id]).to_dicts()
        return {"follower_id": follower_id, "label": mine["label"][-1], "model": model[0] if model else None}

    def n_param(params: dict[str, str]) -> int | None:
        raw = params.get("n")
        if raw is None or raw == "":
            return None
        if not raw.isdigit() or int(raw) < 1:
            raise InputError(f"n must be a positive whole number, not {raw!r}")
        return int(raw)

    @app.get("/review.js")
    def review_script() -> Response:
        return Response(KEY_SCRIPT, media_type="text/javascript", headers={"Cache-Control": "no-cache"})

    @app.get("/snapshots/{sid:int}/review.json")
    def review_json(request: Request, sid: int) -> Response:
        params = dict(request.query_params)
        return json_response(state(sid, _reviewer(params), n_param(params)))

    @app.get("/snapshots/{sid:int}/review")
    def review_page(request: Request, sid: int) -> Response:
        params = dict(request.query_params)
        reviewer = _reviewer(params)
        data = state(sid, reviewer, n_param(params))
        shown = reveal(sid, params.get("answered"), reviewer)
        response = page(request, "review.html", data=data, shown=shown, token=token(sid), reviewer=reviewer,
                        undone=params.get("undone"), json_url=f"/snapshots/{sid}/review.json?{urlencode({'reviewer': reviewer})}")
        response.headers["Content-Security-Policy"] = REVIEW_CSP
        response.headers["Referrer-Policy"] = "same-origin"  # so the browser sends Origin with the POST
        return response

    @app.post("/snapshots/{sid:int}/review")
    async def review_post(request: Request, sid: int) -> Response:
        origin = request.headers.get("origin") or request.headers.get("referer")
        if origin and urlsplit(origin).netloc != request.url.netloc:
            return Response("cross-origin review refused", status_code=403, media_type="text/plain")
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return Response("form too large", status_code=413, media_type="text/plain")
        # a urlencoded form parsed by hand: python-multipart is not a dependency for one small form
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        if not hmac.compare_digest(str(form.get("token", "")), token(sid)):
            return Response("missing or stale form token: reload the review page", status_code=403, media_type="text/plain")
        if not db.writable:
            raise InputError("this server is read-only", "start it with `followaudit serve --review` to record reviews")
        reviewer = _reviewer({"reviewer": str(form.get("reviewer") or "web")})
        action = str(form.get("action") or "")
        follower_id = str(form.get("follower_id") or "")
        query: dict[str, str] = {"reviewer": reviewer}
        with db.lock():
            subject = rv.subject_for(db.store, str(db.snapshot_id(sid)))
            if action == "u":
                undone = rv.undo(db.store, subject, reviewer)
                query["undone"] = "1" if undone else "0"
            else:
                label = rv.KEYS.get(action) or rv.parse_label(action)
                if label is None:
                    raise InputError(f"unknown answer {action!r}", "use f, i, r, c or u")
                rv.answer(db.store, subject, reviewer, follower_id, label)
                query["answered"] = follower_id
        forget(sid)
        return RedirectResponse(f"/snapshots/{sid}/review?{urlencode(query)}", status_code=303)
