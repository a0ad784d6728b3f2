"""Helpers for the end-to-end API tests: random blobs, digests, a thin HTTP
client bound to one registry, blob and manifest pushing, and builders for
OCI/Docker manifests, indexes and artifacts (returned as JSON bytes)."""

import hashlib
import http.client
import json
import os
import re
import urllib.parse

import requests

API_VERSION = "registry/2.0"

MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_OCI_EMPTY = "application/vnd.oci.empty.v1+json"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MT_DOCKER_V1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
MT_DOCKER_V1 = "application/vnd.docker.distribution.manifest.v1+json"

EMPTY_JSON = b"{}"
EMPTY_JSON_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

# Upload locations: /v2/<name>/blobs/uploads/<id> (berth's ids are 32 lowercase hex).
UPLOAD_PATH_RE = re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/(?P<id>[^/]+)$")
UPLOAD_ID_RE = re.compile(r"^[0-9a-f]{32}$")
RANGE_RE = re.compile(r"^0-(\d+)$")

MANIFEST_ACCEPT = ", ".join([MT_OCI_MANIFEST, MT_OCI_INDEX, MT_DOCKER_MANIFEST, MT_DOCKER_LIST])


# ---------------------------------------------------------------- content

def random_blob(size):
    """size random bytes (unique per call, so never already in the registry)."""
    return os.urandom(size)


def digest(data, alg="sha256"):
    return "%s:%s" % (alg, hashlib.new(alg, data).hexdigest())


def content_digest_ok(header, data, requested):
    """A Docker-Content-Digest header is right when it equals the requested
    digest, or is the content's digest in another algorithm (the spec lets a
    registry answer in its own algorithm); sha256 requests get sha256 back."""
    if header == requested:
        return True
    if requested.startswith("sha256:"):
        return False
    if not header or ":" not in header:
        return False
    alg = header.split(":", 1)[0]
    return alg in ("sha256", "sha512") and header == digest(data, alg)


def unknown_digest(alg="sha256"):
    """A well-formed digest of content nobody ever pushed."""
    return digest(os.urandom(32), alg)


def descriptor(media_type, data, **extra):
    """An OCI descriptor for data (bytes); extra keys (annotations, platform,
    artifactType, ...) are added as given."""
    d = {"mediaType": media_type, "digest": digest(data), "size": len(data)}
    d.update({k: v for k, v in extra.items() if v is not None})
    return d


def to_json(doc):
    return json.dumps(doc, separators=(",", ":"), sort_keys=False).encode()


def image_config(marker=None):
    """A small OCI/Docker image config blob, unique per call."""
    return to_json({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["MARKER=%s" % (marker or os.urandom(8).hex())]},
        "rootfs": {"type": "layers", "diff_ids": []},
    })


def oci_manifest(config, layers, subject=None, artifact_type=None, annotations=None,
                 media_type=MT_OCI_MANIFEST):
    """OCI image manifest bytes. config and layers are descriptors (dicts);
    subject a descriptor or None. media_type=None leaves the field out."""
    doc = {"schemaVersion": 2}
    if media_type is not None:
        doc["mediaType"] = media_type
    if artifact_type is not None:
        doc["artifactType"] = artifact_type
    doc["config"] = config
    doc["layers"] = list(layers)
    if subject is not None:
        doc["subject"] = subject
    if annotations is not None:
        doc["annotations"] = annotations
    return to_json(doc)


def oci_index(manifests, subject=None, artifact_type=None, annotations=None, media_type=MT_OCI_INDEX):
    doc = {"schemaVersion": 2}
    if media_type is not None:
        doc["mediaType"] = media_type
    if artifact_type is not None:
        doc["artifactType"] = artifact_type
    doc["manifests"] = list(manifests)
    if subject is not None:
        doc["subject"] = subject
    if annotations is not None:
        doc["annotations"] = annotations
    return to_json(doc)


def docker_manifest(config, layers):
    return to_json({
        "schemaVersion": 2,
        "mediaType": MT_DOCKER_MANIFEST,
        "config": config,
        "layers": list(layers),
    })


def docker_list(manifests):
    return to_json({"schemaVersion": 2, "mediaType": MT_DOCKER_LIST, "manifests": list(manifests)})


def platform(arch, os_="linux"):
    return {"architecture": arch, "os": os_}


def docker_schema1(name, tag):
    """A Docker schema 1 manifest body (unsigned form); berth refuses these."""
    return to_json({
        "schemaVersion": 1,
        "name": name,
        "tag": tag,
        "architecture": "amd64",
        "fsLayers": [{"blobSum": digest(b"")}],
        "history": [{"v1Compatibility": "{\"id\":\"%s\"}" % os.urandom(32).hex()}],
    })


# ---------------------------------------------------------------- responses

def error_codes(resp):
    """The list of error codes in an error response; fails the test when the
    body is not the OCI error JSON."""
    ctype = resp.headers.get("Content-Type", "")
    assert ctype.split(";")[0].strip() == "application/json", \
        "error body should be JSON, got Content-Type %r, body %r" % (ctype, resp.content[:200])
    body = resp.json()
    assert isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"], \
        "error body should hold a non-empty errors list: %r" % body
    for e in body["errors"]:
        assert isinstance(e.get("code"), str) and e["code"], e
        assert isinstance(e.get("message"), str), e
    return [e["code"] for e in body["errors"]]


def expect_error(resp, status, *codes):
    """Asserts resp has the status and its (first) error code is one of codes."""
    assert resp.status_code == status, \
        "expected %d %s, got %d: %r" % (status, "/".join(codes), resp.status_code, resp.content[:300])
    found = error_codes(resp)
    if codes:
        assert found[0] in codes, "expected error code %s, got %s" % ("/".join(codes), found)
    return found


def link_next(resp):
    """The target of a `Link: <...>; rel="next"` header, or None."""
    link = resp.headers.get("Link")
    if not link:
        return None
    m = re.match(r'^\s*<([^>]*)>\s*;\s*rel="?next"?\s*$', link)
    assert m, "malformed Link header %r" % link
    return m.group(1)


def split_url(target):
    """(path, {query key: value}) of a URL or path."""
    u = urllib.parse.urlsplit(target)
    return u.path, dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))


def upload_range_end(resp):
    """The last byte offset of an upload's `Range: 0-<end>` header."""
    rng = resp.headers.get("Range")
    assert rng is not None, "response has no Range header"
    m = RANGE_RE.match(rng)
    assert m, "malformed upload Range %r" % rng
    return int(m.group(1))


# ---------------------------------------------------------------- client

class RawResponse:
    """A response read with http.client (used where requests would rewrite
    the path): status_code, headers (case-insensitive get), content, json()."""

    def __init__(self, resp):
        self.status_code = resp.status
        self.headers = requests.structures.CaseInsensitiveDict(resp.getheaders())
        self.content = resp.read()

    def json(self):
        return json.loads(self.content)


class Registry:
    """A requests session bound to one registry base URL. Paths may be
    relative to the base ("/v2/...") or absolute URLs (as in Location)."""

    def __init__(self, base):
        self.base = base.rstrip("/")
        self.session = requests.Session()

    def close(self):
        self.session.close()

    def abs(self, target):
        return urllib.parse.urljoin(self.base + "/", target)

    def request(self, method, target, **kw):
        kw.setdefault("allow_redirects", False)
        kw.setdefault("timeout", 60)
        return self.session.request(method, self.abs(target), **kw)

    def get(self, target, **kw):
        return self.request("GET", target, **kw)

    def head(self, target, **kw):
        return self.request("HEAD", target, **kw)

    def put(self, target, **kw):
        return self.request("PUT", target, **kw)

    def post(self, target, **kw):
        return self.request("POST", target, **kw)

    def patch(self, target, **kw):
        return self.request("PATCH", target, **kw)

    def delete(self, target, **kw):
        return self.request("DELETE", target, **kw)

    def raw(self, method, path, headers=None, body=None):
        """Sends path exactly as given (no dot-segment removal, no quoting)."""
        u = urllib.parse.urlsplit(self.base)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            return RawResponse(conn.getresponse())
        finally:
            conn.close()

    # ---- URLs with query parameters appended to a (possibly query-bearing) location

    @staticmethod
    def with_query(location, **params):
        u = urllib.parse.urlsplit(location)
        q = urllib.parse.parse_qsl(u.query, keep_blank_values=True)
        q += [(k, v) for k, v in params.items() if v is not None]
        return urllib.parse.urlunsplit(u._replace(query=urllib.parse.urlencode(q)))

    # ---- blobs

    def start_upload(self, repo, **params):
        resp = self.post(self.with_query("/v2/%s/blobs/uploads/" % repo, **params))
        assert resp.status_code == 202, "POST upload: %d %r" % (resp.status_code, resp.content[:300])
        assert resp.headers.get("Location"), "POST upload without Location"
        return resp

    def push_blob(self, repo, data, alg="sha256"):
        """Monolithic POST then PUT; returns the digest."""
        d = digest(data, alg)
        loc = self.start_upload(repo).headers["Location"]
        resp = self.put(self.with_query(loc, digest=d), data=data,
                        headers={"Content-Type": "application/octet-stream"})
        assert resp.status_code == 201, "PUT blob: %d %r" % (resp.status_code, resp.content[:300])
        return d

    def push_blobs(self, repo, *blobs):
        return [self.push_blob(repo, b) for b in blobs]

    def has_blob(self, repo, dgst):
        resp = self.head("/v2/%s/blobs/%s" % (repo, dgst))
        assert resp.status_code in (200, 404), resp.status_code
        return resp.status_code == 200

    # ---- manifests

    def put_manifest(self, repo, ref, body, media_type):
        return self.put("/v2/%s/manifests/%s" % (repo, ref), data=body,
                        headers={"Content-Type": media_type})

    def push_manifest(self, repo, ref, body, media_type):
        resp = self.put_manifest(repo, ref, body, media_type)
        assert resp.status_code == 201, "PUT manifest: %d %r" % (resp.status_code, resp.content[:300])
        return resp

    def get_manifest(self, repo, ref, method="GET"):
        return self.request(method, "/v2/%s/manifests/%s" % (repo, ref), headers={"Accept": MANIFEST_ACCEPT})

    def push_image(self, repo, tag=None, kind="oci", nlayers=2, layer_size=512, **manifest_kw):
        """Pushes config and layers, then an image manifest (by tag, or by
        digest when tag is None). Returns an Image."""
        docker = kind == "docker"
        config = image_config()
        layers = [random_blob(layer_size + i) for i in range(nlayers)]
        self.push_blobs(repo, config, *layers)
        cdesc = descriptor(MT_DOCKER_CONFIG if docker else MT_OCI_CONFIG, config)
        ldescs = [descriptor(MT_DOCKER_LAYER if docker else MT_OCI_LAYER, l) for l in layers]
        if docker:
            body, mt = docker_manifest(cdesc, ldescs), MT_DOCKER_MANIFEST
        else:
            body, mt = oci_manifest(cdesc, ldescs, **manifest_kw), MT_OCI_MANIFEST
        self.push_manifest(repo, tag or digest(body), body, mt)
        return Image(body, mt, config, layers)

    def push_artifact(self, repo, artifact_type, subject=None, annotations=None, tag=None, payload=None):
        """Pushes an OCI artifact (empty config, one layer) and returns an Image."""
        payload = payload if payload is not None else random_blob(64)
        self.push_blobs(repo, EMPTY_JSON, payload)
        body = oci_manifest(descriptor(MT_OCI_EMPTY, EMPTY_JSON),
                            [descriptor("application/octet-stream", payload)],
                            subject=subject, artifact_type=artifact_type, annotations=annotations)
        self.push_manifest(repo, tag or digest(body), body, MT_OCI_MANIFEST)
        return Image(body, MT_OCI_MANIFEST, EMPTY_JSON, [payload])

    # ---- listings

    def list_pages(self, target, key, max_pages=10000):
        """Follows Link rel=next from target; returns (all items, responses)."""
        items, resps = [], []
        while target is not None:
            resp = self.get(target)
            assert resp.status_code == 200, "%s: %d %r" % (target, resp.status_code, resp.content[:300])
            page = resp.json().get(key) or []
            items += page
            resps.append(resp)
            target = link_next(resp)
            assert len(resps) <= max_pages, "pagination does not end"
            assert target is None or page, "a page with Link rel=next must not be empty"
        return items, resps


class Image:
    """A pushed manifest: its bytes, media type and the blobs it references."""

    def __init__(self, body, media_type, config, layers):
        self.body = body
        self.media_type = media_type
        self.config = config
        self.layers = layers

    @property
    def digest(self):
        return digest(self.body)

    @property
    def size(self):
        return len(self.body)

    def descriptor(self, **extra):
        return descriptor(self.media_type, self.body, **extra)
