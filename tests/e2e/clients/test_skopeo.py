"""skopeo: OCI layout -> registry -> OCI layout round trips, byte-exact."""

import json

import images


def layout_blobs(path, digest):
    """(manifest bytes, config bytes, [layer bytes]) of `digest` in an OCI layout."""
    _, blob = images.read_oci_layout(path)
    manifest = blob(digest)
    assert images.sha256(manifest) == digest
    m = json.loads(manifest)
    return manifest, blob(m["config"]["digest"]), [blob(l["digest"]) for l in m["layers"]]


def copied_out_digest(path):
    index, _ = images.read_oci_layout(path)
    assert len(index["manifests"]) == 1, index
    return index["manifests"][0]["digest"]


def roundtrip(skopeo, registry, image_store, kind, image_seed, name):
    layout, image = image_store.oci_layout(kind, image_seed)
    repo = registry.repo(name)
    ref = registry.ref(name, "v1")
    skopeo("copy", "--dest-tls-verify=false", "oci:%s:latest" % layout, "docker://" + ref)

    # What the registry serves is exactly what was pushed.
    assert registry.manifest_digest(repo, "v1") == image.digest
    assert registry.manifest_digest(repo, image.digest) == image.digest
    digest, _ = registry.check_image(repo, "v1", config=image.config, diff_ids=image.diff_ids,
                                     layer_digests=image.layer_digests)
    assert digest == image.digest

    raw = skopeo("inspect", "--raw", "--tls-verify=false", "docker://" + ref).stdout
    assert raw == image.manifest
    raw_config = skopeo("inspect", "--config", "--raw", "--tls-verify=false", "docker://" + ref).stdout
    assert raw_config == image.config
    info = json.loads(skopeo("inspect", "--tls-verify=false", "docker://" + ref).stdout)
    assert info["Digest"] == image.digest
    assert info["Architecture"] == "amd64" and info["Os"] == "linux"
    assert info["Layers"] == image.layer_digests

    # Copy back out, by tag and by digest, into fresh layouts.
    for source in (ref, "%s/%s@%s" % (registry.host, repo, image.digest)):
        out = image_store.new_path("skopeo-out")
        skopeo("copy", "--src-tls-verify=false", "docker://" + source, "oci:%s:out" % out)
        assert copied_out_digest(out) == image.digest
        manifest, config, layers = layout_blobs(out, image.digest)
        assert manifest == image.manifest
        assert config == image.config
        assert layers == [l.blob for l in image.layers]
    return image


def test_skopeo_copy_small_image(skopeo, registry, image_store):
    roundtrip(skopeo, registry, image_store, "small", "skopeo-small", "skopeo/small")


def test_skopeo_copy_multilayer_image(skopeo, registry, image_store):
    image = roundtrip(skopeo, registry, image_store, "multi", "skopeo-multi", "skopeo/multi")
    assert image.total_size > 30 * 1000 * 1000
    assert len(image.layers) == 4


def test_skopeo_copy_all_two_platform_index(skopeo, registry, image_store):
    layout, index = image_store.oci_layout("index", "skopeo-index")
    repo = registry.repo("skopeo/multiarch")
    ref = registry.ref("skopeo/multiarch", "v1")
    skopeo("copy", "--all", "--dest-tls-verify=false", "oci:%s:latest" % layout, "docker://" + ref)

    assert registry.manifest_digest(repo, "v1") == index.digest
    r = registry.get_manifest(repo, "v1")
    assert r.content == index.manifest
    assert r.headers["Content-Type"] == images.MT_OCI_INDEX
    for image in index.images:
        digest, _ = registry.check_image(repo, image.digest, config=image.config,
                                         layer_digests=image.layer_digests)
        assert digest == image.digest

    raw = skopeo("inspect", "--raw", "--tls-verify=false", "docker://" + ref).stdout
    assert raw == index.manifest
    # Without --raw, skopeo resolves the index to this machine's platform (amd64).
    info = json.loads(skopeo("inspect", "--tls-verify=false", "--override-arch", "arm64",
                             "docker://" + ref).stdout)
    assert info["Architecture"] == "arm64"
    assert info["Layers"] == index.images[1].layer_digests

    out = image_store.new_path("skopeo-index-out")
    skopeo("copy", "--all", "--src-tls-verify=false", "docker://" + ref, "oci:%s:out" % out)
    assert copied_out_digest(out) == index.digest
    _, blob = images.read_oci_layout(out)
    assert blob(index.digest) == index.manifest
    for image in index.images:
        manifest, config, layers = layout_blobs(out, image.digest)
        assert manifest == image.manifest
        assert config == image.config
        assert layers == [l.blob for l in image.layers]


def test_skopeo_copy_registry_to_registry(skopeo, registry, seed):
    image = seed("small", "skopeo-r2r", "skopeo/r2r-src", "v1")
    skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false",
           "docker://" + registry.ref("skopeo/r2r-src", "v1"),
           "docker://" + registry.ref("skopeo/r2r-dst", "v2"))
    repo = registry.repo("skopeo/r2r-dst")
    digest, _ = registry.check_image(repo, "v2", config=image.config, layer_digests=image.layer_digests)
    assert digest == image.digest
    tags = registry.http.get("%s/v2/%s/tags/list" % (registry.url, repo), timeout=30).json()
    assert tags["tags"] == ["v2"]
    listed = skopeo("list-tags", "--tls-verify=false", "docker://%s/%s" % (registry.host, repo)).stdout
    assert json.loads(listed)["Tags"] == ["v2"]
