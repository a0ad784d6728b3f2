"""Raw-socket HTTP for the tests that must see what a library client hides:
connections held open, partial requests, closes and resets, exact bytes."""

import socket
import time

# Generous bound for "the daemon answered": proves liveness, not speed.
LIVE_TIMEOUT = 10


def connect(b, source=None, timeout=LIVE_TIMEOUT):
    """A TCP connection to daemon b, from the loopback address source if given."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if source:
        s.bind((source, 0))
    s.connect(("127.0.0.1", b.port))
    return s


def send_quietly(sock, data):
    """sendall that tolerates the peer having already replied and closed."""
    try:
        sock.sendall(data)
        return True
    except (BrokenPipeError, ConnectionResetError):
        return False


def read_response(sock, timeout=LIVE_TIMEOUT):
    """(status, headers, body) of one response (header names lowercased), or
    None when the peer closed (or reset) before a status line."""
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            data += chunk
    except (ConnectionResetError, BrokenPipeError):
        return None
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    want = int(headers.get("content-length", "0"))
    try:
        while len(body) < want:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    except (ConnectionResetError, BrokenPipeError):
        pass
    return int(lines[0].split()[1]), headers, body


def settle(fn, ok, wait=LIVE_TIMEOUT):
    """Polls fn() until ok(value) or `wait` seconds pass; returns the last value."""
    deadline = time.monotonic() + wait
    v = fn()
    while not ok(v) and time.monotonic() < deadline:
        time.sleep(0.1)
        v = fn()
    return v
