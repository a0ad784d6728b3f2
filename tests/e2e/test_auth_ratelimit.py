"""Failed password logins are limited per client address and user name
("limits": {"login_failures_per_minute": N}) and per client address (three
times N, across user names): past the limit, password attempts from that
address (for that user) get 429 TOOMANYREQUESTS with Retry-After until the
minute has passed, before any password hashing runs.

Failures from one address never refuse the same user from another address,
so an attacker who knows a user name cannot lock its owner out; personal
access tokens (no password hashing) are not limited at all; callers already
holding a token are not affected.

Other client addresses are loopback addresses other than 127.0.0.1 (all of
127.0.0.0/8 reaches the daemon on Linux). The window passes through the
test build's clock, not by sleeping."""

import concurrent.futures
import os
import threading
import time

import pytest
import requests
import requests.adapters

import ocihelp as oh

LIMIT = 3
PER_ADDRESS = 3 * LIMIT
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


WAYS_IN = (token_get, password_post, basic_get)


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
    assert resp.headers["Content-Type"].startswith("application/json")
    assert "token" not in resp.json()
    wait = int(resp.headers["Retry-After"])
    assert 1 <= wait <= 60, wait
    return wait


def ok(resp):
    assert resp.status_code == 200, (resp.status_code, resp.content[:300])
    return resp


def fail(session, b, user, n, way=token_get):
    for i in range(n):
        oh.expect_error(way(session, b, user, "wrong-password-%s" % os.urandom(4).hex()), 401, "UNAUTHORIZED")


@pytest.fixture
def limited_berth(make_berth, auth_config, auth_users):
    b = make_berth(config=auth_config(limits={"login_failures_per_minute": LIMIT})).start()
    admin = oh.Registry(b.url, auth=("admin", auth_users["admin"]))
    img = admin.push_image(REPO, tag="v1")
    admin.close()
    return b, img


def test_attacker_cannot_lock_out_the_owner(limited_berth, auth_users):
    """An attacker hammers alice's name with wrong passwords from 127.0.0.2
    all along; alice, from 127.0.0.3, logs in with her password and with a
    personal access token, with Basic on /v2/ and at the token endpoint,
    every time. Each round moves the clock past the cache and the window, so
    her password is hashed again while the attacker has fresh tries."""
    b, _ = limited_berth
    pat = b.create_pat("alice", "ci")
    attacker, owner = client_at("127.0.0.2"), client_at("127.0.0.3")
    stop = threading.Event()
    seen = {"refused": 0, "wrong": 0}

    def attack():
        s = client_at("127.0.0.2")
        while not stop.is_set():
            for way in WAYS_IN:
                resp = way(s, b, "alice", "wrong-password-%s" % os.urandom(4).hex())
                assert resp.status_code in (401, 429), (resp.status_code, resp.content[:300])
                seen["refused" if resp.status_code == 429 else "wrong"] += 1

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        hammers = [pool.submit(attack) for _ in range(2)]
        try:
            for _ in range(4):
                b.advance_clock(61)
                # the attacker uses up alice's tries from its address (the hammers spend some too)
                replies = [basic_get(attacker, b, "alice", "wrong-%s" % os.urandom(4).hex())
                           for _ in range(LIMIT + 1)]
                limited(replies[-1])
                limited(token_get(attacker, b, "alice", auth_users["alice"]))
                for way in WAYS_IN:
                    ok(way(owner, b, "alice", auth_users["alice"]))
                for way in (token_get, basic_get):
                    ok(way(owner, b, "alice", pat))
                    ok(way(owner, b, "alice", auth_users["alice"]))
                # the attacker's own address is still refused (the right password it does
                # not know would pass: once checked, it is accepted from the cache)
                limited(basic_get(attacker, b, "alice", "wrong-%s" % os.urandom(4).hex()))
        finally:
            stop.set()
        for h in hammers:
            h.result()
    assert seen["refused"] > 0


def test_attackers_address_is_limited(limited_berth, auth_users):
    b, img = limited_berth
    here, elsewhere = client_at("127.0.0.2"), client_at("127.0.0.4")
    # sanity: the second address reaches the daemon and is seen as itself
    ok(basic_get(elsewhere, b, "bob", auth_users["bob"]))
    assert seen_in_log(b, "127.0.0.4", "/v2/%s/tags/list" % REPO)
    pat = b.create_pat("bob", "bob-ci")
    # bob holds a token before the trouble starts
    bob_token = ok(token_get(here, b, "bob", auth_users["bob"])).json()["token"]
    # LIMIT wrong passwords for alice from here, each an ordinary 401
    fail(here, b, "alice", LIMIT)
    # now even the right password is refused from here, on every way in
    for way in WAYS_IN:
        limited(way(here, b, "alice", auth_users["alice"]))
    # not elsewhere
    for way in WAYS_IN:
        ok(way(elsewhere, b, "alice", auth_users["alice"]))
    # other users from here have their own tries, until the address has used up its own
    fail(here, b, "bob", LIMIT, basic_get)
    fail(here, b, "mallory", PER_ADDRESS - 2 * LIMIT, password_post)
    for user in ("erin", "dave", "nobody"):
        limited(token_get(here, b, user, auth_users.get(user, "whatever-password")))
    limited(basic_get(here, b, "bob", "wrong-password"))
    # personal access tokens are no password guesses: never limited
    ok(token_get(here, b, "bob", pat))
    ok(basic_get(here, b, "bob", pat))
    # bob's token keeps pulling from the limited address
    resp = here.get(b.url + "/v2/%s/manifests/v1" % REPO,
                    headers=dict(oh.bearer_header(bob_token), Accept=oh.MT_OCI_MANIFEST), timeout=60)
    assert resp.status_code == 200 and resp.content == img.body
    # anonymous callers need no login and are not limited
    oh.expect_error(here.get(b.url + "/v2/", timeout=60), 401, "UNAUTHORIZED")


def test_wrong_passwords_on_registry_routes_count_too(limited_berth, auth_users):
    b, _ = limited_berth
    here = client_at("127.0.0.5")
    fail(here, b, "carol", LIMIT, basic_get)
    limited(basic_get(here, b, "carol", auth_users["carol"]))
    limited(token_get(here, b, "carol", auth_users["carol"]))
    ok(token_get(client_at("127.0.0.6"), b, "carol", auth_users["carol"]))


def test_concurrent_attempts_cannot_overrun_the_limit(limited_berth):
    """Attempts count while their password is being checked: a burst gets no
    more checks than the limit, the rest are refused at once."""
    b, _ = limited_berth
    sessions = [client_at("127.0.0.7") for _ in range(4 * LIMIT)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(sessions)) as pool:
        replies = list(pool.map(lambda s: token_get(s, b, "dave", "wrong-%s" % os.urandom(4).hex()), sessions))
    statuses = sorted(r.status_code for r in replies)
    assert set(statuses) <= {401, 429}, statuses
    assert statuses.count(401) <= LIMIT, statuses
    for r in replies:
        if r.status_code == 429:
            limited(r)


def test_limit_lifts_after_the_window(limited_berth, auth_users):
    b, img = limited_berth
    here = client_at("127.0.0.8")
    fail(here, b, "dave", LIMIT)
    wait = limited(token_get(here, b, "dave", auth_users["dave"]))
    # not before the window has passed
    b.advance_clock(max(wait - 5, 0))
    limited(token_get(here, b, "dave", auth_users["dave"]))
    b.advance_clock(6)
    token = ok(token_get(here, b, "dave", auth_users["dave"])).json()["token"]
    resp = here.get(b.url + "/v2/%s/manifests/v1" % REPO,
                    headers=dict(oh.bearer_header(token), Accept=oh.MT_OCI_MANIFEST), timeout=60)
    assert resp.status_code == 200 and resp.content == img.body
