"""The README's transcript of `followaudit demo` is real output, and CI runs the README's commands.

Regenerate the transcript with: FOLLOWAUDIT_UPDATE_README=1 python -m pytest tests/test_readme.py
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCK = re.compile(r"(<!-- demo-transcript:start -->\n```\n)(.*?)(```\n<!-- demo-transcript:end -->)", re.S)


def demo_stdout(tmp_path: Path) -> str:
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}
    done = subprocess.run(
        [sys.executable, "-m", "followaudit", "demo", "--db", str(tmp_path / "demo.duckdb")],
        capture_output=True, text=True, env=env, cwd=tmp_path, check=True,
    )
    return "$ followaudit demo\n" + done.stdout


def test_readme_demo_transcript_is_real_output(tmp_path):
    text = README.read_text()
    match = BLOCK.search(text)
    assert match, "README lacks the demo transcript block"
    actual = demo_stdout(tmp_path)
    if os.environ.get("FOLLOWAUDIT_UPDATE_README"):
        README.write_text(text[: match.start(2)] + actual + text[match.end(2):])
        return
    assert match.group(2) == actual


def test_ci_runs_exactly_the_readme_commands():
    readme = README.read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    commands = re.findall(r"```sh\n(.*?)\n```", readme, re.S)[:2]
    assert len(commands) == 2
    for command in commands:
        assert command in ci, f"README command not run by .ci/run: {command}"
