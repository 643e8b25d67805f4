package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// VM states of issue 13, beside those in vms.go.
const (
	// StatePaused: the VMM runs, the vCPUs are stopped (`vm pause`).
	StatePaused = "paused"
	// StateSaved: no VMM; the VM's whole state is in its saved/ directory
	// and `vm start` continues it (`vm stop --save`).
	StateSaved = "saved"
)

// Snapshot is one snapshot's record; its files are in the VM's
// directory (vmdir.Dir.Snapshot).
type Snapshot struct {
	VMID          string
	Name          string
	CreatedAt     time.Time
	Bytes         int64 // allocated on disk: state and disk copies
	VMM           string
	VMMVersion    string
	BangerVersion string
	Layout        string
}

const snapCols = `vm_id, name, created_at, bytes, vmm, vmm_version, banger_version, layout`

func scanSnapshot(row interface{ Scan(...any) error }) (Snapshot, error) {
	var s Snapshot
	var c int64
	err := row.Scan(&s.VMID, &s.Name, &c, &s.Bytes, &s.VMM, &s.VMMVersion, &s.BangerVersion, &s.Layout)
	s.CreatedAt = time.Unix(0, c)
	return s, err
}

// PutSnapshot inserts a snapshot; a name the VM already uses is
// ErrConflict.
func (s *Store) PutSnapshot(ctx context.Context, sn Snapshot) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO snapshots(`+snapCols+`) VALUES (?,?,?,?,?,?,?,?)`,
		sn.VMID, sn.Name, sn.CreatedAt.UnixNano(), sn.Bytes, sn.VMM, sn.VMMVersion, sn.BangerVersion, sn.Layout)
	if isUnique(err) {
		return fmt.Errorf("snapshot %q: %w", sn.Name, ErrConflict)
	}
	return err
}

// GetSnapshot returns one snapshot of a VM.
func (s *Store) GetSnapshot(ctx context.Context, vmID, name string) (Snapshot, error) {
	sn, err := scanSnapshot(s.db.QueryRowContext(ctx, `SELECT `+snapCols+` FROM snapshots WHERE vm_id = ? AND name = ?`, vmID, name))
	if errors.Is(err, sql.ErrNoRows) {
		return sn, fmt.Errorf("snapshot %q: %w", name, ErrNotFound)
	}
	return sn, err
}

// ListSnapshots returns a VM's snapshots, oldest first; an empty vmID
// lists every VM's.
func (s *Store) ListSnapshots(ctx context.Context, vmID string) ([]Snapshot, error) {
	q, args := `SELECT `+snapCols+` FROM snapshots ORDER BY created_at, name`, []any{}
	if vmID != "" {
		q, args = `SELECT `+snapCols+` FROM snapshots WHERE vm_id = ? ORDER BY created_at, name`, []any{vmID}
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Snapshot
	for rows.Next() {
		sn, err := scanSnapshot(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sn)
	}
	return out, rows.Err()
}

// DeleteSnapshot removes one snapshot's row.
func (s *Store) DeleteSnapshot(ctx context.Context, vmID, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM snapshots WHERE vm_id = ? AND name = ?`, vmID, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("snapshot %q: %w", name, ErrNotFound)
	}
	return nil
}
