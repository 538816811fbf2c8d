"""Drills against the real `evidence review` process: two browsers deciding at once, and
kill -9 in the middle of decisions. Nothing acknowledged may be lost, the decision table
must agree with its log, and SQLite must pass its integrity check.
"""

from __future__ import annotations

import random
import re
import signal
import threading
import time

import requests

from evidence.store import Store
from tests.test_web import SLUG, fill
from tests.test_web_browser import Server


def session(server: Server) -> tuple[requests.Session, str]:
    """A client that opened the printed URL: its cookie and the page's CSRF token."""
    s = requests.Session()
    page = s.get(server.url, timeout=10)
    assert page.status_code == 200
    csrf = re.search(r'name="csrf-token" content="([0-9a-f]+)"', page.text).group(1)
    return s, csrf


def act(s: requests.Session, csrf: str, server: Server, action: str, pmid: str, **form) -> requests.Response:
    return s.post(
        f"{server.base}/conditions/{SLUG}/{action}", data={"pmid": pmid, **form},
        headers={"Accept": "application/json", "X-CSRF-Token": csrf}, timeout=30,
    )


def consistent(store: Store) -> list[str]:
    """Problems: a decision that differs from the last logged action for its PMID."""
    last: dict[str, tuple[str, str | None]] = {}
    for entry in store.decision_history(SLUG):
        last[entry["pmid"]] = (entry["action"], entry["reason"])
    now = {d["pmid"]: (d["decision"], d["reason"]) for d in store.decisions(SLUG)}
    problems = []
    for pmid in set(last) | set(now):
        expected = last.get(pmid)
        if expected and expected[0] == "undo":
            expected = None
        if now.get(pmid) != expected:
            problems.append(f"{pmid}: table {now.get(pmid)}, log {expected}")
    return problems


def test_two_browsers_deciding_at_once(tmp_path):
    db = tmp_path / "evidence.db"
    pmids = [r["pmid"] for r in fill(db).condition_records(SLUG, include_retracted=True)]
    server = Server(db)
    try:
        clients = [session(server) for _ in range(2)]
        answers: list[tuple[int, str, str]] = []
        lock = threading.Lock()

        def work(n: int) -> None:
            s, csrf = clients[n]
            rng = random.Random(n)
            for i in range(40):
                pmid = rng.choice(pmids[:6])  # a few PMIDs, so the two collide on purpose
                if i % 5 == 4:
                    response = act(s, csrf, server, "undo", pmid)
                elif n == 0:
                    response = act(s, csrf, server, "decide", pmid, decision="include")
                else:
                    response = act(s, csrf, server, "decide", pmid, decision="exclude",
                                   reason_pick="not about this condition")
                with lock:
                    answers.append((response.status_code, pmid, response.text[:200]))

        threads = [threading.Thread(target=work, args=(n,)) for n in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [a for a in answers if a[0] != 200] == []
        store = Store(db)
        assert store.integrity_check() == "ok"
        assert consistent(store) == []
        logged = [e for e in store.decision_history(SLUG) if e["action"] != "undo"]
        assert len(answers) == 80 and len(logged) == 64  # every decision logged; 16 were undos
    finally:
        server.stop()


def test_kill_9_mid_decision_loses_nothing_acknowledged(tmp_path):
    db = tmp_path / "evidence.db"
    pmids = [r["pmid"] for r in fill(db).condition_records(SLUG, include_retracted=True)]
    rng = random.Random(12)
    acknowledged: list[str] = []
    for kill in range(3):
        server = Server(db)
        s, csrf = session(server)
        stop = threading.Event()

        def work() -> None:
            i = 0
            while not stop.is_set():
                pmid = pmids[i % len(pmids)]
                try:
                    response = act(s, csrf, server, "decide", pmid, decision="exclude",
                                   reason_text=f"drill {kill}-{i}")
                except requests.RequestException:
                    return  # the server died mid-request: this one was never acknowledged
                if response.status_code == 200:
                    acknowledged.append(f"drill {kill}-{i}")
                i += 1

        thread = threading.Thread(target=work)
        thread.start()
        time.sleep(rng.uniform(0.2, 0.5))
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(timeout=10)
        stop.set()
        thread.join(timeout=30)
        store = Store(db)
        assert store.integrity_check() == "ok"
        logged = {e["reason"] for e in store.decision_history(SLUG)}
        assert set(acknowledged) <= logged, "an acknowledged decision was lost"
        assert consistent(store) == []
        store.close()
    assert len(acknowledged) > 10, acknowledged  # the drill did decide under fire
    # The server starts again on the same file and shows what was kept.
    kept = len(Store(db).decisions(SLUG))
    server = Server(db)
    try:
        s, _ = session(server)
        page = s.get(f"{server.base}/conditions/{SLUG}", timeout=10).text
        assert f"{kept} of {len(pmids)} screened" in page and kept > 0
    finally:
        server.stop()
