"""Queue IDs: shape, uniqueness in and across processes, age ordering."""

from __future__ import annotations

import multiprocessing
import re

from mailseal.queue.ids import is_queue_id, new_queue_id, sort_oldest_first

PFLOGSUMM_QID = re.compile(r"[0-9A-F]+")  # what pflogsumm and Postfix's short IDs match


def _make_ids(count: int) -> list[str]:
    return [new_queue_id() for _ in range(count)]


def test_shape_is_postfix_short_id() -> None:
    queue_id = new_queue_id()
    assert 10 <= len(queue_id) <= 12
    assert PFLOGSUMM_QID.fullmatch(queue_id)
    assert is_queue_id(queue_id)


def test_is_queue_id_rejects_other_names() -> None:
    for text in [
        "",
        "tmp-0123456789AB",
        "0123456789ab",
        "0123456789ABC",
        "012345678",
        "G123456789",
    ]:
        assert not is_queue_id(text), text
    assert is_queue_id("3F2A91C0B4")


def test_unique_over_ten_thousand_and_increasing() -> None:
    ids = _make_ids(10_000)
    assert len(set(ids)) == 10_000
    assert sort_oldest_first(ids, now=None) == ids


def test_unique_across_processes() -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        batches = pool.map(_make_ids, [5_000, 5_000])
    ours = _make_ids(5_000)
    combined = batches[0] + batches[1] + ours
    assert len(set(combined)) == len(combined)


def test_sort_oldest_first_across_clock_wrap() -> None:
    # Ticks just before and just after the 32-bit millisecond clock wraps.
    before_wrap = "FFFFFF000001"
    after_wrap = "000000100001"
    now = (2**32 + 0x200) / 1000  # a little after the wrap
    assert sort_oldest_first([after_wrap, before_wrap], now=now) == [before_wrap, after_wrap]
    # IDs from elsewhere (other lengths) sort after ours, by name.
    assert sort_oldest_first(["0ABCDEF123", after_wrap], now=now) == [after_wrap, "0ABCDEF123"]
