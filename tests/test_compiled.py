"""Bodies and expressions translated to DuckDB are kept between updates, and only while what decides
them holds."""

import sys
from pathlib import Path

import orjson
import pytest
import sqlglot

from conf.settings import Settings
from pipelines import graph as graph_module
from pipelines import run_update, spark_sql
from pipelines._engine import compiled, sql, sql_text
from pipelines._engine.compiled import CompiledBodies, declared_texts, digest
from pipelines._engine.context import COMPILED_BODIES
from pipelines._engine.sql import spark_to_duckdb_expression, to_duckdb
from pipelines.declaration import Graph, build_graph
from pipelines.embedded import product_graph
from pipelines.graph import product_datasets
from pipelines.spark_sql import SqlError, parse
from tests.test_architecture import imports
from tests.test_engine import gold_prices, land, prop

BODY = (
    "SELECT p.id, upper(p.name) AS name FROM qobrix_silver.property p "
    "JOIN STREAM(qobrix_bronze.properties) b ON b.id = p.id"
)


def plain(name: str, streaming: bool) -> str:
    return ("stream__" if streaming else "") + name.replace(".", "__")


def test_a_body_renders_as_the_translator_does_and_says_what_it_reads(tmp_path: Path) -> None:
    bodies = CompiledBodies(tmp_path / "bodies.json")

    assert bodies.render(BODY, "x", plain) == to_duckdb(parse(BODY, origin="x"), plain)
    assert bodies.references(BODY, "x") == ({"qobrix_silver.property"}, {"qobrix_bronze.properties"})
    assert bodies.passthrough(BODY, "x") is None
    assert bodies.passthrough("SELECT * FROM STREAM(a.b)", "y") == "a.b"
    other = bodies.render(BODY, "x", lambda name, streaming: "partial__" + plain(name, streaming))
    assert "partial__qobrix_silver__property" in other and "partial__" not in bodies.render(BODY, "x", plain)


def test_a_saved_body_is_read_back_not_rendered_again(tmp_path: Path) -> None:
    path = tmp_path / "bodies.json"
    bodies = CompiledBodies(path)
    bodies.render(BODY, "x", plain)
    bodies.save([BODY])
    kept = orjson.loads(path.read_bytes())
    [naming] = kept["bodies"][digest(BODY)]["renders"]
    kept["bodies"][digest(BODY)]["renders"][naming] = "SELECT 'kept' AS marker"
    path.write_bytes(orjson.dumps(kept))

    assert CompiledBodies(path).render(BODY, "x", plain) == "SELECT 'kept' AS marker"


def test_kept_bodies_and_expressions_are_dropped_when_sqlglot_or_the_rules_change(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "bodies.json"
    bodies = CompiledBodies(path)
    bodies.render(BODY, "x", plain)
    bodies.expression("price > 0")
    bodies.save([BODY, "price > 0"])
    assert CompiledBodies(path).expressions == {"price > 0": spark_to_duckdb_expression("price > 0")}
    monkeypatch.setattr(compiled, "TRANSLATOR", "another translator")

    kept = CompiledBodies(path)
    assert (kept.bodies, kept.expressions) == ({}, {})


def test_the_translator_stamp_covers_sqlglot_and_the_rules(tmp_path: Path) -> None:
    rules, version = tmp_path / "sql.py", tmp_path / "_version.py"
    rules.write_bytes(Path(sql.__file__).read_bytes())
    version.write_text("__version__ = '30.0.0'\n")
    stamp = compiled.translator_stamp([version, rules])
    rules.write_bytes(rules.read_bytes() + b"# another rule\n")
    assert compiled.translator_stamp([version, rules]) != stamp
    version.write_text("__version__ = '30.0.1'\n")
    assert compiled.translator_stamp([version, rules]) != stamp
    # The stamp, found without importing sqlglot or the rules, is of those an update would import.
    imported = [Path(sqlglot.__file__).with_name("_version.py"), Path(spark_sql.__file__), Path(sql.__file__)]
    stamped = [*imported, Path(sql_text.__file__), Path(compiled.__file__)]
    assert compiled.translator_stamp(stamped) == compiled.TRANSLATOR
    assert sqlglot.__version__ in imported[0].read_text()


def test_the_stamp_covers_every_module_of_the_product_the_translation_imports() -> None:
    translation = {spark_sql.__name__, sql.__name__}
    imported = {name for module in translation for name in imports(Path(sys.modules[module].__file__))}
    assert {name for name in imported if name.startswith("pipelines")} | translation <= set(
        compiled.TRANSLATION_MODULES
    )


def test_an_expression_is_translated_once_kept_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "bodies.json"
    constraint = "get_json_object(record, '$.id') IS NOT NULL AND price > 0"
    bodies = CompiledBodies(path)
    assert bodies.expression(constraint) == spark_to_duckdb_expression(constraint)
    bodies.save([constraint])
    kept = orjson.loads(path.read_bytes())
    kept["expressions"][constraint] = "'kept' IS NOT NULL"
    path.write_bytes(orjson.dumps(kept))

    assert CompiledBodies(path).expression(constraint) == "'kept' IS NOT NULL"
    with pytest.raises(SqlError, match="does not parse as Spark SQL"):
        CompiledBodies(path).expression("price >")


def test_saving_keeps_the_expressions_the_graph_declares(tmp_path: Path) -> None:
    """The graph's constraints and CDC conditions are kept; one no longer declared is dropped, and a
    damaged map of them is translated again."""
    path = tmp_path / "bodies.json"
    datasets = product_datasets()
    declared = declared_texts(datasets)
    silver = next(d for d in datasets if d.cdc is not None and d.cdc.apply_as_deletes)
    assert silver.cdc.apply_as_deletes in declared
    assert {e.constraint for d in datasets for e in d.expectations} <= set(declared)
    bodies = CompiledBodies(path)
    for text in [silver.cdc.apply_as_deletes, "retired > 0"]:
        bodies.expression(text)
    bodies.save(declared)

    assert orjson.loads(path.read_bytes())["expressions"] == {
        silver.cdc.apply_as_deletes: spark_to_duckdb_expression(silver.cdc.apply_as_deletes)
    }
    damaged = orjson.loads(path.read_bytes())
    damaged["expressions"][silver.cdc.apply_as_deletes] = 3
    path.write_bytes(orjson.dumps(damaged))
    assert CompiledBodies(path).expression(silver.cdc.apply_as_deletes) == spark_to_duckdb_expression(
        silver.cdc.apply_as_deletes
    )


def test_a_damaged_entry_is_rendered_again(tmp_path: Path) -> None:
    path = tmp_path / "bodies.json"
    damaged = {digest(BODY): {"reads": ["qobrix_silver.property"], "renders": {"[]": 3}}}
    path.write_bytes(orjson.dumps({"translator": compiled.TRANSLATOR, "bodies": damaged}))
    bodies = CompiledBodies(path)

    assert bodies.render(BODY, "x", plain) == to_duckdb(parse(BODY, origin="x"), plain)
    assert bodies.passthrough(BODY, "x") is None


def test_an_unreadable_file_is_an_empty_cache_and_bad_sql_still_fails(tmp_path: Path) -> None:
    path = tmp_path / "bodies.json"
    path.write_bytes(b"{not json")
    bodies = CompiledBodies(path)

    assert bodies.render(BODY, "x", plain) == to_duckdb(parse(BODY, origin="x"), plain)
    with pytest.raises(SqlError, match="broken: Spark SQL does not parse"):
        bodies.render("SELECT FROM WHERE (", "broken", plain)
    bodies.save([BODY])
    assert list(orjson.loads(path.read_bytes())["bodies"]) == [digest(BODY)]


def test_saving_keeps_only_the_graphs_current_bodies(tmp_path: Path) -> None:
    path = tmp_path / "bodies.json"
    bodies = CompiledBodies(path)
    bodies.render(BODY, "x", plain)
    bodies.render("SELECT 1 AS one", "old", plain)
    bodies.save([BODY, "SELECT 2 AS two"])

    assert list(orjson.loads(path.read_bytes())["bodies"]) == [digest(BODY)]


def test_an_update_like_the_last_one_parses_no_body(settings: Settings, monkeypatch) -> None:
    land(settings, "s1", [prop("a", 1), prop("b", 1)])
    run_update(settings.paths)
    land(settings, "s2", [prop("a", 2, price=200_000)])
    run_update(settings.paths)
    assert (settings.paths.state / COMPILED_BODIES).exists()

    kept = (settings.paths.state / COMPILED_BODIES).stat()

    def refuse(sql: str, *, origin: str) -> None:
        raise AssertionError(f"{origin} was parsed again")

    def refuse_expression(text: str) -> None:
        raise AssertionError(f"{text} was translated again")

    monkeypatch.setattr(spark_sql, "parse", refuse)
    monkeypatch.setattr(sql, "spark_to_duckdb_expression", refuse_expression)
    land(settings, "s3", [prop("b", 3, price=300_000)])
    result = run_update(settings.paths)

    assert result.state == "COMPLETED"
    after = (settings.paths.state / COMPILED_BODIES).stat()
    assert (after.st_ino, after.st_mtime_ns) == (kept.st_ino, kept.st_mtime_ns), "nothing was translated again"
    assert gold_prices(settings) == {"QOBRIX_a": 200_000, "QOBRIX_b": 300_000}


def refuse_tokens(sql: str, *, origin: str) -> None:
    raise AssertionError(f"{origin} was tokenized again")


def dependencies(graph: Graph) -> dict[str, tuple]:
    return {name: (dataset.depends_on, dataset.streams) for name, dataset in graph.datasets.items()}


def test_what_bodies_read_is_kept_and_builds_the_graph_tokens_build(tmp_path: Path, monkeypatch) -> None:
    """The next process builds the product's graph from what the last one kept, tokenizing no body,
    and the graph is the one the bodies' tokens give; a damaged entry is tokenized again."""
    path = tmp_path / "bodies.json"
    datasets = product_datasets()
    first = CompiledBodies(path)
    first.render(BODY, "x", plain)
    built = build_graph(datasets, first.kept_references)
    first.save([BODY, *(dataset.sql for dataset in datasets)])
    monkeypatch.setattr(spark_sql, "table_references", refuse_tokens)

    kept = CompiledBodies(path)
    assert dependencies(build_graph(datasets, kept.kept_references)) == dependencies(built)
    assert kept.kept_references(BODY, "x") == ({"qobrix_silver.property"}, {"qobrix_bronze.properties"})
    monkeypatch.undo()
    assert dependencies(built) == dependencies(build_graph(datasets))

    damaged = orjson.loads(path.read_bytes())
    lookup = digest(next(d.sql for d in datasets if d.name == "reso_gold.lookup"))
    damaged["references"][lookup]["reads"] = "reso_gold.property"
    path.write_bytes(orjson.dumps(damaged))
    monkeypatch.setattr(spark_sql, "table_references", refuse_tokens)
    with pytest.raises(AssertionError, match=r"reso_gold\.lookup was tokenized again"):
        build_graph(datasets, CompiledBodies(path).kept_references)


def test_a_process_after_an_update_builds_the_graph_without_tokenizing(settings: Settings, monkeypatch) -> None:
    land(settings, "s1", [prop("a", 1)])
    run_update(settings.paths)
    tokenized = dependencies(build_graph(product_datasets()))
    monkeypatch.setattr(graph_module, "_built", None)
    monkeypatch.setattr(spark_sql, "table_references", refuse_tokens)

    assert dependencies(product_graph(settings.paths)) == tokenized
