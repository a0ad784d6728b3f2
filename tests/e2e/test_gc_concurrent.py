"""Garbage collection while the registry serves traffic: threads push new
images (some reusing the very bytes of images being collected) and pull
every tagged image in a loop, while `berth gc --dry-run` and then `berth
gc` run. Afterwards no request failed, every tagged image (old and new) is
pullable with all its layers byte-exact, the garbage is gone, and `berth
fsck` is clean.

The garbage is made old by the test clock (a test build's hook), not by
waiting: the daemon's clock is moved an hour ahead after the garbage is
made, and `berth gc` runs with the same offset. The grace period is cut to
a few seconds with the hidden `--grace` flag (the config's minimum is a
minute): long enough for any push of these small images, and it keeps the
collector's wait for pushes in flight (the settle time) short."""

import threading
import time

import pytest

import ocihelp as oh
from gchelp import disk_usage, gc_config, gone, has_blob_file, pull_ok, run_fsck, run_gc

GRACE_S = 5
# How far the clock moves between the garbage and the traffic.
AGE_S = 3600
REPO = "gc/busy"


@pytest.fixture
def busy(make_berth):
    b = make_berth(config=gc_config(grace="1m")).start()
    yield b


class Traffic:
    """Pushers and pullers against one registry until stop() is called."""

    def __init__(self, url, tagged, recycled):
        self.url = url
        self.tagged = tagged        # tag -> Image, shared and growing
        self.recycled = recycled    # images whose bytes are being collected: pushed again under new tags
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.errors = []
        self.pushes = self.pulls = 0
        self.threads = []

    def _guard(self, fn):
        def run():
            reg = oh.Registry(self.url)
            try:
                while not self.stopping.is_set():
                    fn(reg)
            except Exception as e:  # reported by the test
                self.errors.append("%s: %r" % (fn.__name__, e))
            finally:
                reg.close()
        return run

    def push(self, reg):
        with self.lock:
            n = self.pushes
            self.pushes += 1
        tag = "new-%d" % n
        if n % 2 and self.recycled:
            old = self.recycled[n % len(self.recycled)]
            reg.push_blobs(REPO, old.config, *old.layers)
            body = oh.oci_manifest(oh.descriptor(oh.MT_OCI_CONFIG, old.config),
                                   [oh.descriptor(oh.MT_OCI_LAYER, l) for l in old.layers],
                                   annotations={"n": str(n)})
            reg.push_manifest(REPO, tag, body, oh.MT_OCI_MANIFEST)
            img = oh.Image(body, oh.MT_OCI_MANIFEST, old.config, old.layers)
        else:
            img = reg.push_image(REPO, tag, layer_size=8192)
        with self.lock:
            self.tagged[tag] = img

    def pull(self, reg):
        with self.lock:
            items = list(self.tagged.items())
        for tag, img in items:
            pull_ok(reg, REPO, tag, img)
            with self.lock:
                self.pulls += 1

    def start(self, pushers=2, pullers=2):
        for fn, n in ((self.push, pushers), (self.pull, pullers)):
            for _ in range(n):
                t = threading.Thread(target=self._guard(fn), daemon=True)
                t.start()
                self.threads.append(t)

    def wait(self, pushes, pulls):
        """Until the traffic made at least this many more pushes and pulls (or failed)."""
        with self.lock:
            want = (self.pushes + pushes, self.pulls + pulls)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not self.errors:
            with self.lock:
                if self.pushes >= want[0] and self.pulls >= want[1]:
                    return
            time.sleep(0.02)

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=60)


def test_gc_while_pushing_and_pulling(busy):
    reg = oh.Registry(busy.url)
    tagged = {"keep-%d" % i: reg.push_image(REPO, "keep-%d" % i, layer_size=16384) for i in range(3)}
    garbage = [reg.push_image(REPO, None, layer_size=16384) for _ in range(3)]
    deleted = reg.push_image(REPO, "doomed", layer_size=16384)
    assert reg.delete("/v2/%s/manifests/%s" % (REPO, deleted.digest)).status_code == 202
    garbage.append(deleted)
    busy.advance_clock(AGE_S)
    used = disk_usage(busy)

    traffic = Traffic(busy.url, dict(tagged), garbage[:2])
    traffic.start()
    try:
        traffic.wait(2, 5)
        dry = run_gc(busy, "--dry-run", grace="%ds" % GRACE_S, clock=AGE_S)
        assert dry["manifests"] >= 3, dry
        real = run_gc(busy, grace="%ds" % GRACE_S, clock=AGE_S)
        assert real["manifests"] >= 3 and real["blobs"] >= 1, real
        second = run_gc(busy, grace="%ds" % GRACE_S, clock=AGE_S)
        traffic.wait(2, 5)
    finally:
        traffic.stop()
    assert not traffic.errors, "\n".join(traffic.errors)
    assert traffic.pushes >= 4 and traffic.pulls >= 10, (traffic.pushes, traffic.pulls)

    final = dict(traffic.tagged)
    for tag, img in final.items():
        pull_ok(reg, REPO, tag, img)
    # what was not pushed again is gone, files and all
    for img in garbage[2:]:
        assert gone(reg, REPO, img.digest)
        assert not any(has_blob_file(busy, oh.digest(l)) for l in img.layers)
    for img in garbage[:2]:
        assert gone(reg, REPO, img.digest)
    assert real["bytes_freed"] + second["bytes_freed"] > 0
    run_fsck(busy, clock=AGE_S)
    assert disk_usage(busy) < used + sum(len(l) + len(img.config) + len(img.body)
                                         for img in final.values() if img not in tagged.values() for l in img.layers)
    reg.close()
