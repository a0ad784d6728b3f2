"""berth without a config file: the embedded default is safe. The first
start creates the user admin with a random password, prints it once on
stderr and keeps only its hash under <root>/keys/; later starts print no
password; admin can sign in, push and pull; anonymous callers get nothing."""

import os
import re
import stat

import requests

import ocihelp as oh

PASSWORD_RE = re.compile(r'created user "admin" with password: (\S+)')


def test_embedded_default(make_berth):
    b = make_berth(config=None)
    b.check_secrets = False  # the first start prints the password by design; checked below
    b.start()
    first_log = b.read_log(tail=None)
    found = PASSWORD_RE.findall(first_log)
    assert len(found) == 1, "expected one admin password line, log:\n" + first_log
    password = found[0]
    assert len(password) >= 12
    # only a hash is kept, in a file only berth's user can read
    keys = os.path.join(b.root, "keys")
    hash_files = [f for f in os.listdir(keys) if f != "token.pem"]
    assert hash_files == ["admin.argon2"], os.listdir(keys)
    path = os.path.join(keys, "admin.argon2")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path) as f:
        stored = f.read()
    assert stored.startswith("$argon2id$v=19$"), stored
    assert password not in stored
    for dirpath, _, files in os.walk(b.root):
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as f:
                assert password.encode() not in f.read(), "the password is stored in %s" % name

    # a second start prints no password and keeps the same one
    b.stop()
    size = b.log_size()
    b.start()
    second_log = b.read_log(tail=None)[size:]
    assert "listening on" in second_log, second_log
    assert "password" not in second_log.lower(), second_log
    with open(path) as f:
        assert f.read() == stored

    # anonymous callers: nothing
    anon = oh.Registry(b.url)
    resp = anon.get("/v2/")
    oh.expect_error(resp, 401, "UNAUTHORIZED")
    assert oh.parse_challenge(resp.headers.get("WWW-Authenticate"))[0] == "Bearer"
    oh.expect_error(anon.post("/v2/app/blobs/uploads/"), 401, "UNAUTHORIZED")
    resp = oh.token_get(b.url, None, [oh.scope_string("app", {"pull", "push"})])
    assert resp.status_code == 200 and not oh.jwt_decode(resp.json()["token"])[1].get("access")

    # admin signs in through the token flow, pushes and pulls
    admin = oh.Registry(b.url, auth=("admin", password))
    assert admin.get("/v2/").status_code == 200
    img = admin.push_image("app", tag="v1")
    resp = admin.get_manifest("app", "v1")
    assert resp.status_code == 200 and resp.content == img.body
    assert admin.token_requests > 0
    # and with Basic credentials, and a wrong password fails
    resp = requests.get(b.url + "/v2/app/manifests/v1", auth=("admin", password), timeout=60,
                        headers={"Accept": oh.MT_OCI_MANIFEST})
    assert resp.status_code == 200 and resp.content == img.body
    oh.expect_error(oh.token_get(b.url, ("admin", password + "x")), 401, "UNAUTHORIZED")
    # anonymous still cannot pull what admin pushed
    resp = anon.get_manifest("app", "v1")
    oh.expect_error(resp, 401, "UNAUTHORIZED")

    # the log shows the password exactly once: the first start's message
    b.stop()
    whole = b.read_log(tail=None)
    assert whole.count(password) == 1
    others = oh.leaked_secrets(whole.replace(password, ""))
    assert not others, "the log shows %s" % others

