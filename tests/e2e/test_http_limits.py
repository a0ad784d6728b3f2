"""The HTTP layer's limits, end to end: request heads too large for berth
are answered with the OCI error JSON (414, 431), never libmicrohttpd's HTML
pages; one client address cannot hold every connection slot, and at the
global cap the longest-idle connection makes room for a new one; clients
that vanish in the middle of a PATCH release their sockets and uploads
without waiting for the idle timeout; a failed TLS handshake is logged
with the client's address; and a second daemon on a listening address in
use refuses to start.

Liveness checks are "answered within LIVE_TIMEOUT", never timings.
"""

import hashlib
import json
import os
import shutil
import socket
import struct
import subprocess
import threading
import time

import pytest
import requests

import ocihelp as oh
from conftest import BERTH_BIN, OPEN_CONFIG, free_port, rss_kib
from rawhttp import LIVE_TIMEOUT, connect, read_response, send_quietly, settle

# server/http.c: URI_MAX, HEAD_MAX
URI_MAX = 8 * 1024
HEAD_MAX = 32 * 1024


# ---------------------------------------------------------------- helpers

def ask(b, request, source=None):
    s = connect(b, source)
    try:
        send_quietly(s, request)
        return read_response(s)
    finally:
        s.close()


def oci_error(resp, status, code):
    """resp is a JSON error reply of the OCI shape with this status and code."""
    assert resp is not None, "no reply (connection closed)"
    got_status, headers, body = resp
    assert got_status == status, (got_status, body[:300])
    assert headers.get("content-type", "").startswith("application/json"), (headers, body[:300])
    doc = json.loads(body)
    assert [e["code"] for e in doc["errors"]] == [code], doc
    assert all(set(e) == {"code", "message", "detail"} for e in doc["errors"]), doc
    return doc


def alive(b, source=None):
    resp = ask(b, b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", source)
    assert resp is not None and resp[0] == 200, resp
    return True



def tcp_states(port, remote=None):
    """Counts of the TCP states (hex codes of /proc/net/tcp) of connections
    whose local port is `port` (the daemon's side), optionally only those from
    the IPv4 address `remote`."""
    counts = {}
    want = None
    if remote:
        want = "%08X" % struct.unpack("<I", socket.inet_aton(remote))[0]
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            laddr, raddr, st = fields[1], fields[2], fields[3]
            if int(laddr.split(":")[1], 16) != port:
                continue
            if want and raddr.split(":")[0] != want:
                continue
            counts[st] = counts.get(st, 0) + 1
    return counts


ESTABLISHED, CLOSE_WAIT, LISTEN = "01", "08", "0A"


def unread_bytes(port):
    """Bytes the daemon has not read yet, summed over its established connections."""
    total = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == port and fields[3] == ESTABLISHED:
                total += int(fields[4].split(":")[1], 16)
    return total


def push_blob(b, repo, data):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    resp = requests.post(b.url + "/v2/%s/blobs/uploads/?digest=%s" % (repo, d), data=data, timeout=LIVE_TIMEOUT,
                         headers={"Content-Type": "application/octet-stream"})
    assert resp.status_code == 201, resp.content[:300]
    return d


def pull(b, repo, digest, source):
    """GET of the blob on a fresh connection from `source`: (status, body) or None when refused."""
    resp = ask(b, b"GET /v2/%s/blobs/%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
               % (repo.encode(), digest.encode()), source)
    return None if resp is None else (resp[0], resp[2])


# ---------------------------------------------------------------- request heads: JSON, never HTML

@pytest.fixture(scope="module")
def plain(make_module_berth):
    return make_module_berth().start()


@pytest.mark.parametrize("length", [URI_MAX + 1, 64 * 1024, 100 * 1024])
def test_long_request_target_is_json_414(plain, length):
    """A request target over URI_MAX is answered 414 with the OCI error JSON,
    up to far beyond what libmicrohttpd keeps for a connection by default."""
    path = b"/v2/" + b"a" * (length - 4)
    resp = ask(plain, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    oci_error(resp, 414, "UNSUPPORTED")
    assert resp[1].get("connection") == "close"
    assert alive(plain)
    # the access log keeps a prefix of the target, not all of it
    assert ("a" * 1000) not in plain.read_log(tail=200000)


@pytest.mark.parametrize("kind", ["one-header", "many-headers", "padded"])
def test_large_request_head_is_json_431(plain, kind):
    """Headers over HEAD_MAX (one huge header, many small ones, or 100 KiB
    of 4 KiB headers) are answered 431 with the OCI error JSON."""
    if kind == "one-header":
        headers = b"X-Big: " + b"b" * (100 * 1024) + b"\r\n"
    elif kind == "many-headers":
        headers = b"".join(b"X-Header-%05d: %s\r\n" % (i, b"v" * 64) for i in range(500))
    else:
        headers = b"".join(b"X-Pad-%03d: %s\r\n" % (i, b"p" * 4000) for i in range(25))
    resp = ask(plain, b"GET /v2/ HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    oci_error(resp, 431, "UNSUPPORTED")
    assert resp[1].get("connection") == "close"
    assert alive(plain)


def test_heads_within_the_limits_are_served(plain):
    """Just under the limits a request is routed as usual."""
    path = b"/v2/" + b"a" * (URI_MAX - 4 - len("/tags/list")) + b"/tags/list"
    assert len(path) == URI_MAX
    resp = ask(plain, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    oci_error(resp, 400, "NAME_INVALID")  # a 8 KiB repository name is no valid name
    pad = b"X-Pad: " + b"p" * (HEAD_MAX - 200) + b"\r\n"
    resp = ask(plain, b"GET /v2/ HTTP/1.1\r\nHost: x\r\n" + pad + b"\r\n")
    assert resp is not None and resp[0] == 200, resp


def test_chunked_bodies_over_the_limit_are_json_413(plain):
    """A chunked manifest over the manifest limit is 413 SIZE_INVALID in
    JSON; a chunked body sent where none belongs gets the route's JSON answer."""
    repo = "limits/chunked"
    big = b"[" * (4 * 1024 * 1024 + 1)
    s = connect(plain)
    try:
        s.sendall(b"PUT /v2/%s/manifests/big HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n" % (repo.encode(), oh.MT_OCI_MANIFEST.encode()))
        for i in range(0, len(big), 65536):
            piece = big[i:i + 65536]
            if not send_quietly(s, b"%x\r\n%s\r\n" % (len(piece), piece)):
                break
        send_quietly(s, b"0\r\n\r\n")
        resp = read_response(s)
    finally:
        s.close()
    oci_error(resp, 413, "SIZE_INVALID")

    s = connect(plain)
    try:
        s.sendall(b"GET /v2/%s/tags/list HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" % repo.encode())
        for _ in range(16):
            if not send_quietly(s, b"10000\r\n" + b"z" * 0x10000 + b"\r\n"):
                break
        resp = read_response(s)
    finally:
        s.close()
    oci_error(resp, 404, "NAME_UNKNOWN")
    assert alive(plain)


# ---------------------------------------------------------------- connection slots

def hold_idle(b, n, source):
    """n kept-alive connections from `source`, each served one request;
    returns (held sockets, how many were refused)."""
    held, refused = [], 0
    for _ in range(n):
        s = connect(b, source)
        if send_quietly(s, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"):
            r = read_response(s)
            if r is not None and r[0] == 200:
                held.append(s)
                continue
        s.close()
        refused += 1
    return held, refused


def test_per_client_cap(make_berth):
    """Past max_connections_per_client a client's new connections are closed
    at once without a reply; another client is served meanwhile."""
    cap = 4
    b = make_berth(config=dict(OPEN_CONFIG, limits={"max_connections": 64, "max_connections_per_client": cap,
                                                    "idle_timeout": "1h"})).start()
    held = []
    try:
        held, _ = hold_idle(b, cap, "127.0.0.2")
        assert len(held) == cap, "only %d of %d connections were served" % (len(held), cap)
        more, refused = hold_idle(b, 3, "127.0.0.2")
        held += more
        assert refused == 3 and not more, "connections beyond the per-client cap were served"
        assert alive(b, "127.0.0.3")
        # a held one still works
        held[0].sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        r = read_response(held[0])
        assert r is not None and r[0] == 200
    finally:
        for s in held:
            s.close()
    # once they close, the client is served again
    assert settle(lambda: _served(b, "127.0.0.2"), lambda v: v)
    assert "max_connections_per_client (%d)" % cap in b.read_log()


def _served(b, source):
    try:
        return alive(b, source)
    except (AssertionError, OSError):
        return False


def test_global_cap_evicts_the_longest_idle_connection(make_berth):
    """At max_connections a new connection is served: the connection idle the
    longest is closed to make room. Connections inside a request are never
    taken: when every slot holds a request in progress, the new one is refused."""
    n = 8
    b = make_berth(config=dict(OPEN_CONFIG, limits={"max_connections": n, "max_connections_per_client": n,
                                                    "idle_timeout": "1h"})).start()
    held = []
    try:
        for _ in range(n):
            s = settle(lambda: hold_idle(b, 1, "127.0.0.2")[0], lambda v: len(v) == 1)
            assert s, "connection %d of %d was not served" % (len(held) + 1, n)
            held += s
        oldest = held[0]
        for _ in range(3):
            assert alive(b, "127.0.0.3"), "a new client was not served at the connection cap"
        # the oldest idle connection was the one closed
        oldest.settimeout(LIVE_TIMEOUT)
        try:
            assert oldest.recv(100) == b""
        except ConnectionResetError:
            pass
        newest = held[-1]
        newest.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        r = read_response(newest)
        assert r is not None and r[0] == 200, "a recently used connection was evicted first"
    finally:
        for s in held:
            s.close()
    assert "closing idle connections" in b.read_log()

    # every slot inside a request (a PATCH waiting for its body): nothing to evict
    repo = "limits/evict"
    locs = []
    for _ in range(n):
        r = requests.post(b.url + "/v2/%s/blobs/uploads/" % repo, timeout=LIVE_TIMEOUT,
                          headers={"Content-Length": "0", "Connection": "close"})
        assert r.status_code == 202
        locs.append(oh.split_url(r.headers["Location"])[0])
    busy = []
    try:
        for loc in locs:
            s = settle(lambda: connect(b, "127.0.0.2"), lambda v: v is not None)
            s.sendall(b"PATCH %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                      b"Content-Length: 1000\r\n\r\n" % loc.encode() + b"x" * 10)
            busy.append(s)
        # until the daemon holds just these, and has read every head
        settle(lambda: (tcp_states(b.port).get(ESTABLISHED, 0), unread_bytes(b.port)), lambda v: v == (n, 0))
        refused = 0
        for _ in range(3):
            s = connect(b, "127.0.0.3")
            try:
                send_quietly(s, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                r = read_response(s)
                if r is None:
                    refused += 1
            finally:
                s.close()
        assert refused == 3, "a connection was served while every slot held a request in progress"
        for s in busy:
            s.sendall(b"x" * 990)
            r = read_response(s)
            assert r is not None and r[0] == 202, "a request in progress was cut off: %r" % (r,)
    finally:
        for s in busy:
            s.close()


def test_idle_flood_from_one_address_does_not_lock_out_others(make_berth):
    """2,000 idle connections from 127.0.0.2 (with the default limits) while a
    client from 127.0.0.3 pulls a blob between every 100 of them: every pull
    succeeds, and 127.0.0.2 never holds more than its per-client cap."""
    b = make_berth(config=dict(OPEN_CONFIG, limits={"idle_timeout": "1h"})).start()
    data = os.urandom(1000)
    repo = "limits/flood"
    digest = push_blob(b, repo, data)
    socks = []
    pulls = 0
    try:
        for i in range(2000):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.2", 0))
            s.settimeout(LIVE_TIMEOUT)
            try:
                s.connect(("127.0.0.1", b.port))
            except OSError:
                s.close()
                continue
            socks.append(s)
            if i % 100 == 99:
                got = pull(b, repo, digest, "127.0.0.3")
                assert got == (200, data), "pull %d failed: %r" % (pulls + 1, got and got[0])
                pulls += 1
        held = tcp_states(b.port, "127.0.0.2").get(ESTABLISHED, 0)
        print("idle flood: %d connections attempted, %d held by the daemon, %d pulls" % (len(socks), held, pulls))
        assert held <= 64 + 4, "127.0.0.2 holds %d connections" % held
    finally:
        for s in socks:
            s.close()
    assert pulls == 20
    assert alive(b, "127.0.0.3")


# ---------------------------------------------------------------- clients vanishing mid-PATCH

def test_vanished_patch_clients_release_sockets_and_uploads(make_berth):
    """500 uploads whose clients vanish in the middle of a PATCH (half with a
    reset, half with a clean close; 8 at a time): with an idle timeout of an
    hour, the daemon's side of every connection is gone (no CLOSE-WAIT) and no
    upload stays taken (no 409), long before any timeout could have acted."""
    b = make_berth(config=dict(OPEN_CONFIG, limits={"idle_timeout": "1h", "max_connections_per_client": 1024},
                               gc={"upload_ttl": "1h"})).start()
    repo = "limits/vanish"
    session = requests.Session()
    locs = []
    for _ in range(500):
        r = session.post(b.url + "/v2/%s/blobs/uploads/" % repo, timeout=LIVE_TIMEOUT,
                         headers={"Content-Length": "0"})
        assert r.status_code == 202, r.content[:300]
        locs.append(oh.split_url(r.headers["Location"])[0])
    session.close()
    part = 32 * 1024

    def vanish(items):
        for i, loc in items:
            s = connect(b)
            if i % 2 == 0:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            send_quietly(s, b"PATCH %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                         b"Content-Length: %d\r\n\r\n" % (loc.encode(), 10 * part) + b"x" * part)
            s.close()

    items = list(enumerate(locs))
    threads = [threading.Thread(target=vanish, args=(items[k::8],)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    # bounded by far less than the idle timeout (1 h)
    states = settle(lambda: tcp_states(b.port), lambda st: not st.get(CLOSE_WAIT), wait=60)
    assert not states.get(CLOSE_WAIT), "%d sockets stuck in CLOSE-WAIT" % states[CLOSE_WAIT]
    taken = [loc for loc in locs
             if requests.get(b.url + loc, timeout=LIVE_TIMEOUT).status_code == 409]
    assert not taken, "%d uploads still taken by vanished clients" % len(taken)
    # and each one can be written again
    r = requests.patch(b.url + locs[0], data=b"more", timeout=LIVE_TIMEOUT,
                       headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 202, r.content[:300]


# ---------------------------------------------------------------- TLS handshake failures

def make_cert(tmp_path):
    key, cert = str(tmp_path / "key.pem"), str(tmp_path / "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    return key, cert


def start_tls(b):
    """Starts b (a TLS config) and waits until it answers over TLS (Berth.start
    waits on plain HTTP)."""
    b.port = free_port()
    b.write_config()
    b.log = open(b.log_path, "ab")
    b.reaped = False
    b.proc = subprocess.Popen([BERTH_BIN, "serve", "--listen", b.host, "--root", b.root, "-c", b.config_path],
                              stdout=b.log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert b.proc.poll() is None, b.read_log()
        try:
            if requests.get("https://%s/healthz" % b.host, verify=False, timeout=2).status_code == 200:
                return b
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError("TLS berth did not come up:\n" + b.read_log())


@pytest.mark.skipif(not shutil.which("curl") or not shutil.which("openssl"), reason="needs curl and openssl")
def test_rejected_certificate_is_logged_with_the_client(make_berth, tmp_path):
    """curl without the CA refuses berth's certificate: the daemon logs one
    line naming the client's address and what happened."""
    import urllib3
    urllib3.disable_warnings()
    key, cert = make_cert(tmp_path)
    b = start_tls(make_berth(config=dict(OPEN_CONFIG, tls={"cert": cert, "key": key})))
    p = subprocess.run(["curl", "-sS", "--max-time", "10", "--interface", "127.0.0.4",
                        "https://%s/v2/" % b.host], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert p.returncode != 0, "curl trusted a certificate it has no CA for"
    want = "tls: handshake with 127.0.0.4 failed: the client rejected the certificate"
    log = settle(b.read_log, lambda text: want in text)
    assert want in log, log[-3000:]
    assert "handshake message out of context" not in "\n".join(
        line for line in log.splitlines() if '"level":"warn"' in line or " warn: " in line)
    # with the CA the same client is served
    p = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", cert, "https://%s/v2/" % b.host],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert p.returncode == 0 and p.stdout.strip() == b"{}", p


# ---------------------------------------------------------------- one listening address, one daemon

def test_second_daemon_on_the_same_address_refuses_to_start(make_berth):
    """Without reuse_port a second `berth serve` on a listening address in use
    (its own data directory) exits with "address in use"; the first keeps
    serving every connection. With reuse_port both start (the operator asked)."""
    first = make_berth().start()
    second = make_berth()
    second.write_config()
    with open(second.log_path, "ab") as log:
        # Berth.start() would take the first daemon's answers for the second's
        p = subprocess.run([BERTH_BIN, "serve", "--listen", first.host, "--root", second.root,
                            "-c", second.config_path], stdout=log, stderr=subprocess.STDOUT, timeout=60)
    assert p.returncode != 0, "a second daemon started on %s:\n%s" % (first.host, second.read_log())
    assert "address in use" in second.read_log(), second.read_log()
    for _ in range(10):
        assert alive(first)

    a = make_berth(config=dict(OPEN_CONFIG, reuse_port=True)).start()
    c = make_berth(config=dict(OPEN_CONFIG, reuse_port=True)).start(a.port)
    assert alive(a) and c.proc.poll() is None


def test_kept_alive_connections_stay_small(make_berth):
    """A kept-alive connection that served requests holds its request memory
    (libmicrohttpd zeroes its whole pool between requests): 200 of them
    stay well under 300 KiB each. With a 512 KiB pool they took 560 KiB."""
    n = 200
    b = make_berth(config=dict(OPEN_CONFIG, limits={"max_connections_per_client": 1000})).start()
    assert alive(b)
    before = rss_kib(b.proc.pid)
    socks = []
    try:
        for _ in range(n):
            socks.append(connect(b))
        for _ in range(3):
            for s in socks:
                s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
            for s in socks:
                r = read_response(s)
                assert r is not None and r[0] == 200
        grown = rss_kib(b.proc.pid) - before
    finally:
        for s in socks:
            s.close()
    assert grown < n * 300, "%d kept-alive connections grew the daemon by %d KiB" % (n, grown)
