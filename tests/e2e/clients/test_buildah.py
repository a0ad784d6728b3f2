"""buildah: pull from the registry and push to a new repository."""

import json

import images


def test_buildah_pull_and_push(buildah, skopeo, registry, seed, image_store):
    image = seed("small", "buildah", "buildah/src", "v1")
    src = registry.ref("buildah/src", "v1")
    buildah("pull", "--tls-verify=false", src)
    info = json.loads(buildah("inspect", "--type", "image", src).stdout)
    assert info["FromImageID"] == image.image_id.split(":", 1)[1]
    assert info["FromImageDigest"] == image.digest

    repo = registry.repo("buildah/dst")
    dst = registry.ref("buildah/dst", "v2")
    digestfile = image_store.new_path("buildah-digest")
    buildah("push", "--tls-verify=false", "--digestfile", digestfile, src, "docker://" + dst)
    with open(digestfile) as f:
        pushed = f.read().strip()

    assert registry.manifest_digest(repo, "v2") == pushed
    digest, manifest = registry.check_image(repo, "v2", config=image.config, diff_ids=image.diff_ids)
    assert digest == pushed
    raw = skopeo("inspect", "--raw", "--tls-verify=false", "docker://" + dst).stdout
    assert images.sha256(raw) == pushed
    inspected = json.loads(skopeo("inspect", "--tls-verify=false", "docker://" + dst).stdout)
    assert inspected["Digest"] == pushed
    assert inspected["Architecture"] == "amd64"
    assert len(inspected["Layers"]) == len(image.layers)
    # Same config, hence same image for every client.
    assert manifest["config"]["digest"] == image.config_digest

    # buildah pushes the image as it stores it; pulling what it pushed gives the same image.
    buildah("rmi", src)
    buildah("pull", "--tls-verify=false", dst)
    again = json.loads(buildah("inspect", "--type", "image", dst).stdout)
    assert again["FromImageID"] == image.image_id.split(":", 1)[1]
    assert again["FromImageDigest"] == pushed

