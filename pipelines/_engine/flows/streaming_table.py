"""Streaming tables: the rows new since the table's checkpoint, appended (replacing all on a full
refresh or a first run)."""

from pipelines._engine.context import LANDING_METADATA, FlowResult, stream_relation
from pipelines._engine.flows.base import Flow
from pipelines._engine.lakehouse import UPDATE_METADATA, WrittenFiles
from pipelines._engine.quality import check, warns_only

WRITTEN = "written_rows"
"""The relation of the files a streaming table's flow wrote, while its expectations are counted."""


class StreamingTableFlow(Flow):
    def plan(self) -> FlowResult | None:
        # A table fed by landing alone (`depends_on` names no dataset) may know it has nothing new
        # from its listing.
        dataset = self.dataset
        if dataset.landing is None or dataset.depends_on or self.full or not self.context.nothing_landed(dataset):
            return None
        return self.skipped()

    def batch_kind(self) -> str:
        # A table whose rules only warn is written as computed and counted over its files.
        return "VIEW" if warns_only(self.dataset) else super().batch_kind()

    def write(self, kind: str) -> FlowResult:
        if warns_only(self.dataset):
            return self.write_then_count()
        checked, flow = self.checked()
        flow.output_records = checked.report.input_records - checked.report.dropped_records
        self.commit(self.lakehouse.write_files(self.con, self.dataset.name, checked.kept))
        self.release_inputs(kind, checked)
        return self.context.complete_flow(self.dataset, flow, checked.report)

    def write_then_count(self) -> FlowResult:
        """Write the new rows, then count the expectations (all warn) over the files written, before
        they are committed: the batch is computed once and never held."""
        written = self.lakehouse.write_files(self.con, self.dataset.name, self.batch)
        try:
            self.con.execute(f"CREATE OR REPLACE TEMP VIEW {WRITTEN} AS SELECT * FROM {written.relation()}")
            checked = check(self.con, self.dataset, WRITTEN, self.context.bodies.expression)
        except BaseException:
            written.remove()
            raise
        self.commit(written)
        report = checked.report
        flow = FlowResult(
            dataset=self.dataset.name,
            status="COMPLETED",
            input_records=report.input_records,
            output_records=report.input_records,
        )
        streams = (stream_relation(name) for name in self.dataset.streams)
        self.context.release("VIEW", WRITTEN, checked.kept, self.batch, *streams)
        return self.context.complete_flow(self.dataset, flow, report)

    def commit(self, written: WrittenFiles) -> None:
        """Append the new rows (replace them all on a full refresh or a first run)."""
        mode = "overwrite" if self.full or self.lakehouse.table(self.dataset.name) is None else "append"
        metadata = {UPDATE_METADATA: self.context.update_id}
        if self.dataset.landing is not None:
            metadata[LANDING_METADATA] = self.context.landing_digest(self.dataset)
        self.lakehouse.commit_files(written, mode=mode, metadata=metadata, checkpoints=self.checkpoints)
