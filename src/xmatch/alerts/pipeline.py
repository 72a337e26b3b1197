"""Annotating alert files into an output file: what ``xmatch annotate`` runs.

Reads packets from the inputs in a fixed order, streams them through a server's
``Annotate`` RPC and writes each answered batch as one segment of the output
(:class:`~xmatch.alerts.outputs.AnnotationWriter`). An interrupted run is resumed by the
next run with the same inputs and options: the alerts already written are skipped.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from xmatch.alerts.annotation import annotation_info
from xmatch.alerts.outputs import AnnotationWriter, format_of
from xmatch.alerts.sources import check_inputs, input_paths, read_packets


@dataclass
class Summary:
    """What a run did: alerts read, annotated and in error, time, and per catalog the
    alerts with a counterpart and the median separation of the nearest ones."""

    alerts: int = 0
    resumed: int = 0
    errors: int = 0
    seconds: float = 0.0
    out: Path | None = None
    matched: dict[str, int] = field(default_factory=dict)
    outside: dict[str, int] = field(default_factory=dict)   # outside the catalog's coverage
    failed: dict[str, int] = field(default_factory=dict)    # the catalog could not answer
    radius_arcsec: dict[str, float] = field(default_factory=dict)
    separations: dict[str, list] = field(default_factory=dict)  # numpy arrays, per batch
    error_examples: list[str] = field(default_factory=list)
    classes: dict[str, int] = field(default_factory=dict)   # context classes, when asked for
    history_states: dict[str, int] = field(default_factory=dict)  # new, known... (--history)
    watch_hits: dict[str, int] = field(default_factory=dict)  # alerts per watch (--watches)

    @property
    def annotated(self) -> int:
        return self.alerts - self.errors

    @property
    def rate(self) -> float:
        return self.alerts / self.seconds if self.seconds > 0 else 0.0

    def add(self, table, packets=None) -> None:
        """Count one answered batch (``packets``: its packets, whose origins name the alerts
        in error; compact alerts are named by their row)."""
        first = self.alerts
        self.alerts += table.num_rows
        errors = table.column("error")
        self.errors += table.num_rows - errors.null_count
        if errors.null_count < table.num_rows and len(self.error_examples) < 5:
            for row in np.flatnonzero(pc.is_valid(errors).to_numpy(zero_copy_only=False)):
                if len(self.error_examples) >= 5:
                    break
                where = (packets[row].origin if packets is not None
                         else f"alert {first + row + 1}")
                self.error_examples.append(f"{where}: {errors[int(row)].as_py()}")
        for column, counts in (("context_class", self.classes),
                               ("history_state", self.history_states)):
            if column in table.column_names:
                for item in pc.value_counts(table.column(column)).to_pylist():
                    if item["values"] is not None:
                        counts[item["values"]] = counts.get(item["values"], 0) + item["counts"]
        if "watch_hits" in table.column_names:
            hits = pc.list_flatten(table.column("watch_hits"))
            rows = pc.list_parent_indices(table.column("watch_hits"))
            if len(hits):
                pairs = pa.table({"row": rows, "watch": pc.struct_field(hits, "watch")})
                for item in pairs.group_by("watch").aggregate(
                        [("row", "count_distinct")]).to_pylist():
                    self.watch_hits[item["watch"]] = (self.watch_hits.get(item["watch"], 0)
                                                      + item["row_count_distinct"])
        for target in annotation_info(table)["catalogs"]:
            matched = pc.sum(pc.greater(table.column(f"{target.name}_count"), 0)).as_py()
            self.matched[target.name] = self.matched.get(target.name, 0) + (matched or 0)
            states = table.column(f"{target.name}_state")
            for counts, state in ((self.outside, "outside_coverage"), (self.failed, "failed")):
                found = pc.sum(pc.equal(states, state)).as_py() or 0
                counts[target.name] = counts.get(target.name, 0) + found
            self.radius_arcsec[target.name] = target.radius_arcsec
            separation = table.column(f"{target.name}_separation_arcsec").drop_null()
            self.separations.setdefault(target.name, []).append(
                separation.to_numpy(zero_copy_only=False))

    def rows(self) -> list[tuple]:
        """Per catalog: name, radius, alerts matched, their fraction, median separation,
        alerts outside its coverage, alerts it failed."""
        out = []
        for name, matched in self.matched.items():
            separations = np.concatenate(self.separations[name])
            median = float(np.median(separations)) if len(separations) else float("nan")
            out.append((name, self.radius_arcsec[name], matched,
                        matched / self.annotated if self.annotated else 0.0, median,
                        self.outside[name], self.failed[name]))
        return out


def annotate_files(client, inputs: list, out, *, fmt: str | None = None, catalogs=None,
                   radius_arcsec: dict | None = None, all_matches: bool = False,
                   schemas: dict | None = None, observatory: str | None = None,
                   context: bool = False, history: bool = False, watches: bool = False,
                   batch_size: int | None = None, progress: bool = True) -> Summary:
    """Annotate every alert of ``inputs`` through ``client`` into ``out``; returns the
    :class:`Summary`. Resumes an interrupted run of the same inputs and options."""
    from tqdm import tqdm

    check_inputs(inputs)
    fmt = format_of(str(out), fmt)
    manifest = {"inputs": input_paths(inputs), "catalogs": list(catalogs or []),
                "radius_arcsec": dict(sorted((radius_arcsec or {}).items())),
                "all_matches": all_matches, "observatory": observatory or "", "format": fmt,
                "context": context, "history": history, "watches": watches}
    writer = AnnotationWriter(out, fmt, manifest)
    summary = Summary(resumed=writer.resume())
    packets = itertools.islice(read_packets(inputs), summary.resumed, None)
    options = {"batch_size": batch_size} if batch_size else {}
    started = time.perf_counter()
    with tqdm(desc="annotating", unit=" alerts", disable=not progress,
              initial=summary.resumed) as bar:
        for batch in client.annotate(packets, catalogs=catalogs, radius_arcsec=radius_arcsec,
                                     all_matches=all_matches, schemas=schemas,
                                     observatory=observatory, context=context,
                                     history=history, watches=watches, **options):
            writer.write(batch)
            summary.add(batch.table, batch.packets)
            bar.update(batch.table.num_rows)
    summary.seconds = time.perf_counter() - started
    summary.out = writer.finish()
    return summary
