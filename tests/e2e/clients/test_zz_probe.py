import os
def test_probe(containerd, tls_berth, credentials, pki, skopeo, image_store):
    layout, image = image_store.oci_layout("small", "probe")
    ref = tls_berth.registry().ref("probe", "v1")
    skopeo("copy", "--dest-cert-dir", tls_berth.cert_dir, "--dest-creds", credentials.pair, "oci:%s:latest" % layout, "docker://" + ref)
    for extra in ():
        p = containerd.ctr("images", "pull", "--user", credentials.pair, *extra, ref, check=False)
        print("VARIANT", extra, p.returncode, p.stderr.decode()[-300:])
        lref = ref.replace("127.0.0.1", "localhost")
        p = containerd.ctr("images", "pull", "--user", credentials.pair, *extra, lref, check=False)
        print("VARIANT localhost", extra, p.returncode, p.stderr.decode()[-300:])
    hd = os.path.join(os.path.dirname(pki.ca), "hosts")
    d = os.path.join(hd, tls_berth.host)
    os.makedirs(d)
    open(os.path.join(d, "hosts.toml"), "w").write('server = "https://%s"\n[host]\n' % (tls_berth.host,))
    for extra in ([], ["--tlscacert", pki.ca]):
        p = containerd.ctr("images", "pull", "--user", credentials.pair, "--hosts-dir", hd, *extra, ref, check=False)
        print("VARIANT hostsdir", extra, p.returncode, p.stderr.decode()[-600:])
    assert 0
