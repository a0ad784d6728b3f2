"""A minimal HTTP/1.1 client on a raw socket, for the benchmark's own
clients: keep-alive, request bodies sent from memory or with sendfile(2)
from a file, response bodies kept or counted and dropped. It costs far less
CPU per request than a general-purpose client, so the clients (pinned to
their own core) stay out of the way of the servers being measured."""

import socket
import ssl
import urllib.parse

RECV_SIZE = 1 << 20
TIMEOUT = 300.0
MAX_HEADER = 256 * 1024


class HTTPError(Exception):
    pass


def loopback_tls():
    """A client context for the benchmark's own self-signed loopback
    servers: no verification (nothing leaves 127.0.0.1)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Response:
    __slots__ = ("status", "headers", "body", "length")

    def __init__(self, status, headers, body, length):
        self.status = status
        self.headers = headers   # lowercase name -> value (last one wins)
        self.body = body         # bytes, or None when the body was dropped
        self.length = length     # body bytes received

    def location(self):
        """The Location header as a path with its query (absolute URLs are
        reduced to their path: the benchmark only ever talks to one host)."""
        loc = self.headers.get("location")
        if loc is None:
            raise HTTPError("response %d has no Location" % self.status)
        u = urllib.parse.urlsplit(loc)
        return u.path + ("?" + u.query if u.query else "")


class Conn:
    """One keep-alive connection to host:port; reconnects when the server
    closed it between requests."""

    def __init__(self, host, port, timeout=TIMEOUT, tls=None):
        self.host = host
        self.port = port
        self.timeout = timeout
        self.tls = tls   # an ssl.SSLContext for HTTPS, or None
        self.sock = None
        self.buf = bytearray()
        self.scratch = bytearray(RECV_SIZE)

    def connect(self):
        self.close()
        s = socket.create_connection((self.host, self.port), timeout=self.timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            s = self.tls.wrap_socket(s)
        self.sock = s
        self.buf = bytearray()

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None

    def request(self, method, path, headers=None, body=None, file=None, keep_body=True):
        """Sends one request and reads its response. body: bytes; file:
        (fileobj, offset, count) sent with sendfile(2). keep_body=False
        counts the response body without keeping it."""
        if body is not None:
            length = len(body)
        elif file is not None:
            length = file[2]
        else:
            length = 0
        lines = ["%s %s HTTP/1.1" % (method, path), "Host: %s:%d" % (self.host, self.port)]
        sent_len = False
        for k, v in (headers or {}).items():
            lines.append("%s: %s" % (k, v))
            if k.lower() == "content-length":
                sent_len = True
        if not sent_len and (length or method in ("POST", "PUT", "PATCH")):
            lines.append("Content-Length: %d" % length)
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        for attempt in (0, 1):
            fresh = self.sock is None
            if fresh:
                self.connect()
            try:
                if body is not None and len(body) <= 65536:
                    self.sock.sendall(head + body)
                else:
                    self.sock.sendall(head)
                    if body is not None:
                        self.sock.sendall(body)
                    elif file is not None:
                        f, off, count = file
                        done = self.sock.sendfile(f, off, count)
                        if done != count:
                            raise HTTPError("sendfile sent %d of %d bytes" % (done, count))
                return self._response(method, keep_body)
            except (ConnectionError, _Closed):
                # A kept-alive connection the server had closed: retry once on
                # a new one. A failure on a fresh connection is real.
                self.close()
                if fresh or attempt:
                    raise
        raise HTTPError("unreachable")

    def _fill(self):
        n = self.sock.recv_into(self.scratch)
        if n == 0:
            raise _Closed()
        self.buf += memoryview(self.scratch)[:n]

    def _response(self, method, keep_body):
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(self.buf) > MAX_HEADER:
                raise HTTPError("response header too large")
            self._fill()
        head = bytes(self.buf[:end]).decode("latin-1")
        del self.buf[:end + 4]
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise HTTPError("bad status line %r" % lines[0])
        status = int(parts[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        close_after = hdrs.get("connection", "").lower() == "close"
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            body, n = (b"" if keep_body else None), 0
        elif hdrs.get("transfer-encoding", "").lower() == "chunked":
            body, n = self._chunked(keep_body)
        elif "content-length" in hdrs:
            body, n = self._exact(int(hdrs["content-length"]), keep_body)
        else:
            body, n = self._until_close(keep_body)
            close_after = True
        if close_after:
            self.close()
        return Response(status, hdrs, body, n)

    def _exact(self, want, keep_body):
        if keep_body:
            while len(self.buf) < want:
                self._fill()
            body = bytes(self.buf[:want])
            del self.buf[:want]
            return body, want
        have = min(len(self.buf), want)
        del self.buf[:have]
        left = want - have
        view = memoryview(self.scratch)
        while left > 0:
            n = self.sock.recv_into(view, min(left, RECV_SIZE))
            if n == 0:
                raise _Closed()
            left -= n
        return None, want

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return line
            if len(self.buf) > MAX_HEADER:
                raise HTTPError("chunk header too large")
            self._fill()

    def _chunked(self, keep_body):
        parts = []
        total = 0
        while True:
            size = int(self._line().split(b";")[0], 16)
            if size == 0:
                while self._line():   # trailers, up to the empty line
                    pass
                break
            data, n = self._exact(size, keep_body)
            if keep_body:
                parts.append(data)
            total += n
            self._line()
        return (b"".join(parts) if keep_body else None), total

    def _until_close(self, keep_body):
        total = len(self.buf)
        parts = [bytes(self.buf)] if keep_body else []
        self.buf = bytearray()
        while True:
            n = self.sock.recv_into(self.scratch)
            if n == 0:
                break
            total += n
            if keep_body:
                parts.append(bytes(self.scratch[:n]))
        return (b"".join(parts) if keep_body else None), total


class _Closed(Exception):
    pass


def expect(resp, *statuses, what=""):
    if resp.status not in statuses:
        detail = ""
        if resp.body:
            detail = resp.body[:300].decode("utf-8", "replace")
        raise HTTPError("%s: HTTP %d (expected %s) %s" % (what, resp.status,
                                                          "/".join(map(str, statuses)), detail))
    return resp
