"""Chunked, pinned data validation of a table on source and target.

The modules, in the order a pass uses them:

- ``shape``: columns and the key that orders a table, read on both servers.
- ``rowhash``: the SQL that hashes a row and sums a chunk of rows.
- ``chunks``: key ranges and the adaptive chunk size.
- ``pinned``: reading a chunk in a source snapshot and on the caught-up target.
- ``recheck``: deciding whether a differing chunk is in flux or diverged.
- ``bisect``: narrowing a diverged chunk down to the differing keys.
- ``throttle``: pausing while the target lags or the source is busy.
- ``progress``: what a pass has done so far, kept in SQLite between runs.
- ``engine``: one pass over one table, built from all of the above.

The ``checksum`` and ``row_count`` checks run the engine with different
measures: row hashes for one, exact counts for the other.
"""
