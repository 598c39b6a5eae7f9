"""The import rules of docs/ARCHITECTURE.md: data flows one way, and so do imports.

Read from the source with `ast` (imports inside functions count): a rule broken anywhere in the
product packages fails here, naming the module, the import and the rule.
"""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("conf", "ingestion", "pipelines", "graphql_odata", "expectations")

ALLOWED_PACKAGES = {
    "conf": {"conf"},
    "ingestion": {"conf", "ingestion"},
    "pipelines": {"conf", "pipelines"},
    "graphql_odata": {"conf", "graphql_odata", "pipelines.snapshot"},
    # The suite reads what the pipeline published (through the engine's door: its SQL translation and
    # lock, and the snapshot's pointer) and the sync state (the successful syncs).
    "expectations": {
        "conf",
        "expectations",
        "pipelines.snapshot",
        "pipelines.embedded",
        "pipelines.spark_sql",
        "ingestion.state",
        "ingestion.saved_state",
    },
}
"""What each package may import from the product (a prefix of the imported module's name)."""
COMPOSITION_ROOT = "conf.cli"
"""The `mls2` command puts every package's subcommands together: the one module that imports them all."""

DECLARATION = {"pipelines.declaration", "pipelines.spark_sql", "pipelines.bronze", "pipelines.gold"}
DECLARATION |= {"pipelines.sql_files", "pipelines.payload", "pipelines.graph"}
ENGINE = "pipelines._engine"
ENGINE_DOOR = "pipelines.embedded"
"""The one module outside the engine that imports it: it hands the engine the declared graph."""
SNAPSHOT = "pipelines.snapshot"
CERTIFICATION = "graphql_odata.certification"
"""A client of any RESO server: its checks know the service only over HTTP."""
CERTIFICATION_COMMAND = "graphql_odata.certification.cli"
"""Which, checking this product's own API, registers the check's client with the service's registry."""


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def product_modules() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def imports(path: Path) -> Iterator[str]:
    """Every module `path` imports from the product, as a dotted name: `from a import b` is `a.b` when
    b is a module, else `a`."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [
                f"{node.module}.{alias.name}" if is_module(f"{node.module}.{alias.name}") else node.module
                for alias in node.names
            ]
        else:
            continue
        yield from (name for name in names if name.split(".")[0] in PACKAGES)


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def broken_rules(importer: str, imported: str) -> list[str]:
    """The rules `importer` importing `imported` breaks."""
    broken = []
    package = importer.split(".")[0]
    if importer != COMPOSITION_ROOT and not any(within(imported, allowed) for allowed in ALLOWED_PACKAGES[package]):
        broken.append(f"{package} may import only {sorted(ALLOWED_PACKAGES[package])}")
    private = next((part for part in imported.split(".")[1:] if part.startswith("_") and part != "__init__"), None)
    if private is not None:
        owner = imported[: imported.index(private) + len(private)].rsplit(".", 1)[0]
        if not within(importer, owner):
            broken.append(f"{private} is private to {owner}")
    if within(imported, ENGINE) and not (within(importer, ENGINE) or importer == ENGINE_DOOR):
        broken.append(f"only {ENGINE_DOOR} opens the engine")
    if importer in DECLARATION and (within(imported, ENGINE) or within(imported, SNAPSHOT) or imported == ENGINE_DOOR):
        broken.append("the declaration knows no executor and no snapshot")
    if within(importer, ENGINE) and within(imported, "pipelines"):
        allowed = (ENGINE, SNAPSHOT, "pipelines.declaration", "pipelines.spark_sql")
        if not any(within(imported, prefix) for prefix in allowed):
            broken.append(f"the engine imports from pipelines only {list(allowed)}")
    if within(importer, SNAPSHOT) and within(imported, "pipelines") and not within(imported, SNAPSHOT):
        broken.append("the snapshot format stands alone in pipelines")
    signs_in = importer == CERTIFICATION_COMMAND and imported == "graphql_odata.security.clients"
    if within(importer, CERTIFICATION) and within(imported, "graphql_odata") and not within(imported, CERTIFICATION):
        broken += [] if signs_in else ["the certification check knows the service only over HTTP"]
    return broken


def test_every_product_module_keeps_the_import_rules() -> None:
    violations = [
        f"{module_name(path)} imports {imported}: {rule}"
        for path in product_modules()
        for imported in imports(path)
        for rule in broken_rules(module_name(path), imported)
    ]
    assert violations == []


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("graphql_odata.backends.snapshot", "pipelines._engine.publish"),
        ("graphql_odata.schema", "pipelines.gold"),
        ("ingestion.sync", "pipelines.snapshot"),
        ("pipelines.graph", "pipelines._engine.sql"),
        ("pipelines._engine.runner", "pipelines.gold"),
        ("pipelines._engine.runner", "pipelines.graph"),
        ("pipelines.cli", "pipelines._engine.events"),
        ("pipelines.snapshot.readers", "pipelines._engine.sql"),
        ("pipelines.gold", "pipelines.snapshot.documents"),
        ("pipelines.graph", "pipelines.embedded"),
        ("conf.settings", "pipelines.declaration"),
        ("ingestion.cli", "ingestion.sandbox._private"),
        ("graphql_odata.certification.check", "graphql_odata.odata.metadata"),
        ("graphql_odata.certification.cli", "graphql_odata.schema"),
    ],
)
def test_each_rule_catches_the_import_it_forbids(importer: str, imported: str) -> None:
    assert broken_rules(importer, imported)


def test_the_rules_see_every_package_and_imports_inside_functions(tmp_path: Path) -> None:
    assert {module_name(path).split(".")[0] for path in product_modules()} >= {"conf", "ingestion", "pipelines"}
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from pipelines._engine import runner\n    import graphql_odata.main\n")
    assert list(imports(module)) == ["pipelines._engine.runner", "graphql_odata.main"]
