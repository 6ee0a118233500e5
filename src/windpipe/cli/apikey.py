"""``windpipe api-key``: make API keys and the hashes the API keeps instead of them.

The API accepts the keys whose SHA-256 digests ``WINDPIPE_API_KEY_HASHES`` lists; the keys
themselves are stored nowhere by windpipe. Rotating: create a new key, add its entry, hand the key
out, then revoke the old entry; the API reads the list when it starts.
"""

import sys
from typing import Annotated

import typer

from windpipe.cli.app import app, clean_errors, console, load_settings_or_exit

key_app = typer.Typer(
    help="Create, list and revoke the connector API's keys.", no_args_is_help=True
)
app.add_typer(key_app, name="api-key")

_LABEL = r"^[A-Za-z0-9_.-]{1,40}$"


@key_app.command("create")
@clean_errors
def create(
    label: Annotated[
        str, typer.Option(help="Who holds the key (shown in `list` and the API's log).")
    ] = "etl",
) -> None:
    """Make a new key; print it once, and the entry to add to WINDPIPE_API_KEY_HASHES."""
    import re

    from windpipe.api.security import key_digest, new_key

    if not re.fullmatch(_LABEL, label):
        raise typer.BadParameter("letters, digits, '_', '.', '-' only (1-40)", param_hint="--label")
    settings = load_settings_or_exit()
    key = new_key()
    entry = f"{label}={key_digest(key)}"
    entries = [*settings.api_key_hashes, entry]
    console.print(f"key (shown once; give it to the client as WINDPIPE_API_KEY): {key}")
    console.print(f"entry for the API:      {entry}", highlight=False)
    console.print(f"WINDPIPE_API_KEY_HASHES={','.join(entries)}", highlight=False, soft_wrap=True)


@key_app.command("hash")
@clean_errors
def hash_key(
    label: Annotated[str, typer.Option(help="Label of the entry.")] = "key",
) -> None:
    """Read a key from standard input; print its entry for WINDPIPE_API_KEY_HASHES."""
    from windpipe.api.security import key_digest

    key = sys.stdin.readline().strip()
    if not key:
        raise typer.BadParameter("no key on standard input", param_hint="stdin")
    console.print(f"{label}={key_digest(key)}", highlight=False)


@key_app.command("list")
@clean_errors
def list_keys() -> None:
    """List the keys the API accepts (labels and the start of each hash)."""
    settings = load_settings_or_exit()
    if not settings.api_key_hashes:
        console.print("no keys: the API answers without authentication (WINDPIPE_API_KEY_HASHES)")
        return
    for number, entry in enumerate(settings.api_key_hashes, start=1):
        label, _, digest = entry.rpartition("=")
        console.print(f"{label or f'key {number}'}  sha256:{digest[:12]}…", highlight=False)


@key_app.command("revoke")
@clean_errors
def revoke(
    label: Annotated[str, typer.Argument(help="Label (or start of the hash) of the key.")],
) -> None:
    """Print WINDPIPE_API_KEY_HASHES without the key; restart the API with it to revoke."""
    settings = load_settings_or_exit()
    kept: list[str] = []
    gone: list[str] = []
    for entry in settings.api_key_hashes:
        name, _, digest = entry.rpartition("=")
        (gone if label in (name, digest[: len(label)]) and len(label) >= 1 else kept).append(entry)
    if not gone:
        console.print(f"no key labelled {label!r} in WINDPIPE_API_KEY_HASHES", highlight=False)
        raise typer.Exit(1)
    console.print(f"revoked {len(gone)} entr{'y' if len(gone) == 1 else 'ies'}; set:")
    console.print(f"WINDPIPE_API_KEY_HASHES={','.join(kept)}", highlight=False, soft_wrap=True)
    console.print("and restart `windpipe api` (it reads the list when it starts)")
