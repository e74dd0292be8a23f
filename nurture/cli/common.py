"""What every subcommand shares: settings, the store, a Temporal client, output helpers."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from nurture.errors import NurtureError
from nurture.settings import Settings, get_settings
from nurture.store import Store

console = Console()
err_console = Console(stderr=True)

T = TypeVar("T")

JsonOption = typer.Option(False, "--json", help="Print JSON instead of a table")

_store: Store | None = None


def settings() -> Settings:
    return get_settings()


def store() -> Store:
    global _store
    if _store is None:
        _store = Store.open(settings().resolved_database_url)
    return _store


def fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def run_async(fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    return asyncio.run(fn(*args, **kwargs))


async def with_sequences(fn: Callable[[Any], Awaitable[T]]) -> T:
    from starters.connect import connect_temporal
    from starters.sequences import Sequences

    client = await connect_temporal(settings())
    return await fn(Sequences(client=client, store=store(), settings=settings()))


async def with_inboxes(fn: Callable[[Any], Awaitable[T]]) -> T:
    from starters.connect import connect_temporal
    from starters.inboxes import Inboxes

    client = await connect_temporal(settings())
    return await fn(Inboxes(client=client, store=store(), settings=settings()))


def to_jsonable(data: Any) -> Any:
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json")
    if isinstance(data, (list, tuple)):
        return [to_jsonable(d) for d in data]
    if isinstance(data, dict):
        return {k: to_jsonable(v) for k, v in data.items()}
    return data


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(data), indent=2, default=str) + "\n")


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    t = Table(title=title, show_lines=False, header_style="bold")
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*["" if v is None else str(v) for v in r])
    console.print(t)


def when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


def handle_error(exc: BaseException) -> int:
    """Turn a known error into one clear line and exit status 2; nothing else leaks a traceback."""
    from nurture.definitions import DefinitionError

    if isinstance(exc, DefinitionError):
        for problem in exc.problems:
            err_console.print(f"[red]error:[/red] {problem}", highlight=False, soft_wrap=True)
        return 2
    if isinstance(exc, NurtureError):
        err_console.print(f"[red]error:[/red] {exc.message}", highlight=False, soft_wrap=True)
        return 2
    return -1
