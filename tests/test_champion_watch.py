"""The champion watch: one request re-checks the champion; the others never queue behind it."""

from __future__ import annotations

import threading
from pathlib import Path

from waymark.models.settings import Settings
from waymark.service.db.engine import make_engine
from waymark.service.runtime import Champion, ChampionWatch


def test_a_slow_check_holds_the_request_that_makes_it_and_no_other(tmp_path: Path) -> None:
    """An operations review stopped the tracking server while a worker fetched a new champion's files:
    the check held the watch's lock for minutes, and every request queued behind it (a caseload read
    hung for over ten minutes). Another request now reads what the check has so far and goes on."""
    engine = make_engine(f"sqlite:///{tmp_path}/w.db")
    watch = ChampionWatch(Settings(env="development"), engine=engine, every=0)
    entered, release = threading.Event(), threading.Event()
    champion = Champion("waymark-not-completing", "2")

    def slow_read() -> Champion | None:
        entered.set()
        release.wait(timeout=60)
        return champion

    watch._read = slow_read  # type: ignore[method-assign]  # the registry answering slowly
    first: list[Champion | None] = []
    checking = threading.Thread(target=lambda: first.append(watch.current()))
    checking.start()
    try:
        assert entered.wait(timeout=60)
        assert watch.current() is None  # returned while the check is still held: nothing queued
        assert checking.is_alive()
    finally:
        release.set()
        checking.join(timeout=60)
    assert first == [champion]
    watch._read = lambda: champion  # type: ignore[method-assign]
    assert watch.current() == champion
    engine.dispose()
