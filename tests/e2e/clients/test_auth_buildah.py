"""buildah push (and pull) with --creds to a private berth over TLS, trusting the session's
test CA through a private --cert-dir; what it pushed is checked byte-exact."""

import json

import images


def output(p):
    return (p.stdout + p.stderr).decode(errors="replace")


def test_buildah_push_with_creds_over_tls(buildah, skopeo, tls_berth, credentials, image_store):
    # A local image the registry has never seen: every blob is uploaded. (From a docker archive,
    # which names the image; an OCI layout would be named after its path, which need not be a
    # valid image name.)
    local = "localhost/buildah-auth:v1"
    archive, image = image_store.docker_archive("small", "auth-buildah", local)
    buildah("pull", "docker-archive:" + archive)
    info = json.loads(buildah("inspect", "--type", "image", local).stdout)
    image_id = info["FromImageID"]
    assert "sha256:" + image_id == image.image_id, info

    registry = tls_berth.registry()
    repo = registry.repo("buildah")
    dst = registry.ref("buildah", "v1")
    certs = ["--cert-dir", tls_berth.cert_dir]

    # Without credentials, refused.
    p = buildah("push", *certs, image_id, "docker://" + dst, check=False)
    assert p.returncode != 0, output(p)
    assert "denied: requested access to the resource is denied" in output(p), output(p)

    digestfile = image_store.new_path("buildah-auth-digest")
    buildah("push", *certs, "--creds", credentials.pair, "--digestfile", digestfile, image_id, "docker://" + dst)
    with open(digestfile) as f:
        pushed = f.read().strip()
    assert registry.manifest_digest(repo, "v1") == pushed
    digest, manifest = registry.check_image(repo, "v1", config=image.config, diff_ids=image.diff_ids)
    assert digest == pushed
    assert manifest["config"]["digest"] == image.config_digest

    raw = skopeo("inspect", "--raw", *certs, "--creds", credentials.pair, "docker://" + dst).stdout
    assert images.sha256(raw) == pushed
    # Pulled back with the same credentials: the same image.
    buildah("rmi", image_id)
    buildah("pull", *certs, "--creds", credentials.pair, dst)
    again = json.loads(buildah("inspect", "--type", "image", dst).stdout)
    assert "sha256:" + again["FromImageID"] == image.image_id
    assert again["FromImageDigest"] == pushed
    buildah("rmi", dst)
