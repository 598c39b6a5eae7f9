"""The engine's expected failures, under one base the CLI catches and prints."""


class PipelineError(RuntimeError):
    """Base of the engine's expected failures; the CLI prints the message."""


class PipelineBusy(PipelineError):
    """Another update holds the pipeline lock."""


class UpdateFailed(PipelineError):
    """A flow failed; nothing was published and a re-run converges."""


class UpdateCanceled(PipelineError):
    """The update was canceled between two flows: the tables finished are committed (views refreshed by
    key were only staged, and are dropped), nothing was published, a re-run converges."""
