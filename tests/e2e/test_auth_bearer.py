"""Bearer tokens the registry must refuse: expired, for another repository
or action, tampered, unsigned, signed the wrong way or by another key, with
a key of their own, or for another issuer or audience. Forged tokens are
signed with the server's own key (read from <root>/keys/token.pem) unless the
test is about the key; a control test shows such a forgery with correct
claims is accepted, so every refusal below is about the one thing changed."""

import base64
import hashlib
import hmac
import json
import os
import time

import pytest

import ocihelp as oh

REPO = "team-a/bearer-%s" % os.urandom(3).hex()
OTHER = "team-a/bearer-other-%s" % os.urandom(3).hex()


@pytest.fixture(scope="module")
def image(auth_berth, auth_users):
    admin = oh.Registry(auth_berth.url, auth=("admin", auth_users["admin"]))
    img = admin.push_image(REPO, tag="v1")
    admin.push_image(OTHER, tag="v1")
    admin.close()
    return img


@pytest.fixture(scope="module")
def server_key(auth_berth):
    """(path of the server's private key, its kid)."""
    assert os.path.exists(auth_berth.key_path)
    return auth_berth.key_path, oh.libtrust_kid(oh.public_key(auth_berth.key_path, der=True))


@pytest.fixture(scope="module")
def attacker_key(tmp_path_factory):
    return oh.new_p256_key(str(tmp_path_factory.mktemp("attacker") / "key.pem"))


def claims(repo=REPO, actions=("pull",), sub="alice", **over):
    now = int(time.time())
    c = {"iss": "berth", "sub": sub, "aud": "berth", "exp": now + 300, "nbf": now, "iat": now,
         "jti": os.urandom(8).hex(),
         "access": [{"type": "repository", "name": repo, "actions": list(actions)}]}
    c.update(over)
    return c


def header(kid, **over):
    h = {"alg": "ES256", "typ": "JWT", "kid": kid}
    h.update(over)
    return h


def forge(server_key, hdr=None, cl=None):
    path, kid = server_key
    token = oh.jwt_assemble(hdr or header(kid), cl or claims(), oh.es256_signer(path))
    oh.remember_secret(token)
    return token


def pull(b, token, repo=REPO):
    reg = oh.Registry(b.url)
    return reg.get("/v2/%s/manifests/v1" % repo, headers=dict(oh.bearer_header(token), Accept=oh.MT_OCI_MANIFEST))


def push_start(b, token, repo=REPO):
    return oh.Registry(b.url).post("/v2/%s/blobs/uploads/" % repo, headers=oh.bearer_header(token))


def refused(resp, repo=REPO, actions="pull"):
    """A refused token: 401 UNAUTHORIZED with a fresh challenge for the route."""
    oh.expect_error(resp, 401, "UNAUTHORIZED")
    scheme, params = oh.parse_challenge(resp.headers.get("WWW-Authenticate"))
    assert scheme == "Bearer"
    assert params.get("scope") == "repository:%s:%s" % (repo, actions)
    return params


def test_forged_token_with_server_key_is_accepted(auth_berth, image, server_key):
    """The control: the forging tools make tokens berth accepts."""
    resp = pull(auth_berth, forge(server_key))
    assert resp.status_code == 200 and resp.content == image.body
    # also without a kid, and with the audience in an array
    resp = pull(auth_berth, forge(server_key, hdr={"alg": "ES256", "typ": "JWT"}, cl=claims(aud=["x", "berth"])))
    assert resp.status_code == 200


def test_expired_token(auth_berth, image, server_key):
    now = int(time.time())
    token = forge(server_key, cl=claims(exp=now - 3600, nbf=now - 7200, iat=now - 7200))
    refused(pull(auth_berth, token))


def test_token_not_yet_valid(auth_berth, image, server_key):
    now = int(time.time())
    refused(pull(auth_berth, forge(server_key, cl=claims(nbf=now + 3600, exp=now + 7200))))


def test_token_without_exp(auth_berth, image, server_key):
    c = claims()
    del c["exp"]
    refused(pull(auth_berth, forge(server_key, cl=c)))


def test_token_for_another_repository(auth_berth, auth_users, image):
    token = oh.token_get(auth_berth.url, ("alice", auth_users["alice"]),
                         [oh.scope_string(OTHER, {"pull", "push"})]).json()["token"]
    assert pull(auth_berth, token, OTHER).status_code == 200
    params = refused(pull(auth_berth, token, REPO))
    assert params.get("error") == "insufficient_scope"


def test_token_without_push(auth_berth, auth_users, image):
    token = oh.token_get(auth_berth.url, ("alice", auth_users["alice"]),
                         [oh.scope_string(REPO, {"pull"})]).json()["token"]
    assert pull(auth_berth, token).status_code == 200
    params = refused(push_start(auth_berth, token), actions="pull,push")
    assert params.get("error") == "insufficient_scope"
    resp = oh.Registry(auth_berth.url).put("/v2/%s/manifests/nope" % REPO, data=image.body,
                                           headers=dict(oh.bearer_header(token), **{"Content-Type": image.media_type}))
    oh.expect_error(resp, 401, "UNAUTHORIZED")
    assert oh.parse_challenge(resp.headers["WWW-Authenticate"])[1].get("error") == "insufficient_scope"
    alice = oh.Registry(auth_berth.url, auth=("alice", auth_users["alice"]))
    assert alice.get_manifest(REPO, "nope").status_code == 404
    assert alice.get_manifest(REPO, "v1").status_code == 200


def test_tampered_payload(auth_berth, auth_users, image):
    """A real token whose payload was rewritten to grant push keeps its old
    signature: refused for everything, pull included."""
    token = oh.token_get(auth_berth.url, ("bob", auth_users["bob"]),
                         [oh.scope_string(REPO, {"pull", "push"})]).json()["token"]
    assert pull(auth_berth, token).status_code == 200
    h, p, s = token.split(".")
    c = json.loads(oh.b64url_decode(p))
    assert c["access"] == [{"type": "repository", "name": REPO, "actions": ["pull"]}]
    c["access"][0]["actions"] = ["pull", "push"]
    tampered = ".".join([h, oh.b64url(json.dumps(c, separators=(",", ":"))), s])
    oh.remember_secret(tampered)
    params = refused(push_start(auth_berth, tampered), actions="pull,push")
    assert "error" not in params
    refused(pull(auth_berth, tampered))


@pytest.mark.parametrize("signature", ["empty", "original", "garbage"])
def test_alg_none(auth_berth, image, server_key, signature):
    real = forge(server_key)
    assert pull(auth_berth, real).status_code == 200
    h = oh.b64url(json.dumps({"alg": "none", "typ": "JWT"}))
    p = real.split(".")[1]
    sig = {"empty": "", "original": real.split(".")[2], "garbage": oh.b64url(os.urandom(64))}[signature]
    refused(pull(auth_berth, "%s.%s.%s" % (h, p, sig)))


@pytest.mark.parametrize("alg", ["None", "NONE", "ES384", "RS256", "EdDSA"])
def test_other_alg_names(auth_berth, image, server_key, alg):
    """A token signed correctly with ES256 but labelled otherwise is refused too."""
    path, kid = server_key
    refused(pull(auth_berth, forge(server_key, hdr=header(kid, alg=alg))))


@pytest.mark.parametrize("form", ["pem", "pem-no-newline", "der"])
def test_hs256_with_server_public_key(auth_berth, image, server_key, form):
    """The key confusion attack: HMAC keyed with the public key."""
    path, kid = server_key
    secret = oh.public_key(path, der=(form == "der"))
    if form == "pem-no-newline":
        secret = secret.rstrip(b"\n")
    token = oh.jwt_assemble(header(kid, alg="HS256"), claims(),
                            lambda data: hmac.new(secret, data, hashlib.sha256).digest())
    oh.remember_secret(token)
    refused(pull(auth_berth, token))


def test_token_with_own_jwk(auth_berth, image, server_key, attacker_key):
    """A token signed by another key that it carries itself (jwk header)."""
    _, kid = server_key
    spki = oh.public_key(attacker_key, der=True)
    for hdr in (header(oh.libtrust_kid(spki), jwk=oh.jwk_of(spki)), header(kid, jwk=oh.jwk_of(spki))):
        token = oh.jwt_assemble(hdr, claims(), oh.es256_signer(attacker_key))
        oh.remember_secret(token)
        refused(pull(auth_berth, token))


def test_token_with_jwk_of_server_key(auth_berth, image, server_key):
    """Even the server's own key is not taken from the token: a jwk member is refused."""
    path, kid = server_key
    refused(pull(auth_berth, forge(server_key, hdr=header(kid, jwk=oh.jwk_of(oh.public_key(path, der=True))))))


def test_token_with_x5c(auth_berth, image, server_key, attacker_key, tmp_path):
    _, kid = server_key
    cert = oh.self_signed_cert_der(attacker_key, str(tmp_path / "cert.der"))
    x5c = [base64.b64encode(cert).decode()]
    for hdr in (header(oh.libtrust_kid(oh.public_key(attacker_key, der=True)), x5c=x5c), header(kid, x5c=x5c)):
        token = oh.jwt_assemble(hdr, claims(), oh.es256_signer(attacker_key))
        oh.remember_secret(token)
        refused(pull(auth_berth, token))


@pytest.mark.parametrize("member", ["jku", "x5u"])
def test_token_with_key_url(auth_berth, image, server_key, member):
    path, kid = server_key
    refused(pull(auth_berth, forge(server_key, hdr=header(kid, **{member: "http://127.0.0.1:1/key"}))))


def test_other_key_with_same_kid(auth_berth, image, server_key, attacker_key):
    _, kid = server_key
    token = oh.jwt_assemble(header(kid), claims(), oh.es256_signer(attacker_key))
    oh.remember_secret(token)
    refused(pull(auth_berth, token))


def test_wrong_kid(auth_berth, image, server_key, attacker_key):
    """Signed by the server key but naming another key."""
    other = oh.libtrust_kid(oh.public_key(attacker_key, der=True))
    refused(pull(auth_berth, forge(server_key, hdr=header(other))))


@pytest.mark.parametrize("iss", ["other", "Berth", "berth ", ""])
def test_wrong_issuer(auth_berth, image, server_key, iss):
    refused(pull(auth_berth, forge(server_key, cl=claims(iss=iss))))


@pytest.mark.parametrize("aud", ["other", "berth/refresh", ["other"], [], ""])
def test_wrong_audience(auth_berth, image, server_key, aud):
    refused(pull(auth_berth, forge(server_key, cl=claims(aud=aud))))


def test_missing_issuer_and_audience(auth_berth, image, server_key):
    for drop in ("iss", "aud"):
        c = claims()
        del c[drop]
        refused(pull(auth_berth, forge(server_key, cl=c)))


@pytest.mark.parametrize("case", ["two-parts", "four-parts", "bad-base64", "padded", "not-json"])
def test_malformed_token(auth_berth, image, server_key, case):
    real = forge(server_key)
    h, p, s = real.split(".")
    bad = {
        "two-parts": h + "." + p,
        "four-parts": real + "." + s,
        "bad-base64": h + "." + p + "!" + "." + s,
        "padded": h + "." + p + "==." + s,
        "not-json": h + "." + oh.b64url(b"not json") + "." + s,
    }[case]
    refused(pull(auth_berth, bad))


def test_server_key_file_is_private(server_key):
    """Whoever reads the key can mint any token: berth creates it mode 0600."""
    mode = os.stat(server_key[0]).st_mode & 0o777
    assert mode == 0o600, "token.pem mode %o" % mode
