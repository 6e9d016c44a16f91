"""``followaudit report`` (one self-contained HTML file, JSON, CSV or charts) and ``followaudit serve``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..config import DEFAULT_INACTIVE_DAYS, LABEL_METHODS
from ..errors import InputError
from .app import cli, db_option, say

REPORT_FORMATS = {".html": "html", ".htm": "html", ".json": "json", ".csv": "csv", ".txt": "text"}


@cli.command()
@click.argument("snapshot")
@db_option
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to FILE; the format follows its suffix (.html, .json, .csv, .txt). Default: text to stdout.")
@click.option("--format", "fmt", type=click.Choice(["html", "json", "csv", "text"]), default=None,
              help="Output format (overrides the suffix of --output).")
@click.option("--charts", "charts_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write every chart as SVG and PNG into this directory (no browser needed).")
@click.option("--method", type=click.Choice(list(LABEL_METHODS)), default=None,
              help="Labels to report (default: the stored labels, model before rules; else the first method, labelled in memory).")
@click.option("--inactive-days", type=click.IntRange(1), default=DEFAULT_INACTIVE_DAYS, show_default=True)
@click.option("--confidence", type=click.FloatRange(0.5, 0.999), default=0.95, show_default=True)
def report(
    snapshot: str, db: Path | None, output: Path | None, fmt: str | None, charts_dir: Path | None,
    method: str | None, inactive_days: int, confidence: float,
) -> None:
    """Render the audit of SNAPSHOT (an id or account name) without changing the workspace.

    `followaudit report 1 -o report.html` writes one HTML file that opens offline: shares with their
    intervals, reasons, the follower-factory chart and bursts, engagement and growth when their data
    exists, the method, and what the numbers mean. Uses the labels stored by `followaudit audit`,
    or labels in memory when none are stored.
    """
    from ..store.workspace import Store, default_db_path
    from ..web.data import build_audit, factory_frame

    if fmt is None:
        fmt = REPORT_FORMATS.get(output.suffix.lower(), "text") if output else "text"
    with Store(db or default_db_path(), read_only=True) as store:
        result = build_audit(store, snapshot, method, inactive_days=inactive_days, confidence=confidence)
        followers = factory_frame(store, result.report.snapshot, result.labels) if fmt == "html" or charts_dir else None
    rep = result.report
    if fmt == "html":
        from ..render.html import render_html

        text = render_html(rep, followers=followers)
    elif fmt == "json":
        from ..render.jsonout import render_json

        text = render_json(rep) + "\n"
    elif fmt == "csv":
        from ..render.csvout import render_csv

        text = render_csv(result.labels)
    else:
        from io import StringIO

        from ..render.text import render_text

        buf = StringIO()
        render_text(rep, file=buf)
        text = buf.getvalue()
    if output:
        output.write_text(text, encoding="utf-8")
        say(f"wrote the {fmt} report of snapshot {rep.snapshot} to {output}")
    else:
        sys.stdout.write(text)
    if charts_dir:
        from ..render.static_charts import write_charts

        paths = write_charts(rep, charts_dir, followers=followers)
        say(f"wrote {len(paths)} chart files to {charts_dir}")


@cli.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Host to listen on. The default 127.0.0.1 means only this machine can connect. "
                   "0.0.0.0 listens on all interfaces and lets any machine that can reach yours "
                   "read every audit in the workspace: there is no login.")
@click.option("-p", "--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port to listen on (0 picks a free one).")
@click.option("--get", "get_path", default=None, metavar="PATH",
              help="Run one request in-process (e.g. --get /snapshots/1.json), print the body and exit: "
                   "exit code 1 when the response is an error.")
@click.option("--review", is_flag=True,
              help="Open the workspace for writing so the review page (/snapshots/ID/review) records answers.")
def serve(db: Path | None, host: str, port: int, get_path: str | None, review: bool) -> None:
    """Browse the audits of a workspace in a local web app; every page has a .json twin.

    The workspace is opened read-only (while it is served, other commands cannot write to it).
    With --review it is opened for writing so that /snapshots/ID/review records answers.
    """
    from ..store.workspace import default_db_path
    from ..web import create_app

    path = db or default_db_path()
    if not path.exists():
        raise InputError(f"no workspace at {path}", "run `followaudit demo` or `followaudit audit FILE` first, or pass --db")
    app = create_app(path, review=review, host=None if get_path is not None else host)
    if get_path is not None:
        try:
            import asyncio

            status, body = asyncio.run(_get(app, get_path))
        finally:
            app.state.db.close()
        sys.stdout.write(body if body.endswith("\n") else body + "\n")
        if status >= 400:
            sys.exit(1)
        return
    import uvicorn

    if host not in ("127.0.0.1", "localhost", "::1"):
        say(f"warning: listening on {host}: anyone who can reach this machine can read every audit in {path.name} (no login)")
    say(f"followaudit: serving {path} ({'reviews are recorded' if review else 'read-only'}) at http://{host}:{port}/  — Ctrl-C to stop")
    # keep-alive longer than uvicorn's 5 s: under load a client may reuse a connection the server
    # is just closing, and a browser keeps connections open between clicks
    uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False, timeout_keep_alive=30)


async def _get(app: object, path: str) -> tuple[int, str]:
    import httpx

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        response = await client.get(path)
    return response.status_code, response.text
