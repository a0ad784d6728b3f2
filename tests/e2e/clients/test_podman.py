"""podman: pull from the registry, push a loaded image, pull it back."""

import json


def inspect(podman, ref):
    out = json.loads(podman("image", "inspect", ref).stdout)
    assert len(out) == 1, out
    return out[0]


def test_podman_pull_seeded_image(podman, registry, seed):
    image = seed("small", "podman-pull", "podman/pulled", "v1")
    ref = registry.ref("podman/pulled", "v1")
    podman("pull", "--tls-verify=false", ref)
    info = inspect(podman, ref)
    assert "sha256:" + info["Id"] == image.image_id
    assert info["Digest"] == image.digest
    assert "%s/%s@%s" % (registry.host, registry.repo("podman/pulled"), image.digest) in info["RepoDigests"]
    assert info["Architecture"] == "amd64" and info["Os"] == "linux"
    assert info["RootFS"]["Layers"] == image.diff_ids

    # Also by digest.
    by_digest = "%s/%s@%s" % (registry.host, registry.repo("podman/pulled"), image.digest)
    podman("pull", "--tls-verify=false", by_digest)
    assert "sha256:" + inspect(podman, by_digest)["Id"] == image.image_id


def test_podman_push_loaded_image_and_pull_back(podman, registry, image_store, workdir):
    local = "localhost/podman-loaded:v1"
    archive, image = image_store.docker_archive("small", "podman-push", local)
    out = podman("load", "-i", archive).stdout.decode()
    assert "podman-loaded" in out, out
    assert "sha256:" + inspect(podman, local)["Id"] == image.image_id

    repo = registry.repo("podman/pushed")
    ref = registry.ref("podman/pushed", "v1")
    digestfile = image_store.new_path("podman-digest")
    podman("push", "--tls-verify=false", "--digestfile", digestfile, local, ref)
    with open(digestfile) as f:
        pushed = f.read().strip()
    assert registry.manifest_digest(repo, "v1") == pushed
    digest, _ = registry.check_image(repo, "v1", config=image.config, diff_ids=image.diff_ids)
    assert digest == pushed

    podman("rmi", local)
    podman("pull", "--tls-verify=false", ref)
    info = inspect(podman, ref)
    assert "sha256:" + info["Id"] == image.image_id
    assert info["Digest"] == pushed
    assert "%s/%s@%s" % (registry.host, repo, pushed) in info["RepoDigests"]
    assert info["RootFS"]["Layers"] == image.diff_ids
    podman("rmi", ref)
