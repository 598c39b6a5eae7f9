"""Dataset bodies translated to DuckDB, kept on disk between updates.

Parsing and rendering a body is pure: its Spark SQL text, the relations its references point to,
sqlglot's version, the Spark SQL reading (`pipelines/spark_sql.py`) and the engine's translation
rules (`sql.py`) decide the result. The largest bodies (the RESO lookup's standard values, gold
Property's mapping, the property payload's schema) cost more to parse than a small update costs to
run, so an update parses a body only when one of those changed since an update last rendered it.
What each body reads is kept too, for every body of the graph: a process builds the graph from it
instead of tokenizing the bodies again.
"""

import hashlib
from pathlib import Path

import orjson
import sqlglot

from conf.files import write_atomically
from pipelines import spark_sql
from pipelines._engine import sql
from pipelines._engine.sql import RelationNamer, to_duckdb
from pipelines.spark_sql import parse, passthrough_stream, references, table_references


def translator_stamp(version: str, sources: list[Path]) -> str:
    """A digest of what renders bodies and shapes the kept entries: sqlglot's version and these files."""
    stamp = hashlib.sha256(version.encode())
    for source in sources:
        stamp.update(source.read_bytes())
    return stamp.hexdigest()


TRANSLATOR = translator_stamp(sqlglot.__version__, [Path(spark_sql.__file__), Path(sql.__file__), Path(__file__)])
"""A change of sqlglot, of the engine's rules or of this module makes every kept body stale."""


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class CompiledBodies:
    """What each body reads and the DuckDB SQL it renders to under each naming of its references,
    by the digest of its text; read from `path` when the translator matches, saved by `save`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.bodies: dict[str, dict] = {}
        self.tokenized: dict[str, dict] = {}
        """What bodies not rendered yet read, from their tokens (`kept_references`), by digest."""
        self.changed = False
        try:
            kept = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return
        if isinstance(kept, dict) and kept.get("translator") == TRANSLATOR and isinstance(kept.get("bodies"), dict):
            self.bodies = kept["bodies"]
            if isinstance(kept.get("references"), dict):
                self.tokenized = kept["references"]

    def _entry(self, text: str, origin: str) -> dict:
        key = digest(text)
        entry = self.bodies.get(key)
        if not _well_formed(entry):
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
            rendered = to_duckdb(parse(text, origin=origin), relation)
            entry["renders"][naming] = rendered
            self.changed = True
        return rendered

    def save(self, bodies: list[str]) -> None:
        """Write what was rendered, keeping only the entries of `bodies` (the graph's current texts)."""
        current = {digest(text) for text in bodies}
        kept = {key: entry for key, entry in self.bodies.items() if key in current}
        references = {key: entry for key, entry in self.tokenized.items() if key in current}
        if not self.changed and len(kept) == len(self.bodies) and len(references) == len(self.tokenized):
            return
        write_atomically(self.path, orjson.dumps({"translator": TRANSLATOR, "bodies": kept, "references": references}))
        self.bodies, self.tokenized, self.changed = kept, references, False


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
