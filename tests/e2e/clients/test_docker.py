"""docker: load, tag, push (chunked streamed PATCH uploads), rmi, pull; RepoDigests byte-exact."""

import json
import re

PUSH_DIGEST_RE = re.compile(r"^(\S+): digest: (sha256:[0-9a-f]{64}) size: (\d+)$", re.M)
LAYER_LINE_RE = re.compile(r"^([0-9a-f]{12}): (.+)$")


def inspect(docker, ref):
    out = json.loads(docker("image", "inspect", ref).stdout)
    assert len(out) == 1, out
    return out[0]


def pushed_digest(push_output, tag):
    out = push_output.decode(errors="replace")
    found = PUSH_DIGEST_RE.findall(out)
    assert [f[0] for f in found] == [tag], "docker push printed no digest line for %s:\n%s" % (tag, out)
    return found[0][1], int(found[0][2])


def layer_states(push_output):
    """{short layer id: final state} from docker push's progress lines."""
    states = {}
    for line in push_output.decode(errors="replace").splitlines():
        m = LAYER_LINE_RE.match(line)
        if m:
            states[m.group(1)] = m.group(2)
    return states


def load_push_pull(docker, registry, image_store, kind, image_seed, name):
    local = "berth-e2e/%s:loaded" % image_seed
    archive, image = image_store.docker_archive(kind, image_seed, local)
    out = docker("load", "-i", archive).stdout.decode()
    assert "Loaded image: " + local in out, out
    info = inspect(docker, local)
    assert info["Id"] == image.image_id
    assert info["RootFS"]["Layers"] == image.diff_ids
    assert info["RepoDigests"] == []

    repo = registry.repo(name)
    ref = registry.ref(name, "v1")
    docker("tag", local, ref)
    out = docker("push", ref).stdout
    digest, size = pushed_digest(out, "v1")
    # Every layer went up through an upload (POST, streamed PATCH, PUT): none was
    # mounted or found already there.
    assert layer_states(out) == {l.diff_id[7:19]: "Pushed" for l in image.layers}, out.decode()

    # The registry serves, byte-exact, what docker says it pushed.
    r = registry.get_manifest(repo, "v1")
    assert len(r.content) == size
    assert registry.manifest_digest(repo, "v1") == digest
    got, manifest = registry.check_image(repo, "v1", config=image.config, diff_ids=image.diff_ids)
    assert got == digest
    assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert inspect(docker, ref)["RepoDigests"] == ["%s/%s@%s" % (registry.host, repo, digest)]

    # Forget it entirely, then pull it back by tag and by digest.
    docker("rmi", ref, local)
    gone = docker("image", "inspect", ref, check=False)
    assert gone.returncode != 0
    docker("pull", ref)
    info = inspect(docker, ref)
    assert info["Id"] == image.image_id
    assert info["RepoDigests"] == ["%s/%s@%s" % (registry.host, repo, digest)]
    assert info["RootFS"]["Layers"] == image.diff_ids
    by_digest = "%s/%s@%s" % (registry.host, repo, digest)
    out = docker("pull", by_digest).stdout.decode()
    assert "Digest: " + digest in out, out
    assert inspect(docker, by_digest)["Id"] == image.image_id
    docker("rmi", ref)
    assert docker("image", "inspect", by_digest, check=False).returncode != 0
    return image, digest


def test_docker_push_small_loaded_image(docker, registry, image_store):
    load_push_pull(docker, registry, image_store, "small", "docker-small", "docker/small")


def test_docker_push_multilayer_loaded_image(docker, registry, image_store):
    image, _ = load_push_pull(docker, registry, image_store, "multi", "docker-multi", "docker/multi")
    assert len(image.layers) == 4
    assert image.total_size > 30 * 1000 * 1000


def test_docker_pull_seeded_and_push_to_other_repo(docker, registry, seed):
    """Pull an OCI image that skopeo pushed, push it under another name: docker mounts or
    re-uploads the layers; the config (the image) stays the same."""
    image = seed("small", "docker-seeded", "docker/seeded-src", "v1")
    src = registry.ref("docker/seeded-src", "v1")
    out = docker("pull", src).stdout.decode()
    assert "Digest: " + image.digest in out, out
    info = inspect(docker, src)
    assert info["Id"] == image.image_id
    assert info["RepoDigests"] == ["%s/%s@%s" % (registry.host, registry.repo("docker/seeded-src"), image.digest)]

    dst = registry.ref("docker/seeded-dst", "v7")
    docker("tag", src, dst)
    out = docker("push", dst).stdout
    digest, _ = pushed_digest(out, "v7")
    states = layer_states(out)
    assert set(states) == {l.diff_id[7:19] for l in image.layers}, out.decode()
    assert all(s == "Pushed" or s == "Layer already exists" or s.startswith("Mounted from ")
               for s in states.values()), out.decode()
    repo = registry.repo("docker/seeded-dst")
    got, manifest = registry.check_image(repo, "v7", config=image.config, diff_ids=image.diff_ids)
    assert got == digest
    assert manifest["config"]["digest"] == image.config_digest
    assert [l["digest"] for l in manifest["layers"]] == image.layer_digests
    docker("rmi", src, dst)
