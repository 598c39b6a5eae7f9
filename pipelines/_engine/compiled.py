"""Dataset bodies and expressions translated to DuckDB, kept on disk between updates.

Parsing and rendering a body is pure: its Spark SQL text, the relations its references point to,
sqlglot's version, the Spark SQL reading (`pipelines/spark_sql.py`) and the engine's translation
rules (`sql.py`) decide the result. The largest bodies (the RESO lookup's standard values, gold
Property's mapping, the property payload's schema) cost more to parse than a small update costs to
run, so an update parses a body only when one of those changed since an update last rendered it.
The expectations' constraints and AUTO CDC's conditions are kept the same way. What each body reads
is kept too, for every body of the graph: a process builds the graph from it instead of tokenizing
the bodies again. An update that finds everything kept never imports sqlglot (`sql` and `spark_sql`
are imported where something must be parsed).
"""

import hashlib
from collections.abc import Iterable
from importlib.util import find_spec
from pathlib import Path

import orjson

from conf.files import read_kept, write_atomically
from pipelines._engine.sql_text import RelationNamer
from pipelines.declaration import Dataset


def translator_stamp(sources: list[Path]) -> str:
    """A digest of what renders bodies and shapes the kept entries: these files."""
    stamp = hashlib.sha256()
    for source in sources:
        stamp.update(source.read_bytes())
    return stamp.hexdigest()


TRANSLATION_MODULES = ("pipelines.spark_sql", "pipelines._engine.sql", "pipelines._engine.sql_text")
"""The modules that parse and render bodies and expressions (a test holds this list to what they import)."""
TRANSLATOR = translator_stamp(
    [Path(find_spec("sqlglot").submodule_search_locations[0]) / "_version.py"]
    + [Path(find_spec(module).origin) for module in TRANSLATION_MODULES]
    + [Path(__file__)]
)
"""A change of sqlglot (its version file, of the copy Python imports), of the engine's rules or of
this module makes every kept body and expression stale: found without importing them."""


def declared_texts(datasets: Iterable[Dataset]) -> list[str]:
    """The Spark SQL a graph gives to translate: each body, expectation constraint and CDC condition."""
    texts = []
    for dataset in datasets:
        texts.append(dataset.sql)
        texts += [expectation.constraint for expectation in dataset.expectations]
        if dataset.cdc is not None and dataset.cdc.apply_as_deletes:
            texts.append(dataset.cdc.apply_as_deletes)
    return texts


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class CompiledBodies:
    """What each body reads and the DuckDB SQL it renders to under each naming of its references, by
    the digest of its text, and each expression's DuckDB SQL; read from `path` when the translator
    matches, saved by `save`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.bodies: dict[str, dict] = {}
        self.tokenized: dict[str, dict] = {}
        """What bodies not rendered yet read, from their tokens (`kept_references`), by digest."""
        self.expressions: dict[str, str] = {}
        """Each expression's DuckDB SQL, by its Spark SQL."""
        self.changed = False
        kept = read_kept(self.path, "translator", TRANSLATOR)
        if kept is not None and isinstance(kept.get("bodies"), dict):
            self.bodies = kept["bodies"]
            if isinstance(kept.get("references"), dict):
                self.tokenized = kept["references"]
            expressions = kept.get("expressions")
            if isinstance(expressions, dict) and all(isinstance(text, str) for text in expressions.values()):
                self.expressions = expressions

    def _entry(self, text: str, origin: str) -> dict:
        key = digest(text)
        entry = self.bodies.get(key)
        if not _well_formed(entry):
            from pipelines.spark_sql import parse, passthrough_stream, references

            tree = parse(text, origin=origin)
            reads, streams = references(tree)
            entry = {"reads": sorted(reads), "streams": sorted(streams), "passthrough": passthrough_stream(tree)}
            entry["renders"] = {}
            self.bodies[key] = entry
            self.changed = True
        return entry

    def references(self, text: str, origin: str) -> tuple[set[str], set[str]]:
        """The datasets a body reads: (whole reads, `STREAM(...)` reads)."""
        entry = self._entry(text, origin)
        return set(entry["reads"]), set(entry["streams"])

    def kept_references(self, text: str, origin: str) -> tuple[set[str], set[str]]:
        """What a body reads, as kept from its parse or its tokens, else from its tokens (then kept): a
        process builds the graph without reading every body again (the gold Lookup's and Property's
        are the largest)."""
        key = digest(text)
        for entry in (self.bodies.get(key), self.tokenized.get(key)):
            if _reads_kept(entry):
                return set(entry["reads"]), set(entry["streams"])
        from pipelines.spark_sql import table_references

        reads, streams = table_references(text, origin=origin)
        self.tokenized[key] = {"reads": sorted(reads), "streams": sorted(streams)}
        self.changed = True
        return reads, streams

    def passthrough(self, text: str, origin: str) -> str | None:
        """The dataset a body only passes on (`SELECT * FROM STREAM(x)`), if it is one."""
        return self._entry(text, origin)["passthrough"]

    def render(self, text: str, origin: str, relation: RelationNamer) -> str:
        """The body for DuckDB, each dataset reference pointing at `relation(name, is_stream)`."""
        entry = self._entry(text, origin)
        names = [[name, False, relation(name, False)] for name in entry["reads"]]
        names += [[name, True, relation(name, True)] for name in entry["streams"]]
        naming = orjson.dumps(names).decode()
        rendered = entry["renders"].get(naming)
        if rendered is None:
            from pipelines._engine.sql import to_duckdb
            from pipelines.spark_sql import parse

            rendered = to_duckdb(parse(text, origin=origin), relation)
            entry["renders"][naming] = rendered
            self.changed = True
        return rendered

    def expression(self, text: str) -> str:
        """A Spark SQL expression (an expectation's constraint, a CDC condition) for DuckDB."""
        rendered = self.expressions.get(text)
        if rendered is None:
            from pipelines._engine.sql import spark_to_duckdb_expression

            rendered = self.expressions[text] = spark_to_duckdb_expression(text)
            self.changed = True
        return rendered

    def save(self, texts: list[str]) -> None:
        """Write what was rendered, keeping only the entries of `texts` (the graph's, `declared_texts`)."""
        current = {digest(text) for text in texts}
        kept = {key: entry for key, entry in self.bodies.items() if key in current}
        references = {key: entry for key, entry in self.tokenized.items() if key in current}
        declared = set(texts)
        expressions = {text: rendered for text, rendered in self.expressions.items() if text in declared}
        unchanged = (len(kept), len(references), len(expressions)) == (
            len(self.bodies),
            len(self.tokenized),
            len(self.expressions),
        )
        if not self.changed and unchanged:
            return
        kept_now = {"translator": TRANSLATOR, "bodies": kept, "references": references, "expressions": expressions}
        write_atomically(self.path, orjson.dumps(kept_now))
        self.bodies, self.tokenized, self.expressions, self.changed = kept, references, expressions, False


def _reads_kept(entry: object) -> bool:
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("reads"), list)
        and isinstance(entry.get("streams"), list)
        and all(isinstance(name, str) for name in (*entry["reads"], *entry["streams"]))
    )


def _well_formed(entry: object) -> bool:
    """Whether a kept entry has the shape this module writes (a damaged one is rendered again)."""
    return (
        _reads_kept(entry)
        and isinstance(entry.get("passthrough"), str | None)
        and isinstance(entry.get("renders"), dict)
        and all(isinstance(rendered, str) for rendered in entry["renders"].values())
    )
