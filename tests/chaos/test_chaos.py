"""The chaos and load suite at CI size (`make chaos` runs the full sizes; BENCHMARKS.md has
them). Each scenario drives a real `supportloop serve` process over real sockets, on SQLite and
PostgreSQL."""

from __future__ import annotations

import pytest

from benchmarks.chaos import crash, load, resume, soak

pytestmark = pytest.mark.slow  # each starts servers; `make test` runs them, test-fast does not

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(autouse=True)
def _postgres_or_skip(request: pytest.FixtureRequest) -> None:
    if "postgresql" in request.node.name:
        request.getfixturevalue("postgres_template")  # skips without a PostgreSQL server


@pytest.mark.parametrize("backend", BACKENDS)
def test_resets_mid_conversation_lose_duplicate_and_reorder_nothing(backend: str) -> None:
    report = resume.run(backend, messages=150, reset_p=0.1)
    assert report["resets"] >= 5 and report["abrupt_resets"] >= 1, report
    assert report["lost"] == 0 and report["duplicated"] == 0, report
    assert report["order_kept"], report
    assert report["delivered_in_order_once"], report


@pytest.mark.parametrize("backend", BACKENDS)
def test_kill_9_under_write_load_keeps_every_acknowledged_write(backend: str) -> None:
    report = crash.run(backend, runs=3)
    assert report["acked_messages"] > 0 and report["acked_webhook_events"] > 0, report
    assert report["failed_runs"] == [], report


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_process_holds_sockets_and_frees_dead_peers_within_ping_time(backend: str) -> None:
    report = load.run(
        backend,
        sockets=200,
        step=100,
        rate=50,
        seconds=3,
        dead=20,
        ping_interval_s=1,
        ping_timeout_s=1,
    )
    assert report["sockets_held"] == 200 and report["stopped_by"] is None, report
    assert report["acks"] == 150, report
    # Freed within ping interval + timeout, with a margin for polling and a slow machine.
    assert report["dead_freed_s"] is not None, report
    assert report["dead_freed_s"] <= report["ping_interval_plus_timeout_s"] + 5, report


def test_mixed_traffic_soak_runs_without_errors() -> None:
    report = soak.run("sqlite", minutes=1, window_s=20)
    assert report["errors"] == 0, report["first_errors"]
    windows = report["windows"]
    assert all(w["acks"] > 0 and w["webhooks"] > 0 for w in windows), windows
    assert (
        sum(w["bot_replies"] for w in windows) > 0 and sum(w["console_events"] for w in windows) > 0
    ), windows
