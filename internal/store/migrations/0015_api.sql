-- Issue 15: the HTTP API. api_keys: keys are random (32 bytes from
-- crypto/rand), so a SHA-256 of the key is enough to store (no salt or
-- slow hash: there is no dictionary to guess from); the key itself is
-- shown once. prefix: the key's first characters, to tell keys apart in
-- `api key ls`.
CREATE TABLE api_keys (
	name       TEXT    PRIMARY KEY,
	hash       BLOB    NOT NULL UNIQUE,
	prefix     TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	last_used  INTEGER NOT NULL DEFAULT 0
);
-- sandboxes: what E2B's control plane keeps with a sandbox beside the
-- VM itself. deadline: unix nanoseconds when the daemon kills (or, with
-- auto_pause, pauses) the VM; 0 = none (paused, or never set). metadata
-- and env_vars are JSON objects of strings. access_token: what envd
-- requests for this sandbox carry (X-Access-Token), returned by create
-- and connect as E2B's envdAccessToken; it dies with the sandbox.
-- Deleting the VM deletes the row.
CREATE TABLE sandboxes (
	vm_id      TEXT    PRIMARY KEY REFERENCES vms(id) ON DELETE CASCADE,
	template   TEXT    NOT NULL,
	metadata   TEXT    NOT NULL DEFAULT '{}',
	env_vars   TEXT    NOT NULL DEFAULT '{}',
	auto_pause INTEGER NOT NULL DEFAULT 0,
	deadline   INTEGER NOT NULL DEFAULT 0,
	started_at INTEGER NOT NULL,
	access_token TEXT NOT NULL DEFAULT ''
);
