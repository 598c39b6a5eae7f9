"""Parsing shared by the `mls2` subcommands' options."""


def split_list(value: str | None) -> list[str] | None:
    """`"a, b,c"` -> `["a", "b", "c"]`; empty or None -> None (meaning: all)."""
    return [item.strip() for item in value.split(",") if item.strip()] if value else None
