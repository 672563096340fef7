"""The command line's two rich consoles (standard output and errors), defined once for every command.

Messages name files, lines and codes that people copy into an editor or a ticket, so neither console breaks a
long line in the middle of a path: ``soft_wrap`` leaves wrapping to the terminal. One definition also means
every command renders alike, whatever the width of the terminal it was first imported under.
"""

from __future__ import annotations

from rich.console import Console

console = Console(soft_wrap=True)
"""Results and progress (standard output)."""

err = Console(stderr=True, soft_wrap=True)
"""Errors and warnings (standard error)."""
