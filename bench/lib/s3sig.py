"""Just enough S3 for the cluster benchmark's ceiling and bookkeeping:
AWS Signature Version 4 (header form, path-style addressing, payload sent
as UNSIGNED-PAYLOAD, which s3api accepts) for GET, PUT, DELETE and
ListObjectsV2, sent with the benchmark's own HTTP client so that a direct
S3 GET is timed exactly like a pull through a registry."""

import datetime
import hashlib
import hmac
import re
import urllib.parse

import httpc

UNSIGNED = "UNSIGNED-PAYLOAD"


def _quote(s, safe="-_.~"):
    return urllib.parse.quote(s, safe=safe)


def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def sign(method, path, query, host, key_id, secret, region, now=None):
    """The headers that authorise one request. path: the already-encoded
    request path (/bucket/key); query: {name: value}, unencoded."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    headers = {"host": host, "x-amz-content-sha256": UNSIGNED, "x-amz-date": amz_date}
    names = sorted(headers)
    canonical_query = "&".join("%s=%s" % (_quote(k), _quote(v)) for k, v in sorted(query.items()))
    canonical = "\n".join([method, path, canonical_query,
                           "".join("%s:%s\n" % (n, headers[n]) for n in names),
                           ";".join(names), UNSIGNED])
    scope = "%s/%s/s3/aws4_request" % (day, region)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    k = _hmac(("AWS4" + secret).encode(), day)
    for part in (region, "s3", "aws4_request"):
        k = _hmac(k, part)
    signature = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    out = {"x-amz-content-sha256": UNSIGNED, "x-amz-date": amz_date,
           "Authorization": "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s"
                            % (key_id, scope, ";".join(names), signature)}
    return out


class S3:
    """One bucket of an S3 endpoint (http://host:port), path-style."""

    def __init__(self, endpoint, region, bucket, key_id, secret):
        u = urllib.parse.urlsplit(endpoint)
        if u.scheme != "http":
            raise ValueError("only plain-HTTP endpoints are supported here: %s" % endpoint)
        self.host, self.port = u.hostname, u.port or 80
        self.region, self.bucket = region, bucket
        self.key_id, self.secret = key_id, secret

    def conn(self):
        return httpc.Conn(self.host, self.port)

    def request(self, conn, method, key="", query=None, body=None, file=None, keep_body=True):
        path = "/" + self.bucket + ("/" + _quote(key, safe="-_.~/") if key else "")
        query = query or {}
        hdrs = sign(method, path, query, "%s:%d" % (self.host, self.port), self.key_id, self.secret,
                    self.region)
        if query:
            path += "?" + "&".join("%s=%s" % (_quote(k), _quote(v)) for k, v in sorted(query.items()))
        return conn.request(method, path, headers=hdrs, body=body, file=file, keep_body=keep_body)

    def list(self, conn, prefix):
        """Every (key, size) under prefix (ListObjectsV2, following continuation)."""
        out, token = [], None
        while True:
            q = {"list-type": "2", "prefix": prefix, "max-keys": "1000"}
            if token:
                q["continuation-token"] = token
            r = httpc.expect(self.request(conn, "GET", query=q), 200, what="S3 list")
            text = r.body.decode()
            for m in re.finditer(r"<Contents>(.*?)</Contents>", text, re.S):
                key = re.search(r"<Key>(.*?)</Key>", m.group(1), re.S).group(1)
                size = int(re.search(r"<Size>(\d+)</Size>", m.group(1)).group(1))
                out.append((_unescape(key), size))
            t = re.search(r"<NextContinuationToken>(.*?)</NextContinuationToken>", text, re.S)
            if "<IsTruncated>true</IsTruncated>" not in text or not t:
                return out
            token = _unescape(t.group(1))


def _unescape(s):
    return (s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
            .replace("&apos;", "'").replace("&amp;", "&"))
