"""One flow class per kind of dataset; the runner looks a dataset's up here."""

from pipelines._engine.flows.auto_cdc import AutoCdcFlow
from pipelines._engine.flows.base import Flow
from pipelines._engine.flows.materialized_view import MaterializedViewFlow, commit_staged
from pipelines._engine.flows.streaming_table import StreamingTableFlow

FLOWS: dict[str, type[Flow]] = {
    "streaming_table": StreamingTableFlow,
    "auto_cdc": AutoCdcFlow,
    "materialized_view": MaterializedViewFlow,
}
"""Temporary views have no flow: they are read through by the flows of the datasets that read them."""

__all__ = ["FLOWS", "Flow", "commit_staged"]
