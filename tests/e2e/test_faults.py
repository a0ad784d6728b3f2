"""Storage fault injection (common/fault.h, docs/reliability.md): for each
write path (blob push in two flavours, manifest push, tag move, tag,
manifest and blob deletes, garbage collection) the Nth storage step (a
write, truncate, fsync, rename, link or unlink, or a SQLite write, sync or
truncate) fails, for N = 1, 2, ... until the operation no longer reaches
step N. After every fault:

- a request that failed answered a 5xx with an OCI error document;
- the same daemon keeps serving: everything acknowledged so far reads back
  byte for byte, and the failed operation succeeds when it is tried again;
- the daemon then stops cleanly (exit status 0, so no sanitizer report),
  `berth fsck` finds the data directory consistent, and after the restart
  everything acknowledged is there byte for byte; what was not
  acknowledged is either absent or whole (a visible blob hashes to its
  digest, a visible manifest has the pushed bytes, a tag points at one of
  the manifests it may point at).

Needs a build with -Dtest_hooks=true (skipped otherwise). The CI form fails
each step once with EIO; FAULT_SWEEP=long (tests/reliability/faults) also
fails every step from N on (a disk that died) and fails with ENOSPC."""

import hashlib
import json
import os
import subprocess

import pytest
import requests

import ocihelp as oh
from conftest import BERTH_BIN
from gchelp import gc_config, run_fsck

LONG = os.environ.get("FAULT_SWEEP") == "long"
# No path of berth takes more steps than this; a sweep that gets here is a test bug.
MAX_STEPS = 80
# The CI form stops, checks and restarts the daemon after every RESTART_EVERY-th fault (and at the end).
RESTART_EVERY = 1 if LONG else 6
MODES = [("EIO", False)] + ([("EIO", True), ("ENOSPC", False)] if LONG else [])
ABSENT = None


def arm(b, at, persist=False, err="EIO"):
    """Arms the daemon's fault injection (at=0: count only); returns what the previous arming saw."""
    resp = requests.post(b.url + "/_berth/test/fault", timeout=30,
                         params={"at": str(at), "persist": "1" if persist else "0", "errno": err})
    if resp.status_code == 404:
        pytest.skip("berth was built without -Dtest_hooks=true")
    assert resp.status_code == 200, resp.text[:300]
    return resp.json()


class Truth:
    """What each object may be after everything so far: key -> set of allowed
    values (ABSENT for not there). An acknowledged operation fixes one value;
    one that failed leaves the old and the new value possible."""

    def __init__(self):
        self.allowed = {}
        self.recent = set()    # keys changed since the last check
        self.unsettled = set()  # keys changed since the last check after a restart

    def ack(self, key, value):
        self.allowed[key] = {value}
        self.recent.add(key)
        self.unsettled.add(key)

    def maybe(self, key, value):
        self.allowed.setdefault(key, {ABSENT}).add(value)
        self.recent.add(key)
        self.unsettled.add(key)

    def settle(self, key, value):
        """Seen with this value: from now on it is the only one."""
        self.allowed[key] = {value}

    def check(self, reg, settle=False, recent=False):
        """Reads back the objects changed since the last check (recent), or
        since the last settling check (settle), or all of them; a settling
        check fixes what it saw as the only possible value from then on."""
        keys = self.recent if recent else self.unsettled if settle else self.allowed
        items = sorted(((k, self.allowed[k]) for k in keys), key=lambda kv: repr(kv[0]))
        self.recent = set()
        if settle:
            self.unsettled = set()
        for key, allowed in items:
            kind, repo, ref = key
            if kind == "blob":
                r = reg.get("/v2/%s/blobs/%s" % (repo, ref))
                got = r.content if r.status_code == 200 else ABSENT
                if got is not ABSENT:
                    assert oh.digest(got) == ref, "blob %s of %s: partial or wrong bytes" % (ref, repo)
            else:
                r = reg.get_manifest(repo, ref)
                got = r.content if r.status_code == 200 else ABSENT
                if kind == "tag" and got is not ABSENT:
                    got = oh.digest(got)
            assert r.status_code in (200, 404), "%s %s:%s: %d %r" % (kind, repo, ref, r.status_code, r.content[:200])
            assert got in allowed, "%s %s:%s is %s, may be only %s" % (
                kind, repo, ref, short(got), ", ".join(sorted(short(v) for v in allowed)))
            if settle:
                self.settle(key, got)


def short(v):
    if v is ABSENT:
        return "absent"
    if isinstance(v, bytes):
        return "%d bytes %s" % (len(v), hashlib.sha256(v).hexdigest()[:12])
    return str(v)[:19]


def failed_properly(resp):
    assert resp.status_code >= 500, "failed step answered %d %r" % (resp.status_code, resp.content[:300])
    assert oh.error_codes(resp), "no OCI error document: %r" % resp.content[:300]


# ---------------------------------------------------------------- the operations
#
# Each runs one client operation whose storage steps are being counted and
# returns (acknowledged, keys): it records in truth what may be true now.

def push_blob_monolithic(reg, truth, repo, n):
    data = oh.random_blob(4096 + n)
    d = oh.digest(data)
    resp = reg.post(reg.with_query("/v2/%s/blobs/uploads/" % repo, digest=d), data=data,
                    headers={"Content-Type": "application/octet-stream"})
    return record_blob(truth, repo, d, data, resp, 201)


def push_blob_chunked(reg, truth, repo, n):
    """POST, two PATCHes, then the PUT with a last piece: every upload step."""
    data = oh.random_blob(3 * 50000 + n)
    d = oh.digest(data)
    resp = reg.post("/v2/%s/blobs/uploads/" % repo)
    if resp.status_code == 202:
        loc = resp.headers["Location"]
        for i in range(2):
            resp = reg.patch(loc, data=data[i * 50000:(i + 1) * 50000],
                             headers={"Content-Type": "application/octet-stream",
                                      "Content-Range": "%d-%d" % (i * 50000, (i + 1) * 50000 - 1)})
            if resp.status_code != 202:
                break
            loc = resp.headers["Location"]
        else:
            resp = reg.put(reg.with_query(loc, digest=d), data=data[100000:],
                           headers={"Content-Type": "application/octet-stream"})
    return record_blob(truth, repo, d, data, resp, 201)


def record_blob(truth, repo, d, data, resp, ok):
    key = ("blob", repo, d)
    if resp.status_code == ok:
        truth.ack(key, data)
        return True
    failed_properly(resp)
    truth.maybe(key, data)
    return False


def new_image(reg, truth, repo, n):
    """Config and layer pushed (no fault armed); returns the manifest's bytes."""
    config = oh.image_config("fault %d" % n)
    layer = oh.random_blob(2048 + n)
    for blob in (config, layer):
        truth.ack(("blob", repo, reg.push_blob(repo, blob)), blob)
    return oh.oci_manifest(oh.descriptor(oh.MT_OCI_CONFIG, config), [oh.descriptor(oh.MT_OCI_LAYER, layer)])


def push_manifest(reg, truth, repo, n, prep):
    body, tag = prep
    resp = reg.put_manifest(repo, tag, body, oh.MT_OCI_MANIFEST)
    d = oh.digest(body)
    if resp.status_code == 201:
        truth.ack(("manifest", repo, d), body)
        truth.ack(("tag", repo, tag), d)
        return True
    failed_properly(resp)
    truth.maybe(("manifest", repo, d), body)
    truth.maybe(("tag", repo, tag), d)
    return False


def prep_manifest(reg, truth, repo, n):
    return new_image(reg, truth, repo, n), "t%d" % n


def prep_tag_move(reg, truth, repo, n):
    """Tag t<n> on manifest A, manifest B pushed by digest: the operation moves t<n> to B."""
    a, b = new_image(reg, truth, repo, 2 * n), new_image(reg, truth, repo, 2 * n + 1)
    tag = "t%d" % n
    reg.push_manifest(repo, tag, a, oh.MT_OCI_MANIFEST)
    reg.push_manifest(repo, oh.digest(b), b, oh.MT_OCI_MANIFEST)
    truth.ack(("manifest", repo, oh.digest(a)), a)
    truth.ack(("manifest", repo, oh.digest(b)), b)
    truth.ack(("tag", repo, tag), oh.digest(a))
    return b, tag


def prep_tagged(reg, truth, repo, n):
    body = new_image(reg, truth, repo, n)
    tag = "t%d" % n
    reg.push_manifest(repo, tag, body, oh.MT_OCI_MANIFEST)
    truth.ack(("manifest", repo, oh.digest(body)), body)
    truth.ack(("tag", repo, tag), oh.digest(body))
    return body, tag


def delete_tag(reg, truth, repo, n, prep):
    body, tag = prep
    resp = reg.delete("/v2/%s/manifests/%s" % (repo, tag))
    key = ("tag", repo, tag)
    if resp.status_code == 202:
        truth.ack(key, ABSENT)
        return True
    failed_properly(resp)
    truth.maybe(key, ABSENT)
    return False


def delete_manifest(reg, truth, repo, n, prep):
    body, tag = prep
    d = oh.digest(body)
    resp = reg.delete("/v2/%s/manifests/%s" % (repo, d))
    if resp.status_code == 202:
        truth.ack(("manifest", repo, d), ABSENT)
        truth.ack(("tag", repo, tag), ABSENT)
        return True
    failed_properly(resp)
    truth.maybe(("manifest", repo, d), ABSENT)
    truth.maybe(("tag", repo, tag), ABSENT)
    return False


def prep_blob(reg, truth, repo, n):
    data = oh.random_blob(1000 + n)
    d = reg.push_blob(repo, data)
    truth.ack(("blob", repo, d), data)
    return data, d


def delete_blob(reg, truth, repo, n, prep):
    data, d = prep
    resp = reg.delete("/v2/%s/blobs/%s" % (repo, d))
    if resp.status_code == 202:
        truth.ack(("blob", repo, d), ABSENT)
        return True
    failed_properly(resp)
    truth.maybe(("blob", repo, d), ABSENT)
    return False


# name -> (prepare (no fault armed) or None, operation)
PATHS = {
    "push-monolithic": (None, lambda reg, t, repo, n, prep: push_blob_monolithic(reg, t, repo, n)),
    "push-chunked": (None, lambda reg, t, repo, n, prep: push_blob_chunked(reg, t, repo, n)),
    "manifest": (prep_manifest, push_manifest),
    "tag-move": (prep_tag_move, push_manifest),
    "tag-delete": (prep_tagged, delete_tag),
    "manifest-delete": (prep_tagged, delete_manifest),
    "blob-delete": (prep_blob, delete_blob),
}


def restart_and_check(b, reg, truth):
    b.stop()
    run_fsck(b)
    b.start(b.port)
    truth.check(reg, settle=True)


def start(make_berth, **kw):
    """A daemon whose syncs are skipped: a process crash cannot tell them
    apart (docs/reliability.md), and the injected faults still hit them."""
    return make_berth(env={"BERTH_TEST_NO_FSYNC": "1"}, **kw).start()


@pytest.mark.parametrize("err,persist", MODES, ids=["%s%s" % (e, "-persist" if p else "") for e, p in MODES])
@pytest.mark.parametrize("path", list(PATHS))
def test_fault_sweep(make_berth, path, err, persist):
    b = start(make_berth)
    reg = oh.Registry(b.url)
    truth = Truth()
    repo = "faults/" + path
    prepare, operate = PATHS[path]
    arm(b, 0)
    fired = 0
    for n in range(1, MAX_STEPS + 1):
        prep = prepare(reg, truth, repo, n) if prepare else None
        arm(b, n, persist, err)
        ok = operate(reg, truth, repo, n, prep)
        seen = arm(b, 0)
        if not seen["failed_at"]:
            assert ok, "%s: no fault, yet the operation failed" % path
            break
        fired += 1
        # the same daemon goes on: what changed stands, and the operation works again
        truth.check(reg, recent=True)
        prep = prepare(reg, truth, repo, 1000 + n) if prepare else None
        assert operate(reg, truth, repo, 1000 + n, prep), "%s: the operation fails after a fault at step %d (%s)" % (
            path, n, seen["kind"])
        if fired % RESTART_EVERY == 0:
            restart_and_check(b, reg, truth)
    else:
        pytest.fail("%s: still failing at step %d" % (path, MAX_STEPS))
    restart_and_check(b, reg, truth)
    truth.check(reg)
    assert fired >= 2, "%s: only %d steps counted" % (path, fired)
    print("%s (%s%s): %d steps, each failed once" % (path, err, ", persistent" if persist else "", fired))
    reg.close()


# ---------------------------------------------------------------- garbage collection

def cli_with_fault(b, at, persist, err, *args):
    """`berth ARGS -c CONFIG` with BERTH_TEST_FAULT: (exit status, stderr, failed step or 0)."""
    env = dict(b.env, BERTH_TEST_FAULT="%d%s:%s" % (at, "+" if persist else "", err))
    p = subprocess.run([BERTH_BIN] + list(args) + ["-c", b.config_path or b.write_config()], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    text = p.stderr.decode(errors="replace")
    line = [l for l in text.splitlines() if l.startswith("berth: test fault: ")]
    assert line, "no fault report (a build without -Dtest_hooks?): %s" % text[-500:]
    failed = int(line[-1].split()[4]) if " failed" in line[-1] else 0
    return p.returncode, text, failed


def collect_and_check(b, reg, truth, garbage, what):
    """Restarts and checks, then a run without a fault collects all the garbage."""
    restart_and_check(b, reg, truth)
    rc, text, _ = cli_with_fault(b, 0, False, "EIO", "gc", "--json", "--grace", "0s")
    assert rc == 0, "%s: %s" % (what, text)
    for key in garbage:
        truth.ack(key, ABSENT)
    truth.check(reg, recent=True)


@pytest.mark.parametrize("err,persist", MODES, ids=["%s%s" % (e, "-persist" if p else "") for e, p in MODES])
def test_fault_sweep_gc(make_berth, err, persist):
    """`berth gc` (against the running daemon) with its Nth step failing:
    it fails cleanly, nothing kept is lost, and the next run collects."""
    b = start(make_berth, config=gc_config())
    reg = oh.Registry(b.url)
    arm(b, 0)
    truth = Truth()
    repo = "faults/gc"
    fired = 0
    garbage = []
    for n in range(1, MAX_STEPS + 1):
        prep_tagged(reg, truth, repo, 2 * n)
        body, tag = prep_tagged(reg, truth, repo, 2 * n + 1)
        assert reg.delete("/v2/%s/manifests/%s" % (repo, oh.digest(body))).status_code == 202
        truth.ack(("tag", repo, tag), ABSENT)
        truth.ack(("manifest", repo, oh.digest(body)), ABSENT)
        doc = json.loads(body)
        for desc in [doc["config"]] + doc["layers"]:
            truth.maybe(("blob", repo, desc["digest"]), ABSENT)  # garbage now: a run may collect it
        garbage += [("blob", repo, desc["digest"]) for desc in [doc["config"]] + doc["layers"]]
        stale = reg.start_upload(repo).headers["Location"]
        rc, text, failed = cli_with_fault(b, n, persist, err, "gc", "--json", "--grace", "0s")
        if not failed:
            assert rc == 0, text
            break
        fired += 1
        truth.check(reg, recent=True)
        if fired % RESTART_EVERY == 0:
            collect_and_check(b, reg, truth, garbage, "gc after a fault at step %d" % n)
        assert reg.get(stale).status_code in (204, 404)
    else:
        pytest.fail("gc: still failing at step %d" % MAX_STEPS)
    collect_and_check(b, reg, truth, garbage, "gc at the end")
    truth.check(reg)
    assert fired >= 2, "gc: only %d steps counted" % fired
    print("gc (%s%s): %d steps, each failed once" % (err, ", persistent" if persist else "", fired))
    reg.close()
