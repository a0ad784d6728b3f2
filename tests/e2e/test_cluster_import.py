"""`berth import` on the cluster shape (two nodes on Swift + PostgreSQL): a
docker save tarball and an OCI layout tarball (an index of two images)
imported from the command line with the nodes' config file, then pulled
byte-exact from both nodes; a layer above the part size goes to the store
in parts and is completed in place. Importing again stores nothing new. An
object at a blob's key that no metadata record names (an orphan, here with
the wrong bytes) is not trusted: the import stores the blob again. A failed
import leaves no tag, no repository, no upload object and no multipart
upload behind, and fsck --verify finds the store clean."""

import io
import json
import re
import tarfile

import pytest

from clusterhelp import running_cluster, shared_engines
from ocihelp import (MT_OCI_INDEX, MT_OCI_MANIFEST, Registry, descriptor, digest, image_config, oci_index,
                     oci_manifest, random_blob, to_json)
from test_cluster_gc import Bucket, digest_key, location, psql

MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
MT_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
BIG = 9 * 1024 * 1024  # above the 8 MiB part size: a multipart upload completed in place


@pytest.fixture(scope="module")
def cluster():
    with running_cluster(shared_engines(), n=2) as c:
        yield c


def tar_bytes(entries):
    """A tar archive of (name, bytes) entries, in that order."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1700000000
            t.addfile(info, io.BytesIO(data))
    return out.getvalue()


def layer_tar(name, size):
    """An uncompressed layer: a tar holding one file of size random bytes."""
    return tar_bytes([(name, random_blob(size))])


def docker_save(layers):
    """What `docker save` writes for one image (legacy layout): manifest.json, the config
    named by its digest, each layer as <id>/layer.tar. Returns (archive, config)."""
    config = to_json({"architecture": "amd64", "os": "linux", "config": {},
                      "rootfs": {"type": "layers", "diff_ids": [digest(l) for l in layers]}})
    entries = [(digest(config).split(":")[1] + ".json", config)]
    names = []
    for i, l in enumerate(layers):
        names.append("%02d%s/layer.tar" % (i, digest(l).split(":")[1][:30]))
        entries.append((names[-1], l))
    entries.append(("manifest.json", to_json([{"Config": entries[0][0], "RepoTags": ["app:1"],
                                               "Layers": names}])))
    return tar_bytes(entries), config


def blob_name(data):
    return "blobs/sha256/" + digest(data).split(":")[1]


def oci_layout(blobs, top, media_type=MT_OCI_MANIFEST):
    """An OCI layout (oci-layout, blobs/sha256/..., index.json naming top) as tar entries."""
    entries = [("oci-layout", to_json({"imageLayoutVersion": "1.0.0"}))]
    entries += [(blob_name(b), b) for b in blobs]
    entries.append(("index.json", oci_index([descriptor(media_type, top)])))
    return entries


def berth_import(cluster, ref, path, ok=True):
    """`berth import` with the nodes' config file, from the command line; (status, stdout, stderr)."""
    p = cluster.nodes[0].cli("import", ref, str(path), check=False)
    out, err = p.stdout.decode(), p.stderr.decode()
    if ok:
        assert p.returncode == 0, "status %d\n%s%s" % (p.returncode, out, err)
    return p.returncode, out, err


def imported_digest(out, ref):
    m = re.search(r"^%s -> (sha256:[0-9a-f]{64}) " % re.escape(ref), out, re.M)
    assert m, out
    return m.group(1)


def statuses(out):
    """{digest: "new" | "stored"} of the items the import printed."""
    return {m.group(1): m.group(2) for m in re.finditer(r"^  \S+ +(sha256:[0-9a-f]{64}) +\d+ (new|stored)", out,
                                                        re.M)}


def pull(reg, repo, ref, accept):
    r = reg.get("/v2/%s/manifests/%s" % (repo, ref), headers={"Accept": accept})
    assert r.status_code == 200, (reg.base, repo, ref, r.status_code, r.text)
    assert r.headers["Docker-Content-Digest"] == digest(r.content)
    return r.content


def assert_blobs(reg, repo, blobs):
    for b in blobs:
        r = reg.get("/v2/%s/blobs/%s" % (repo, digest(b)))
        assert r.status_code == 200 and r.content == b, (reg.base, repo, digest(b), r.status_code)


def fsck_clean(cluster):
    p = cluster.nodes[1].cli("fsck", "--json", "--verify", check=False)
    rep = json.loads(p.stdout.decode())
    assert p.returncode == 0 and rep["ok"], rep


def nodes(cluster):
    return [Registry(b.url) for b in cluster.nodes]


def test_import_docker_save_then_pull_from_both_nodes(cluster, tmp_path):
    layers = [layer_tar("small", 3000), layer_tar("big", BIG)]
    archive, config = docker_save(layers)
    path = tmp_path / "save.tar"
    path.write_bytes(archive)
    _, out, _ = berth_import(cluster, "imp/docker:v1", path)
    top = imported_digest(out, "imp/docker:v1")
    assert set(statuses(out).values()) == {"new"}, out
    for reg in nodes(cluster):
        m = json.loads(pull(reg, "imp/docker", "v1", MT_DOCKER_MANIFEST))
        assert m["mediaType"] == MT_DOCKER_MANIFEST and m["config"]["digest"] == digest(config)
        assert [(l["mediaType"], l["digest"]) for l in m["layers"]] == [(MT_DOCKER_LAYER_TAR, digest(l))
                                                                         for l in layers]
        assert digest(pull(reg, "imp/docker", top, MT_DOCKER_MANIFEST)) == top
        assert_blobs(reg, "imp/docker", [config] + layers)
    # the big layer went in parts and was completed where its parts are
    assert location(cluster, digest(layers[1])).startswith("blobs/uploaded/")
    assert location(cluster, digest(layers[0])) == digest_key(digest(layers[0]))

    # again: everything is recorded already, the tag stays
    _, out, _ = berth_import(cluster, "imp/docker:v1", path)
    assert imported_digest(out, "imp/docker:v1") == top and "tag unchanged" in out, out
    assert set(statuses(out).values()) == {"stored"}, out
    assert not [k for k in Bucket(cluster).keys() if k.startswith("uploads/")]
    fsck_clean(cluster)


def test_import_oci_layout_tar_then_pull_from_both_nodes(cluster, tmp_path):
    shared = layer_tar("shared", 2000)
    amd = [image_config("amd64"), shared, random_blob(BIG + 5)]
    arm = [image_config("arm64"), shared, random_blob(700)]
    mans = [oci_manifest(descriptor("application/vnd.oci.image.config.v1+json", c),
                         [descriptor(MT_OCI_LAYER, l) for l in ls]) for c, *ls in (amd, arm)]
    index = oci_index([descriptor(MT_OCI_MANIFEST, m, platform={"architecture": a, "os": "linux"})
                       for m, a in zip(mans, ("amd64", "arm64"))])
    path = tmp_path / "layout.tar"
    path.write_bytes(tar_bytes(oci_layout(amd + arm[:1] + arm[2:] + mans + [index], index, MT_OCI_INDEX)))
    _, out, _ = berth_import(cluster, "imp/oci:v1", path)
    assert imported_digest(out, "imp/oci:v1") == digest(index), out
    for reg in nodes(cluster):
        assert pull(reg, "imp/oci", "v1", MT_OCI_INDEX) == index
        for m in mans:
            assert pull(reg, "imp/oci", digest(m), MT_OCI_MANIFEST) == m
        assert_blobs(reg, "imp/oci", amd + arm)
    # the manifests' bytes are in the database: their objects went, and a second import
    # finds everything stored
    keys = Bucket(cluster).keys()
    assert not [m for m in mans + [index] if digest_key(digest(m)) in keys]
    _, out, _ = berth_import(cluster, "imp/oci:v1", path)
    assert set(statuses(out).values()) == {"stored"}, out
    fsck_clean(cluster)


def test_an_object_without_a_record_is_not_trusted(cluster, tmp_path):
    """A layout directory's blob whose key holds an orphan object (here with other bytes)
    is stored again from the layout, not taken as it is."""
    bucket = Bucket(cluster)
    layer = layer_tar("orphaned", 1500)
    config = image_config("orphan")
    man = oci_manifest(descriptor("application/vnd.oci.image.config.v1+json", config),
                       [descriptor(MT_OCI_LAYER, layer)])
    bucket.put(digest_key(digest(layer)), b"not the layer's bytes")
    layout = tmp_path / "layout"
    for name, data in oci_layout([config, layer, man], man):
        (layout / name).parent.mkdir(parents=True, exist_ok=True)
        (layout / name).write_bytes(data)
    _, out, _ = berth_import(cluster, "imp/orphan:v1", layout)
    assert statuses(out)[digest(layer)] == "new", out
    for reg in nodes(cluster):
        assert pull(reg, "imp/orphan", "v1", MT_OCI_MANIFEST) == man
        assert_blobs(reg, "imp/orphan", [config, layer])
    fsck_clean(cluster)


def test_a_failed_import_leaves_nothing_in_progress(cluster, tmp_path):
    """A blob whose bytes do not match its name, big enough to have begun a multipart upload:
    the import fails, the multipart upload is aborted, the tag is not created."""
    bucket = Bucket(cluster)
    good, named = random_blob(BIG + 1), random_blob(100)
    config = image_config("bad")
    man = oci_manifest(descriptor("application/vnd.oci.image.config.v1+json", config),
                       [descriptor(MT_OCI_LAYER, good), descriptor(MT_OCI_LAYER, named)])
    entries = oci_layout([config, good, man], man)
    entries.insert(3, (blob_name(named), random_blob(BIG + 2)))
    path = tmp_path / "bad.tar"
    path.write_bytes(tar_bytes(entries))
    rc, out, err = berth_import(cluster, "imp/bad:v1", path, ok=False)
    assert rc == 1 and "does not match its name" in err and "was not changed" in err, (out, err)
    for reg in nodes(cluster):
        assert reg.get_manifest("imp/bad", "v1").status_code == 404
        assert "imp/bad" not in reg.get("/v2/_catalog").json()["repositories"]
    # the blob stored before the refusal was linked by its upload, and unlinked again
    assert psql(cluster, "SELECT count(*) FROM blob_links l JOIN repos r ON r.id = l.repo_id"
                         " WHERE r.name = 'imp/bad'") == "0"
    assert not [k for k in bucket.keys() if k.startswith("uploads/")]
    assert not bucket.multipart_keys()
    # what was stored before the refusal is referenced by nothing: left to garbage collection
    fsck_clean(cluster)
