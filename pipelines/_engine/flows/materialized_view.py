"""Materialized views: recomputed when an input's data or their definition changed, by key when they
declare how their rows follow their inputs' keys and the update knows the keys it changed, else
whole; staged, and written together once every flow of the update succeeded (`commit_staged`)."""

import hashlib

import orjson

from pipelines._engine.context import FlowResult, KeyedRows, UpdateContext, keyed_column, relation
from pipelines._engine.events import MAINTENANCE_COMPLETE_RECOMPUTE, MAINTENANCE_ROW_BASED
from pipelines._engine.flows.base import Flow
from pipelines._engine.key_index import KeyIndex, Layout, key_index
from pipelines._engine.lakehouse import (
    FILE_COLUMN,
    REWRITE_FRACTION,
    ROW_COLUMN,
    UPDATE_METADATA,
    bind_arrow,
    column_types,
    register_delta,
)
from pipelines._engine.quality import CheckedBatch
from pipelines._engine.sql_text import quote
from pipelines.declaration import Dataset

SOURCES_METADATA = "mls2.sources"
ROWS_DIGEST_METADATA = "mls2.rows_digest"
DEFINITION_METADATA = "mls2.definition"
DUPLICATES_METADATA = "mls2.duplicates"


class MaterializedViewFlow(Flow):
    located_by = "scan"
    """How a refresh by key found the rows it replaces: "key index", or "scan" of the view's files."""
    inputs_read: dict[str, str]
    """How a refresh by key read each input: "by key", "through <input>.<column>", or "whole"."""

    def plan(self) -> FlowResult | None:
        dataset, context = self.dataset, self.context
        if not self.full and not self.is_stale():
            context.events.flow_progress(dataset.name, "SKIPPED")
            return FlowResult(dataset=dataset.name, status="SKIPPED")
        context.before.setdefault(dataset.name, self.lakehouse.fingerprint(dataset.name))
        plan = "a full refresh" if self.full else self.incremental_plan()
        if isinstance(plan, dict):
            plan = self.refresh_by_key(plan)
            if isinstance(plan, FlowResult):
                return plan
        context.events.planning_information(dataset.name, MAINTENANCE_COMPLETE_RECOMPUTE, plan)
        return None

    def write(self, kind: str) -> FlowResult:
        dataset, context = self.dataset, self.context
        checked, flow = self.checked()
        metadata = self.commit_metadata(checked)
        staged = f"staged__{relation(dataset.name)}"
        context.release("TABLE", staged)
        if kind == "TABLE" and not checked.report.dropped_records:
            # The computed batch is what will be written: no copy.
            self.con.execute(f"ALTER TABLE {self.batch} RENAME TO {staged}")
        else:
            self.con.execute(f"CREATE TEMP TABLE {staged} AS SELECT * FROM {checked.kept}")
        flow.output_records = checked.report.input_records - checked.report.dropped_records
        if not self.full and self.holds_same_rows(staged, metadata):
            context.release("TABLE", staged)
            context.unchanged[dataset.name] = (metadata, flow)
        else:
            context.staged[dataset.name] = (staged, "TABLE", metadata, flow)
        self.release_inputs(kind, checked)
        return context.complete_flow(dataset, flow, checked.report)

    def commit_metadata(self, checked: CheckedBatch) -> dict[str, str]:
        """What the commit writing the view records: the update, the definition, and for a view with a
        unique key how many rows it held back on a duplicate key."""
        metadata = {
            UPDATE_METADATA: self.context.update_id,
            DEFINITION_METADATA: definition_digest(self.context, self.dataset),
        }
        if self.dataset.unique_key:
            metadata[DUPLICATES_METADATA] = str(checked.duplicates)
        return metadata

    def holds_same_rows(self, staged: str, metadata: dict) -> bool:
        """Whether the view already holds exactly the rows just computed (same columns and types, same
        multiset of rows by count and row hashes): then it is not rewritten, and what reads it is not
        recomputed.

        The staged rows' digest goes into `metadata`, so the commit that writes them (or records them
        unchanged) carries it, and the next update compares with it instead of reading the table back.
        A table whose last commit carries none (a full refresh, a vacuum) is read back."""
        name = self.dataset.name
        table = self.lakehouse.table(name)
        if table is None:
            return False
        metadata[ROWS_DIGEST_METADATA] = digest = self.context.rows_digest(staged)
        held = self.lakehouse.last_commit_metadata(name).get(ROWS_DIGEST_METADATA)
        if held is None:
            register_delta(self.con, "current_rows", table)
            held = self.context.rows_digest("current_rows")
            self.context.release("VIEW", "current_rows")
        return held == digest

    def is_stale(self) -> bool:
        """Whether an input changed, or the view's definition, since the view was last computed."""
        dataset, context = self.dataset, self.context
        if any(name in context.staged for name in dataset.depends_on):
            return True
        last = self.lakehouse.last_commit_metadata(dataset.name)
        if not computed_as_defined(context, dataset, last):
            return True
        return orjson.loads(last[SOURCES_METADATA]) != context.fingerprints(dataset)

    def incremental_plan(self) -> dict[str, KeyedRows] | str:
        """The inputs a stale view can be refreshed from by key, with the keys they changed; or why it
        is computed whole. By key only when the view was current before this update, and each input
        that changed since is one its rows follow by key, with the keys this update changed in it."""
        dataset, context = self.dataset, self.context
        declared = dataset.incremental
        if declared is None:
            return "its declaration does not say how its rows follow its inputs' keys"
        last = self.lakehouse.last_commit_metadata(dataset.name)
        if not computed_as_defined(context, dataset, last):
            return "it has not been computed under its current definition"
        if int(last.get(DUPLICATES_METADATA, 0)):
            # Which row keeps a key depends on every row holding it, not on the changed ones alone.
            return f"it holds back rows on a duplicate {dataset.unique_key}"
        recorded = orjson.loads(last[SOURCES_METADATA])
        changed = {}
        for name in dataset.depends_on:
            if context.graph[name].kind == "temporary_view":
                return f"it reads the temporary view {name}"
            before = context.before.get(name) or self.lakehouse.fingerprint(name)
            if recorded.get(name) != before:
                return f"it was not current with {name} before this update"
            if name not in context.staged and self.lakehouse.fingerprint(name) == before:
                continue
            if name not in declared.follows:
                return f"{name} changed, and each of its rows reads all of {name}"
            known = context.keyed_rows.get(name)
            if known is None or declared.key_of(name) not in (None, known.column):
                return f"{name} changed, and this update does not know by which keys"
            changed[name] = known
        return changed or "no input changed by key"

    def refresh_by_key(self, changed: dict[str, KeyedRows]) -> FlowResult | str:
        """Recompute the view's rows for the keys its inputs changed, from those inputs' rows for the
        keys (and the whole of its other inputs), and stage the view as its other rows plus these.
        Expectations judge, and quarantine, the recomputed rows. When the declaration does not hold
        (a column missing or of another type, a NULL key, a row computed for a key not asked for),
        nothing is kept and the reason is returned: the view is then computed whole."""
        name, own = self.dataset.name, relation(self.dataset.name)
        keys, current = f"refresh_keys__{own}", f"current__{own}"
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {keys} AS " + " UNION ".join(self.changed_keys(changed)))
        register_delta(self.con, positions_of(own), self.lakehouse.table(name), positions=True)
        self.con.execute(
            f"CREATE OR REPLACE TEMP VIEW {current} AS SELECT * EXCLUDE ({FILE_COLUMN}, {ROW_COLUMN}) "
            f"FROM {positions_of(own)}"
        )
        partial: dict[str, str] = {}
        try:
            reason = self.compute_by_key(keys, current, partial)
        finally:
            self.context.release("VIEW", *partial.values())
        if reason is not None:
            self.context.release("TABLE", self.batch, keys)
            self.context.release("VIEW", current, positions_of(own))
            return reason
        return self.stage_by_key(keys, current)

    def changed_keys(self, changed: dict[str, KeyedRows]) -> list[str]:
        """Queries of the view's keys each changed input reaches: its own keys, or, for an input it
        follows through a keyed input, the keys of that input's rows whose column holds a changed key."""
        declared = self.dataset.incremental
        queries = []
        for name, known in changed.items():
            if declared.key_of(name) is not None:
                queries.append(f"SELECT key FROM {known.keys}")
                continue
            via, column = declared.through_of(name)
            self.context.register_full_read(via)
            via_key = quote(declared.key_of(via))
            on = f"v.{quote(column)} = c.key"
            queries.append(f"SELECT v.{via_key} AS key FROM {relation(via)} v SEMI JOIN {known.keys} c ON {on}")
        return queries

    def compute_by_key(self, keys: str, current: str, partial: dict[str, str]) -> str | None:
        """Compute into the batch the view's rows for `keys` (registering in `partial` the views of its
        keyed inputs' rows for them); or say why the declaration does not hold for them."""
        dataset, batch = self.dataset, self.batch
        declared = dataset.incremental
        key_type = dict(column_types(self.con, keys))["key"]
        if self.con.execute(f"SELECT count(*) FILTER (key IS NULL) FROM {keys}").fetchall()[0][0]:
            return "a key it changed is NULL"
        self.inputs_read = {}
        for source in dataset.depends_on:
            self.context.register_full_read(source)
            self.inputs_read[source] = "whole"
            if (column := declared.key_of(source)) is not None:
                if dict(column_types(self.con, relation(source))).get(column) != key_type:
                    return f"{source} has no column {column} of the keys' type {key_type}"
                partial[source] = self.rows_for_keys(source, column, keys)
                self.inputs_read[source] = "by key"
        for source, via, column in declared.through:
            if source in partial or via not in partial:
                continue
            if (reached := self.rows_reached(source, partial[via], column)) is not None:
                partial[source] = reached
                self.inputs_read[source] = f"through {via}.{column}"
        body = self.context.bodies.render(
            dataset.sql, dataset.name, lambda ref, streaming: partial.get(ref, relation(ref))
        )
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {batch} AS {body}")
        if column_types(self.con, batch) != column_types(self.con, current):
            return "the rows computed have other columns or types than the table"
        if dict(column_types(self.con, batch)).get(declared.column) != key_type:
            return f"it has no column {declared.column} of the keys' type {key_type}"
        [(strays,)] = self.con.execute(
            f"SELECT count(*) FROM {batch} b ANTI JOIN {keys} k ON b.{quote(declared.column)} = k.key"
        ).fetchall()
        if strays:
            return f"{strays} rows computed for its changed keys hold other values in {declared.column}"
        clashes = self.locate_replaced(keys)
        if clashes:
            return f"a row computed for its changed keys has a {dataset.unique_key} a row not recomputed holds"
        return None

    def locate_replaced(self, keys: str) -> int:
        """Keep the positions of the view's rows for `keys` (those the refresh replaces) in a temporary
        table, with any row the refresh keeps that holds a recomputed row's unique key: found through the
        view's key index when it is large enough to have one, else in one scan of its files. Returns how
        many rows the refresh keeps hold such a key: when any, which row keeps the key is decided over
        the whole view, as computing it whole decides, and the table (which then lists them too) is
        dropped."""
        declared, unique = self.dataset.incremental, self.dataset.unique_key
        replaced = replaced_positions_of(relation(self.dataset.name))
        lookups = tuple(dict.fromkeys(filter(None, [declared.column, unique])))
        index = key_index(self.lakehouse, self.dataset.name, Layout(lookups))
        if index is not None:
            self.located_by = "key index"
            self.locate_by_index(index, keys, replaced)
        else:
            self.located_by = "scan"
            self.locate_by_scan(keys, replaced)
        [(clashes,)] = self.con.execute(f"SELECT count(*) FILTER (NOT is_replaced) FROM {replaced}").fetchall()
        if clashes:
            self.context.release("TABLE", replaced)
        return clashes

    def locate_by_scan(self, keys: str, replaced: str) -> None:
        own, declared, unique = relation(self.dataset.name), self.dataset.incremental, self.dataset.unique_key
        column = quote(declared.column)
        is_replaced = f"coalesce(p.{column} IN (SELECT key FROM {keys}), false)"
        holds_recomputed = f"p.{quote(unique)} IN (SELECT {quote(unique)} FROM {self.batch})" if unique else "false"
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE {replaced} AS SELECT p.{FILE_COLUMN}, p.{ROW_COLUMN}, "
            f"{is_replaced} AS is_replaced FROM {positions_of(own)} p WHERE {is_replaced} OR {holds_recomputed}"
        )

    def locate_by_index(self, index: KeyIndex, keys: str, replaced: str) -> None:
        """`locate_by_scan`'s table, from the view's key index: the rows of `keys`, and the rows holding
        a recomputed row's unique key."""
        declared, unique = self.dataset.incremental, self.dataset.unique_key
        found = f"{replaced}__found"
        wanted = self.con.sql(f"SELECT key FROM {keys}").to_arrow_table().column(0)
        bind_arrow(self.con, found, index.locate(declared.column, wanted).select([FILE_COLUMN, ROW_COLUMN]))
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {replaced} AS SELECT *, true AS is_replaced FROM {found}")
        if unique:
            recomputed = self.con.sql(f"SELECT DISTINCT {quote(unique)} FROM {self.batch}").to_arrow_table().column(0)
            bind_arrow(self.con, found, index.locate(unique, recomputed).select([FILE_COLUMN, ROW_COLUMN]))
            self.con.execute(
                f"INSERT INTO {replaced} SELECT f.*, false FROM {found} f ANTI JOIN {replaced} r "
                f"ON f.{FILE_COLUMN} = r.{FILE_COLUMN} AND f.{ROW_COLUMN} = r.{ROW_COLUMN}"
            )
        self.con.execute(f"DROP VIEW {found}")

    def stage_by_key(self, keys: str, current: str) -> FlowResult:
        """Check the rows recomputed for `keys`, and stage the view with them in place of its rows for
        the keys (or, when it is written anew, record it unchanged when they are the same rows)."""
        dataset, context = self.dataset, self.context
        name, own, declared = dataset.name, relation(dataset.name), dataset.incremental
        column = quote(declared.column)
        checked, flow = self.checked()
        refreshed, replaced = f"refreshed__{own}", f"replaced__{own}"
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {refreshed} AS SELECT * FROM {checked.kept}")
        context.release("VIEW", *(set(checked.views) - {self.batch}))
        context.release("TABLE", self.batch)
        context.keyed_rows[name] = KeyedRows(keys, refreshed, keyed_column(dataset))
        metadata = self.commit_metadata(checked)
        flow.output_records = checked.report.input_records - checked.report.dropped_records
        staged = f"staged__{own}"
        write = self.stage_merge(refreshed)
        if write["mode"] == "merge-on-read":
            # Committed without a rows digest: the replaced rows' would read each of them whole, which
            # costs the size of the table, not of the change. The rows are committed even when the
            # same, and what reads the view then refreshes by key.
            self.stage_view(staged, current, keys, refreshed)
            context.staged[name] = (staged, "VIEW", metadata, flow)
        else:
            self.con.execute(
                f"CREATE OR REPLACE TEMP VIEW {replaced} AS "
                f"SELECT c.* FROM {current} c SEMI JOIN {keys} k ON c.{column} = k.key"
            )
            added, removed = context.rows_digest(refreshed), context.rows_digest(replaced)
            context.release("VIEW", replaced)
            held = self.lakehouse.last_commit_metadata(name).get(ROWS_DIGEST_METADATA)
            if added == removed:
                if held is not None:
                    metadata[ROWS_DIGEST_METADATA] = held
                context.unchanged[name] = (metadata, flow)
                context.release("VIEW", current, positions_of(own))
                write = None
            else:
                self.stage_view(staged, current, keys, refreshed)
                digest = replaced_digest(held, removed, added)
                metadata[ROWS_DIGEST_METADATA] = digest if digest is not None else context.rows_digest(staged)
                context.staged[name] = (staged, "VIEW", metadata, flow)
        context.events.planning_information(name, MAINTENANCE_ROW_BASED, write=write, inputs=self.inputs_read)
        return context.complete_flow(dataset, flow, checked.report)

    def stage_view(self, staged: str, current: str, keys: str, refreshed: str) -> None:
        """The view as it will be: its rows for other keys, and the rows recomputed for `keys`."""
        column = quote(self.dataset.incremental.column)
        self.con.execute(
            f"CREATE OR REPLACE TEMP VIEW {staged} AS SELECT c.* FROM {current} c ANTI JOIN {keys} k "
            f"ON c.{column} = k.key UNION ALL BY NAME SELECT * FROM {refreshed}"
        )

    def stage_merge(self, refreshed: str) -> dict:
        """Plan the view's commit as a merge-on-read (the positions of the rows the refreshed rows replace
        marked deleted, those rows added) unless they are so many that writing it anew costs about
        the same and leaves no deleted rows behind."""
        replaced = replaced_positions_of(relation(self.dataset.name))
        [(count,)] = self.con.execute(f"SELECT count(*) FROM {replaced}").fetchall()
        held = self.lakehouse.row_count(self.dataset.name)
        [(added,)] = self.con.execute(f"SELECT count(*) FROM {refreshed}").fetchall()
        if count >= held * REWRITE_FRACTION:
            self.context.release("TABLE", replaced)
            return {"mode": "rewrite", "reason": f"{count} rows replaced of {held}"}
        self.context.merges[self.dataset.name] = (replaced, refreshed)
        return {
            "mode": "merge-on-read",
            "rows_marked_deleted": count,
            "rows_added": added,
            "located_by": self.located_by,
        }

    def rows_reached(self, source: str, via_rows: str, column: str) -> str | None:
        """A view of the rows of `source` (an input followed through a keyed input) whose key `column`
        of `via_rows` (that input's rows for the keys) holds: by the declaration, a row of another key
        changes none of the rows recomputed, so the others are not read. None (it is read whole) when
        `source` has no one key column of `column`'s type."""
        key = keyed_column(self.context.graph[source])
        if key is None:
            return None
        key_type = dict(column_types(self.con, relation(source))).get(key)
        if key_type is None or key_type != dict(column_types(self.con, via_rows)).get(column):
            return None
        view = f"reached__{relation(source)}__for__{relation(self.dataset.name)}"
        self.con.execute(
            f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT s.* FROM {relation(source)} s "
            f"SEMI JOIN {via_rows} v ON s.{quote(key)} = v.{quote(column)}"
        )
        return view

    def rows_for_keys(self, source: str, column: str, keys: str) -> str:
        """A view of `source`'s rows whose `column` is one of `keys`: from the rows this update changed
        by that key where it knows them, else from the whole input (registered under its relation)."""
        view, whole = f"partial__{relation(source)}__for__{relation(self.dataset.name)}", relation(source)
        known = self.context.keyed_rows.get(source)
        if known is None or known.column != column:
            parts = [f"SELECT w.* FROM {whole} w SEMI JOIN {keys} k ON w.{quote(column)} = k.key"]
        else:
            parts = [f"SELECT r.* FROM {known.rows} r SEMI JOIN {keys} k ON r.{quote(column)} = k.key"]
            unknown = f"(SELECT key FROM {keys} EXCEPT SELECT key FROM {known.keys})"
            if self.con.execute(f"SELECT count(*) FROM {unknown}").fetchall()[0][0]:
                parts.append(f"SELECT w.* FROM {whole} w SEMI JOIN {unknown} k ON w.{quote(column)} = k.key")
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS " + " UNION ALL BY NAME ".join(parts))
        return view


def positions_of(own: str) -> str:
    """The relation of a view's current rows with their data file and position (merge-on-read deletes by those)."""
    return f"positions__{own}"


def replaced_positions_of(own: str) -> str:
    """The temporary table of the positions of the rows a refresh by key replaces (`locate_replaced`)."""
    return f"replaced_positions__{own}"


def computed_as_defined(context: UpdateContext, dataset: Dataset, last: dict) -> bool:
    """Whether a view's last commit (`last`) recorded its inputs, under its current definition."""
    return SOURCES_METADATA in last and last.get(DEFINITION_METADATA) == definition_digest(context, dataset)


def definition_digest(context: UpdateContext, dataset: Dataset) -> str:
    """What a view computes: its SQL, expectations, unique key and refresh declaration, and the SQL of the
    temporary views it reads (a view computed under another definition is recomputed, and whole)."""
    read = [context.graph[name] for name in dataset.depends_on if context.graph[name].kind == "temporary_view"]
    rules = [(e.name, e.constraint, e.on_violation) for e in dataset.expectations]
    parts = [dataset.sql, rules, dataset.incremental, [definition_digest(context, v) for v in read], dataset.unique_key]
    return hashlib.sha256(orjson.dumps(parts)).hexdigest()


def commit_staged(context: UpdateContext) -> None:
    """Write the materialized views computed in this update, only once every flow succeeded.

    Views are committed in graph order, so each records the fingerprint of inputs already committed.
    """
    for name in [dataset.name for dataset in context.graph.ordered()]:
        if name not in context.staged and name not in context.unchanged:
            continue
        sources = orjson.dumps(context.fingerprints(context.graph[name])).decode()
        if name in context.merges:
            staged, kind, metadata, flow = context.staged.pop(name)
            metadata[SOURCES_METADATA] = sources
            replaced, refreshed = context.merges.pop(name)
            written = context.lakehouse.write_files(context.con, name, refreshed, per_thread=False)
            flow.version = context.lakehouse.delete_and_add(context.con, name, replaced, written, metadata=metadata)
            context.release(kind, staged)
            context.release("TABLE", replaced)
        elif name in context.staged:
            staged, kind, metadata, flow = context.staged.pop(name)
            metadata[SOURCES_METADATA] = sources
            flow.version = context.lakehouse.replace_with_relation(context.con, name, staged, metadata=metadata)
            context.release(kind, staged)
        else:
            metadata, flow = context.unchanged.pop(name)
            metadata[SOURCES_METADATA] = sources
            empty = context.lakehouse.table(name).schema().to_arrow().empty_table()
            flow.version = context.lakehouse.append(name, empty, metadata=metadata)


def replaced_digest(held: str | None, removed: str, added: str) -> str | None:
    """A table's rows digest (`UpdateContext.rows_digest`) after some rows were replaced by others, from
    the digests of the table and of both sets of rows; None when the table's is unknown or its columns differ."""
    if held is None:
        return None
    columns, count, total, xor = orjson.loads(held)
    _, removed_count, removed_total, removed_xor = orjson.loads(removed)
    added_columns, added_count, added_total, added_xor = orjson.loads(added)
    if columns != added_columns:
        return None

    def number(text: str) -> int:
        return 0 if text == "None" else int(text)

    rows = count - removed_count + added_count
    total = number(total) - number(removed_total) + number(added_total)
    xor = number(xor) ^ number(removed_xor) ^ number(added_xor)
    return orjson.dumps([columns, rows, str(total) if rows else "None", str(xor) if rows else "None"]).decode()
