"""What every flow does, whatever its dataset's kind: register its inputs, skip when a stream has
nothing new, compute its body into a batch, check its expectations; the kind decides the write."""

from pipelines._engine.context import FlowResult, UpdateContext, relation, stream_relation
from pipelines._engine.quality import CheckedBatch, check
from pipelines.declaration import Dataset


class Flow:
    """One dataset's flow in one update. Subclasses write the checked batch (`write`) and may decide
    before any input is read that there is nothing to do (`plan`)."""

    def __init__(self, context: UpdateContext, dataset: Dataset) -> None:
        self.context = context
        self.con = context.con
        self.lakehouse = context.lakehouse
        self.dataset = dataset
        self.full = dataset.name in context.full_refresh
        self.checkpoints: dict[str, int] = {}
        """The stream checkpoints this flow's commit records: `<target><-<source>` -> version read up to."""
        self.batch = f"batch__{relation(dataset.name)}"

    def run(self) -> FlowResult:
        planned = self.plan()
        if planned is not None:
            return planned
        dataset, context = self.dataset, self.context
        exists = self.lakehouse.table(dataset.name) is not None
        if (
            dataset.streams
            and not self.full
            and exists
            and not any(context.may_be_unread(dataset, name) for name in dataset.streams)
        ):
            return self.skipped()
        context.before.setdefault(dataset.name, self.lakehouse.fingerprint(dataset.name))
        for name in dataset.depends_on:
            if name not in dataset.streams:
                context.register_full_read(name)
        new_input = [context.register_stream(dataset, name, self.full, self.checkpoints) for name in dataset.streams]
        if dataset.streams and not any(new_input) and not self.full and exists:
            return self.skipped()
        body = context.bodies.render(
            dataset.sql, dataset.name, lambda name, streaming: stream_relation(name) if streaming else relation(name)
        )
        kind = self.batch_kind()
        self.con.execute(f"CREATE OR REPLACE TEMP {kind} {self.batch} AS {body}")
        return self.write(kind)

    def skipped(self) -> FlowResult:
        """The flow's result when its streams have nothing new."""
        self.context.release_shared_streams(self.dataset)
        self.context.events.flow_progress(self.dataset.name, "SKIPPED", metrics={"num_output_rows": 0})
        return FlowResult(dataset=self.dataset.name, status="SKIPPED")

    def plan(self) -> FlowResult | None:
        """A result when the flow has nothing to do (or did it another way), before its inputs are read."""
        return None

    def batch_kind(self) -> str:
        """TABLE to compute the batch once, VIEW to compute it as it is read. A body passing on rows
        already computed for several readers is not copied again."""
        passthrough = self.context.bodies.passthrough(self.dataset.sql, self.dataset.name)
        return "VIEW" if passthrough in self.context.shared_streams else "TABLE"

    def write(self, kind: str) -> FlowResult:
        raise NotImplementedError

    def checked(self) -> tuple[CheckedBatch, FlowResult]:
        """The batch's expectations checked and its dropped rows quarantined, with the flow's counts so far."""
        checked = check(self.con, self.dataset, self.batch, self.context.bodies.expression)
        self.context.quarantine(self.dataset, checked.quarantine)
        flow = FlowResult(
            dataset=self.dataset.name,
            status="COMPLETED",
            input_records=checked.report.input_records,
            dropped_records=checked.report.dropped_records,
        )
        return checked, flow

    def release_inputs(self, kind: str, checked: CheckedBatch) -> None:
        """Drop the batch, what checking it made, and the flow's streams."""
        self.context.release(kind, self.batch)
        self.context.release(
            "VIEW", *(set(checked.views) - {self.batch}), *(stream_relation(name) for name in self.dataset.streams)
        )
