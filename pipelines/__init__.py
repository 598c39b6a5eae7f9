"""The pipeline: the bronze/silver/gold graph declared once, and its embedded executor."""

from pipelines.declaration import AutoCdc, Dataset, DeclarationError, Expectation, Graph, LandingSource
from pipelines.embedded import PipelineBusy, PipelineError, UpdateFailed, UpdateResult, run_update
from pipelines.graph import load_graph

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
