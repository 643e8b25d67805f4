-- Issue 13: a VM's snapshots (memory + devices + disks at one instant).
-- The files live in the VM's directory (snapshots/<name>/); the row is
-- what `vm snapshot ls` lists. Deleting the VM deletes its rows.
-- layout: the machine's shape a restore must match (vCPUs, memory, the
-- device list), as banger renders it (vms/snapmeta.go).
CREATE TABLE snapshots (
	vm_id          TEXT    NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
	name           TEXT    NOT NULL,
	created_at     INTEGER NOT NULL,
	bytes          INTEGER NOT NULL,
	vmm            TEXT    NOT NULL,
	vmm_version    TEXT    NOT NULL,
	banger_version TEXT    NOT NULL,
	layout         TEXT    NOT NULL,
	PRIMARY KEY (vm_id, name)
);
