"""``aidgraph plugins [--province CODE]``: what is loaded, what each province enables, and what is illustrative.

Parameters whose source is ``illustrative`` are demo values no source document gives; the listing names
every one so that a deployment knows what it must configure before relying on the numbers.
"""

from __future__ import annotations

import typer
from rich.table import Table

from aidgraph.core.storage.config import load_settings
from aidgraph.core.policy.engine import PolicyEngine
from aidgraph.core.policy.parameters import ParameterError
from aidgraph.core.policy.provinces import available_provinces
from aidgraph.core.policy.host import PluginError, build_plugin_manager, plugin_records
from aidgraph.core.app.terminal import console


def plugins_command(province: str | None = typer.Option(None, "--province", "-p",
                                                        help="Only this province (2-digit code)")) -> None:
    """List loaded plugins with versions, and per province the enabled plugins, programs and illustrative
    parameters."""
    settings = load_settings()
    try:
        pm = build_plugin_manager(settings)
    except PluginError as e:
        console.print(f"[red]plugin error:[/red] {e}")
        raise typer.Exit(1) from None
    table = Table(title="Loaded plugins")
    for column in ("name", "version", "origin", "provinces", "description"):
        table.add_column(column)
    for record in plugin_records(pm):
        table.add_row(record.name, record.version, record.origin, ", ".join(record.provinces or ()) or "any",
                      record.description)
    console.print(table)
    codes = [province] if province else available_provinces(settings)
    if province and province not in available_provinces(settings):
        console.print(f"[red]no configuration for province {province}[/red] "
                      f"(configured: {', '.join(available_provinces(settings))})")
        raise typer.Exit(1)
    engine = PolicyEngine(settings, pm)
    failed = False
    for code in codes:
        try:
            policy = engine.province(code)
        except (ParameterError, PluginError) as e:
            console.print(f"[red]province {code}: {e}[/red]")
            failed = True
            continue
        config = policy.config
        console.print(f"\n[bold]{config.code} {config.name}[/bold]: enabled plugins: {', '.join(config.enabled)}")
        console.print("programs: " + ", ".join(f"{p.key} ({p.name})" for p in policy.programs.values()))
        illustrative = config.params.illustrative_keys()
        sourced = [k for k in config.params.keys() if k not in illustrative]
        console.print(f"parameters: {len(config.params.keys())}, from sources {len(sourced)}, "
                      f"[yellow]illustrative {len(illustrative)}[/yellow]")
        ill = Table(title=f"{config.code}: illustrative parameters (demo values: configure before use)")
        ill.add_column("key")
        ill.add_column("source")
        for key in illustrative:
            ill.add_row(key, config.params.source(key) or "")
        console.print(ill)
        unset = sorted(k for k in config.params.specs if k not in config.params.parameters)
        if unset:  # optional parameters with no value: the rules that need them answer "not configured"
            console.print(f"[yellow]not configured[/yellow] (rules needing them say so): {', '.join(unset)}")
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("plugins")(plugins_command)
