"""Concurrent clients as separate processes (one connection each), so the
Python interpreter lock never serialises them. Every worker prepares its
data and connection first; all start together on a barrier; each reports
its own start and end (CLOCK_MONOTONIC is system-wide), its latencies and
its own CPU time, so the harness can tell how busy the client core was."""

import multiprocessing
import signal
import time
import traceback

PREPARE_TIMEOUT = 300.0


def _main(barrier, queue, index, prepare, args):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    try:
        go = prepare(index, *args)
        barrier.wait(PREPARE_TIMEOUT)
        t0 = time.monotonic()
        c0 = time.process_time()
        out = go()
        c1 = time.process_time()
        t1 = time.monotonic()
        queue.put({"index": index, "t0": t0, "t1": t1, "cpu": c1 - c0, "out": out})
    except BaseException as e:   # reported to the parent, which fails the phase
        try:
            barrier.abort()
        except Exception:
            pass
        queue.put({"index": index, "error": "%s: %s\n%s" % (type(e).__name__, e,
                                                            traceback.format_exc(limit=4))})


def run(n, prepare, args_for, timeout, around=None):
    """Runs prepare(i, *args_for(i)) in n processes; each returns a callable
    whose run is timed. around: object with begin()/end() called by the
    parent right when the workers are released and when the last reported
    (server CPU readings). Returns (results, wall seconds)."""
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(n + 1)
    queue = ctx.Queue()
    procs = [ctx.Process(target=_main, args=(barrier, queue, i, prepare, args_for(i)), daemon=True)
             for i in range(n)]
    results = []
    try:
        for p in procs:
            p.start()
        try:
            barrier.wait(PREPARE_TIMEOUT)
        except Exception:
            pass   # a worker failed while preparing: its error is in the queue
        if around:
            around.begin()
        deadline = time.monotonic() + timeout
        for _ in range(n):
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("clients did not finish within %d s" % timeout)
            results.append(queue.get(timeout=left))
        if around:
            around.end()
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
        queue.close()
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        raise RuntimeError("client failed: " + errors[0])
    wall = max(r["t1"] for r in results) - min(r["t0"] for r in results)
    return results, wall
