"""Bodies translated to DuckDB are kept between updates, and only while what decides them holds."""

from pathlib import Path

import orjson
import pytest
import sqlglot

from conf.settings import Settings
from pipelines import run_update, spark_sql
from pipelines._engine import compiled, sql
from pipelines._engine.compiled import CompiledBodies, digest
from pipelines._engine.context import COMPILED_BODIES
from pipelines._engine.sql import to_duckdb
from pipelines.spark_sql import SqlError, parse
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


def test_kept_bodies_are_dropped_when_sqlglot_or_the_rules_change(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "bodies.json"
    bodies = CompiledBodies(path)
    bodies.render(BODY, "x", plain)
    bodies.save([BODY])
    monkeypatch.setattr(compiled, "TRANSLATOR", "another translator")

    assert CompiledBodies(path).bodies == {}


def test_the_translator_stamp_covers_sqlglot_and_the_rules(tmp_path: Path) -> None:
    rules = tmp_path / "sql.py"
    rules.write_bytes(Path(sql.__file__).read_bytes())
    stamp = compiled.translator_stamp("30.0.0", [rules])
    assert compiled.translator_stamp("30.0.1", [rules]) != stamp
    rules.write_bytes(rules.read_bytes() + b"# another rule\n")
    assert compiled.translator_stamp("30.0.0", [rules]) != stamp
    assert (
        compiled.translator_stamp(
            sqlglot.__version__, [Path(spark_sql.__file__), Path(sql.__file__), Path(compiled.__file__)]
        )
        == compiled.TRANSLATOR
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

    def refuse(sql: str, *, origin: str) -> None:
        raise AssertionError(f"{origin} was parsed again")

    monkeypatch.setattr(compiled, "parse", refuse)
    land(settings, "s3", [prop("b", 3, price=300_000)])
    result = run_update(settings.paths)

    assert result.state == "COMPLETED"
    assert gold_prices(settings) == {"QOBRIX_a": 200_000, "QOBRIX_b": 300_000}
