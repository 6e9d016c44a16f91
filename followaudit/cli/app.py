"""The click group, shared options, and the one place where errors become exit codes."""

from __future__ import annotations

import atexit
import os
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..errors import FollowauditError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="followaudit", prog_name="followaudit")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
def cli(debug: bool) -> None:
    """Audit who follows an account: fake, inactive and real shares with confidence intervals.

    Data goes to stdout; messages and progress bars go to stderr.
    """


def db_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--db PATH``: the DuckDB workspace (default $FOLLOWAUDIT_DB or ./followaudit.duckdb)."""
    return click.option(
        "--db",
        "db",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Workspace database file (default: $FOLLOWAUDIT_DB or ./followaudit.duckdb).",
    )(func)


def format_option(*choices: str, default: str = "text") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--format", "fmt", type=click.Choice(list(choices)), default=default, show_default=True, help="Output format."
    )


def say(message: str) -> None:
    """A message for the person at the terminal: always stderr, never mixed with data."""
    click.echo(message, err=True)


# Optional dependencies and the extra that installs each (pyproject.toml); an audit needs none of them.
OPTIONAL_EXTRAS = {
    "lightgbm": "train", "sklearn": "train", "quapy": "eval", "ppi_py": "eval",
    "fastapi": "web", "uvicorn": "web", "starlette": "web", "dask": "dask", "distributed": "dask",
}


# Batch commands that churn through gigabytes of short-lived columns. Polars' allocator (jemalloc)
# by default hands freed pages back to the system within seconds and faults them in again, zeroed,
# for the next batch: ~1 CPU-s in the kernel of a 3M audit. Keeping them costs ~200 MiB of peak
# memory at 3M and 10M (benchmarks/README.md); a long-running `web` server keeps the default.
BATCH_COMMANDS = ("audit", "score", "demo")
# Commands that end with ``leave_quickly`` when run as the program: the batch commands, and `import`
# (its store is closed and checkpointed before; the teardown of ~1M parsed rows' objects is skipped).
QUICK_EXIT_COMMANDS = (*BATCH_COMMANDS, "import")
BATCH_ENV = {"_RJEM_MALLOC_CONF": "dirty_decay_ms:-1,muzzy_decay_ms:-1"}
# NumPy's OpenBLAS threads spin after each small matrix product; followaudit's are all tiny.
COMMAND_ENV = {"OPENBLAS_NUM_THREADS": "1"}


def tune_allocator(args: list[str]) -> None:
    """Set the allocators' environment for this command, before Polars and NumPy load (they read it
    once, at load; a user's own settings win)."""
    if "polars" in sys.modules or "numpy" in sys.modules:
        return
    settings = {**COMMAND_ENV, **(BATCH_ENV if command_name(args) in BATCH_COMMANDS else {})}
    for name, value in settings.items():
        os.environ.setdefault(name, value)


def command_name(args: list[str]) -> str | None:
    """The subcommand ``args`` run (their first word that is not an option)."""
    return next((a for a in args if not a.startswith("-")), None)


def leave_quickly() -> None:
    """End a finished batch command now: its registered clean-ups run (temporary directories,
    logging, worker pools) and its output is flushed, but the interpreter does not tear down.

    That teardown (collecting and freeing every object of Polars, DuckDB, NumPy and the command's
    own data) took ~0.1 s of the ~0.2 s between a 3M audit's last write and its exit (the rest is
    the kernel freeing its memory). Only when no other thread runs: one still at work would be cut off.
    """
    if any(t is not threading.current_thread() and not t.daemon for t in threading.enumerate()):
        return
    atexit._run_exitfuncs()  # noqa: SLF001 - the clean-ups a normal exit runs, before os._exit skips the rest
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`| head`): nothing more can be written
            pass
    os._exit(0)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the CLI and map every error to one line and an exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    tune_allocator(args)
    try:
        cli.main(args=args, prog_name="followaudit", standalone_mode=False)
    except FollowauditError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"Error: {exc.one_line()}", err=True)
        sys.exit(1)
    except ModuleNotFoundError as exc:
        extra = OPTIONAL_EXTRAS.get((exc.name or "").split(".")[0])
        if extra is None:
            raise
        if debug:
            traceback.print_exc()
        click.echo(f"Error: this command needs {exc.name}, which is not installed (fix: pip install 'followaudit[{extra}]')", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted. Run the same command again to resume.", err=True)
        sys.exit(130)
    except BrokenPipeError:  # `followaudit audit ... | head`
        sys.exit(0)
    except Exception as exc:  # noqa: BLE001 - the last line of defence must not leak a traceback
        if debug:
            traceback.print_exc()
        click.echo(f"Error: unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)", err=True)
        sys.exit(1)
    if argv is None and command_name(args) in QUICK_EXIT_COMMANDS:  # a process of its own, not a caller's
        leave_quickly()
    sys.exit(0)


class StepProgress:
    """A rich progress bar on stderr for one long step, drawn only when stderr is a terminal.

    Use as a context manager; call it with the number of items just finished.
    """

    def __init__(self, description: str, total: int | None) -> None:
        self.bar: Any = None
        if not sys.stderr.isatty():  # nothing is drawn: rich (~0.1 s to import) is not loaded
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        console = Console(stderr=True)
        self.bar = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=console, transient=True, disable=not console.is_terminal,
        )
        self.task = self.bar.add_task(description, total=total)

    def __enter__(self) -> StepProgress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def __call__(self, done: int) -> None:
        if self.bar is not None:
            self.bar.advance(self.task, done)
