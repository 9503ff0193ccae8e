"""One run of a validation pass over one table: scan, recheck, localise, finish.

The scan reads chunks in key order. A producer greenlet reads the next chunk
on the source while the caller waits for and reads the previous one on the
target, so both servers work at the same time. A chunk that differs goes to
the recheck queue, where it is split (bisection) down to small ranges.
``recheck.confirm`` settles each small range as match, in flux or diverged,
and the rows of a diverged range are then localised. A
run stops at its deadline, or when the target does not catch up, and the
next run resumes from the saved progress.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import gevent
import gevent.queue

from encmond.config import Table
from encmond.runner import capture
from encmond.validation.bisect import (
    BehindError,
    halves,
    leaf_differences,
    read_pinned,
)
from encmond.validation.chunks import Chunk, Chunker, decode_key, encode_key, predicate
from encmond.validation.pinned import Pinned, Reading
from encmond.validation.progress import PassState, ProgressStore
from encmond.validation.recheck import (
    BEHIND,
    DIVERGED,
    IN_FLUX,
    MATCH,
    Observation,
    confirm,
)
from encmond.validation.rowhash import HashMeasure, Measure
from encmond.validation.shape import Shape
from encmond.validation.throttle import Throttle

LEAF_ROWS = 500  # rows at or below which a differing range is not split further
RECHECK_ROUNDS = 4  # source reads per recheck attempt
RECHECK_ATTEMPTS = 3  # attempts before a chunk that keeps changing is in flux
CHUNKS_PER_PASS = 32  # chunks shrink toward 1/32 of the estimated rows
END, STOPPED = "end", "stopped"


@dataclass
class Limits:
    """The check's settings that bound a pass."""

    chunk_time: float
    wait_timeout: float
    max_differences: int


class TableValidation:
    """Runs one table's pass until it finishes, the deadline, or a lagging target.

    ``shapes`` are the source and target shapes; a source shape without a key
    makes the pass compare the whole table as one chunk. ``deadline`` is a
    time.monotonic() value. After ``run``, ``behind`` is the source position
    that the target did not reach, if that ended the run.
    """

    def __init__(
        self,
        table: Table,
        measure: Measure,
        shapes: tuple[Shape, Shape],
        limits: Limits,
        throttle: Throttle,
        deadline: float,
        log: logging.Logger,
    ) -> None:
        self.table = table
        self.measure = measure
        self.source_shape, self.target_shape = shapes
        self.limits = limits
        self.throttle = throttle
        self.deadline = deadline
        self.log = log
        self.behind = ""
        self.stopping = False

    def run(
        self, pinned: Pinned, state: PassState, saver: ProgressStore, key: tuple
    ) -> None:
        """Advance ``state`` as far as time allows, saving it as it goes."""
        self.save = lambda force=False: saver.save(key, state, force)
        if not state.scanned:
            self.scan(pinned, state)
        if not self.behind:
            self.process_rechecks(pinned, state)
        if state.scanned and not state.recheck and not self.behind:
            finish(state)
        self.save(True)

    def time_left(self) -> bool:
        return time.monotonic() < self.deadline

    def chunk_sql(self, chunk: Chunk) -> tuple[str, list[Any]]:
        where, args = predicate(self.source_shape.quoted_key, chunk)
        sql = self.measure.chunk_sql(
            self.source_shape, self.target_shape, self.table, where
        )
        return sql, args

    # The scan

    def scan(self, pinned: Pinned, state: PassState) -> None:
        chunker = Chunker(
            self.source_shape,
            self.table,
            self.limits.chunk_time,
            state.chunk_size,
            (state.rows_estimate or 0) // CHUNKS_PER_PASS,
        )
        if self.source_shape.key:
            chunker.start(pinned.source)
        queue: gevent.queue.Queue = gevent.queue.Queue(maxsize=1)
        producer = gevent.spawn(
            capture, lambda: self.produce(pinned, chunker, state, queue)
        )
        try:
            self.consume(pinned, state, queue)
        except BaseException:
            producer.kill(block=False)
            raise
        finally:
            self.stopping = True
        producer.join()
        failed, value = producer.value
        if failed:
            raise value
        state.chunk_size = chunker.size

    def produce(self, pinned, chunker, state, queue) -> None:
        """Queue source readings, then STOPPED, unless the greenlet is killed.

        A killed producer queues nothing more, because its consumer has
        already given up and nothing would ever read the queue again.
        """
        try:
            self.produce_chunks(pinned, chunker, state, queue)
        except gevent.GreenletExit:
            raise
        except BaseException:
            queue.put(STOPPED)
            raise
        queue.put(STOPPED)

    def produce_chunks(self, pinned, chunker, state, queue) -> None:
        """Read chunks on the source and queue them until ``stopping`` is set."""
        lower = decode_key(state.position)
        label = str(self.table)
        while not self.stopping and self.time_left():
            if not self.throttle.wait(label, self.deadline):
                return
            chunk = Chunk(None, None)
            if self.source_shape.key:
                chunk = chunker.next_chunk(pinned.source, lower)
            sql, args = self.chunk_sql(chunk)
            reading = pinned.read_source(sql, args)
            chunker.adapt(reading.seconds, reading.count)
            queue.put((chunk, sql, args, reading))
            if chunk.upper is None:
                queue.put(END)
                return
            lower = chunk.upper

    def consume(self, pinned: Pinned, state: PassState, queue) -> None:
        """Read each queued chunk on the target once caught up, and record it."""
        while True:
            item = queue.get()
            if item == END:
                state.scanned = True
                break
            if item == STOPPED:
                break
            chunk, sql, args, source = item
            target = pinned.read_target(sql, args, source.position)
            if target is None:
                self.behind = source.position
                break
            record(state, chunk, source, target)
            self.save()
        self.stopping = True
        while item != STOPPED:
            item = queue.get()

    # Rechecks, bisection and localisation

    def process_rechecks(self, pinned: Pinned, state: PassState) -> None:
        """Settle the queued chunks, splitting large ones down to small ranges.

        The queue is a stack, so the halves of a chunk are settled before the
        next chunk and the first differing rows are found early. A small chunk,
        or any chunk once enough differences are listed, is confirmed as
        match, in flux or diverged. The rows of a small diverged chunk are
        then localised.
        """
        while state.recheck and self.time_left():
            entry = state.recheck.pop(0)
            chunk = Chunk.from_json(entry["chunk"])
            try:
                if self.splittable(state, entry):
                    self.split(pinned, state, entry, chunk)
                else:
                    self.settle(pinned, state, entry, chunk)
            except BehindError as exc:
                state.recheck.insert(0, entry)
                self.behind = str(exc)
                return
            self.save()

    def splittable(self, state: PassState, entry: dict) -> bool:
        listed = len(state.differences) + len(state.diverged)
        return bool(
            self.source_shape.key
            and entry["rows"] > LEAF_ROWS
            and listed < self.limits.max_differences
        )

    def split(self, pinned, state: PassState, entry: dict, chunk: Chunk) -> None:
        parts = halves(pinned, self.source_shape, self.table, chunk, entry["rows"])
        if not parts:
            self.settle(pinned, state, entry, chunk)
            return
        parent = observation_of(entry)
        first = read_pinned(pinned, *self.chunk_sql(parts[0]))
        second = derived_half(parent, *first)
        if second is None:
            second = read_pinned(pinned, *self.chunk_sql(parts[1]))
        queued = []
        for part, (source, target) in zip(parts, (first, second), strict=True):
            if source.value != target.value:
                observed = Observation(source.value, target.value, source.position)
                queued.append(observation_entry(part, observed, entry["attempts"]))
        state.recheck[:0] = queued

    def settle(self, pinned, state: PassState, entry: dict, chunk: Chunk) -> None:
        """Confirm one chunk and record it as diverged, in flux or matching."""
        sql, args = self.chunk_sql(chunk)
        first = observation_of(entry)
        verdict, seen = confirm(pinned, sql, args, first, RECHECK_ROUNDS)
        if verdict == BEHIND:
            raise BehindError(seen.position)
        if verdict == DIVERGED:
            self.diverged(pinned, state, chunk, seen)
        elif verdict == IN_FLUX:
            attempts = entry["attempts"] + 1
            if attempts >= RECHECK_ATTEMPTS:
                state.in_flux.append(chunk.to_json())
            else:
                state.recheck.append(observation_entry(chunk, seen, attempts))

    def diverged(self, pinned, state: PassState, chunk: Chunk, seen: Observation):
        """Record a diverged chunk and list its differing rows while there is room.

        ``entry["localised"]`` is True when the chunk was read row by row and
        every row found different there is in ``state.differences``.
        """
        entry = observation_entry(chunk, seen) | {"localised": False}
        state.diverged.append(entry)
        self.log.warning(
            "%s: %s differs after the target applied %s",
            self.table,
            chunk.describe(self.source_shape.key),
            seen.position or "(no GTID position)",
        )
        room = self.limits.max_differences - len(state.differences)
        if not isinstance(self.measure, HashMeasure) or room <= 0:
            return
        if not self.source_shape.key or entry["rows"] > LEAF_ROWS:
            return
        shapes = (self.source_shape, self.target_shape)
        found = leaf_differences(pinned, shapes, self.table, chunk)
        names = self.source_shape.key
        state.differences += [difference.to_json(names) for difference in found[:room]]
        entry["localised"] = 0 < len(found) <= room


def record(state: PassState, chunk: Chunk, source: Reading, target: Reading):
    """Count a scanned chunk and queue it for a recheck if the servers differ."""
    state.position = encode_key(chunk.upper)
    state.chunks_done += 1
    state.rows_checked += source.count
    state.source_rows += source.count
    state.target_rows += target.count
    if source.value != target.value:
        state.rechecked += 1
        observed = Observation(source.value, target.value, source.position)
        state.recheck.append(observation_entry(chunk, observed))


def observation_entry(chunk: Chunk, seen: Observation, attempts: int = 0) -> dict:
    """Return the JSON form of a chunk with what was last seen of it."""
    rows = max(seen.source[0] or 0, (seen.target or (0,))[0] or 0)
    return {
        "chunk": chunk.to_json(),
        "source": encode_key(seen.source),
        "target": encode_key(seen.target),
        "position": seen.position,
        "rows": int(rows),
        "attempts": attempts,
    }


def observation_of(entry: dict) -> Observation:
    return Observation(
        decode_key(entry["source"]), decode_key(entry["target"]), entry["position"]
    )


def derived_half(parent: Observation, source: Reading, target: Reading):
    """Return the other half's readings as the parent's minus this half's.

    Every measure is a tuple of sums (COUNT and SUMs), so a range's values
    are the sums of its halves' values. That holds only while the data is
    the one the parent saw: when the source has written anything since
    (another GTID position), this returns None and the half is read instead.
    """
    if parent.target is None or source.position != parent.position:
        return None

    def minus(whole: tuple, part: tuple) -> tuple:
        return tuple(a - b for a, b in zip(whole, part, strict=True))

    return (
        Reading([], 0.0, source.position, minus(parent.source, source.value)),
        Reading([], 0.0, "", minus(parent.target, target.value)),
    )


def finish(state: PassState) -> None:
    """Close a pass whose scan and rechecks are done, and remember its outcome."""
    now = time.time()
    outcome = MATCH
    if state.diverged:
        outcome = DIVERGED
    elif state.in_flux:
        outcome = IN_FLUX
    if outcome == MATCH:
        state.last_clean_pass = now
    state.last_pass = state.summary(outcome) | {"finished_at": now}
    state.started_at = 0.0
