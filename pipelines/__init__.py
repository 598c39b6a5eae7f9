"""The pipeline: the bronze/silver/gold graph declared once, and its embedded executor."""

from pipelines._engine.errors import PipelineBusy, PipelineError, UpdateFailed
from pipelines._engine.runner import UpdateResult, run_update
from pipelines.declaration import AutoCdc, Dataset, DeclarationError, Expectation, LandingSource
from pipelines.graph import Graph, load_graph

__all__ = [
    "AutoCdc",
    "Dataset",
    "DeclarationError",
    "Expectation",
    "Graph",
    "LandingSource",
    "PipelineBusy",
    "PipelineError",
    "UpdateFailed",
    "UpdateResult",
    "load_graph",
    "run_update",
]
