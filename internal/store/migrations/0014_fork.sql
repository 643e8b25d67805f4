-- Issue 14: `vm fork`. The children of a fork in progress: inserted with
-- their VM rows (state creating) in one transaction, removed when a child
-- is whole (running from the fork's state with its own identity). At
-- daemon start a VM still listed here was cut off mid-fork, and reconcile
-- removes it whole (vms/forkreconcile.go). parent: the VM forked.
CREATE TABLE fork_pending (
	vm_id     TEXT    NOT NULL PRIMARY KEY REFERENCES vms(id) ON DELETE CASCADE,
	parent    TEXT    NOT NULL,
	created_at INTEGER NOT NULL
);
