#!/usr/bin/python3
"""A registry that misbehaves on purpose, for the mirror's client tests.

    liar.py PORT

Repositories (GET and HEAD):
  lie        manifests: a body whose Docker-Content-Digest names other bytes;
             blobs: bytes that are not the blob asked for
  busy       429 with Retry-After: 7 and a TOOMANYREQUESTS error
  broken     500 with an error body
  flaky      blobs: FLAKY_SIZE bytes (byte i is i * 7 % 251); the first GET
             of each blob breaks off halfway, later ones honour Range
  norange    blobs: the same bytes, always whole (Range ignored)
  tok        manifests need a bearer token from /token (a challenge with a
             comma inside a quoted value and an unknown parameter); tokens
             live TOKEN_TTL seconds
  moody      an honest image (MANIFEST, tagged "v1", and its config) until
             GET /_moody?busy=1, then 429 like busy until /_moody?busy=0
GET /_counts answers {"token": N, "flaky": N, "norange": N, "moody": N}
(moody: requests answered while not busy)."""

import hashlib
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FLAKY_SIZE = 300 * 1024
FLAKY = bytes(i * 7 % 251 for i in range(FLAKY_SIZE))
TOKEN_TTL = 2
MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.empty.v1+json", "size": 2,
                                  "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},
                       "layers": []}).encode()
OTHER_DIGEST = "sha256:" + hashlib.sha256(MANIFEST + b" ").hexdigest()
MANIFEST_DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
EMPTY_CONFIG = b"{}"

lock = threading.Lock()
counts = {"token": 0, "flaky": 0, "norange": 0, "moody": 0}
moody_busy = [False]
broken_once = set()
issued = set()


def error_body(code, message):
    return json.dumps({"errors": [{"code": code, "message": message}]}).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.command, self.path))

    def answer(self, status, body=b"", headers=(), length=None):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        parts = self.path.split("?")[0].split("/")
        base = "http://%s" % self.headers.get("Host")
        if self.path == "/v2/":
            return self.answer(200, b"{}")
        if self.path == "/_counts":
            with lock:
                return self.answer(200, json.dumps(counts).encode())
        if self.path.startswith("/_moody?busy="):
            with lock:
                moody_busy[0] = self.path.endswith("=1")
            return self.answer(200, b"{}")
        if self.path.startswith("/token"):
            with lock:
                counts["token"] += 1
                tok = "t-%d" % counts["token"]
                issued.add(tok)
            return self.answer(200, json.dumps({"token": tok, "expires_in": TOKEN_TTL}).encode())
        if len(parts) != 5 or parts[1] != "v2":
            return self.answer(404, error_body("NAME_UNKNOWN", "no such repository"))
        repo, kind, ref = parts[2], parts[3], parts[4]
        if repo == "lie" and kind == "manifests":
            return self.answer(200, MANIFEST, [("Content-Type", "application/vnd.oci.image.manifest.v1+json"),
                                               ("Docker-Content-Digest", OTHER_DIGEST)])
        if repo == "lie":
            return self.answer(200, b"not the blob you asked for\n" * 100)
        if repo == "moody":
            return self.moody(kind, ref)
        if repo == "busy":
            return self.answer(429, error_body("TOOMANYREQUESTS", "slow down, please"), [("Retry-After", "7")])
        if repo == "broken":
            return self.answer(500, error_body("UNKNOWN", "the disk is on fire"))
        if repo in ("flaky", "norange"):
            return self.blob(repo, ref)
        if repo == "tok":
            auth = self.headers.get("Authorization", "")
            with lock:
                ok = auth.startswith("Bearer ") and auth[7:] in issued
            if not ok:
                challenge = ('Bearer error="invalid_token",realm="%s/token?x=1",service="liar, the service",'
                             'scope="repository:tok:pull",note=plain' % base)
                return self.answer(401, error_body("UNAUTHORIZED", "authentication required"),
                                   [("WWW-Authenticate", challenge)])
            return self.answer(200, MANIFEST, [("Content-Type", "application/vnd.oci.image.manifest.v1+json")])
        return self.answer(404, error_body("MANIFEST_UNKNOWN", "manifest unknown"))

    def moody(self, kind, ref):
        with lock:
            busy = moody_busy[0]
            counts["moody"] += 0 if busy else 1
        if busy:
            return self.answer(429, error_body("TOOMANYREQUESTS", "slow down, please"), [("Retry-After", "7")])
        if kind == "manifests" and ref in ("v1", MANIFEST_DIGEST):
            return self.answer(200, MANIFEST, [("Content-Type", "application/vnd.oci.image.manifest.v1+json"),
                                               ("Docker-Content-Digest", MANIFEST_DIGEST)])
        if kind == "blobs" and ref == "sha256:" + hashlib.sha256(EMPTY_CONFIG).hexdigest():
            return self.answer(200, EMPTY_CONFIG, [("Docker-Content-Digest", ref)])
        if kind == "referrers":
            return self.answer(200, json.dumps({"schemaVersion": 2, "manifests": [],
                                                "mediaType": "application/vnd.oci.image.index.v1+json"}).encode(),
                               [("Content-Type", "application/vnd.oci.image.index.v1+json")])
        return self.answer(404, error_body("MANIFEST_UNKNOWN", "manifest unknown"))

    def blob(self, repo, ref):
        with lock:
            counts[repo] += 1
            first = repo == "flaky" and ref not in broken_once
            broken_once.add(ref)
        rng = self.headers.get("Range")
        if first:
            # promise everything, send half, hang up
            self.send_response(200)
            self.send_header("Content-Length", str(FLAKY_SIZE))
            self.end_headers()
            self.wfile.write(FLAKY[:FLAKY_SIZE // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if rng and repo == "flaky":
            start = int(rng.split("=")[1].split("-")[0])
            return self.answer(206, FLAKY[start:], [("Content-Range", "bytes %d-%d/%d" % (start, FLAKY_SIZE - 1,
                                                                                          FLAKY_SIZE))])
        return self.answer(200, FLAKY)


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
