-- Issue 16: a VM's network policy (mode, allow/deny rules, group) as the
-- JSON of api.NetPolicy ('' : the daemon's [network] default), and its
-- port forwards with its auto-forward switch (JSON, vms/forward.go).
-- No row: defaults. Deleting the VM deletes its row.
CREATE TABLE vm_network (
	vm_id  TEXT NOT NULL PRIMARY KEY REFERENCES vms(id) ON DELETE CASCADE,
	policy TEXT NOT NULL DEFAULT '',
	ports  TEXT NOT NULL DEFAULT ''
);
