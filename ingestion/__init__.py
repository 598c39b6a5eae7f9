"""Qobrix -> landing zone: the API client, the landing writer, sync state, and the Qobrix sandbox."""
