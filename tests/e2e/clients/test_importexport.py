"""berth import / berth export: air-gapped transfers, checked with real clients.

Images go in with `berth import` on the data directory of a running berth
(docker save tarballs, OCI layout directories, OCI layout tars made with tar
and with skopeo's oci-archive:), are pulled back over HTTP with skopeo,
podman and docker and compared by digest; `berth export` writes OCI layout
tars that skopeo, podman and (through skopeo's docker-archive:) docker read
back with every digest intact. Hostile archives are refused without a tag
being created or moved, and without leaving temporary files behind.
"""

import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import tarfile

import pytest
import requests

import images

ACCEPT = ", ".join([images.MT_OCI_MANIFEST, images.MT_OCI_INDEX, images.MT_DOCKER_MANIFEST,
                    images.MT_DOCKER_LIST])
MT_DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"


class Target:
    """A berth of this module's own (anonymous callers may do everything) and its CLI."""

    def __init__(self, berth):
        self.b = berth
        self.host = berth.host
        self.url = berth.url
        self.http = requests.Session()

    def cli(self, *args, input=None):
        return self.b.cli(*args, input=input, check=False)

    def import_(self, ref, path, *extra, input=None):
        """`berth import`; returns the digest it reports for the tag."""
        p = self.cli("import", ref, path, *extra, input=input)
        out, err = p.stdout.decode(), p.stderr.decode()
        assert p.returncode == 0, "berth import %s %s: status %d\n%s%s" % (ref, path, p.returncode, out, err)
        m = re.search(r"^%s -> (sha256:[0-9a-f]{64}) \(tag (created|moved from \S+|unchanged.*)\)$" %
                      re.escape(ref), out, re.M)
        assert m, out
        return m.group(1)

    def import_fails(self, ref, path, want, *extra, input=None):
        p = self.cli("import", ref, path, *extra, input=input)
        err = p.stderr.decode()
        assert p.returncode == 1, "status %d, stdout %s stderr %s" % (p.returncode, p.stdout, err)
        assert want in err, "wanted %r in:\n%s" % (want, err)
        assert "was not changed" in err, err
        assert p.stdout == b"", p.stdout
        return err

    def export(self, ref, path):
        p = self.cli("export", ref, path)
        assert p.returncode == 0, "berth export: %s" % p.stderr.decode()
        return p.stdout.decode()

    def manifest(self, repo, reference):
        r = self.http.get("%s/v2/%s/manifests/%s" % (self.url, repo, reference), headers={"Accept": ACCEPT},
                          timeout=30)
        return r

    def digest(self, repo, reference):
        r = self.manifest(repo, reference)
        assert r.status_code == 200, (repo, reference, r.status_code, r.text)
        assert r.headers["Docker-Content-Digest"] == images.sha256(r.content)
        return images.sha256(r.content)

    def blob(self, repo, digest):
        r = self.http.get("%s/v2/%s/blobs/%s" % (self.url, repo, digest), timeout=60)
        assert r.status_code == 200, (repo, digest, r.status_code)
        assert images.sha256(r.content) == digest
        return r.content

    def no_tag(self, repo, tag):
        r = self.manifest(repo, tag)
        assert r.status_code == 404, (repo, tag, r.status_code)

    def no_temp_files(self):
        left = [n for n in os.listdir(os.path.join(self.b.root, "uploads")) if n.startswith("tmp-")]
        assert not left, left


@pytest.fixture(scope="module")
def target(make_module_berth):
    return Target(make_module_berth().start())


_count = [0]


def repo_name(kind):
    _count[0] += 1
    return "io/%s-%d" % (kind, _count[0])


def layout_tar(layout, path):
    """An OCI layout packed with tar from inside the layout directory."""
    subprocess.run(["tar", "-C", layout, "-cf", path, "."], check=True, timeout=60)
    return path


def layout_blobs(path, digest):
    """{digest: bytes} of manifest `digest` and everything below it, read from an OCI layout."""
    _, blob = images.read_oci_layout(path)
    out = {}

    def walk(d):
        data = blob(d)
        assert images.sha256(data) == d
        out[d] = data
        m = json.loads(data)
        for child in m.get("manifests", []):
            walk(child["digest"])
        if "config" in m:
            out[m["config"]["digest"]] = blob(m["config"]["digest"])
            for layer in m["layers"]:
                out[layer["digest"]] = blob(layer["digest"])

    walk(digest)
    return out


def single_digest(layout):
    index, _ = images.read_oci_layout(layout)
    assert len(index["manifests"]) == 1, index
    return index["manifests"][0]["digest"]


def item_blobs(item):
    return dict(item.blobs())


# ---------------------------------------------------------------- imports, pulled back

@pytest.mark.parametrize("packing", ["directory", "tar", "skopeo-oci-archive", "stdin"])
def test_import_oci_layout_and_pull_with_skopeo(target, skopeo, image_store, packing):
    layout, image = image_store.oci_layout("small", "io-oci")
    repo = repo_name("oci-" + packing)
    source, stdin = layout, None
    if packing == "tar":
        source = layout_tar(layout, image_store.new_path("layout") + ".tar")
    elif packing == "skopeo-oci-archive":
        source = image_store.new_path("archive") + ".tar"
        skopeo("copy", "oci:%s:latest" % layout, "oci-archive:%s:latest" % source)
    elif packing == "stdin":
        with open(layout_tar(layout, image_store.new_path("layout") + ".tar"), "rb") as f:
            stdin = f.read()
        source = "-"
    assert target.import_(repo + ":v1", source, input=stdin) == image.digest

    # Byte-exact over HTTP, and through skopeo into a fresh layout.
    assert target.digest(repo, "v1") == image.digest
    ref = "docker://%s/%s:v1" % (target.host, repo)
    assert skopeo("inspect", "--raw", "--tls-verify=false", ref).stdout == image.manifest
    out = image_store.new_path("skopeo-pulled")
    skopeo("copy", "--src-tls-verify=false", ref, "oci:%s:out" % out)
    assert single_digest(out) == image.digest
    assert layout_blobs(out, image.digest) == item_blobs(image)
    target.no_temp_files()


def test_import_docker_save_and_pull_with_skopeo_podman_docker(target, skopeo, podman, docker, image_store):
    """A docker save tarball becomes a Docker schema 2 image over the archive's own, uncompressed
    layers: the config digest (the image ID) and the layer diff_ids survive."""
    archive, image = image_store.docker_archive("multi", "io-docker", "io/docker-save:1")
    repo = repo_name("docker-save")
    digest = target.import_(repo + ":v1", archive)
    m = json.loads(target.manifest(repo, "v1").content)
    assert m["mediaType"] == images.MT_DOCKER_MANIFEST
    assert m["config"]["digest"] == image.config_digest
    assert [l["mediaType"] for l in m["layers"]] == [MT_DOCKER_LAYER_TAR] * len(image.layers)
    # Uncompressed layers: each blob's digest is its diff_id.
    assert [l["digest"] for l in m["layers"]] == image.diff_ids
    for l in m["layers"]:
        assert images.sha256(target.blob(repo, l["digest"])) == l["digest"]
    assert target.blob(repo, image.config_digest) == image.config

    ref = "%s/%s:v1" % (target.host, repo)
    assert skopeo("inspect", "--config", "--raw", "--tls-verify=false", "docker://" + ref).stdout == image.config
    info = json.loads(skopeo("inspect", "--tls-verify=false", "docker://" + ref).stdout)
    assert info["Digest"] == digest

    podman("pull", "--tls-verify=false", ref)
    pinfo = json.loads(podman("image", "inspect", ref).stdout)[0]
    assert "sha256:" + pinfo["Id"] == image.image_id
    assert pinfo["RootFS"]["Layers"] == image.diff_ids
    assert pinfo["Digest"] == digest
    podman("rmi", ref)

    docker("pull", ref)
    dinfo = json.loads(docker("image", "inspect", ref).stdout)[0]
    assert dinfo["Id"] == image.image_id
    assert dinfo["RootFS"]["Layers"] == image.diff_ids
    docker("rmi", ref)
    target.no_temp_files()


def test_import_docker_archive_written_by_skopeo(target, skopeo, image_store):
    """skopeo's (and podman save's) docker-archive links legacy <id>/layer.tar paths to the
    real files with symbolic links: they are ignored, never followed."""
    layout, image = image_store.oci_layout("small", "io-skopeo-docker")
    archive = image_store.new_path("skopeo-docker") + ".tar"
    skopeo("copy", "oci:%s:latest" % layout, "docker-archive:%s:io/skopeo:1" % archive)
    with tarfile.open(archive) as t:
        assert any(m.issym() for m in t.getmembers())
    repo = repo_name("skopeo-docker")
    target.import_(repo + ":v1", archive)
    m = json.loads(target.manifest(repo, "v1").content)
    assert m["config"]["digest"] == image.config_digest
    cfg = json.loads(target.blob(repo, image.config_digest))
    assert cfg["rootfs"]["diff_ids"] == image.diff_ids


def _docker25_archive(path, item, saved):
    """What `docker save` writes from Docker 25 on: an OCI layout (index.json naming `item`) plus
    manifest.json over the same blobs, for the images in `saved` only."""
    entries = [("oci-layout", images.canonical_json({"imageLayoutVersion": "1.0.0"}))]
    for image in saved:
        for d, data in image.blobs():
            entries.append(("blobs/sha256/" + d.split(":")[1], data))
    if isinstance(item, images.Index):
        entries.append(("blobs/sha256/" + item.digest.split(":")[1], item.manifest))
    entries.append(("index.json", images.canonical_json({"schemaVersion": 2, "manifests": [{
        "mediaType": item.media_type, "digest": item.digest, "size": len(item.manifest),
        "annotations": {"io.containerd.image.name": "docker.io/library/app:1",
                        "org.opencontainers.image.ref.name": "1"}}]})))
    entries.append(("manifest.json", images.canonical_json([{
        "Config": "blobs/sha256/" + saved[0].config_digest.split(":")[1], "RepoTags": ["app:1"],
        "Layers": ["blobs/sha256/" + l.digest.split(":")[1] for l in saved[0].layers]}])))
    with open(path, "wb") as f:
        f.write(_tar_bytes(entries))
    return path


def test_import_docker25_save(target, image_store):
    """Both forms in one archive: the OCI layout wins (digests kept); when its index names
    platforms the save left out, manifest.json describes what is there."""
    image = images.small_image("io-docker25")
    path = _docker25_archive(image_store.new_path("docker25") + ".tar", image, [image])
    repo = repo_name("docker25")
    assert target.import_(repo + ":v1", path) == image.digest

    index = images.multiplatform_index("io-docker25-partial")
    path = _docker25_archive(image_store.new_path("docker25-partial") + ".tar", index, [index.images[0]])
    out = target.cli("import", repo + ":v2", path).stdout.decode()
    assert "a partial multi-platform save" in out, out
    m = json.loads(target.manifest(repo, "v2").content)
    assert m["mediaType"] == images.MT_DOCKER_MANIFEST
    assert m["config"]["digest"] == index.images[0].config_digest
    assert [l["mediaType"] for l in m["layers"]] == ["application/vnd.docker.image.rootfs.diff.tar.gzip"]
    assert [l["digest"] for l in m["layers"]] == index.images[0].layer_digests
    target.no_tag(repo, "v3")


def test_import_two_platform_index_keeps_its_digest(target, skopeo, podman, image_store):
    layout, index = image_store.oci_layout("index", "io-index")
    repo = repo_name("index")
    out = target.cli("import", repo + ":v1", layout).stdout.decode()
    assert re.search(r"^  index +%s " % index.digest, out, re.M), out
    assert target.digest(repo, "v1") == index.digest
    assert target.manifest(repo, "v1").content == index.manifest
    for image in index.images:
        assert target.digest(repo, image.digest) == image.digest
        assert target.blob(repo, image.config_digest) == image.config
        for layer in image.layers:
            assert target.blob(repo, layer.digest) == layer.blob
    ref = "%s/%s:v1" % (target.host, repo)
    out_layout = image_store.new_path("index-pulled")
    skopeo("copy", "--all", "--src-tls-verify=false", "docker://" + ref, "oci:%s:x" % out_layout)
    assert single_digest(out_layout) == index.digest
    podman("pull", "--tls-verify=false", "--arch", "arm64", ref)
    info = json.loads(podman("image", "inspect", ref).stdout)[0]
    assert "sha256:" + info["Id"] == index.images[1].image_id
    podman("rmi", ref)


def test_import_selects_among_several_images(target, image_store):
    a, b = images.small_image("io-sel-a"), images.small_image("io-sel-b")
    layout = images.write_oci_layout(image_store.new_path("two-images"), {"a": a, "b": b})
    repo = repo_name("select")
    target.import_fails(repo + ":v1", layout, 'choose one with --ref NAME (names: "a", "b")')
    target.no_tag(repo, "v1")
    target.import_fails(repo + ":v1", layout, 'no image named "c"', "--ref", "c")
    assert target.import_(repo + ":v1", layout, "--ref", "b") == b.digest
    assert target.import_(repo + ":a", layout) == a.digest  # the ref name matching the tag


def test_reimport_and_history(target, image_store):
    """Importing again changes nothing; a newer image moves the tag, recorded as an import by cli."""
    l1, i1 = image_store.oci_layout("small", "io-hist-1")
    l2, i2 = image_store.oci_layout("small", "io-hist-2")
    repo = repo_name("history")
    target.import_(repo + ":prod", l1)
    out = target.cli("import", repo + ":prod", l1).stdout.decode()
    assert "(tag unchanged" in out and " stored " in out and " new " not in out, out
    out = target.cli("import", repo + ":prod", l2).stdout.decode()
    assert "(tag moved from %s)" % i1.digest in out, out
    hist = target.cli("tag", "history", repo + ":prod").stdout.decode().splitlines()
    rows = [l.split() for l in hist[1:] if l.strip()]
    assert len(rows) == 2, hist
    assert all(r[1] == "import" and r[2] == "cli" for r in rows), hist


# ---------------------------------------------------------------- exports, read back

def test_export_index_round_trip_with_skopeo_and_podman(target, skopeo, podman, image_store):
    layout, index = image_store.oci_layout("index", "io-export-index")
    repo = repo_name("export-index")
    target.import_(repo + ":v1", layout)
    archive = image_store.new_path("exported") + ".tar"
    out = target.export(repo + ":v1", archive)
    assert "%s:v1 -> %s" % (repo, index.digest) in out, out
    with tarfile.open(archive) as t:
        names = t.getnames()
        idx = json.loads(t.extractfile("index.json").read())
    assert "oci-layout" in names and "index.json" in names
    assert idx["manifests"][0]["digest"] == index.digest
    assert idx["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "v1"
    assert set(n for n in names if n.startswith("blobs/sha256/")) == \
        set("blobs/sha256/" + d.split(":")[1] for d in item_blobs(index))

    fresh = image_store.new_path("from-export")
    skopeo("copy", "--all", "oci-archive:%s" % archive, "oci:%s:v1" % fresh)
    assert single_digest(fresh) == index.digest
    assert layout_blobs(fresh, index.digest) == item_blobs(index)
    # The same image always exports to the same bytes; by digest, without a ref name.
    again = image_store.new_path("exported-again") + ".tar"
    target.export(repo + ":v1", again)
    with open(archive, "rb") as f1, open(again, "rb") as f2:
        assert f1.read() == f2.read()
    by_digest = image_store.new_path("exported-by-digest") + ".tar"
    target.export(repo + "@" + index.digest, by_digest)
    with tarfile.open(by_digest) as t:
        idx = json.loads(t.extractfile("index.json").read())
    assert idx["manifests"][0]["digest"] == index.digest and "annotations" not in idx["manifests"][0]
    # podman loads the platform it runs on from the index.
    out = podman("load", "-i", archive).stdout.decode()
    assert "Loaded image" in out, out
    amd64 = index.images[0]
    assert amd64.arch == "amd64"
    info = json.loads(podman("image", "inspect", amd64.image_id.split(":")[1]).stdout)[0]
    assert info["RootFS"]["Layers"] == amd64.diff_ids
    podman("rmi", amd64.image_id.split(":")[1])


def test_export_then_import_elsewhere(target, image_store):
    """An export imports again (the air-gap transfer itself), by file and through a pipe."""
    layout, image = image_store.oci_layout("small", "io-transfer")
    repo = repo_name("transfer")
    target.import_(repo + ":v1", layout)
    p = target.cli("export", repo + ":v1", "-")
    assert p.returncode == 0, p.stderr
    assert b"wrote OCI layout archive" in p.stderr  # the summary goes to stderr, the archive to stdout
    assert target.import_(repo_name("transfer-in") + ":v1", "-", input=p.stdout) == image.digest


def test_export_docker_schema2_to_skopeo_podman_docker(target, skopeo, podman, docker, image_store):
    """Docker schema 2 manifests are exported as they are: skopeo reads them from the OCI layout
    (same digest), podman loads the archive, docker loads skopeo's docker-archive: of it."""
    archive, image = image_store.docker_archive("small", "io-export-docker", "io/exp:1")
    repo = repo_name("export-docker")
    digest = target.import_(repo + ":v1", archive)
    exported = image_store.new_path("exported-docker") + ".tar"
    target.export(repo + ":v1", exported)
    raw = skopeo("inspect", "--raw", "oci-archive:%s" % exported).stdout
    assert images.sha256(raw) == digest
    assert skopeo("inspect", "--config", "--raw", "oci-archive:%s" % exported).stdout == image.config

    out = podman("load", "-i", exported).stdout.decode()
    assert "Loaded image" in out, out
    assert json.loads(podman("image", "inspect", image.image_id.split(":")[1]).stdout)[0]["RootFS"]["Layers"] \
        == image.diff_ids
    podman("rmi", image.image_id.split(":")[1])

    docker_tar = image_store.new_path("docker-archive") + ".tar"
    skopeo("copy", "oci-archive:%s" % exported, "docker-archive:%s:io/exported:v1" % docker_tar)
    docker("load", "-i", docker_tar)
    info = json.loads(docker("image", "inspect", "io/exported:v1").stdout)[0]
    assert info["Id"] == image.image_id
    assert info["RootFS"]["Layers"] == image.diff_ids
    docker("rmi", "io/exported:v1")


def test_export_oci_image_to_docker(target, skopeo, docker, image_store):
    layout, image = image_store.oci_layout("small", "io-export-oci-docker")
    repo = repo_name("export-oci")
    target.import_(repo + ":v1", layout)
    exported = image_store.new_path("exported-oci") + ".tar"
    target.export(repo + ":v1", exported)
    docker_tar = image_store.new_path("docker-archive") + ".tar"
    skopeo("copy", "oci-archive:%s" % exported, "docker-archive:%s:io/exported-oci:v1" % docker_tar)
    docker("load", "-i", docker_tar)
    info = json.loads(docker("image", "inspect", "io/exported-oci:v1").stdout)[0]
    assert info["Id"] == image.image_id
    docker("rmi", "io/exported-oci:v1")


def test_export_errors(target, image_store):
    p = target.cli("export", "io/nothing-here:v1", image_store.new_path("x") + ".tar")
    assert p.returncode == 1 and b"has no tag v1" in p.stderr, p.stderr
    p = target.cli("export", "io/Bad:v1", "x.tar")
    assert p.returncode == 2 and b"not a valid repository name" in p.stderr, p.stderr


# ---------------------------------------------------------------- hostile input

def _tar_bytes(entries, fmt=tarfile.PAX_FORMAT):
    """entries: (name, bytes) for files, (name, ('symlink', target)) for links."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 0
            if isinstance(data, tuple):
                info.type = tarfile.SYMTYPE
                info.linkname = data[1]
                t.addfile(info)
            else:
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _raw_header(name, type_, size, size_field=None):
    h = bytearray(512)
    h[0:len(name)] = name.encode()
    h[100:108] = b"0000644\0"
    h[108:116] = b"0000000\0"
    h[116:124] = b"0000000\0"
    h[124:136] = size_field if size_field is not None else b"%011o\0" % size
    h[136:148] = b"00000000000\0"
    h[156] = ord(type_)
    h[257:265] = b"ustar\x0000"
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)


def _layout_entries(item, tag="v1"):
    """(name, bytes) of an OCI layout holding item."""
    entries = [("oci-layout", images.canonical_json({"imageLayoutVersion": "1.0.0"}))]
    for d, data in item.blobs():
        entries.append(("blobs/sha256/" + d.split(":")[1], data))
    entries.append(("index.json", images.canonical_json({
        "schemaVersion": 2, "manifests": [{"mediaType": item.media_type, "digest": item.digest,
                                           "size": len(item.manifest),
                                           "annotations": {"org.opencontainers.image.ref.name": tag}}]})))
    return entries


def _docker_entries(image, config=None):
    cfg = config if config is not None else image.config
    cname = hashlib.sha256(cfg).hexdigest() + ".json"
    layers = [l.diff_id.split(":")[1] + "/layer.tar" for l in image.layers]
    return [(cname, cfg)] + [(n, l.tar) for n, l in zip(layers, image.layers)] + \
        [("manifest.json", images.canonical_json([{"Config": cname, "RepoTags": ["x:1"], "Layers": layers}]))]


def _hostile_cases():
    image = images.small_image("io-hostile")
    good = _layout_entries(image)
    layer_name = "blobs/sha256/" + image.layers[0].digest.split(":")[1]
    docker_good = _tar_bytes(_docker_entries(image))
    cases = {}
    cases["traversal"] = (_tar_bytes(good[:1] + [("../../../etc/berth-owned", b"x")] + good[1:]),
                          'climbs out of the archive with ".."')
    cases["absolute"] = (_tar_bytes(good[:1] + [("/etc/passwd", b"x")] + good[1:]), "has an absolute name")
    cases["symlink-index"] = (_tar_bytes([(n, d) for n, d in good if n != "index.json"] +
                                         [("index.json", ("symlink", "/etc/passwd"))]),
                              '"index.json" is a symbolic link')
    cases["symlink-blob"] = (_tar_bytes([(n, d) if n != layer_name else (n, ("symlink", "../../x"))
                                         for n, d in good]), "is a symbolic link")
    tampered = [(n, d if n != layer_name else bytes([d[0] ^ 1]) + d[1:]) for n, d in good]
    cases["digest-mismatch"] = (_tar_bytes(tampered), "its content does not match its name")
    cases["missing-blob"] = (_tar_bytes([(n, d) for n, d in good if n != layer_name]),
                             "is missing from the archive")
    cases["truncated"] = (docker_good[:len(docker_good) // 2], "truncated")
    cases["no-end-block"] = (b"".join(_raw_header(n, "0", len(d)) + d + b"\0" * (-len(d) % 512)
                                      for n, d in good), "end-of-archive block")
    cases["huge-pax-header"] = (_raw_header("PaxHeader", "x", 1 << 30) + b"\0" * 1024, "extended header of")
    cases["huge-gnu-name"] = (_raw_header("././@LongLink", "L", 1 << 20) + b"\0" * 1024, "extended header of")
    cases["size-not-octal"] = (_raw_header("f", "0", 0, b"99999999999\0") + b"\0" * 1024, "malformed size field")
    cases["size-overflow"] = (_raw_header("f", "0", 0, b"\x80" + b"\xff" * 11) + b"\0" * 1024,
                              "malformed size field")
    cases["size-above-limit"] = (_raw_header("f", "0", 0, b"\x80" + b"\0" * 4 + b"\x04" + b"\0" * 6) +
                                 b"\0" * 1024, "above the limit")
    cases["hard-link"] = (_raw_header("index.json", "1", 0) + b"\0" * 1024, "is a hard link")
    bad_cfg = json.loads(image.config)
    bad_cfg["rootfs"]["diff_ids"] = ["sha256:" + "0" * 64]
    cases["docker-diff-id"] = (_tar_bytes(_docker_entries(image, images.canonical_json(bad_cfg))),
                               "but the image config's diff_id 0 is")
    entries = _docker_entries(image)
    layer = entries[1][0]
    cases["docker-symlink-layer"] = (_tar_bytes([entries[0], (layer, ("symlink", "/etc/shadow"))] + entries[2:]),
                                     "is a symbolic link: links in archives are never followed")
    cases["gzip"] = (gzip.compress(docker_good, mtime=0), "the input is gzip-compressed")
    cases["not-a-tar"] = (b"PK\x03\x04" + os.urandom(2000), "not a tar archive")
    cases["empty"] = (b"", "the input is empty")
    cases["no-image"] = (_tar_bytes([("README", b"hello")]), "neither an OCI image layout")
    cases["nested-dir"] = (_tar_bytes([("layout/" + n, d) for n, d in good]), 'found "layout/index.json"')
    bad_index = good[:-1] + [("index.json", b'{"schemaVersion":2,"manifests":[{"mediaType":"%s",'
                              b'"digest":"sha256:%s","size":1}]}' % (images.MT_OCI_MANIFEST.encode(),
                                                                      image.digest.split(":")[1].encode()))]
    cases["size-mismatch"] = (_tar_bytes(bad_index), "but its descriptor says 1")
    cases["duplicate-index"] = (_tar_bytes(good + [good[-1]]), '"index.json" appears twice')
    return cases


HOSTILE = _hostile_cases()


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_input_refused_without_a_tag(target, image_store, case):
    data, want = HOSTILE[case]
    path = image_store.new_path("hostile-" + case) + ".tar"
    with open(path, "wb") as f:
        f.write(data)
    repo = repo_name("hostile-" + case)
    target.import_fails(repo + ":v1", path, want)
    target.no_tag(repo, "v1")
    target.no_temp_files()


def test_failed_import_leaves_the_tag_where_it_was(target, image_store):
    layout, image = image_store.oci_layout("small", "io-keep")
    repo = repo_name("keep")
    target.import_(repo + ":stable", layout)
    data, _ = HOSTILE["digest-mismatch"]
    path = image_store.new_path("hostile-keep") + ".tar"
    with open(path, "wb") as f:
        f.write(data)
    target.import_fails(repo + ":stable", path, "does not match")
    target.import_fails(repo + ":stable", "-", "truncated", input=HOSTILE["truncated"][0])
    assert target.digest(repo, "stable") == image.digest
    hist = target.cli("tag", "history", repo + ":stable").stdout.decode().splitlines()
    assert len([l for l in hist[1:] if l.strip()]) == 1, hist


def test_import_refuses_an_immutable_tag_move(make_module_berth, image_store):
    cfg = {"access": [{"repositories": ["**"], "anonymous": True, "actions": ["*"]}],
           "immutable_tags": [{"repositories": ["io/**"], "tags": ["release-*"]}]}
    t = Target(make_module_berth(config=cfg).start())
    l1, i1 = image_store.oci_layout("small", "io-imm-1")
    l2, _ = image_store.oci_layout("small", "io-imm-2")
    t.import_("io/immutable:release-1", l1)
    t.import_fails("io/immutable:release-1", l2, "is immutable")
    assert t.digest("io/immutable", "release-1") == i1.digest


def test_usage_errors(target):
    for args, want in ((["import"], b"usage: berth import"),
                       (["import", "io/x", "f"], b"want REPO:TAG"),
                       (["import", "io/x@sha256:" + "0" * 64, "f"], b"want REPO:TAG"),
                       (["import", "io/x:bad tag", "f"], b"not a valid tag"),
                       (["import", "io/x:v1", "f", "--bogus"], b"unknown option"),
                       (["export", "io/x:v1"], b"usage: berth export")):
        p = target.cli(*args)
        assert p.returncode == 2 and want in p.stderr, (args, p.returncode, p.stderr)
    p = target.cli("import", "io/x:v1", "/nonexistent/file.tar")
    assert p.returncode == 1 and b"cannot open" in p.stderr, p.stderr
