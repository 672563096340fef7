"""The ``aidgraph`` command line: one typer app; each module of :mod:`aidgraph.core.app.commands` adds its commands.

Commands open their own engine and session (the CLI is a session boundary), show progress with rich, and
are safe to re-run: loads and seeds are idempotent.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer

import aidgraph.core.app.commands
from aidgraph.core.app.ops import COMMANDS_WITHOUT_DATABASE, DatabaseNotReady, require_database
from aidgraph.core.storage.config import load_settings
from aidgraph.core.storage.crypto import DataKeyError
from aidgraph.core.storage.encrypted import require_keyring

app = typer.Typer(help="aidgraph: the social-assistance data platform (社会救助).", no_args_is_help=True,
                  pretty_exceptions_show_locals=False)


@app.callback()
def _database_guard(ctx: typer.Context) -> None:
    """Commands other than init-db and demo never create a database silently (aidgraph.core.app.ops); commands
    that open it refuse to run in production without the data key (aidgraph.core.storage.encrypted)."""
    if ctx.invoked_subcommand is None or ctx.invoked_subcommand in COMMANDS_WITHOUT_DATABASE:
        return
    if {"--help", "-h"} & set(ctx.args or ()) or {"--help", "-h"} & set(sys.argv[1:]):
        return
    try:
        settings = load_settings()
        require_database(settings.database_url)
        require_keyring(settings.production, settings.state_dir)
    except (DatabaseNotReady, DataKeyError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


def _register_commands() -> None:
    for module_info in sorted(pkgutil.iter_modules(aidgraph.core.app.commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"aidgraph.core.app.commands.{module_info.name}")
        module.register(app)


_register_commands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
