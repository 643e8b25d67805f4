CREATE TABLE images (
	name       TEXT PRIMARY KEY,
	path       TEXT NOT NULL,
	uuid       TEXT NOT NULL DEFAULT '',
	size_bytes INTEGER NOT NULL,
	source     TEXT NOT NULL,
	created_at INTEGER NOT NULL
);

CREATE TABLE kernels (
	name       TEXT PRIMARY KEY,
	dir        TEXT NOT NULL,
	release    TEXT NOT NULL,
	source     TEXT NOT NULL,
	created_at INTEGER NOT NULL
);

CREATE TABLE vms (
	id           TEXT PRIMARY KEY,
	name         TEXT NOT NULL UNIQUE,
	image        TEXT NOT NULL REFERENCES images(name),
	kernel       TEXT NOT NULL REFERENCES kernels(name),
	vmm          TEXT NOT NULL,
	vcpu         INTEGER NOT NULL,
	memory_mib   INTEGER NOT NULL,
	disk_bytes   INTEGER NOT NULL,
	ip           TEXT NOT NULL UNIQUE,
	mac          TEXT NOT NULL,
	overlay_uuid TEXT NOT NULL,
	work_uuid    TEXT NOT NULL,
	state        TEXT NOT NULL,
	last_error   TEXT NOT NULL DEFAULT '',
	created_at   INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL
);
