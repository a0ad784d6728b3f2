/* err: the single table from error code to OCI code, HTTP status and message. */
#include "err.h"

static const struct err_desc table[] = {
	[-E_OK] = { "", 200, "ok" },
	[-E_BLOB_UNKNOWN] = { "BLOB_UNKNOWN", 404, "blob unknown to registry" },
	[-E_BLOB_UPLOAD_INVALID] = { "BLOB_UPLOAD_INVALID", 400, "blob upload invalid" },
	[-E_BLOB_UPLOAD_UNKNOWN] = { "BLOB_UPLOAD_UNKNOWN", 404, "blob upload unknown to registry" },
	[-E_DIGEST_INVALID] = { "DIGEST_INVALID", 400, "provided digest did not match uploaded content" },
	[-E_MANIFEST_BLOB_UNKNOWN] = { "MANIFEST_BLOB_UNKNOWN", 400, "manifest references a manifest or blob unknown to registry" },
	[-E_MANIFEST_INVALID] = { "MANIFEST_INVALID", 400, "manifest invalid" },
	[-E_MANIFEST_UNKNOWN] = { "MANIFEST_UNKNOWN", 404, "manifest unknown to registry" },
	[-E_NAME_INVALID] = { "NAME_INVALID", 400, "invalid repository name" },
	[-E_NAME_UNKNOWN] = { "NAME_UNKNOWN", 404, "repository name not known to registry" },
	[-E_SIZE_INVALID] = { "SIZE_INVALID", 400, "provided length did not match content length" },
	[-E_UNAUTHORIZED] = { "UNAUTHORIZED", 401, "authentication required" },
	[-E_DENIED] = { "DENIED", 403, "requested access to the resource is denied" },
	[-E_UNSUPPORTED] = { "UNSUPPORTED", 415, "the operation is unsupported" },
	[-E_TOOMANYREQUESTS] = { "TOOMANYREQUESTS", 429, "too many requests" },
	/* not a code of the spec: the router answers an invalid tag with one that is */
	[-E_TAG_INVALID] = { "MANIFEST_INVALID", 400, "invalid tag" },
	[-E_MANIFEST_TOO_BIG] = { "SIZE_INVALID", 413, "manifest too large" },
	[-E_RANGE_INVALID] = { "RANGE_INVALID", 416, "requested range not satisfiable" },
	[-E_UPLOAD_RANGE] = { "BLOB_UPLOAD_INVALID", 416, "chunk out of order" },
	[-E_SCHEMA1] = { "MANIFEST_INVALID", 400, "docker schema 1 manifests are not supported; push with a current client (schema 2 or OCI)" },
	[-E_MEDIATYPE_MISMATCH] = { "MANIFEST_INVALID", 400, "Content-Type does not match the manifest's mediaType" },
	[-E_METHOD] = { "UNSUPPORTED", 405, "method not allowed" },
	[-E_NOT_FOUND] = { "NOT_FOUND", 404, "no such endpoint" },
	[-E_PAGINATION] = { "PAGINATION_NUMBER_INVALID", 400, "invalid number of results requested" },
	[-E_BODY_TOO_BIG] = { "SIZE_INVALID", 413, "request body too large" },
	[-E_NO_SPACE] = { "UNKNOWN", 507, "insufficient storage on the registry" },
	[-E_IO] = { "UNKNOWN", 500, "storage i/o error" },
	[-E_INTERNAL] = { "UNKNOWN", 500, "internal error" },
	[-E_BUSY] = { "UNAVAILABLE", 503, "registry busy, retry" },
	[-E_DELETE_DISABLED] = { "UNSUPPORTED", 405, "deletes are disabled on this registry" },
	[-E_TAG_IMMUTABLE] = { "DENIED", 409, "tag is immutable" },
	[-E_UPLOAD_BUSY] = { "BLOB_UPLOAD_INVALID", 409, "upload is in use by another request" },
	[-E_BAD_REQUEST] = { "UNSUPPORTED", 400, "malformed request" },
	[-E_CONFIG] = { "UNKNOWN", 500, "configuration error" },
	[-E_EXISTS] = { "UNKNOWN", 409, "already exists" },
	[-E_TOO_MANY] = { "TOOMANYREQUESTS", 429, "limit reached" },
	[-E_STORE_UNAVAILABLE] = { "UNAVAILABLE", 503, "object store unavailable, retry later" },
	[-E_STORE] = { "UNKNOWN", 500, "object store error" },
	[-E_URI_TOO_LONG] = { "UNSUPPORTED", 414, "request target too long" },
	[-E_HEAD_TOO_BIG] = { "UNSUPPORTED", 431, "request header fields too large" },
};

const struct err_desc *err_desc(int err)
{
	if (err > 0 || err < E_ERR_MIN)
		err = E_INTERNAL;
	return &table[-err];
}
