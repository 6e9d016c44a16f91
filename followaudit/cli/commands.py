"""Core commands: audit, synth, demo."""

from __future__ import annotations
