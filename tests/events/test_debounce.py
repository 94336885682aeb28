"""The debouncer's rules on their own (plain functions, both stores)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tasks.errors import ConfigError
from tasks.events import Debouncer, DebounceSettings, EmitError, MemoryStore, SQLiteStore, parse_delivery, parse_rules
from tasks.events.rules import PrefixRule
from tests.events.eventgrid import T0, blob_created, body, dataset_burst


class Recorder:
    """Stands in for the Prefect API only where the point is the debouncer's arithmetic."""

    def __init__(self, fail: int = 0) -> None:
        self.batches: list[list[dict]] = []
        self.fail = fail

    def emit(self, events):
        if self.fail:
            self.fail -= 1
            error = EmitError("down")
            error.transient = True
            raise error
        self.batches.append(events)


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    return MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path)


def _blobs(events):
    return parse_delivery(body(events)).blobs


def test_rules_pick_the_dataset_root():
    rule = PrefixRule.parse("datasets/incoming/kitti-*")
    assert rule.dataset_prefix("datasets", "incoming/kitti-04/images/1.png") == "incoming/kitti-04"
    assert rule.dataset_prefix("datasets", "incoming/coco/1.png") is None
    assert rule.dataset_prefix("datasets", "incoming/kitti-04") is None  # a file, not inside a folder
    assert rule.dataset_prefix("other", "incoming/kitti-04/x") is None
    assert rule.list_prefix == "incoming/"
    assert parse_rules(None)[0].dataset_prefix("any", "top/x") == "top"
    for bad in ("", "/", "a//b", "a/../b"):
        with pytest.raises(ConfigError):
            PrefixRule.parse(bad)


def test_quiet_window_emits_once_after_silence(store):
    debouncer = Debouncer(store, DebounceSettings(parse_rules(["c/*"]), quiet_seconds=300))
    sink = Recorder()
    debouncer.ingest(_blobs(dataset_burst("acct", "c", "ds", 5, marker=None)), now=1000)
    assert debouncer.flush(sink, 1299).emitted == []
    debouncer.ingest(_blobs([blob_created("acct", "c", "ds/more")]), now=1200)
    assert debouncer.flush(sink, 1499).emitted == []  # the new blob restarted the quiet window
    assert len(debouncer.flush(sink, 1500).emitted) == 1
    assert debouncer.flush(sink, 5000).emitted == []
    assert sink.batches[0][0]["payload"]["blob_count"] == 6


#: The bridge's clock when the events of `dataset_burst` arrive: their own time.
NOW = T0.timestamp()


def test_marker_seals_so_stragglers_are_late_not_a_second_event(store):
    debouncer = Debouncer(store, DebounceSettings(parse_rules(["c/*"])))
    sink = Recorder()
    events = dataset_burst("acct", "c", "ds", 10)
    debouncer.ingest(_blobs(events[:5] + events[-1:]), now=NOW + 100)  # marker overtakes half the files
    assert debouncer.flush(sink, NOW + 100).emitted[0]["payload"]["reason"] == "marker"
    counts = debouncer.ingest(_blobs(events[5:10]), now=NOW + 101)
    assert counts["late"] == 5 and counts["accepted"] == 5
    assert debouncer.flush(sink, NOW + 10_000).emitted == []
    # A later re-upload of the dataset (newer times, new marker) is a new dataset version.
    again = [blob_created("acct", "c", "ds/labels/x.txt", at=T0 + timedelta(hours=1)),
             blob_created("acct", "c", "ds/_READY", at=T0 + timedelta(hours=1, seconds=1))]
    debouncer.ingest(_blobs(again), now=NOW + 3601)
    second = debouncer.flush(sink, NOW + 3601).emitted
    assert len(second) == 1 and second[0]["id"] != sink.batches[0][0]["id"]


def test_a_marker_dated_in_the_future_seals_for_the_clock_skew_not_forever(store):
    skew = 300
    debouncer = Debouncer(store, DebounceSettings(parse_rules(["c/*"]), max_clock_skew_seconds=skew))
    sink = Recorder()
    far_ahead = blob_created("acct", "c", "ds/_READY", at=T0 + timedelta(days=80 * 365))  # a host clock gone wrong
    debouncer.ingest(_blobs([blob_created("acct", "c", "ds/a.png"), far_ahead]), now=NOW)
    assert debouncer.flush(sink, NOW).emitted[0]["payload"]["reason"] == "marker"
    # Inside the skew a straggler still belongs to the announced dataset...
    straggler = debouncer.ingest(_blobs([blob_created("acct", "c", "ds/b.png", at=T0 + timedelta(seconds=5))]),
                                 now=NOW + 5)
    assert straggler["late"] == 1
    # ...but an upload after it is a new version of the dataset, announced again.
    later = T0 + timedelta(seconds=skew + 60)
    debouncer.ingest(_blobs([blob_created("acct", "c", "ds/c.png", at=later),
                             blob_created("acct", "c", "ds/_READY", at=later + timedelta(seconds=1))]),
                     now=NOW + skew + 61)
    second = debouncer.flush(sink, NOW + skew + 61).emitted
    assert len(second) == 1 and second[0]["payload"]["blob_count"] == 2


def test_a_future_seal_left_by_an_older_version_is_dropped(store):
    debouncer = Debouncer(store, DebounceSettings(parse_rules(["c/*"])))
    with store.transaction():
        store.set_seal("acct/c/ds", NOW + 80 * 365 * 86400)
    counts = debouncer.ingest(_blobs(dataset_burst("acct", "c", "ds", 2)), now=NOW + 10)
    assert counts["late"] == 0 and counts["accepted"] == 3
    assert len(debouncer.flush(Recorder(), NOW + 10).emitted) == 1


def test_failed_emit_keeps_the_window_and_backs_off(store):
    debouncer = Debouncer(store, DebounceSettings(parse_rules(["c/*"])))
    sink = Recorder(fail=2)
    debouncer.ingest(_blobs(dataset_burst("acct", "c", "ds", 3)), now=0)
    assert debouncer.flush(sink, 0).error is not None
    assert debouncer.flush(sink, 0.5).error is None and sink.batches == []  # backing off (1 s)
    assert debouncer.flush(sink, 1).error is not None
    assert debouncer.flush(sink, 2.5).emitted == []  # 2 s now
    sent = debouncer.flush(sink, 3).emitted
    assert len(sent) == 1
    with store.transaction():
        assert store.pending() == [] and store.counters()["emitted"] == 1


def test_blobs_arriving_during_the_post_open_the_next_window(store):
    debouncer = Debouncer(store, DebounceSettings(parse_rules(["c/*"]), quiet_seconds=10))
    events = dataset_burst("acct", "c", "ds", 4, marker=None)
    debouncer.ingest(_blobs(events[:3]), now=0)

    class SlowApi(Recorder):
        def emit(self, batch):
            debouncer.ingest(_blobs(events[3:]), now=11)  # lands while the POST is in flight
            super().emit(batch)

    sink = SlowApi()
    assert debouncer.flush(sink, 10).emitted[0]["payload"]["blob_count"] == 3
    rest = debouncer.flush(sink, 21).emitted
    assert len(rest) == 1 and rest[0]["payload"]["blob_count"] == 1 and rest[0]["id"] != sink.batches[0][0]["id"]
