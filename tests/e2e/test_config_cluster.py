"""`berth config check` on the cluster shape's settings (database, storage.backend, storage.s3): good files
print the settings with credentials only by their source, bad ones name the key and the problem, and no
credential ever reaches stdout or stderr. `berth serve` stops clearly on a database it cannot reach, and a
reload cannot switch a running daemon to the cluster shape."""

import json
import os
import signal
import subprocess
import time

import pytest

from conftest import BERTH_BIN, ROOT, Berth

PG_PW = "pg-pw-Zq81x"
ACCESS = "AKIAE2EEXAMPLE01"
SECRET = "s3-e2e-secret-Kf93"
SECRETS = (PG_PW, ACCESS, SECRET, "hunter2")


def env(**extra):
    e = {k: v for k, v in os.environ.items()
         if not k.startswith("BERTH_") and not k.startswith("AWS_") and k != "PGPASSWORD"}
    e.update(extra)
    return e


def check(cfg_path, **extra_env):
    p = subprocess.run([BERTH_BIN, "config", "check", "-c", str(cfg_path)], env=env(**extra_env),
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    out, err = p.stdout.decode(), p.stderr.decode()
    for s in SECRETS:
        assert s not in out and s not in err, (s, out, err)
    return p.returncode, out, err


def secret(path, text, mode=0o600):
    path.write_text(text)
    path.chmod(mode)
    return str(path)


@pytest.fixture
def files(tmp_path):
    return {"pg": secret(tmp_path / "pg.pw", PG_PW + "\n"),
            "ak": secret(tmp_path / "s3.key", ACCESS + "\n", 0o640),
            "sk": secret(tmp_path / "s3.secret", SECRET + "\n", 0o400)}


def write(tmp_path, cfg, name="berth.json"):
    p = tmp_path / name
    p.write_text(json.dumps(cfg))
    return p


def s3(files, **over):
    obj = {"endpoint": "https://s3.lan:9000", "bucket": "berth", "access_key_file": files["ak"],
           "secret_key_file": files["sk"]}
    obj.update(over)
    return {"backend": "s3", "s3": obj}


def test_check_prints_the_cluster_settings_without_secrets(tmp_path, files):
    cfg = write(tmp_path, {"database": {"url": "postgresql://berth@db.lan:5432/berth", "password_file": files["pg"]},
                           "storage": s3(files, prefix="registry", path_style=False)})
    rc, out, err = check(cfg)
    assert rc == 0, err
    assert out.endswith("config ok\n")
    assert "database.url: postgresql://berth@db.lan:5432/berth\n" in out
    assert "database.password: (from file %s)\n" % files["pg"] in out
    assert "storage.backend: s3\n" in out
    assert "storage.s3.prefix: \"registry/\"\n" in out
    assert "storage.s3.path_style: false\n" in out
    assert "storage.s3.access_key: (from file %s)\n" % files["ak"] in out
    assert "storage.s3.secret_key: (from file %s)\n" % files["sk"] in out


def test_credentials_from_the_environment(tmp_path, files):
    cfg = write(tmp_path, {"database": {"url": "host=db.lan dbname=berth user=berth"},
                           "storage": {"backend": "s3", "s3": {"endpoint": "http://127.0.0.1:8080",
                                                                "bucket": "berth"}}})
    rc, out, err = check(cfg, AWS_ACCESS_KEY_ID=ACCESS, AWS_SECRET_ACCESS_KEY=SECRET, PGPASSWORD=PG_PW)
    assert rc == 0, err
    assert "database.password: (from environment PGPASSWORD)\n" in out
    assert "storage.s3.access_key: (from environment AWS_ACCESS_KEY_ID)\n" in out
    assert "storage.s3.secret_key: (from environment AWS_SECRET_ACCESS_KEY)\n" in out
    rc, out, err = check(cfg, AWS_ACCESS_KEY_ID=ACCESS)
    assert rc == 1
    assert err == ("error: storage.s3: no secret key: set \"secret_key_file\" or AWS_SECRET_ACCESS_KEY\n")
    rc, out, err = check(cfg)
    assert rc == 1 and "storage.s3: no credentials: set \"access_key_file\" or AWS_ACCESS_KEY_ID, and " \
                       "\"secret_key_file\" or AWS_SECRET_ACCESS_KEY" in err, err


def test_the_example_file(tmp_path):
    """config/cluster-example.json, its /etc/berth/ files made in a scratch directory."""
    with open(os.path.join(ROOT, "config", "cluster-example.json")) as f:
        text = f.read()
    for name, content, mode in (("pg.pw", PG_PW, 0o600), ("s3.key", ACCESS, 0o600), ("s3.secret", SECRET, 0o600),
                                ("s3-ca.pem", "-----BEGIN CERTIFICATE-----\n", 0o644)):
        secret(tmp_path / name, content + "\n", mode)
    cfg = tmp_path / "cluster.json"
    cfg.write_text(text.replace("/etc/berth/", str(tmp_path) + "/"))
    rc, out, err = check(cfg)
    assert rc == 0, err
    assert "storage.s3.bucket: berth\n" in out and out.endswith("config ok\n")


BAD = [
    # (config, the error after "error: <file>: ")
    ({"database": {"url": "postgresql://berth:hunter2@db.lan/berth"}},
     "\"database.url\": the connection string must not hold a password: put it in \"password_file\" or the "
     "PGPASSWORD environment variable"),
    ({"database": {"url": "host=db.lan password=hunter2"}},
     "\"database.url\": the connection string must not hold a password"),
    ({"database": {"url": "postgresql://db.lan/berth?sslpassword=hunter2"}},
     "\"database.url\": the connection string must not hold a password"),
    ({"database": {"url": "db.lan"}}, "\"database.url\": expected a PostgreSQL connection URI"),
    ({"database": {}}, "\"database\": \"url\" is required"),
    ({"database": {"url": "postgresql://db.lan/berth", "password": "hunter2"}},
     "\"database.password\": unknown key (expected one of: url, password_file)"),
    ({"storage": {"backend": "gcs"}}, "\"storage.backend\": expected \"filesystem\" or \"s3\""),
    ({"storage": {"backend": "s3"}}, "\"storage\": \"backend\" is \"s3\" but there is no \"s3\" object"),
    ({"storage": {"redirect": True}}, "\"storage\": \"redirect\": true needs \"backend\": \"s3\""),
    ({"storage": {"s3": {"endpoint": "https://s3.lan", "bucket": "berth"}}},
     "\"storage\": an \"s3\" object needs \"backend\": \"s3\""),
    ({"storage": {"backend": "s3", "s3": {"endpoint": "https://s3.lan", "bucket": "berth",
                                          "secret_key": "hunter2"}}},
     "\"storage.s3.secret_key\": unknown key"),
    ({"storage": {"backend": "s3", "s3": {"endpoint": "https://s3.lan/path", "bucket": "berth"}}},
     "\"storage.s3.endpoint\": expected an http:// or https:// URL with a host and an optional port"),
    ({"storage": {"backend": "s3", "s3": {"endpoint": "https://s3.lan", "bucket": "Bad_Bucket"}}},
     "\"storage.s3.bucket\": expected an S3 bucket name"),
    ({"storage": {"backend": "s3", "s3": {"endpoint": "https://s3.lan"}}}, "\"storage.s3\": \"bucket\" is required"),
    ({"storage": {"backend": "s3", "s3": {"endpoint": "https://s3.lan", "bucket": "berth", "prefix": "../x"}}},
     "\"storage.s3.prefix\": the prefix must not have a \".\" or \"..\" component"),
]


@pytest.mark.parametrize("cfg,want", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_configs_name_the_key(tmp_path, cfg, want):
    p = write(tmp_path, cfg)
    rc, out, err = check(p, AWS_ACCESS_KEY_ID=ACCESS, AWS_SECRET_ACCESS_KEY=SECRET)
    assert rc == 1 and out == ""
    assert err.startswith("error: %s: %s" % (p, want)), err


def test_credential_files_are_checked(tmp_path, files):
    def db(pw_file):
        return write(tmp_path, {"database": {"url": "postgresql://db.lan/berth", "password_file": pw_file}})
    missing = str(tmp_path / "missing.pw")
    rc, _, err = check(db(missing))
    assert rc == 1 and "cannot open \"%s\": No such file or directory" % missing in err, err
    exposed = secret(tmp_path / "exposed.pw", PG_PW + "\n", 0o644)
    rc, _, err = check(db(exposed))
    assert rc == 1 and "\"%s\" is readable by every user (mode 0644)" % exposed in err, err
    two = secret(tmp_path / "two.pw", "hunter2\n" + PG_PW + "\n")
    rc, _, err = check(db(two))
    assert rc == 1 and "\"%s\" holds more than one line" % two in err, err
    rc, _, err = check(db(str(tmp_path)))
    assert rc == 1 and "is not a regular file" in err, err
    os.mkfifo(str(tmp_path / "fifo"), 0o600)
    rc, _, err = check(db(str(tmp_path / "fifo")))  # must not hang
    assert rc == 1 and "is not a regular file" in err, err
    spaced = secret(tmp_path / "spaced.key", "AKIA " + ACCESS + "\n")
    rc, _, err = check(write(tmp_path, {"storage": s3(files, access_key_file=spaced)}))
    assert rc == 1 and "holds a space, a control character or a non-ASCII character" in err, err
    rc, _, err = check(write(tmp_path, {"storage": {"backend": "s3", "s3": {"endpoint": "https://s3.lan",
                                                                         "bucket": "berth"}}}),
                       AWS_ACCESS_KEY_ID=ACCESS, AWS_SECRET_ACCESS_KEY="hunter2 x")
    assert rc == 1 and "AWS_SECRET_ACCESS_KEY holds a space" in err, err


def test_serve_on_an_unreachable_database_stops_clearly(tmp_path, files):
    """berth serve runs on the cluster shape (tests/e2e/test_cluster_basic.py); a database that cannot be
    reached stops the start with a clear message and no credential in it."""
    cfg = {"database": {"url": "postgresql://berth@127.0.0.1:1/berth?connect_timeout=3",
                        "password_file": files["pg"]}, "storage": s3(files)}
    p = write(tmp_path, cfg)
    r = subprocess.run([BERTH_BIN, "serve", "-c", str(p), "--root", str(tmp_path / "data"),
                        "--listen", "127.0.0.1:0"], env=env(), stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=60)
    err = r.stderr.decode()
    assert r.returncode == 1, err
    assert "cannot open the PostgreSQL database of database.url" in err, err
    for s in SECRETS:
        assert s not in err


def test_reload_cannot_switch_to_the_cluster_shape(tmp_path, files):
    b = Berth(config={"access": [{"repositories": ["**"], "anonymous": True, "actions": ["pull"]}]})
    b.start()
    try:
        cfg = {"access": [{"repositories": ["**"], "anonymous": True, "actions": ["pull"]}],
               "database": {"url": "postgresql://db.lan/berth", "password_file": files["pg"]},
               "storage": s3(files)}
        with open(b.config_path, "w") as f:
            json.dump(cfg, f)
        b.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while "configuration from" not in b.read_log() and time.time() < deadline:
            time.sleep(0.05)
        log = b.read_log()
        msgs = [json.loads(line)["msg"] for line in log.splitlines() if line.startswith("{")]
        for key in ("database.url", "database.password_file", "storage.backend", "storage.s3.endpoint",
                    "storage.s3.bucket", "storage.s3.access_key_file", "storage.s3.secret_key_file"):
            assert "reload: \"%s\" changed; it takes effect only after a restart" % key in msgs, log
        for s in SECRETS:
            assert s not in log
        assert b.proc.poll() is None
    finally:
        b.cleanup()
