/* Unit tests for config/: the cluster shape (database, storage.backend, storage.s3), credential files, check output, reload. */
#include "t_config.h"

/* ---- the cluster shape: database, storage.backend, storage.s3 ---- */

#define PG_SECRET "pg-Secret-0xC0FFEE"
#define S3_AK "AKIAEXAMPLEKEY0001"
#define S3_SK "s3-Secret-wJalrXUtnFEMI"
#define S3_WITH(ep, bucket, ak, extra)                                                                   \
	"{\"endpoint\": \"" ep "\", \"bucket\": \"" bucket "\", \"access_key_file\": \"" ak "\", "           \
	"\"secret_key_file\": \"s3.secret\"" extra "}"
#define S3_OBJ(extra) S3_WITH("https://s3.lan:9000", "berth", "s3.key", extra)
#define S3_CFG(extra) "{\"storage\": {\"backend\": \"s3\", \"s3\": " S3_OBJ(extra) "}}"
#define S3_CFG_WITH(ep, bucket, ak) "{\"storage\": {\"backend\": \"s3\", \"s3\": " S3_WITH(ep, bucket, ak, "") "}}"
#define PG_CFG(extra) "{\"database\": {\"url\": \"postgresql://berth@db.lan/berth\"" extra "}}"

static int cwd_fd = -1;

/* The cluster tests run inside the scratch directory, so that messages name credential files as "pg.pw". */
static void enter_dir(void)
{
	cwd_fd = open(".", O_RDONLY | O_DIRECTORY);
	if (cwd_fd < 0 || chdir(dir)) {
		perror(dir);
		exit(1);
	}
}

static void leave_dir(void)
{
	if (fchdir(cwd_fd)) {
		perror("fchdir");
		exit(1);
	}
	close(cwd_fd);
}

/* The three credential files of the good configs. */
static void good_secrets(void)
{
	secret_file("pg.pw", PG_SECRET "\n", 0600);
	secret_file("s3.key", S3_AK "\r\n", 0640);
	secret_file("s3.secret", S3_SK, 0400);
}

static void test_cluster_good(void)
{
	struct config c;
	const char *kw[3], *val[3];
	clear_env();
	good_secrets();
	secret_file("ca.pem", "-----BEGIN CERTIFICATE-----\n", 0644); /* a CA bundle is no secret */
	CHECK_EQ_INT(load_env("{\"database\": {\"url\": \"postgresql://berth@db.lan:5432/berth\", \"password_file\": "
			      "\"pg.pw\"}, \"storage\": {\"delete\": false, \"backend\": \"s3\", \"redirect\": true, "
			      "\"s3\": {\"endpoint\": \"https://s3.lan:9000/\", \"region\": \"eu-west-3\", \"bucket\": "
			      "\"berth.images\", \"prefix\": \"team/registry\", \"path_style\": false, \"ca_file\": "
			      "\"ca.pem\", \"access_key_file\": \"s3.key\", \"secret_key_file\": \"s3.secret\", "
			      "\"redirect_expiry\": \"10m\"}}}", &c), 0);
	CHECK_STR(c.database.url, "postgresql://berth@db.lan:5432/berth");
	CHECK_STR(c.database.password.value, PG_SECRET);
	CHECK_STR(c.database.password.file, "pg.pw");
	CHECK_EQ_INT(c.database.password.from, CONFIG_SECRET_FILE);
	CHECK_EQ_INT(c.delete_enabled, 0);
	CHECK_EQ_INT(c.storage_backend, CONFIG_BACKEND_S3);
	CHECK_EQ_INT(c.storage_redirect, 1);
	CHECK_EQ_INT(c.s3.given, 1);
	CHECK_STR(c.s3.endpoint, "https://s3.lan:9000");
	CHECK_STR(c.s3.region, "eu-west-3");
	CHECK_STR(c.s3.bucket, "berth.images");
	CHECK_STR(c.s3.prefix, "team/registry/");
	CHECK_EQ_INT(c.s3.path_style, 0);
	CHECK_STR(c.s3.ca_file, "ca.pem");
	CHECK_STR(c.s3.access_key.value, S3_AK);
	CHECK_STR(c.s3.access_key.file, "s3.key");
	CHECK_STR(c.s3.secret_key.value, S3_SK);
	CHECK_EQ_INT(c.s3.secret_key.from, CONFIG_SECRET_FILE);
	CHECK_EQ_INT(c.s3.redirect_expiry_s, 600);
	config_pg_params(&c, kw, val);
	CHECK_STR(kw[0], "dbname");
	CHECK_STR(val[0], "postgresql://berth@db.lan:5432/berth");
	CHECK_STR(kw[1], "password");
	CHECK_STR(val[1], PG_SECRET);
	CHECK(kw[2] == NULL && val[2] == NULL);
	config_release(&c);

	/* Defaults, and the single-node shape when nothing is said. */
	CHECK_EQ_INT(load_env(S3_CFG(""), &c), 0);
	CHECK_STR(c.s3.region, "us-east-1");
	CHECK_EQ_INT(c.s3.path_style, 1);
	CHECK(c.s3.prefix == NULL && c.s3.ca_file == NULL && c.database.url == NULL);
	CHECK_EQ_INT(c.s3.redirect_expiry_s, 300);
	CHECK_EQ_INT(c.storage_redirect, 0);
	config_pg_params(&c, kw, val);
	CHECK(val[0] == NULL && val[1] == NULL);
	config_release(&c);
	CHECK_EQ_INT(load_env("{}", &c), 0);
	CHECK_EQ_INT(c.storage_backend, CONFIG_BACKEND_FILESYSTEM);
	CHECK(c.database.url == NULL && !c.s3.given && c.s3.access_key.value == NULL);
	config_release(&c);

	CHECK_EQ_INT(load_env(S3_CFG(", \"prefix\": \"\", \"ca_file\": null"), &c), 0);
	CHECK(c.s3.prefix == NULL && c.s3.ca_file == NULL);
	config_release(&c);
	CHECK_EQ_INT(load_env(S3_CFG_WITH("http://[::1]:8080", "berth", "s3.key"), &c), 0);
	CHECK_STR(c.s3.endpoint, "http://[::1]:8080");
	config_release(&c);
	CHECK_EQ_INT(load_env(S3_CFG(", \"prefix\": \"a/b/\"") , &c), 0);
	CHECK_STR(c.s3.prefix, "a/b/");
	config_release(&c);

	good("{\"storage\": {\"backend\": \"filesystem\", \"redirect\": false, \"delete\": true}}");
	/* No password: libpq's own sources (PGPASSWORD, ~/.pgpass) or a method without one. */
	CHECK_EQ_INT(load_env(PG_CFG(""), &c), 0);
	CHECK_EQ_INT(c.database.password.from, CONFIG_SECRET_UNSET);
	CHECK(c.database.password.value == NULL);
	config_release(&c);
	good("{\"database\": {\"url\": \"host=db.lan port=5432 dbname=berth user=berth\", \"password_file\": \"pg.pw\"}}");
	/* Group-readable is fine (root:berth 0640); CRLF and a missing final newline both read. */
	CHECK_EQ_INT(load_env(S3_CFG(""), &c), 0);
	CHECK_STR(c.s3.access_key.value, S3_AK);
	config_release(&c);
}

static void test_cluster_bad(void)
{
	char big[5000];
	clear_env();
	good_secrets();
	bad("{\"database\": \"postgresql://db.lan/berth\"}", "F: \"database\": expected an object");
	bad("{\"database\": {}}", "F: \"database\": \"url\" is required (leave \"database\" out for SQLite under root)");
	bad(PG_CFG(", \"port\": 5"), "F: \"database.port\": unknown key (expected one of: url, password_file)");
	bad(PG_CFG(", \"password\": \"" PG_SECRET "\""),
	    "F: \"database.password\": unknown key (expected one of: url, password_file)");
	bad("{\"database\": {\"url\": \"postgresql://berth:" PG_SECRET "@db.lan/berth\"}}",
	    "F: \"database.url\": the connection string must not hold a password: put it in \"password_file\" "
	    "or the PGPASSWORD environment variable");
	bad("{\"database\": {\"url\": \"db.lan\"}}",
	    "F: \"database.url\": expected a PostgreSQL connection URI like \"postgresql://berth@db.lan:5432/berth\" "
	    "or key=value pairs like \"host=db.lan dbname=berth user=berth\"");
	bad(PG_CFG(", \"password_file\": \"\""), "F: \"database.password_file\": expected a non-empty string (a file name)");
	bad(PG_CFG(", \"password_file\": \"missing.pw\""),
	    "F: \"database.password_file\": cannot open \"missing.pw\": No such file or directory");

	/* Credential files: permissions, type and content. */
	secret_file("open.pw", PG_SECRET, 0604);
	bad(PG_CFG(", \"password_file\": \"open.pw\""),
	    "F: \"database.password_file\": \"open.pw\" is readable by every user (mode 0604): remove that "
	    "(chmod o-rwx)");
	CHECK(mkdir("adir", 0700) == 0);
	bad(PG_CFG(", \"password_file\": \"adir\""), "F: \"database.password_file\": \"adir\" is not a regular file");
	rmdir("adir");
	CHECK(mkfifo("fifo", 0600) == 0);
	bad(PG_CFG(", \"password_file\": \"fifo\""), "F: \"database.password_file\": \"fifo\" is not a regular file");
	unlink("fifo");
	secret_file("empty.pw", "\n", 0600);
	bad(PG_CFG(", \"password_file\": \"empty.pw\""), "F: \"database.password_file\": \"empty.pw\" is empty");
	secret_file("two.pw", PG_SECRET "\nsecond\n", 0600);
	bad(PG_CFG(", \"password_file\": \"two.pw\""),
	    "F: \"database.password_file\": \"two.pw\" holds more than one line");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	secret_file("big.pw", big, 0600);
	bad(PG_CFG(", \"password_file\": \"big.pw\""),
	    "F: \"database.password_file\": \"big.pw\" is too large for a credential (over 4096 bytes)");
	secret_file("sp.key", "AKIA SPACE", 0600);
	bad(S3_CFG_WITH("https://s3.lan:9000", "berth", "sp.key"),
	    "F: \"storage.s3.access_key_file\": \"sp.key\" holds a space, a control character or a non-ASCII "
	    "character");
	secret_file("s3.secret", S3_SK, 0644);
	bad(S3_CFG(""), "F: \"storage.s3.secret_key_file\": \"s3.secret\" is readable by every user (mode 0644): "
	    "remove that (chmod o-rwx)");
	secret_file("s3.secret", S3_SK, 0400);

	/* storage */
	bad("{\"storage\": {\"backend\": \"gcs\"}}", "F: \"storage.backend\": expected \"filesystem\" or \"s3\"");
	bad("{\"storage\": {\"backend\": \"s3\"}}", "F: \"storage\": \"backend\" is \"s3\" but there is no \"s3\" object");
	bad("{\"storage\": {\"redirect\": true}}",
	    "F: \"storage\": \"redirect\": true needs \"backend\": \"s3\" (a filesystem has no URL to redirect to)");
	bad("{\"storage\": {\"redirect\": \"yes\"}}", "F: \"storage.redirect\": expected true or false");
	bad("{\"storage\": {\"s3\": " S3_OBJ("") "}}",
	    "F: \"storage\": an \"s3\" object needs \"backend\": \"s3\" (the backend is \"filesystem\")");
	bad("{\"storage\": {\"backend\": \"filesystem\", \"s3\": " S3_OBJ("") "}}",
	    "F: \"storage\": an \"s3\" object needs \"backend\": \"s3\" (the backend is \"filesystem\")");
	bad("{\"storage\": {\"backend\": \"s3\", \"s3\": []}}", "F: \"storage.s3\": expected an object");
	bad("{\"storage\": {\"backend\": \"s3\", \"s3\": {\"endpoint\": \"https://s3.lan\"}}}",
	    "F: \"storage.s3\": \"bucket\" is required");
	bad("{\"storage\": {\"backend\": \"s3\", \"s3\": {\"bucket\": \"berth\"}}}",
	    "F: \"storage.s3\": \"endpoint\" is required");
	bad(S3_CFG(", \"secret_key\": \"" S3_SK "\""),
	    "F: \"storage.s3.secret_key\": unknown key (expected one of: endpoint, region, bucket, prefix, "
	    "path_style, ca_file, access_key_file, secret_key_file, redirect_expiry)");
	bad(S3_CFG_WITH("https://s3.lan:9000", "Berth", "s3.key"),
	    "F: \"storage.s3.bucket\": expected an S3 bucket name: 3 to 63 lowercase letters, digits, '.' and '-', "
	    "starting and ending with a letter or digit");
	bad(S3_CFG_WITH("https://s3.lan:9000/bucket", "berth", "s3.key"),
	    "F: \"storage.s3.endpoint\": expected an http:// or https:// URL with a host and an optional port, "
	    "like \"https://s3.example.com:9000\" (no path, query or user)");
	bad(S3_CFG(", \"region\": \"us east\""),
	    "F: \"storage.s3.region\": expected a region name like \"us-east-1\" (letters, digits, '.', '_', '-')");
	bad(S3_CFG(", \"prefix\": \"/registry\""), "F: \"storage.s3.prefix\": the prefix must not start with '/'");
	bad(S3_CFG(", \"prefix\": \"a/../b\""),
	    "F: \"storage.s3.prefix\": the prefix must not have a \".\" or \"..\" component");
	bad(S3_CFG(", \"prefix\": 5"), "F: \"storage.s3.prefix\": expected a string like \"registry/\" (or \"\" for none)");
	bad(S3_CFG(", \"path_style\": 1"), "F: \"storage.s3.path_style\": expected true or false");
	bad(S3_CFG(", \"ca_file\": \"nope.pem\""), "F: \"storage.s3.ca_file\": cannot open \"nope.pem\": No such file "
	    "or directory");
	bad(S3_CFG(", \"redirect_expiry\": \"30s\""), "F: \"storage.s3.redirect_expiry\": \"30s\" is out of range (1m to 7d)");
	bad(S3_CFG(", \"redirect_expiry\": \"8d\""), "F: \"storage.s3.redirect_expiry\": \"8d\" is out of range (1m to 7d)");
}

/* Expects check to return want (0 or -1) for each value; a refusal's reason must not be not_why (when given). */
static void check_each(int (*check)(const char *, const char **), const char *const *v, size_t n, int want,
		       const char *not_why)
{
	for (size_t i = 0; i < n; i++) {
		const char *why = "";
		int rc = check(v[i], &why);
		if (rc != want)
			fprintf(stderr, "%s \"%s\" %s\n", want ? "accepted" : "refused", v[i], rc ? why : "");
		CHECK_EQ_INT(rc, want);
		CHECK(!rc || !not_why || strcmp(why, not_why));
	}
}
#define CHECK_EACH(fn, list, want, not_why) check_each(fn, list, sizeof(list) / sizeof(list[0]), want, not_why)

static void test_cluster_checkers(void)
{
	static const char pw[] = "the connection string must not hold a password: put it in \"password_file\" or the "
		"PGPASSWORD environment variable";
	static const char *good_pg[] = {
		"postgresql://berth@db.lan:5432/berth", "postgres://db.lan/berth", "postgresql://",
		"postgresql:///berth?host=/var/run/postgresql", "postgresql://berth@[::1]:5432/berth",
		"postgresql://h1:5432,h2:5433/berth?target_session_attrs=read-write",
		"postgresql://berth@db.lan/berth?sslmode=verify-full&sslrootcert=/etc/berth/pg-ca.pem",
		"postgresql://us%40er@db.lan/b%20db", "host=db.lan port=5432 dbname=berth user=berth",
		"host = db.lan dbname='my db' user=berth", "dbname='it\\'s' sslmode=require",
		"passfile=/etc/berth/pgpass host=db", "dbname=b\xc3\xa9rth",
	};
	static const char *bad_pg[] = {
		"", "berth", "mysql://db/berth", "postgresql://db.lan:99999/berth", "postgresql://db.lan:port/berth",
		"postgresql://a@b@c/berth", "postgresql://db lan/berth", "postgresql://db.lan/berth?sslmode",
		"postgresql://db.lan/berth?=x", "postgresql://db.lan/%zz", "postgresql://db.lan/berth#frag",
		"postgresql://db.lan/berth?a=1&&b=2", "postgresql://db.lan:0/berth", "host=db.lan dbname", "host=",
		"host='unterminated", "Host=db", "host=db\nport=1", "host=db\tport=1",
	};
	static const char *pw_pg[] = {
		"postgresql://berth:hunter2@db.lan/berth", "postgresql://berth:@db.lan/berth",
		"postgresql://db.lan/berth?password=hunter2", "postgresql://db.lan/berth?sslmode=require&sslpassword=hunter2",
		"host=db password=hunter2", "host=db  password = 'hunter2'", "sslpassword=x host=db",
	};
	static const char *good_bucket[] = { "berth", "my.bucket-1", "abc", "a23456789012345678901234567890123456789012345678901234567890123" };
	static const char *bad_bucket[] = { "ab", "a234567890123456789012345678901234567890123456789012345678901234", "Berth",
		"-berth", "berth-", "my..bucket", "192.168.1.1", "xn--berth", "berth-s3alias", "my_bucket", "sthree-x" };
	static const char *good_prefix[] = { "", "registry/", "a/b/c", "a.b/c-d_e/", "..a/b" };
	static const char *bad_prefix[] = { "/registry", "a//b", "../x", "a/./b", "a/..", "a b", "a\\b", "%", "./" };
	static const char *good_ep[] = { "http://127.0.0.1:8080", "https://s3.lan:9000/", "https://[::1]:9000", "https://s3.lan" };
	static const char *bad_ep[] = { "s3.lan:9000", "https://s3.lan/bucket", "https://user@s3.lan", "https://s3.lan?x=1",
		"ftp://s3.lan", "https://s3.lan:0", "https://", "https://s3.lan//" };
	const char *why;
	CHECK_EACH(config_pg_url_check, good_pg, 0, NULL);
	CHECK_EACH(config_pg_url_check, bad_pg, -1, pw); /* refused for their shape, not as passwords */
	for (size_t i = 0; i < sizeof(pw_pg) / sizeof(pw_pg[0]); i++) {
		why = NULL;
		CHECK_EQ_INT(config_pg_url_check(pw_pg[i], &why), -1);
		CHECK_STR(why, pw);
	}
	CHECK_EACH(config_s3_bucket_check, good_bucket, 0, NULL);
	CHECK_EACH(config_s3_bucket_check, bad_bucket, -1, NULL);
	CHECK_EACH(config_s3_prefix_check, good_prefix, 0, NULL);
	CHECK_EACH(config_s3_prefix_check, bad_prefix, -1, NULL);
	CHECK_EACH(config_s3_endpoint_check, good_ep, 0, NULL);
	CHECK_EACH(config_s3_endpoint_check, bad_ep, -1, NULL);
	CHECK_EQ_INT(config_s3_region_check("us-east-1", &why), 0);
	CHECK_EQ_INT(config_s3_region_check("garage", &why), 0);
	CHECK_EQ_INT(config_s3_region_check("", &why), -1);
	CHECK_EQ_INT(config_s3_region_check("us east", &why), -1);
}

/* config_load() with the file as json; msg gets the error. */
static int load_full(const char *json, struct config *c)
{
	struct buf err = BUF_INIT;
	int rc;
	write_file(file, json);
	rc = config_load(c, file, &err);
	snprintf(msg, sizeof(msg), "%s", err.buf);
	buf_release(&err);
	return rc;
}

static void test_cluster_env(void)
{
	static const char no_secret[] = "storage.s3: no secret key: set \"secret_key_file\" or AWS_SECRET_ACCESS_KEY";
	struct config c;
	const char *no_keys = "{\"storage\": {\"backend\": \"s3\", \"s3\": {\"endpoint\": \"http://127.0.0.1:8080\", "
		"\"bucket\": \"berth\"}}}";
	clear_env();
	good_secrets();
	setenv("AWS_ACCESS_KEY_ID", "AKIAFROMENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secret-from-env", 1);
	CHECK_EQ_INT(load_full(no_keys, &c), 0);
	CHECK_STR(c.s3.access_key.value, "AKIAFROMENV");
	CHECK_EQ_INT(c.s3.access_key.from, CONFIG_SECRET_ENV);
	CHECK(c.s3.access_key.file == NULL);
	CHECK_STR(c.s3.secret_key.value, "secret-from-env");
	config_release(&c);

	/* A file wins over the environment, key by key. */
	CHECK_EQ_INT(load_full("{\"storage\": {\"backend\": \"s3\", \"s3\": {\"endpoint\": \"http://127.0.0.1:8080\", "
			       "\"bucket\": \"berth\", \"secret_key_file\": \"s3.secret\"}}}", &c), 0);
	CHECK_STR(c.s3.access_key.value, "AKIAFROMENV");
	CHECK_STR(c.s3.secret_key.value, S3_SK);
	CHECK_EQ_INT(c.s3.secret_key.from, CONFIG_SECRET_FILE);
	config_release(&c);

	unsetenv("AWS_SECRET_ACCESS_KEY");
	CHECK_EQ_INT(load_full(no_keys, &c), E_CONFIG);
	CHECK_STR(msg, no_secret);
	config_release(&c);
	setenv("AWS_SECRET_ACCESS_KEY", "", 1); /* empty counts as unset */
	CHECK_EQ_INT(load_full(no_keys, &c), E_CONFIG);
	CHECK_STR(msg, no_secret);
	config_release(&c);
	clear_env();
	setenv("AWS_SECRET_ACCESS_KEY", "secret-from-env", 1);
	CHECK_EQ_INT(load_full(no_keys, &c), E_CONFIG);
	CHECK_STR(msg, "storage.s3: no access key: set \"access_key_file\" or AWS_ACCESS_KEY_ID");
	config_release(&c);
	clear_env();
	CHECK_EQ_INT(load_full(no_keys, &c), E_CONFIG);
	CHECK_STR(msg, "storage.s3: no credentials: set \"access_key_file\" or AWS_ACCESS_KEY_ID, and "
		  "\"secret_key_file\" or AWS_SECRET_ACCESS_KEY");
	config_release(&c);
	setenv("AWS_ACCESS_KEY_ID", "AKIAFROMENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "has space-" S3_SK, 1);
	CHECK_EQ_INT(load_full(no_keys, &c), E_CONFIG);
	CHECK_STR(msg, "AWS_SECRET_ACCESS_KEY holds a space, a control character or a non-ASCII character");
	config_release(&c);

	/* The filesystem backend never reads the AWS variables. */
	CHECK_EQ_INT(load_full("{}", &c), 0);
	CHECK_EQ_INT(c.s3.access_key.from + c.s3.secret_key.from, CONFIG_SECRET_UNSET);
	config_release(&c);

	clear_env();
	setenv("PGPASSWORD", PG_SECRET, 1);
	CHECK_EQ_INT(load_full(PG_CFG(""), &c), 0);
	CHECK_EQ_INT(c.database.password.from, CONFIG_SECRET_ENV);
	CHECK_STR(c.database.password.value, PG_SECRET);
	config_release(&c);
	setenv("PGPASSWORD", "other", 1);
	CHECK_EQ_INT(load_full(PG_CFG(", \"password_file\": \"pg.pw\""), &c), 0);
	CHECK_EQ_INT(c.database.password.from, CONFIG_SECRET_FILE);
	CHECK_STR(c.database.password.value, PG_SECRET);
	config_release(&c);
	CHECK_EQ_INT(load_full("{}", &c), 0);
	CHECK_EQ_INT(c.database.password.from, CONFIG_SECRET_UNSET);
	config_release(&c);
	setenv("PGPASSWORD", PG_SECRET "\nx", 1);
	CHECK_EQ_INT(load_full(PG_CFG(""), &c), E_CONFIG);
	CHECK_STR(msg, "PGPASSWORD holds more than one line");
	config_release(&c);
	clear_env();
}

/* Appends the contents of the file at path to out; 0, or -1 when it cannot be opened. */
static int slurp(const char *path, struct buf *out)
{
	char chunk[4096];
	size_t n;
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while ((n = fread(chunk, 1, sizeof(chunk), f)))
		buf_add(out, chunk, n);
	fclose(f);
	return 0;
}

/* Runs `config check -c path` with stdout and stderr captured into out; returns its exit code. */
static int check_captured(const char *path, struct buf *out)
{
	char cap[sizeof(dir) + 16];
	char *argv[] = { "check", "-c", (char *)path, NULL };
	int fd, saved1, saved2, rc;
	snprintf(cap, sizeof(cap), "%s/captured", dir);
	fflush(stdout);
	fflush(stderr);
	fd = open(cap, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	saved1 = dup(1);
	saved2 = dup(2);
	if (fd < 0 || saved1 < 0 || saved2 < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) {
		perror("capture");
		exit(1);
	}
	close(fd);
	rc = config_check_main(3, argv);
	fflush(stdout);
	fflush(stderr);
	if (dup2(saved1, 1) < 0 || dup2(saved2, 2) < 0) {
		perror("capture");
		exit(1);
	}
	close(saved1);
	close(saved2);
	buf_reset(out);
	if (slurp(cap, out)) {
		perror(cap);
		exit(1);
	}
	unlink(cap);
	return rc;
}

static int shows_secret(const struct buf *out)
{
	return strstr(out->buf, PG_SECRET) || strstr(out->buf, S3_AK) || strstr(out->buf, S3_SK) ||
	       strstr(out->buf, "hunter2");
}

static void test_cluster_check_output(void)
{
	struct buf out = BUF_INIT;
	struct config c;
	clear_env();
	good_secrets();
	setenv("AWS_SECRET_ACCESS_KEY", S3_SK, 1);
	write_file(file, "{\"database\": {\"url\": \"postgresql://berth@db.lan/berth\", \"password_file\": \"pg.pw\"}, "
			 "\"storage\": {\"backend\": \"s3\", \"redirect\": true, \"s3\": {\"endpoint\": "
			 "\"https://s3.lan:9000\", \"bucket\": \"berth\", \"prefix\": \"registry\", "
			 "\"access_key_file\": \"s3.key\"}}}");
	CHECK_EQ_INT(check_captured(file, &out), 0);
	CHECK_STR(out.buf, "warning: access: no rules, so nobody can pull or push\n"
		  "database.url: postgresql://berth@db.lan/berth\n"
		  "database.password: (from file pg.pw)\n"
		  "storage.backend: s3\n"
		  "storage.redirect: true (presigned URLs valid 300s)\n"
		  "storage.s3.endpoint: https://s3.lan:9000\n"
		  "storage.s3.region: us-east-1\n"
		  "storage.s3.bucket: berth\n"
		  "storage.s3.prefix: \"registry/\"\n"
		  "storage.s3.path_style: true\n"
		  "storage.s3.ca_file: (the system's)\n"
		  "storage.s3.access_key: (from file s3.key)\n"
		  "storage.s3.secret_key: (from environment AWS_SECRET_ACCESS_KEY)\n"
		  "config ok\n");
	CHECK(!shows_secret(&out));

	/* Only a database: the storage line says where blobs stay. */
	clear_env();
	setenv("PGPASSWORD", PG_SECRET, 1);
	write_file(file, "{\"root\": \"/srv/berth\", \"database\": {\"url\": \"host=db dbname=berth\"}}");
	CHECK_EQ_INT(check_captured(file, &out), 0);
	CHECK(strstr(out.buf, "database.password: (from environment PGPASSWORD)\n"
			      "storage.backend: filesystem (under /srv/berth)\nconfig ok\n") != NULL);
	CHECK(!shows_secret(&out));
	/* The single-node shape prints what it always did. */
	write_file(file, "{\"access\": [{\"repositories\": [\"**\"], \"anonymous\": true, \"actions\": [\"pull\"]}]}");
	CHECK_EQ_INT(check_captured(file, &out), 0);
	CHECK_STR(out.buf, "config ok\n");

	/* Refusals never quote a secret: a password in the URL, a bad credential file, a bad variable. */
	write_file(file, "{\"database\": {\"url\": \"postgresql://berth:hunter2@db.lan/berth\"}}");
	CHECK_EQ_INT(check_captured(file, &out), 1);
	CHECK(strstr(out.buf, "must not hold a password") != NULL);
	CHECK(!shows_secret(&out));
	write_file(file, "{\"database\": {\"url\": \"host=db password=hunter2\"}}");
	CHECK_EQ_INT(check_captured(file, &out), 1);
	CHECK(!shows_secret(&out));
	secret_file("two.pw", PG_SECRET "\nhunter2\n", 0600);
	write_file(file, PG_CFG(", \"password_file\": \"two.pw\""));
	CHECK_EQ_INT(check_captured(file, &out), 1);
	CHECK(strstr(out.buf, "\"two.pw\" holds more than one line") != NULL);
	CHECK(!shows_secret(&out));
	secret_file("open.pw", PG_SECRET, 0644);
	write_file(file, PG_CFG(", \"password_file\": \"open.pw\""));
	CHECK_EQ_INT(check_captured(file, &out), 1);
	CHECK(!shows_secret(&out));
	setenv("PGPASSWORD", "hunter2\n", 1);
	write_file(file, PG_CFG(""));
	CHECK_EQ_INT(check_captured(file, &out), 1);
	CHECK(!shows_secret(&out));
	clear_env();
	/* described from a loaded config too, with nothing when neither PostgreSQL nor S3 is used */
	CHECK_EQ_INT(load("{}", &c), 0);
	buf_reset(&out);
	config_describe_cluster(&c, &out);
	CHECK_EQ_INT(out.len, 0);
	config_release(&c);
	buf_release(&out);
}

static void test_cluster_reload(void)
{
	struct config cur, next;
	struct buf changed = BUF_INIT;
	clear_env();
	good_secrets();
	CHECK_EQ_INT(load(S3_CFG(""), &cur), 0);
	CHECK_EQ_INT(load(S3_CFG(""), &next), 0);
	config_keep_cluster(&next, &cur, &changed);
	CHECK_EQ_INT(changed.len, 0);
	config_release(&next);

	secret_file("s3.secret", S3_SK "-rotated", 0600);
	CHECK_EQ_INT(load("{\"database\": {\"url\": \"postgresql://db.lan/berth\", \"password_file\": \"pg.pw\"}, "
			  "\"storage\": {\"backend\": \"s3\", \"redirect\": true, \"s3\": " S3_WITH("https://s3.lan:9000", "other", "s3.key", "")
			  "}}", &next), 0);
	config_keep_cluster(&next, &cur, &changed);
	CHECK_STR(changed.buf, "database.url\ndatabase.password_file\nstorage.redirect\nstorage.s3.bucket\n"
		  "storage.s3.secret_key_file\n");
	CHECK(next.database.url == NULL && next.database.password.value == NULL);
	CHECK_EQ_INT(next.storage_redirect, 0);
	CHECK_STR(next.s3.bucket, "berth");
	CHECK_STR(next.s3.secret_key.value, S3_SK);
	config_release(&next);

	/* Back to the filesystem: refused as a change, the S3 settings stay. */
	buf_reset(&changed);
	CHECK_EQ_INT(load("{}", &next), 0);
	config_keep_cluster(&next, &cur, &changed);
	CHECK(strncmp(changed.buf, "storage.backend\n", 16) == 0);
	CHECK_EQ_INT(next.storage_backend, CONFIG_BACKEND_S3);
	CHECK_STR(next.s3.endpoint, "https://s3.lan:9000");
	CHECK_STR(next.s3.access_key.value, S3_AK);
	config_release(&next);
	config_release(&cur);
	buf_release(&changed);
	secret_file("s3.secret", S3_SK, 0400);
}

/* config/cluster-example.json with its /etc/berth/ files made in the scratch directory. */
static void test_cluster_example(void)
{
	char path[4096];
	struct buf text = BUF_INIT, err = BUF_INIT;
	struct config c;
	clear_env();
	good_secrets();
	secret_file("s3-ca.pem", "-----BEGIN CERTIFICATE-----\n", 0644);
	source_path(path, sizeof(path), "config/cluster-example.json");
	/* the path is relative to the build directory */
	if (fchdir(cwd_fd) || slurp(path, &text) || chdir(dir)) {
		fprintf(stderr, "cannot read %s\n", path);
		CHECK(0);
		if (chdir(dir))
			perror(dir);
		buf_release(&text);
		return;
	}
	/* the example's absolute /etc/berth/ paths, pointed at the files made above */
	for (char *p; (p = strstr(text.buf, "/etc/berth/"));)
		memmove(p, p + 11, strlen(p + 11) + 1);
	text.len = strlen(text.buf);
	write_file(file, text.buf);
	CHECK_EQ_INT(config_load(&c, file, &err), 0);
	if (err.len)
		fprintf(stderr, "%s\n", err.buf);
	CHECK_EQ_INT(c.storage_backend, CONFIG_BACKEND_S3);
	CHECK_STR(c.s3.prefix, "registry/");
	CHECK_STR(c.database.password.value, PG_SECRET);
	config_release(&c);
	buf_release(&text);
	buf_release(&err);
}

static void test_cluster(void)
{
	enter_dir();
	test_cluster_good();
	test_cluster_bad();
	test_cluster_checkers();
	test_cluster_env();
	test_cluster_check_output();
	test_cluster_reload();
	test_cluster_example();
	leave_dir();
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/berth-test-config-cluster-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(file, sizeof(file), "%s/config.json", dir);
	test_cluster();
	t_rmtree(dir);
	return t_done();
}
