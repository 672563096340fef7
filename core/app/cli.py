"""The ``aidgraph`` command line: one typer app; each module of :mod:`aidgraph.core.app.commands` adds its commands.

Commands open their own engine and session (the CLI is a session boundary), show progress with rich, and
are safe to re-run: loads and seeds are idempotent.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer

import aidgraph.core.app.commands

app = typer.Typer(help="aidgraph: the social-assistance data platform (社会救助).", no_args_is_help=True,
                  pretty_exceptions_show_locals=False)


def _register_commands() -> None:
    for module_info in sorted(pkgutil.iter_modules(aidgraph.core.app.commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"aidgraph.core.app.commands.{module_info.name}")
        module.register(app)


_register_commands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
