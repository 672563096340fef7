"""``aidgraph keys status`` and ``aidgraph keys rotate``: the data keys that encrypt ID numbers and phones.

Rotation (PIPL Art. 51; the issue's "key rotation by a command") appends a fresh key to the key file, which
becomes the current key for every new write, then re-encrypts the stored values in batches under it with a
progress bar. Each batch commits on its own: an interrupted rotation is finished with ``--resume``, and nothing is
unreadable meanwhile, because the older keys stay in the file (remove one only after ``keys status`` shows no
value under it). The blind index keeps its key (the file's first), so lookups and uniqueness are unaffected.

Keys held in ``AIDGRAPH_DATA_KEY`` rotate too, as a key list: ``aidgraph keys generate`` prints the list with a
fresh key appended, the operator sets it in every process, and ``keys rotate --resume`` re-encrypts. A running
process that meets a value under a key it has not loaded reads its key settings again once (so a server keeps
reading while a key file's rotation runs beside it).
"""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from aidgraph.core.storage.config import load_settings
from aidgraph.core.storage.crypto import add_key, key_list, next_key_entry
from aidgraph.core.storage.db import make_sync_engine
from aidgraph.core.storage.encrypted import forget_keyring, keyring, reencrypt, stale_values, values_by_key
from aidgraph.core.app.terminal import console, err


def _key_file() -> Path:
    """The key file a rotation appends to: ``AIDGRAPH_DATA_KEY_FILE``, or development's in the state directory."""
    if os.environ.get("AIDGRAPH_DATA_KEY"):
        err.print("[red]error:[/red] the data keys come from AIDGRAPH_DATA_KEY, which this command cannot change. "
                  "Run `aidgraph keys generate`, set AIDGRAPH_DATA_KEY to the key list it prints in every process "
                  "(servers first), then run `aidgraph keys rotate --resume` to re-encrypt under the new key",
                  highlight=False)
        raise typer.Exit(2)
    if os.environ.get("AIDGRAPH_DATA_KEY_FILE"):
        return Path(os.environ["AIDGRAPH_DATA_KEY_FILE"])
    keyring()  # development: creates the state directory's key file if there is none yet
    return Path(load_settings().state_dir) / "data.key"


def generate_command() -> None:
    """Print the deployment's key list with a fresh key appended (for keys held in AIDGRAPH_DATA_KEY).

    The list is the only thing written to standard output, ready to become the new value of AIDGRAPH_DATA_KEY:
    its last entry (the new key) encrypts every new value once the processes run with it, and the older entries
    keep decrypting what they wrote until ``keys rotate --resume`` has re-encrypted it.
    """
    ring = keyring()
    print(f"{key_list(ring)} {next_key_entry(ring)}")
    err.print("set AIDGRAPH_DATA_KEY to the line above in every process (servers first; it holds secret keys: "
              "keep it out of shells' history and logs), then run `aidgraph keys rotate --resume`",
              highlight=False)


def status_command() -> None:
    """Which key encrypted how many stored values, and how many still wait for the current key."""
    ring = keyring()
    engine = make_sync_engine(load_settings().database_url)
    try:
        counts, stale = values_by_key(engine), stale_values(engine)
    finally:
        engine.dispose()
    table = Table(title=f"data keys (current {ring.current}, {ring.cipher}; blind index {ring.index_key_id})")
    table.add_column("column")
    table.add_column("values by key")
    for name, by_key in counts.items():
        table.add_row(name, ", ".join(f"{k}: {n}" for k, n in sorted(by_key.items())) or "-")
    console.print(table)
    console.print(f"rows still to re-encrypt: {sum(stale.values())}")


def rotate_command(
    resume: bool = typer.Option(False, "--resume", help="finish an interrupted rotation: re-encrypt what is not "
                                                         "under the current key, without adding a key"),
    batch_size: int = typer.Option(2000, "--batch-size", min=1, max=100000, help="rows per transaction"),
) -> None:
    """Add a new data key and re-encrypt every stored ID number and phone under it, in batches."""
    path = None if resume else _key_file()  # resuming adds no key: keys held in AIDGRAPH_DATA_KEY resume too
    engine = make_sync_engine(load_settings().database_url)
    try:
        if path is not None:
            key_id = add_key(path)
            forget_keyring()
            console.print(f"new data key [bold]{key_id}[/bold] added to {path}; it encrypts every new value")
        ring = keyring()
        total = sum(stale_values(engine).values())
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TimeRemainingColumn())
        with Progress(*columns, console=console) as progress:
            task = progress.add_task(f"re-encrypting under {ring.current}", total=total)
            done = reencrypt(engine, batch_size, progress=lambda n: progress.advance(task, n))
        left = sum(stale_values(engine).values())
    finally:
        engine.dispose()
    console.print(f"[green]{done} row(s) re-encrypted[/green] under {ring.current}; {left} left")
    if left:
        err.print(f"[yellow]warning:[/yellow] {left} row(s) are still under an older key: run "
                  "`aidgraph keys rotate --resume`", highlight=False)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="The data keys of encrypted ID numbers and phones: status, rotation.",
                        no_args_is_help=True)
    group.command("status")(status_command)
    group.command("rotate")(rotate_command)
    group.command("generate")(generate_command)
    app.add_typer(group, name="keys")
