"""Failed logins are limited per client address and per user name
("limits": {"login_failures_per_minute": N}): after N failures further
attempts get 429 TOOMANYREQUESTS, even with the right password, until the
minute has passed; callers already holding a token are not affected.

Other client addresses are loopback addresses other than 127.0.0.1 (all of
127.0.0.0/8 reaches the daemon on Linux)."""

import time

import pytest
import requests
import requests.adapters

import ocihelp as oh

LIMIT = 3
REPO = "team-a/limited"


class SourceAddressAdapter(requests.adapters.HTTPAdapter):
    def __init__(self, source, **kw):
        self.source = source
        super().__init__(**kw)

    def init_poolmanager(self, *args, **kw):
        kw["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kw)


def client_at(address):
    s = requests.Session()
    s.mount("http://", SourceAddressAdapter(address))
    return s


def token_get(session, b, user, password, scopes=(oh.scope_string(REPO, {"pull"}),)):
    return session.get(b.url + "/auth/token", timeout=60,
                       params=[("service", "berth")] + [("scope", s) for s in scopes],
                       headers={"Authorization": oh.basic_value(user, password)})


def password_post(session, b, user, password):
    oh.remember_secret(password)
    return session.post(b.url + "/auth/token", timeout=60,
                        data={"grant_type": "password", "username": user, "password": password,
                              "service": "berth", "scope": oh.scope_string(REPO, {"pull"})})


def basic_get(session, b, user, password):
    return session.get(b.url + "/v2/%s/tags/list" % REPO, timeout=60,
                       headers={"Authorization": oh.basic_value(user, password)})


def seen_in_log(b, *words):
    """Whether a log line holds all words (the request line is written just
    after the reply, so give it a moment)."""
    deadline = time.time() + 10
    while True:
        if any(all(w in line for w in words) for line in b.read_log().splitlines()):
            return True
        if time.time() > deadline:
            return False
        time.sleep(0.05)


def limited(resp):
    oh.expect_error(resp, 429, "TOOMANYREQUESTS")
    assert "token" not in resp.json()


@pytest.fixture
def limited_berth(make_berth, auth_config, auth_users):
    b = make_berth(config=auth_config(limits={"login_failures_per_minute": LIMIT})).start()
    admin = oh.Registry(b.url, auth=("admin", auth_users["admin"]))
    img = admin.push_image(REPO, tag="v1")
    admin.close()
    return b, img


def test_failed_logins_are_limited(limited_berth, auth_users):
    b, img = limited_berth
    here, elsewhere = client_at("127.0.0.1"), client_at("127.0.0.2")
    # sanity: the second address reaches the daemon and is seen as itself
    assert basic_get(elsewhere, b, "bob", auth_users["bob"]).status_code == 200
    assert seen_in_log(b, "127.0.0.2", "/v2/%s/tags/list" % REPO)
    # bob holds a token before the trouble starts
    resp = token_get(here, b, "bob", auth_users["bob"])
    assert resp.status_code == 200
    bob_token = resp.json()["token"]
    # LIMIT wrong passwords for alice from 127.0.0.1, each an ordinary 401
    for i in range(LIMIT):
        oh.expect_error(token_get(here, b, "alice", "wrong-password-%d" % i), 401, "UNAUTHORIZED")
    # now even the right password is refused, on every way in
    limited(token_get(here, b, "alice", auth_users["alice"]))
    limited(password_post(here, b, "alice", auth_users["alice"]))
    limited(basic_get(here, b, "alice", auth_users["alice"]))
    # from this address, for every user (names known or not)
    limited(token_get(here, b, "bob", auth_users["bob"]))
    limited(token_get(here, b, "mallory", "whatever-password"))
    # and for alice, from every address
    limited(token_get(elsewhere, b, "alice", auth_users["alice"]))
    limited(basic_get(elsewhere, b, "alice", auth_users["alice"]))
    # bob from elsewhere is neither
    resp = token_get(elsewhere, b, "bob", auth_users["bob"])
    assert resp.status_code == 200
    # bob's token keeps pulling from the blocked address
    resp = here.get(b.url + "/v2/%s/manifests/v1" % REPO,
                    headers=dict(oh.bearer_header(bob_token), Accept=oh.MT_OCI_MANIFEST), timeout=60)
    assert resp.status_code == 200 and resp.content == img.body
    # anonymous callers need no login and are not limited
    resp = here.get(b.url + "/v2/", timeout=60)
    oh.expect_error(resp, 401, "UNAUTHORIZED")


def test_wrong_passwords_on_registry_routes_count_too(limited_berth, auth_users):
    b, _ = limited_berth
    here = client_at("127.0.0.3")
    for i in range(LIMIT):
        oh.expect_error(basic_get(here, b, "carol", "wrong-password-%d" % i), 401, "UNAUTHORIZED")
    limited(basic_get(here, b, "carol", auth_users["carol"]))
    limited(token_get(here, b, "carol", auth_users["carol"]))


def test_limit_lifts_after_the_window(limited_berth, auth_users):
    """Waits for the one-minute window to pass (the slowest test of the suite)."""
    b, img = limited_berth
    here = client_at("127.0.0.4")
    for i in range(LIMIT):
        oh.expect_error(token_get(here, b, "dave", "wrong-password-%d" % i), 401, "UNAUTHORIZED")
    started = time.time()
    limited(token_get(here, b, "dave", auth_users["dave"]))
    time.sleep(55)
    deadline = started + 90
    while True:
        resp = token_get(here, b, "dave", auth_users["dave"])
        if resp.status_code != 429:
            break
        limited(resp)
        assert time.time() < deadline, "still limited long after the window"
        time.sleep(1)
    assert resp.status_code == 200, (resp.status_code, resp.content[:300])
    token = resp.json()["token"]
    resp = here.get(b.url + "/v2/%s/manifests/v1" % REPO,
                    headers=dict(oh.bearer_header(token), Accept=oh.MT_OCI_MANIFEST), timeout=60)
    assert resp.status_code == 200 and resp.content == img.body
