"""Serving over TLS: what berth negotiates and how a blob leaves.

Blob bodies over TLS are read in large blocks and leave in full 16 KiB
records (libmicrohttpd's own file responses made a 4 KiB record, pread and
sendmsg of every 4 KiB); the cipher suite is the server's choice, AES-128-GCM
first, and `tls.priorities` replaces the whole priority string. The client
here reads the raw TLS records off the socket (ssl.MemoryBIO) to see their
sizes; nothing is timed."""

import hashlib
import os
import socket
import ssl
import struct
import subprocess

import pytest
import requests

from conftest import BERTH_BIN, Berth, OPEN_CONFIG, free_port


class TlsBerth(Berth):
    @property
    def url(self):
        return "https://" + self.host


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    key, crt = str(d / "key.pem"), str(d / "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
    return crt, key


def start(cert, monkeypatch, **tls):
    # requests (Berth.start's health check) trusts the test certificate
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", cert[0])
    b = TlsBerth(config=dict(OPEN_CONFIG, tls=dict({"cert": cert[0], "key": cert[1]}, **tls)))
    try:
        return b.start()
    except Exception:
        b.cleanup()
        raise


def push(b, repo, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    r = requests.post(b.url + "/v2/%s/blobs/uploads/" % repo, timeout=30)
    assert r.status_code == 202, r.text
    loc = r.headers["Location"]
    loc = loc if loc.startswith("http") else b.url + loc
    r = requests.put(loc, params={"digest": digest}, data=data, timeout=60,
                     headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    return digest


class RecordClient:
    """One TLS connection whose raw records are seen before decryption."""

    def __init__(self, port, cafile, ctx=None):
        self.ctx = ctx or ssl.create_default_context(cafile=cafile)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = self.ctx.wrap_bio(self.inc, self.out, server_hostname="127.0.0.1")
        self.raw = b""
        self.records = []   # (content type, length) of every record received
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.flush()
                self.receive()
        self.flush()
        self.records = []   # from here on: what the response brought

    def flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def receive(self):
        data = self.sock.recv(1 << 20)
        assert data, "connection closed by berth"
        self.raw += data
        while len(self.raw) >= 5:
            ctype, _, length = struct.unpack("!BHH", self.raw[:5])
            if len(self.raw) < 5 + length:
                break
            self.records.append((ctype, length))
            self.raw = self.raw[5 + length:]
        self.inc.write(data)

    def get(self, path, headers=()):
        req = "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n" % (path, "".join("%s: %s\r\n" % h for h in headers))
        self.tls.write(req.encode())
        self.flush()
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += self.read_some()
        head, body = buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        fields = dict((k.strip().lower(), v.strip()) for k, v in (l.split(":", 1) for l in lines[1:]))
        want = int(fields["content-length"])
        while len(body) < want:
            body += self.read_some()
        return int(lines[0].split()[1]), fields, body

    def read_some(self):
        while True:
            try:
                return self.tls.read(1 << 20)
            except ssl.SSLWantReadError:
                self.receive()

    def close(self):
        self.sock.close()


def test_blob_leaves_in_full_records(cert, monkeypatch):
    """A 1 MiB blob over TLS: byte-exact, in 16 KiB records (4 KiB ones
    before), and the same for a range from an odd offset."""
    b = start(cert, monkeypatch)
    try:
        data = os.urandom((1 << 20) + 777)
        digest = push(b, "tls/blob", data)
        c = RecordClient(b.port, cert[0])
        status, _, body = c.get("/v2/tls/blob/blobs/" + digest)
        assert status == 200 and body == data
        want = 0.9 * len(data)
        full = sum(length for ctype, length in c.records if ctype == 23 and length >= 16384)
        assert full >= want, "record sizes: %s" % sorted(set(l for _, l in c.records))
        c.records = []
        status, _, body = c.get("/v2/tls/blob/blobs/" + digest, [("Range", "bytes=4097-900000")])
        assert status == 206 and body == data[4097:900001]
        want = 0.9 * len(body)
        full = sum(length for ctype, length in c.records if ctype == 23 and length >= 16384)
        assert full >= want, "record sizes: %s" % sorted(set(l for _, l in c.records))
        c.close()
        # a small blob (shorter than a block) and an empty-bodied HEAD on the same path
        small = os.urandom(100)
        sd = push(b, "tls/blob", small)
        assert requests.get(b.url + "/v2/tls/blob/blobs/" + sd, timeout=30).content == small
        r = requests.head(b.url + "/v2/tls/blob/blobs/" + digest, timeout=30)
        assert r.status_code == 200 and r.headers["Content-Length"] == str(len(data))
    finally:
        b.cleanup()


def test_server_picks_aes128_gcm(cert, monkeypatch):
    """The client lists AES-256-GCM first (Python's and OpenSSL's default
    order); berth decides, and picks AES-128-GCM like distribution."""
    b = start(cert, monkeypatch)
    try:
        ctx = ssl.create_default_context(cafile=cert[0])
        first13 = [c["name"] for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.3"][0]
        assert first13 == "TLS_AES_256_GCM_SHA384", first13
        c = RecordClient(b.port, cert[0], ctx)
        assert c.tls.version() == "TLSv1.3" and c.tls.cipher()[0] == "TLS_AES_128_GCM_SHA256", c.tls.cipher()
        c.close()
        # a TLS 1.2 client gets the ECDHE AES-128-GCM suite
        ctx12 = ssl.create_default_context(cafile=cert[0])
        ctx12.maximum_version = ssl.TLSVersion.TLSv1_2
        c = RecordClient(b.port, cert[0], ctx12)
        assert c.tls.cipher()[0] == "ECDHE-ECDSA-AES128-GCM-SHA256", c.tls.cipher()
        c.close()
    finally:
        b.cleanup()


def test_priorities_key(cert, monkeypatch):
    """tls.priorities replaces berth's priority string; a string GnuTLS
    refuses stops the start."""
    b = start(cert, monkeypatch, priorities="NORMAL:-VERS-TLS1.3")
    try:
        c = RecordClient(b.port, cert[0])
        assert c.tls.version() == "TLSv1.2", c.tls.version()
        c.close()
    finally:
        b.cleanup()
    bad = TlsBerth(config=dict(OPEN_CONFIG, tls={"cert": cert[0], "key": cert[1], "priorities": "NO-SUCH-THING"}))
    try:
        bad.port = free_port()
        bad.write_config()
        p = subprocess.run([BERTH_BIN, "serve", "--listen", bad.host, "--root", bad.root, "-c", bad.config_path],
                           capture_output=True, timeout=60)
        out = (p.stdout + p.stderr).decode(errors="replace")
        assert p.returncode != 0, out
        assert "priorit" in out.lower(), out
    finally:
        bad.cleanup()
