"""The engine's expected failures, under one base the CLI catches and prints."""


class PipelineError(RuntimeError):
    """Base of the engine's expected failures; the CLI prints the message."""


class PipelineBusy(PipelineError):
    """Another update holds the pipeline lock."""


class UpdateFailed(PipelineError):
    """A flow failed; nothing was published and a re-run converges."""


class UpdateCanceled(PipelineError):
    """The update was canceled: what finished is committed, nothing was published, a re-run converges."""
