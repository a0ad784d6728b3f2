"""Helpers for the end-to-end tests: random blobs, digests, a thin HTTP
client bound to one registry (anonymous, or signing in through the Docker
token flow), blob and manifest pushing, builders for OCI/Docker manifests,
indexes and artifacts (returned as JSON bytes), token endpoint requests, and
JWT/key tools (ES256 signing through the openssl command) for forging tokens."""

import base64
import hashlib
import http.client
import json
import os
import re
import subprocess
import time
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


# ---------------------------------------------------------------- secrets

# Every password, personal access token, bearer token and Basic credential the
# suite sends or receives; the fixtures check that no daemon log shows any.
SECRETS = set()


def remember_secret(*values):
    for v in values:
        if isinstance(v, bytes):
            v = v.decode(errors="replace")
        if isinstance(v, str) and len(v) >= 8:
            SECRETS.add(v)


def basic_value(user, secret):
    """The value of an Authorization header carrying Basic credentials."""
    b64 = base64.b64encode(("%s:%s" % (user, secret)).encode()).decode()
    remember_secret(secret, b64)
    return "Basic " + b64


def bearer_header(token):
    remember_secret(token)
    return {"Authorization": "Bearer " + token}


def leaked_secrets(text, extra=()):
    """The remembered secrets (and extra ones) that occur in text, each
    shortened for the report."""
    found = []
    for s in sorted(SECRETS | set(extra)):
        if s in text:
            found.append(s[:12] + "..." if len(s) > 12 else s)
    return found


# ---------------------------------------------------------------- token flow

CHALLENGE_PARAM_RE = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_-]*)="([^"\\]*)"\s*(?:,|$)')


def parse_challenge(value):
    """(scheme, {param: value}) of a WWW-Authenticate value such as
    `Bearer realm="...",service="...",scope="..."`; (None, {}) when absent.
    Fails the test when the parameters are not a clean key="value" list."""
    if not value:
        return None, {}
    scheme, _, rest = value.strip().partition(" ")
    params, pos = {}, 0
    while pos < len(rest):
        m = CHALLENGE_PARAM_RE.match(rest, pos)
        assert m and m.end() > pos, "malformed challenge %r" % value
        assert m.group(1) not in params, "parameter %s twice in %r" % (m.group(1), value)
        params[m.group(1)] = m.group(2)
        pos = m.end()
    return scheme, params


ACTION_ORDER = ("pull", "push", "delete")


def scope_string(name, actions):
    return "repository:%s:%s" % (name, ",".join(a for a in ACTION_ORDER if a in actions))


def parse_scope(scope):
    """(type, name, set of actions) of `type:name:actions`."""
    typ, rest = scope.split(":", 1)
    name, acts = rest.rsplit(":", 1)
    return typ, name, set(a for a in acts.split(",") if a)


def token_get(base, auth=None, scopes=(), service="berth", params=(), headers=None):
    """GET <base>/auth/token as docker does: Basic credentials (auth is a
    (user, secret) pair) or none, `service`, one `scope` parameter per scope,
    then any extra (key, value) params."""
    query = ([("service", service)] if service is not None else []) + [("scope", s) for s in scopes]
    query += list(params)
    hdrs = dict(headers or {})
    if auth is not None:
        hdrs["Authorization"] = basic_value(*auth)
    resp = requests.get(base.rstrip("/") + "/auth/token", params=query, headers=hdrs, timeout=60)
    _remember_token_reply(resp)
    return resp


def token_post(base, form, headers=None):
    """POST <base>/auth/token with an OAuth2 form (a dict or a list of pairs)."""
    pairs = list(form.items()) if isinstance(form, dict) else list(form)
    for k, v in pairs:
        if k in ("password", "refresh_token"):
            remember_secret(v)
    resp = requests.post(base.rstrip("/") + "/auth/token", data=pairs, headers=headers or {}, timeout=60)
    _remember_token_reply(resp)
    return resp


def _remember_token_reply(resp):
    if resp.status_code != 200:
        return
    try:
        body = resp.json()
    except ValueError:
        return
    if isinstance(body, dict):
        for key in ("token", "access_token", "refresh_token"):
            if isinstance(body.get(key), str):
                remember_secret(body[key])


# ---------------------------------------------------------------- JWT and keys

def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jwt_decode(token):
    """(header, claims) of a compact JWS, without checking anything."""
    parts = token.split(".")
    assert len(parts) == 3, "not a compact JWS: %d parts" % len(parts)
    return json.loads(b64url_decode(parts[0])), json.loads(b64url_decode(parts[1]))


def jwt_assemble(header, claims, sign):
    """header and claims (dicts, or bytes used as they are) signed by sign(input) -> raw signature."""
    h = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    c = claims if isinstance(claims, bytes) else json.dumps(claims, separators=(",", ":")).encode()
    signing_input = b64url(h) + "." + b64url(c)
    return signing_input + "." + b64url(sign(signing_input.encode()))


def openssl(args, input=None):
    p = subprocess.run(["openssl"] + list(args), input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    assert p.returncode == 0, "openssl %s: %s" % (" ".join(args), p.stderr.decode(errors="replace"))
    return p.stdout


def _der_len(buf, pos):
    first = buf[pos]
    if first < 0x80:
        return first, pos + 1
    n = first & 0x7F
    return int.from_bytes(buf[pos + 1:pos + 1 + n], "big"), pos + 1 + n


def der_sig_to_raw(der, half=32):
    """An ECDSA-Sig-Value (SEQUENCE of INTEGER r, INTEGER s) as JOSE's r||s."""
    assert der[0] == 0x30, "not a DER SEQUENCE"
    length, pos = _der_len(der, 1)
    assert pos + length == len(der), "trailing bytes after the signature"
    out = b""
    for _ in range(2):
        assert der[pos] == 0x02, "not a DER INTEGER"
        n, pos = _der_len(der, pos + 1)
        value = der[pos:pos + n].lstrip(b"\0")
        assert len(value) <= half
        out += value.rjust(half, b"\0")
        pos += n
    assert pos == len(der)
    return out


def raw_sig_to_der(raw):
    half = len(raw) // 2

    def integer(v):
        v = v.lstrip(b"\0") or b"\0"
        if v[0] & 0x80:
            v = b"\0" + v
        return b"\x02" + bytes([len(v)]) + v

    body = integer(raw[:half]) + integer(raw[half:])
    return b"\x30" + bytes([len(body)]) + body


def es256_signer(key_path):
    """sign(data) -> raw r||s signature made by `openssl dgst` with the PEM private key."""
    def sign(data):
        return der_sig_to_raw(openssl(["dgst", "-sha256", "-sign", key_path], input=data))
    return sign


def es256_verify(public_pem_path, data, raw, tmpdir):
    sig = os.path.join(tmpdir, "sig.der")
    with open(sig, "wb") as f:
        f.write(raw_sig_to_der(raw))
    p = subprocess.run(["openssl", "dgst", "-sha256", "-verify", public_pem_path, "-signature", sig],
                       input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    return p.returncode == 0


def public_key(key_path, der=False):
    """The public half of a PEM private key: PEM text or SubjectPublicKeyInfo DER bytes."""
    return openssl(["pkey", "-in", key_path, "-pubout"] + (["-outform", "DER"] if der else []))


def new_p256_key(path):
    openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path])
    return path


def self_signed_cert_der(key_path, cert_path):
    openssl(["req", "-x509", "-new", "-key", key_path, "-subj", "/CN=berth", "-days", "1", "-out", cert_path,
             "-outform", "DER"])
    with open(cert_path, "rb") as f:
        return f.read()


def libtrust_kid(spki_der):
    """The libtrust key id docker's token tooling uses: the first 240 bits of
    the SHA-256 of the DER public key, base32, in groups of four joined by ':'."""
    b32 = base64.b32encode(hashlib.sha256(spki_der).digest()[:30]).decode()
    return ":".join(b32[i:i + 4] for i in range(0, len(b32), 4))


def jwk_of(spki_der):
    """The JWK of a P-256 public key (its uncompressed point ends the DER)."""
    point = spki_der[-65:]
    assert point[0] == 4, "not an uncompressed P-256 point"
    return {"kty": "EC", "crv": "P-256", "x": b64url(point[1:33]), "y": b64url(point[33:])}


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


# /v2/<name>/<route>: the name is what precedes the last route keyword.
ROUTE_NAME_RE = re.compile(
    r"^/v2/(?P<name>.+)/(?:tags/list|blobs/uploads/?[^/]*|manifests/[^/]*|blobs/[^/]*|referrers/[^/]*)$")
CATALOG_SCOPE = "registry:catalog:*"


class Registry:
    """A requests session bound to one registry base URL. Paths may be
    relative to the base ("/v2/...") or absolute URLs (as in Location).

    With auth=(user, password) the client signs in the way docker does: a
    request answered 401 with a Bearer challenge gets a token from the
    challenge's realm (GET with Basic credentials, the challenge's service
    and scope) and is sent again with `Authorization: Bearer`. Tokens are
    cached per repository; a new challenge for more actions on a repository
    asks for the union, so one token per repository ends up covering every
    action used on it. The catalog, which answers anonymous callers with
    what they may see instead of a challenge, is asked with a token for
    `registry:catalog:*` once the registry has shown it wants tokens, as
    crane and containerd do. Requests that set their own Authorization
    header are sent as they are."""

    def __init__(self, base, auth=None):
        self.base = base.rstrip("/")
        self.session = requests.Session()
        self.auth = auth
        self.realm = None          # (realm, service) once a challenge was seen
        self.tokens = {}           # scope string -> (token, time after which a new one is asked)
        self.granted = {}          # repository -> set of actions of its cached token
        self.token_requests = 0
        if auth is not None:
            remember_secret(auth[1])

    def clone(self):
        """Another client for the same registry and credentials (for threads)."""
        other = Registry(self.base, self.auth)
        other.realm = self.realm
        other.tokens = dict(self.tokens)
        other.granted = {k: set(v) for k, v in self.granted.items()}
        return other

    def close(self):
        self.session.close()

    def abs(self, target):
        return urllib.parse.urljoin(self.base + "/", target)

    # ---- authentication

    def _cached_token(self, path):
        if path == "/v2/_catalog":
            if self.realm is None:
                self._ping()
            if self.realm is None:
                return None
            return self._token(CATALOG_SCOPE) or self._fetch_token([CATALOG_SCOPE])
        m = ROUTE_NAME_RE.match(path)
        if m and m.group("name") in self.granted:
            return self._token(scope_string(m.group("name"), self.granted[m.group("name")]))
        if path in ("/v2/", "/v2"):
            return self._token("")
        return None

    def _token(self, scope):
        """The cached token for scope while it is still good for a while, else None."""
        token, renew_at = self.tokens.get(scope, (None, 0))
        return token if time.time() < renew_at else None

    def _ping(self):
        resp = self.session.get(self.base + "/v2/", timeout=60)
        scheme, params = parse_challenge(resp.headers.get("WWW-Authenticate"))
        if resp.status_code == 401 and scheme == "Bearer":
            self.realm = (params["realm"], params.get("service"))

    def _fetch_token(self, scopes):
        realm, service = self.realm
        query = ([("service", service)] if service else []) + [("scope", s) for s in scopes]
        query.append(("account", self.auth[0]))
        resp = self.session.get(realm, params=query, timeout=60,
                                headers={"Authorization": basic_value(*self.auth)})
        self.token_requests += 1
        assert resp.status_code == 200, "token request for %s: %d %r" % (scopes, resp.status_code, resp.content[:300])
        token = resp.json()["token"]
        remember_secret(token)
        # renewed a little before it expires, as docker does
        self.tokens[" ".join(scopes)] = (token, time.time() + max(resp.json().get("expires_in", 60) - 30, 0))
        return token

    def _answer_challenge(self, resp):
        """A token for the challenge of a 401 response, or None when it is no Bearer challenge."""
        scheme, params = parse_challenge(resp.headers.get("WWW-Authenticate"))
        if scheme != "Bearer" or "realm" not in params:
            return None
        self.realm = (params["realm"], params.get("service"))
        scope = params.get("scope")
        if not scope:
            return self._fetch_token([])
        typ, name, actions = parse_scope(scope)
        if typ != "repository":
            return self._fetch_token([scope])
        actions |= self.granted.get(name, set())
        token = self._fetch_token([scope_string(name, actions)])
        self.granted[name] = actions
        return token

    def _ensure_push_token(self, path):
        """Streams cannot be sent twice: sign in for pull,push before sending one."""
        m = ROUTE_NAME_RE.match(path)
        if not m:
            return
        if self.realm is None:
            self._ping()
        if self.realm is None:
            return
        name = m.group("name")
        have = self.granted.get(name, set())
        if {"pull", "push"} <= have and self._token(scope_string(name, have)):
            return
        actions = have | {"pull", "push"}
        self._fetch_token([scope_string(name, actions)])
        self.granted[name] = actions

    def _mount_token(self, path, query):
        """A cross-repository mount names its source: like docker, ask one
        token for pull,push on the target and pull on the source."""
        m = ROUTE_NAME_RE.match(path)
        source = dict(urllib.parse.parse_qsl(query)).get("from")
        if not m or not source or not path.endswith("/blobs/uploads/"):
            return None
        if self.realm is None:
            self._ping()
        if self.realm is None:
            return None
        name = m.group("name")
        actions = self.granted.get(name, set()) | {"pull", "push"}
        scopes = [scope_string(name, actions)]
        if source != name:
            scopes.append(scope_string(source, {"pull"}))
        return self._token(" ".join(scopes)) or self._fetch_token(scopes)

    def _send(self, send, path, headers, replayable, query=""):
        """send(headers) -> response, with the token flow around it."""
        if self.auth is None or any(k.lower() == "authorization" for k in headers):
            return send(headers)
        if not replayable:
            self._ensure_push_token(path)
        token = self._mount_token(path, query) if "mount=" in query else None
        token = token or self._cached_token(path)
        resp = send(dict(headers, Authorization="Bearer " + token) if token else headers)
        if resp.status_code != 401 or not replayable:
            return resp
        token = self._answer_challenge(resp)
        if token is None:
            return resp
        return send(dict(headers, Authorization="Bearer " + token))

    # ---- requests

    def request(self, method, target, **kw):
        kw.setdefault("allow_redirects", False)
        kw.setdefault("timeout", 60)
        url = self.abs(target)
        headers = dict(kw.pop("headers", None) or {})
        data = kw.get("data")
        replayable = data is None or isinstance(data, (bytes, str, dict, list, tuple))

        def send(h):
            return self.session.request(method, url, headers=h, **kw)

        u = urllib.parse.urlsplit(url)
        query = u.query
        if kw.get("params"):
            query += "&" + urllib.parse.urlencode(kw["params"])
        return self._send(send, u.path, headers, replayable, query)

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

        def send(h):
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
            try:
                conn.request(method, path, body=body, headers=h)
                return RawResponse(conn.getresponse())
            finally:
                conn.close()

        target = urllib.parse.urlsplit(path)
        return self._send(send, target.path, dict(headers or {}), True, target.query)

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
