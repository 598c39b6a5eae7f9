"""The pipeline UI under /ui of `mls2 serve`: operators, triggered and scheduled updates, the graph
and the data-quality dashboard, over the event log, the sync state, quarantine and integrity results."""
