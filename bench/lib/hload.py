"""A closed-loop HEAD load generator (wrk cannot do HEAD: its response
parser waits for the Content-Length bytes a HEAD response never carries).
`conns` keep-alive connections spread over `procs` processes; each process
drives its connections with epoll: send a request, wait for the response
header (a HEAD response is nothing else), record the latency, send the next.
Same report as bench/wrk/report.lua."""

import select
import socket
import time

import stats
import workers


def _prepare(index, port, path, nconns, duration):
    req = ("HEAD %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % (path, port)).encode()
    socks = []
    for _ in range(nconns):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        socks.append(s)

    def go():
        ep = select.epoll()
        by_fd = {}
        buf = {}
        start = {}
        lat = []
        errors = 0
        now = time.perf_counter()
        end = now + duration
        for s in socks:
            fd = s.fileno()
            by_fd[fd] = s
            buf[fd] = b""
            ep.register(fd, select.EPOLLIN)
            start[fd] = time.perf_counter()
            s.send(req)
        active = len(socks)
        # bounded: every pass either handles events or waits at most 0.2 s,
        # and nothing new is sent after `end`
        hard_stop = end + 15
        while active and time.perf_counter() < hard_stop:
            for fd, _ in ep.poll(0.2):
                s = by_fd[fd]
                try:
                    data = s.recv(65536)
                except BlockingIOError:
                    continue
                if not data:
                    ep.unregister(fd)
                    active -= 1
                    errors += 1
                    continue
                b = buf[fd] + data
                while True:
                    i = b.find(b"\r\n\r\n")
                    if i < 0:
                        break
                    t = time.perf_counter()
                    if b[9:12] != b"200":
                        errors += 1
                    lat.append(t - start[fd])
                    b = b[i + 4:]
                    if t < end:
                        start[fd] = t
                        s.send(req)
                    else:
                        ep.unregister(fd)
                        active -= 1
                buf[fd] = b
        ep.close()
        for s in socks:
            s.close()
        return {"lat": lat, "errors": errors}
    return go


def run(port, path, conns, duration, procs=2, around=None):
    procs = max(1, min(procs, conns))
    per = [conns // procs + (1 if i < conns % procs else 0) for i in range(procs)]
    res, wall = workers.run(procs, _prepare, lambda i: (port, path, per[i], duration),
                            timeout=duration + 120, around=around)
    lat = [x for r in res for x in r["out"]["lat"]]
    errors = sum(r["out"]["errors"] for r in res)
    ccpu = sum(r["cpu"] for r in res)
    return {"requests": len(lat), "seconds": wall, "errors": errors,
            "p50_ms": stats.percentile(lat, 50) * 1000 if lat else None,
            "p99_ms": stats.percentile(lat, 99) * 1000 if lat else None,
            "client_cpu": ccpu}
