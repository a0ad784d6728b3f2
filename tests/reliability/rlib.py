"""Shared pieces of the reliability tools (crash test, soak) and of their
pytest forms: a berth daemon that can be killed and restarted on the same
data directory and port, a thin HTTP client with the upload flavours real
clients use, reproducible blob contents, and an integrity check of a data
directory (`berth fsck` when the binary has it, and an independent check in
Python that re-hashes every blob file and cross-checks the SQLite database
read-only).

Python 3 standard library and requests only."""

import hashlib
import http.client
import json
import os
import random
import re
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time

import requests
import urllib3

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DEFAULT_BIN = os.path.join(ROOT, "build", "server", "berth")

# Anonymous callers may do everything: the tools need no credentials.
OPEN_ACCESS = [{"repositories": ["**"], "anonymous": True, "actions": ["*"]}]

MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MANIFEST_ACCEPT = ", ".join([MT_OCI_MANIFEST, MT_OCI_INDEX])

HEX_LEN = {"sha256": 64, "sha512": 128}


def berth_bin():
    return os.environ.get("BERTH_BIN") or DEFAULT_BIN


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Failure(AssertionError):
    """A broken promise found by a tool."""


# ---------------------------------------------------------------- content

def blob_bytes(seed, size):
    """size reproducible pseudo-random bytes for seed: a blob can be checked
    byte for byte later without keeping its bytes in memory."""
    return random.Random(seed).randbytes(size)


def digest_of(data, alg="sha256"):
    return "%s:%s" % (alg, hashlib.new(alg, data).hexdigest())


def to_json(doc):
    return json.dumps(doc, separators=(",", ":")).encode()


def descriptor(media_type, digest, size, **extra):
    d = {"mediaType": media_type, "digest": digest, "size": size}
    d.update(extra)
    return d


def image_manifest(config, layers, annotations=None):
    """OCI image manifest bytes; config and layers are descriptors."""
    doc = {"schemaVersion": 2, "mediaType": MT_OCI_MANIFEST, "config": config, "layers": list(layers)}
    if annotations:
        doc["annotations"] = annotations
    return to_json(doc)


def image_index(manifests, annotations=None):
    doc = {"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": list(manifests)}
    if annotations:
        doc["annotations"] = annotations
    return to_json(doc)


def is_oci_error(resp):
    """True when the body is an OCI error document with at least one code."""
    try:
        doc = resp.json()
    except ValueError:
        return False
    errs = doc.get("errors") if isinstance(doc, dict) else None
    return bool(errs) and all(isinstance(e, dict) and isinstance(e.get("code"), str) for e in errs)


# ---------------------------------------------------------------- daemon

class Daemon:
    """One berth daemon on a fixed loopback port and data directory, which
    can be killed (SIGKILL) and started again on the same port and data.
    start() returns the seconds from spawning the process to the first
    successful /healthz answer."""

    def __init__(self, root, binary=None, port=None, workdir=None, threads=None, extra_config=None):
        self.root = root
        self.bin = binary or berth_bin()
        self.port = port or free_port()
        self.workdir = workdir or os.path.dirname(os.path.abspath(root))
        base = os.path.join(self.workdir, os.path.basename(os.path.abspath(root)))
        self.config_path = base + ".json"
        self.log_path = base + ".log"
        cfg = {"listen": self.host, "root": self.root, "access": OPEN_ACCESS}
        if threads:
            cfg["threads"] = threads
        cfg.update(extra_config or {})
        with open(self.config_path, "w") as f:
            json.dump(cfg, f)
        self.proc = None
        self.log = None
        self.starts = 0

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    @property
    def url(self):
        return "http://" + self.host

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout=20.0):
        if self.alive():
            raise RuntimeError("berth is already running")
        self.log = open(self.log_path, "ab")
        t0 = time.monotonic()
        self.proc = subprocess.Popen([self.bin, "serve", "-c", self.config_path],
                                     stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.starts += 1
        deadline = t0 + timeout
        with requests.Session() as s:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise Failure("berth exited with %d while starting; log:\n%s"
                                  % (self.proc.returncode, self.read_log()))
                try:
                    if s.get(self.url + "/healthz", timeout=2).status_code == 200:
                        return time.monotonic() - t0
                except requests.RequestException:
                    pass
                time.sleep(0.002)
        raise Failure("berth did not answer /healthz within %.0f s; log:\n%s" % (timeout, self.read_log()))

    def kill9(self):
        """SIGKILL and reap. Returns the exit status seen (negative signal)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.kill()
        rc = self.proc.wait()
        self._close_log()
        return rc

    def stop(self, timeout=30):
        """SIGTERM and wait; returns the exit status (SIGKILL after timeout)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self._close_log()
                raise Failure("berth did not stop within %d s of SIGTERM" % timeout)
        self._close_log()
        return self.proc.returncode

    def _close_log(self):
        if self.log:
            self.log.close()
            self.log = None

    def read_log(self, tail=20000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-tail:]
        except OSError:
            return ""

    def sanitizer_reports(self):
        """Lines of the log where a sanitizer reported a problem."""
        text = self.read_log(tail=10 ** 9)
        return [l for l in text.splitlines()
                if "runtime error:" in l or "ERROR: AddressSanitizer" in l or "ERROR: LeakSanitizer" in l]

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def fd_count(self):
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))

    def thread_count(self):
        return len(os.listdir("/proc/%d/task" % self.proc.pid))

    def fd_split(self):
        """(descriptors on the SQLite database files, all others). Each
        thread that touched the database holds its own connection (the file
        and its WAL) for the thread's life: those are bounded by the thread
        count, the others must not grow."""
        db = other = 0
        d = "/proc/%d/fd" % self.proc.pid
        dbpath = os.path.join(self.root, "berth.db")
        for name in os.listdir(d):
            try:
                target = os.readlink(os.path.join(d, name))
            except OSError:
                continue
            if target.startswith(dbpath):
                db += 1
            else:
                other += 1
        return db, other

    def fd_summary(self):
        """What the daemon's open descriptors are: counts by kind."""
        kinds = {}
        d = "/proc/%d/fd" % self.proc.pid
        for name in os.listdir(d):
            try:
                target = os.readlink(os.path.join(d, name))
            except OSError:
                continue
            if target.startswith(self.root):
                target = "data:" + os.path.relpath(target, self.root).split("/")[0]
            elif ":" in target:
                target = target.split(":")[0]
            kinds[target] = kinds.get(target, 0) + 1
        return ", ".join("%s=%d" % kv for kv in sorted(kinds.items()))

    def is_sanitized(self):
        try:
            with open("/proc/%d/maps" % self.proc.pid) as f:
                return "asan" in f.read()
        except OSError:
            return False


def make_workdir(prefix):
    return tempfile.mkdtemp(prefix=prefix)


def remove_tree(path):
    shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------- client

def check_length(resp, got):
    """A body cut short (the server died while sending it) is a transport
    error, not an answer: urllib3 does not enforce Content-Length itself."""
    cl = resp.headers.get("Content-Length")
    if cl is not None and resp.status_code not in (204, 304) and cl.isdigit() and int(cl) != got:
        raise requests.ConnectionError("body of %d bytes cut short at %d" % (int(cl), got))


class Client:
    """A requests session bound to one registry. Transport failures raise
    requests.RequestException; every request is counted."""

    def __init__(self, base, timeout=60):
        self.base = base.rstrip("/")
        self.s = requests.Session()
        self.timeout = timeout
        self.requests = 0

    def close(self):
        self.s.close()

    def url(self, target):
        return target if target.startswith("http") else self.base + target

    def req(self, method, target, **kw):
        kw.setdefault("timeout", self.timeout)
        kw.setdefault("allow_redirects", False)
        self.requests += 1
        try:
            resp = self.s.request(method, self.url(target), **kw)
        except requests.RequestException:
            raise
        except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as e:
            # requests lets these through on chunked (generator) bodies
            raise requests.ConnectionError(e)
        if not kw.get("stream") and method != "HEAD":
            check_length(resp, len(resp.content))
        return resp

    # ---- blobs: the four ways clients send one

    def post_monolithic(self, repo, data, dg):
        """POST /blobs/uploads/?digest= with the whole blob as the body."""
        return self.req("POST", "/v2/%s/blobs/uploads/?digest=%s" % (repo, dg), data=data,
                        headers={"Content-Type": "application/octet-stream"})

    def start_upload(self, repo):
        resp = self.req("POST", "/v2/%s/blobs/uploads/" % repo)
        if resp.status_code != 202 or not resp.headers.get("Location"):
            raise Failure("POST upload: %d %r" % (resp.status_code, resp.content[:300]))
        return resp.headers["Location"]

    def put_final(self, location, dg, data=b""):
        sep = "&" if "?" in location else "?"
        headers = {"Content-Type": "application/octet-stream"}
        return self.req("PUT", location + sep + "digest=" + dg, data=data, headers=headers)

    def patch_stream(self, location, data, rng, piece_min=16 * 1024, piece_max=1024 * 1024):
        """PATCH without Content-Range, sent with chunked transfer encoding
        in pieces of random size (what docker does)."""
        def gen():
            pos = 0
            while pos < len(data):
                n = rng.randint(piece_min, piece_max)
                yield data[pos:pos + n]
                pos += n
        return self.req("PATCH", location, data=gen(), headers={"Content-Type": "application/octet-stream"})

    def patch_range(self, location, data, first):
        """PATCH of data at offset first with Content-Range."""
        headers = {"Content-Type": "application/octet-stream",
                   "Content-Range": "%d-%d" % (first, first + len(data) - 1),
                   "Content-Length": str(len(data))}
        return self.req("PATCH", location, data=data, headers=headers)

    def upload_offset(self, location):
        """Bytes an upload holds (GET status), or None when it is unknown (404)."""
        resp = self.req("GET", location)
        if resp.status_code == 404:
            return None
        if resp.status_code != 204:
            raise Failure("upload status: %d %r" % (resp.status_code, resp.content[:300]))
        m = re.match(r"^0-(\d+)$", resp.headers.get("Range", ""))
        if not m:
            raise Failure("upload status without a Range: %r" % resp.headers.get("Range"))
        end = int(m.group(1))
        return end + 1 if end > 0 else 0

    def get_blob(self, repo, dg, stream=False):
        return self.req("GET", "/v2/%s/blobs/%s" % (repo, dg), stream=stream)

    def head_blob(self, repo, dg):
        return self.req("HEAD", "/v2/%s/blobs/%s" % (repo, dg))

    # ---- manifests

    def put_manifest(self, repo, ref, body, media_type):
        return self.req("PUT", "/v2/%s/manifests/%s" % (repo, ref), data=body,
                        headers={"Content-Type": media_type})

    def get_manifest(self, repo, ref):
        return self.req("GET", "/v2/%s/manifests/%s" % (repo, ref), headers={"Accept": MANIFEST_ACCEPT})

    def delete_manifest(self, repo, ref):
        return self.req("DELETE", "/v2/%s/manifests/%s" % (repo, ref))

    def tags(self, repo):
        """Every tag of repo (following pagination), or [] when unknown."""
        out, target = [], "/v2/%s/tags/list" % repo
        for _ in range(10000):
            resp = self.req("GET", target)
            if resp.status_code == 404:
                return out
            if resp.status_code != 200:
                raise Failure("tags list of %s: %d %r" % (repo, resp.status_code, resp.content[:300]))
            out += resp.json().get("tags") or []
            link = resp.headers.get("Link")
            if not link:
                return out
            m = re.match(r"^<([^>]*)>", link)
            target = m.group(1)
        raise Failure("tag list pagination does not end")


def read_blob_checked(client, repo, dg, expect):
    """GETs a blob and compares it with expect (bytes) without buffering
    twice; returns (status, ok, nbytes)."""
    resp = client.get_blob(repo, dg, stream=True)
    try:
        if resp.status_code != 200:
            resp.content  # drain
            return resp.status_code, False, 0
        h = hashlib.sha256()
        n = 0
        same = True
        try:
            for piece in resp.iter_content(1 << 20):
                if expect is not None and expect[n:n + len(piece)] != piece:
                    same = False
                h.update(piece)
                n += len(piece)
        except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as e:
            raise requests.ConnectionError(e)
        check_length(resp, n)
        ok = n == (len(expect) if expect is not None else n)
        if dg.startswith("sha256:"):
            ok = ok and h.hexdigest() == dg[7:]
        return 200, ok and same, n
    finally:
        resp.close()


# ---------------------------------------------------------------- integrity

def fsck_available(binary=None):
    """True when the berth binary has an `fsck` command."""
    try:
        p = subprocess.run([binary or berth_bin(), "help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return re.search(rb"^\s+fsck\b", p.stdout, re.M) is not None


def run_fsck(config_path, binary=None, timeout=600):
    """Runs `berth fsck -c CONFIG`; returns (exit status, output)."""
    p = subprocess.run([binary or berth_bin(), "fsck", "-c", config_path], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace")


class HashCache:
    """Blob files already verified, by (path, inode, size, mtime): blob files
    are never modified in place, so a file seen intact stays intact unless
    it is replaced, which changes its inode or times."""

    def __init__(self):
        self.seen = set()


def check_data_dir(root, cache=None, allow_tmp=True):
    """Checks a berth data directory without the daemon's help.

    Returns (problems, stats): problems is a list of strings (empty when
    clean). Checked: every file under blobs/ sits at blobs/<alg>/<2 hex>/<hex>
    and hashes to its name, and so does every content row of the database
    (manifests' bytes); the database passes integrity_check and
    foreign_key_check; every linked blob has its file with the recorded
    size; every manifest row has its file with its size; every tag points
    at a manifest of its repository; every manifest reference row belongs
    to a manifest. Orphan blob files (content stored, metadata not
    committed: a crash between the two) and upload rows whose file is gone
    (a crash between moving the upload into place and the commit) are
    allowed and counted in stats; they are garbage, not damage."""
    problems = []
    stats = {"files": 0, "bytes_hashed": 0, "orphan_files": 0, "upload_rows_without_file": 0,
             "upload_files": 0, "tmp_files": 0}
    files = {}  # digest -> size
    blobs_dir = os.path.join(root, "blobs")
    for alg in sorted(os.listdir(blobs_dir)) if os.path.isdir(blobs_dir) else []:
        adir = os.path.join(blobs_dir, alg)
        if alg not in HEX_LEN or not os.path.isdir(adir):
            problems.append("unexpected entry blobs/%s" % alg)
            continue
        for fan in sorted(os.listdir(adir)):
            fdir = os.path.join(adir, fan)
            if not re.fullmatch(r"[0-9a-f]{2}", fan) or not os.path.isdir(fdir):
                problems.append("unexpected entry blobs/%s/%s" % (alg, fan))
                continue
            for name in os.listdir(fdir):
                path = os.path.join(fdir, name)
                rel = "blobs/%s/%s/%s" % (alg, fan, name)
                st = os.lstat(path)
                if not re.fullmatch(r"[0-9a-f]{%d}" % HEX_LEN[alg], name) or name[:2] != fan:
                    problems.append("stray file %s (%d bytes)" % (rel, st.st_size))
                    continue
                stats["files"] += 1
                files["%s:%s" % (alg, name)] = st.st_size
                key = (path, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
                if cache is not None and key in cache.seen:
                    continue
                h = hashlib.new(alg)
                with open(path, "rb") as f:
                    while True:
                        piece = f.read(1 << 20)
                        if not piece:
                            break
                        h.update(piece)
                stats["bytes_hashed"] += st.st_size
                if h.hexdigest() != name:
                    problems.append("%s does not hash to its name (%d bytes): partial or corrupt blob"
                                    % (rel, st.st_size))
                elif cache is not None:
                    cache.seen.add(key)
    updir = os.path.join(root, "uploads")
    upload_files = set()
    if os.path.isdir(updir):
        for name in os.listdir(updir):
            if name.startswith("tmp-"):
                stats["tmp_files"] += 1
                if not allow_tmp:
                    problems.append("temporary file uploads/%s left behind" % name)
            else:
                upload_files.add(name)
        stats["upload_files"] = len(upload_files)

    db = os.path.join(root, "berth.db")
    if not os.path.exists(db):
        problems.append("berth.db is missing")
        return problems, stats
    conn = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)
    try:
        conn.execute("PRAGMA query_only = 1")
        res = [r[0] for r in conn.execute("PRAGMA integrity_check")]
        if res != ["ok"]:
            problems.append("sqlite integrity_check: %s" % "; ".join(res[:5]))
        fk = conn.execute("PRAGMA foreign_key_check").fetchall()
        if fk:
            problems.append("sqlite foreign_key_check: %d violations, first %r" % (len(fk), fk[0]))
        # Since schema 3 manifests keep their bytes in the database: they
        # count as the blob's content, and must hash to its digest too.
        has_content = conn.execute("SELECT count(*) FROM sqlite_schema"
                                   " WHERE name = 'blob_content'").fetchone()[0]
        for dg, content in conn.execute("SELECT digest, content FROM blob_content") if has_content else []:
            alg, _, hexd = dg.partition(":")
            stats["db_contents"] = stats.get("db_contents", 0) + 1
            if alg not in HEX_LEN or hashlib.new(alg, content).hexdigest() != hexd:
                problems.append("content of %s in the database does not hash to its digest (%d bytes)"
                                % (dg, len(content)))
            elif dg in files and files[dg] != len(content):
                problems.append("%s: file has %d bytes, database content %d" % (dg, files[dg], len(content)))
            files[dg] = len(content)
        blob_rows = dict(conn.execute("SELECT digest, size FROM blobs"))
        for dg, in conn.execute("SELECT DISTINCT digest FROM blob_links"):
            if dg not in blob_rows:
                problems.append("link to %s without a blob row" % dg)
            elif dg not in files:
                problems.append("linked blob %s has no file and no content in the database" % dg)
            elif files[dg] != blob_rows[dg]:
                problems.append("linked blob %s: file has %d bytes, database says %d"
                                % (dg, files[dg], blob_rows[dg]))
        for repo, dg, size in conn.execute(
                "SELECT r.name, m.digest, m.size FROM manifests m JOIN repos r ON r.id = m.repo_id"):
            if dg not in files:
                problems.append("manifest %s@%s has no file and no content in the database" % (repo, dg))
            elif files[dg] != size:
                problems.append("manifest %s@%s: file has %d bytes, database says %d"
                                % (repo, dg, files[dg], size))
        for repo, tag, dg in conn.execute(
                "SELECT r.name, t.name, t.digest FROM tags t JOIN repos r ON r.id = t.repo_id"
                " WHERE NOT EXISTS (SELECT 1 FROM manifests m"
                "  WHERE m.repo_id = t.repo_id AND m.digest = t.digest)"):
            problems.append("tag %s:%s points at %s, which is no manifest of the repository" % (repo, tag, dg))
        n = conn.execute("SELECT count(*) FROM manifest_refs f WHERE NOT EXISTS (SELECT 1 FROM manifests m"
                         " WHERE m.repo_id = f.repo_id AND m.digest = f.manifest)").fetchone()[0]
        if n:
            problems.append("%d manifest references without their manifest" % n)
        linked = {r[0] for r in conn.execute("SELECT DISTINCT digest FROM blob_links")}
        manifests = {r[0] for r in conn.execute("SELECT DISTINCT digest FROM manifests")}
        stats["orphan_files"] = sum(1 for d in files if d not in linked and d not in manifests)
        rows = {r[0] for r in conn.execute("SELECT id FROM uploads")}
        stats["upload_rows_without_file"] = len(rows - upload_files)
        stats["blob_rows"] = len(blob_rows)
        stats["manifest_rows"] = conn.execute("SELECT count(*) FROM manifests").fetchone()[0]
        stats["tag_rows"] = conn.execute("SELECT count(*) FROM tags").fetchone()[0]
    finally:
        conn.close()
    return problems, stats


def integrity(daemon, cache=None, use_fsck=True, allow_tmp=True):
    """The Python check, plus `berth fsck` when the binary has it (only while
    the daemon is not running is fsck's view stable; it is run either way,
    the CLI being documented as safe next to a running daemon).
    Returns a list of problems."""
    problems, _ = check_data_dir(daemon.root, cache, allow_tmp=allow_tmp)
    if use_fsck and fsck_available(daemon.bin):
        rc, out = run_fsck(daemon.config_path, daemon.bin)
        if rc != 0:
            problems.append("berth fsck exited %d:\n%s" % (rc, out[-4000:]))
    return problems
