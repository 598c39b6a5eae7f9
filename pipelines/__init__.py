"""The pipeline: the bronze/silver/gold graph declared once, and its embedded executor.

Its names load with their module on first use, so a module of this package that needs neither,
such as `pipelines.ui.control` (what `mls2 pipeline run` sends a running server), starts without the
engine's libraries.
"""

from conf.lazy import lazy_attributes

_HOMES = {
    "AutoCdc": "declaration",
    "Dataset": "declaration",
    "DeclarationError": "declaration",
    "Expectation": "declaration",
    "Graph": "declaration",
    "LandingSource": "declaration",
    "PipelineBusy": "embedded",
    "PipelineError": "embedded",
    "UpdateFailed": "embedded",
    "UpdateResult": "embedded",
    "run_update": "embedded",
    "load_graph": "graph",
}
__all__ = list(_HOMES)
__getattr__ = lazy_attributes(__name__, _HOMES)
