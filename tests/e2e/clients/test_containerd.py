"""containerd's ctr: pull from the registry, push to a new repository; digests byte-exact."""

import json
import os
import tarfile

import images


def image_digest(containerd, ref):
    """The target digest containerd recorded for `ref` (ctr images ls)."""
    out = containerd.ctr("images", "ls").stdout.decode().splitlines()
    for line in out[1:]:
        fields = line.split()
        if fields and fields[0] == ref:
            return fields[2]
    raise AssertionError("%s not in ctr images ls:\n%s" % (ref, "\n".join(out)))


def content_blob(containerd, digest):
    return containerd.ctr("content", "get", digest).stdout


def test_ctr_pull_and_push(containerd, registry, seed):
    image = seed("small", "ctr", "ctr/src", "v1")
    src = registry.ref("ctr/src", "v1")
    containerd.ctr("images", "pull", "--plain-http", src)
    assert image_digest(containerd, src) == image.digest
    # What containerd stored is what the registry served, byte for byte.
    assert content_blob(containerd, image.digest) == image.manifest
    assert content_blob(containerd, image.config_digest) == image.config
    for layer in image.layers:
        assert content_blob(containerd, layer.digest) == layer.blob

    dst = registry.ref("ctr/dst", "v2")
    containerd.ctr("images", "push", "--plain-http", dst, src)
    repo = registry.repo("ctr/dst")
    assert registry.manifest_digest(repo, "v2") == image.digest
    digest, _ = registry.check_image(repo, "v2", config=image.config, diff_ids=image.diff_ids,
                                     layer_digests=image.layer_digests)
    assert digest == image.digest

    # Pull what was pushed under a fresh name.
    containerd.ctr("images", "rm", src)
    containerd.ctr("images", "pull", "--plain-http", dst)
    assert image_digest(containerd, dst) == image.digest
    containerd.ctr("images", "rm", dst)


def test_ctr_push_unpulled_local_image(containerd, registry, image_store):
    """An image imported locally (never pulled from the registry), so every blob is uploaded."""
    path, image = image_store.oci_layout("small", "ctr-import")
    archive = image_store.new_path("ctr-import") + ".tar"
    with tarfile.open(archive, "w") as tar:
        for name in sorted(os.listdir(path)):
            tar.add(os.path.join(path, name), arcname=name)
    # The layout names the image "latest"; ctr import prefixes it with --base-name.
    local = "example.invalid/ctr-import:latest"
    containerd.ctr("images", "import", "--base-name", "example.invalid/ctr-import", archive)
    assert image_digest(containerd, local) == image.digest

    dst = registry.ref("ctr/imported", "v1")
    containerd.ctr("images", "push", "--plain-http", dst, local)
    repo = registry.repo("ctr/imported")
    digest, _ = registry.check_image(repo, "v1", config=image.config, layer_digests=image.layer_digests)
    assert digest == image.digest


def test_ctr_all_platforms_index(containerd, registry, seed):
    index = seed("index", "ctr-index", "ctr/multiarch-src", "v1")
    src = registry.ref("ctr/multiarch-src", "v1")
    containerd.ctr("images", "pull", "--plain-http", "--all-platforms", src)
    assert image_digest(containerd, src) == index.digest
    assert content_blob(containerd, index.digest) == index.manifest
    for image in index.images:
        assert content_blob(containerd, image.digest) == image.manifest

    dst = registry.ref("ctr/multiarch-dst", "v1")
    containerd.ctr("images", "push", "--plain-http", dst, src)
    repo = registry.repo("ctr/multiarch-dst")
    r = registry.get_manifest(repo, "v1")
    assert r.content == index.manifest
    assert r.headers["Docker-Content-Digest"] == index.digest
    for image in index.images:
        digest, _ = registry.check_image(repo, image.digest, config=image.config,
                                         layer_digests=image.layer_digests)
        assert digest == image.digest
    platforms = [m["platform"]["architecture"] for m in json.loads(r.content)["manifests"]]
    assert platforms == ["amd64", "arm64"]
    assert images.sha256(r.content) == index.digest
