"""AUTO CDC targets: the changes new since the target's checkpoint applied by key (`cdc`), and the rows
they changed kept for the views that follow the target's key."""

from pipelines._engine.cdc import IS_DELETE, apply_changes
from pipelines._engine.context import FlowResult, KeyedRows, keyed_column, relation
from pipelines._engine.events import MAINTENANCE_COMPLETE_RECOMPUTE, MAINTENANCE_ROW_BASED
from pipelines._engine.flows.base import Flow
from pipelines._engine.lakehouse import UPDATE_METADATA
from pipelines._engine.sql_text import quote


class AutoCdcFlow(Flow):
    def write(self, kind: str) -> FlowResult:
        checked, flow = self.checked()
        metrics = apply_changes(
            self.con,
            self.lakehouse,
            self.dataset,
            checked.kept,
            full_refresh=self.full,
            metadata={UPDATE_METADATA: self.context.update_id},
            checkpoints=self.checkpoints,
            translate=self.context.bodies.expression,
        )
        flow.output_records, flow.deleted_records = metrics.upserted, metrics.deleted
        if metrics.write is not None:
            by_key = metrics.write["mode"] == "merge-on-read"
            technique = MAINTENANCE_ROW_BASED if by_key else MAINTENANCE_COMPLETE_RECOMPUTE
            reason = None if by_key else metrics.write["reason"]
            self.context.events.planning_information(self.dataset.name, technique, reason, write=metrics.write)
        self.keep_changed_rows(metrics.changed)
        self.release_inputs(kind, checked)
        return self.context.complete_flow(self.dataset, flow, checked.report)

    def keep_changed_rows(self, applied: str | None) -> None:
        """Keep the rows the flow applied by key, when a view of the graph follows its key."""
        if applied is None:
            return
        dataset, context = self.dataset, self.context
        key = keyed_column(dataset)
        followed = any(d.incremental and dataset.name in d.incremental.follows for d in context.graph.ordered())
        if key is None or not followed:
            context.release("TABLE", applied)
            return
        own = relation(dataset.name)
        changed_keys, rows = f"changed_keys__{own}", f"changed_rows__{own}"
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE {changed_keys} AS SELECT DISTINCT {quote(key)} AS key FROM {applied}"
        )
        self.con.execute(
            f"CREATE OR REPLACE TEMP VIEW {rows} AS SELECT * EXCLUDE ({IS_DELETE}) FROM {applied} WHERE NOT {IS_DELETE}"
        )
        context.keyed_rows[dataset.name] = KeyedRows(changed_keys, rows, key)
