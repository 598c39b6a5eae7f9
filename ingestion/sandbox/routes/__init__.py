"""The sandbox's HTTP routes, one router per concern; `server.create_app` includes them in order.

API routes need `X-Api-User` / `X-Api-Key` and answer errors with Qobrix's envelope
`{"errors": [...]}`. Admin routes live under `/_sandbox` (no auth) so tests,
benchmarks and the demo can move sandbox time forward and switch faults on.
"""
