"""`mls2 operators`: who may sign in to the pipeline UI (`mls2 serve`, /ui)."""

import sys
from typing import Annotated

import typer
from rich.console import Console

from conf.settings import SettingsError, load_settings
from pipelines.ui.operators import MIN_PASSWORD_LENGTH, OperatorError, OperatorRegistry
from pipelines.ui.sessions import SessionStore

console = Console(stderr=True)
operators_app = typer.Typer(
    help="Operators of the pipeline UI (/ui of `mls2 serve`): add, list, remove. Passwords are kept as "
    "scrypt hashes; operators are apart from the API's clients, which cannot start updates.",
    no_args_is_help=True,
)


def _registry() -> OperatorRegistry:
    try:
        return OperatorRegistry(load_settings().paths.operators)
    except SettingsError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None


@operators_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The operator's name: letters, digits, '.', '_', '@', '-'.")],
    replace: Annotated[bool, typer.Option("--replace", help="Give an existing operator a new password.")] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin (scripts).")
    ] = False,
) -> None:
    """Add an operator (the password is asked twice, or read from stdin)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt(
            f"Password (at least {MIN_PASSWORD_LENGTH} characters)", hide_input=True, confirmation_prompt=True
        )
    try:
        _registry().add(name, password, replace=replace)
    except OperatorError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None
    if replace:
        SessionStore(load_settings().paths.ui_state).close_all(name)
    console.print(f"Operator {name} can sign in at /ui/login of `mls2 serve`.")


@operators_app.command("list")
def list_operators() -> None:
    """List the operators."""
    try:
        names = _registry().names()
    except OperatorError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None
    for name in names:
        typer.echo(name)
    if not names:
        console.print("No operators yet: add one with `mls2 operators add NAME`")


@operators_app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="The operator to remove; their sessions end.")]) -> None:
    """Remove an operator and end their sessions."""
    try:
        _registry().remove(name)
    except OperatorError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None
    SessionStore(load_settings().paths.ui_state).close_all(name)
    console.print(f"Operator {name} removed.")
