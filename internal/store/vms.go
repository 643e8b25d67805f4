package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// VM states.
const (
	StateCreating = "creating"
	StateStarting = "starting"
	StateRunning  = "running"
	StateStopping = "stopping"
	StateStopped  = "stopped"
	StateFailed   = "failed"
)

// VM is one VM's durable record.
type VM struct {
	ID          string
	Name        string
	Image       string
	Kernel      string
	VMM         string
	VCPU        int
	MemoryMiB   int
	DiskBytes   int64
	IP          string
	MAC         string
	OverlayUUID string
	WorkUUID    string
	State       string
	LastError   string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

const vmCols = `id, name, image, kernel, vmm, vcpu, memory_mib, disk_bytes, ip, mac, overlay_uuid, work_uuid, state, last_error, created_at, updated_at`

func scanVM(row interface{ Scan(...any) error }) (VM, error) {
	var v VM
	var c, u int64
	err := row.Scan(&v.ID, &v.Name, &v.Image, &v.Kernel, &v.VMM, &v.VCPU, &v.MemoryMiB, &v.DiskBytes,
		&v.IP, &v.MAC, &v.OverlayUUID, &v.WorkUUID, &v.State, &v.LastError, &c, &u)
	v.CreatedAt, v.UpdatedAt = time.Unix(0, c), time.Unix(0, u)
	return v, err
}

// ReserveVM inserts v, leasing the lowest free address of subnet (skipping
// the network, gateway and broadcast addresses), in one transaction so
// concurrent creates never share a name or an address. It sets v.IP.
func (s *Store) ReserveVM(ctx context.Context, v *VM, subnet netip.Prefix, gateway netip.Addr) error {
	return s.tx(ctx, func(tx *sql.Tx) error { return reserveTx(ctx, tx, v, subnet, gateway) })
}

// reserveTx is ReserveVM inside tx (fork.go reserves several in one).
func reserveTx(ctx context.Context, tx *sql.Tx, v *VM, subnet netip.Prefix, gateway netip.Addr) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM vms WHERE name = ?`, v.Name).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("vm %q: %w", v.Name, ErrConflict)
	}
	used := map[netip.Addr]bool{}
	rows, err := tx.QueryContext(ctx, `SELECT ip FROM vms`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var ip string
		if err := rows.Scan(&ip); err != nil {
			rows.Close()
			return err
		}
		if a, err := netip.ParseAddr(ip); err == nil {
			used[a] = true
		}
	}
	rows.Close()
	ip, err := freeAddr(subnet, gateway, used)
	if err != nil {
		return err
	}
	v.IP = ip.String()
	now := time.Now()
	v.CreatedAt, v.UpdatedAt = now, now
	_, err = tx.ExecContext(ctx, `INSERT INTO vms(`+vmCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		v.ID, v.Name, v.Image, v.Kernel, v.VMM, v.VCPU, v.MemoryMiB, v.DiskBytes, v.IP, v.MAC,
		v.OverlayUUID, v.WorkUUID, v.State, v.LastError, now.UnixNano(), now.UnixNano())
	if isUnique(err) {
		return fmt.Errorf("vm %q: %w", v.Name, ErrConflict)
	}
	return err
}

// ErrNoAddress means every address of the subnet is leased.
var ErrNoAddress = errors.New("no free address in subnet")

func freeAddr(subnet netip.Prefix, gateway netip.Addr, used map[netip.Addr]bool) (netip.Addr, error) {
	subnet = subnet.Masked()
	for a := subnet.Addr().Next(); subnet.Contains(a); a = a.Next() {
		if !subnet.Contains(a.Next()) { // broadcast
			break
		}
		if a == gateway || used[a] {
			continue
		}
		return a, nil
	}
	return netip.Addr{}, fmt.Errorf("%w %s", ErrNoAddress, subnet)
}

// GetVM returns the VM with this exact name or id.
func (s *Store) GetVM(ctx context.Context, nameOrID string) (VM, error) {
	v, err := scanVM(s.db.QueryRowContext(ctx, `SELECT `+vmCols+` FROM vms WHERE name = ? OR id = ?`, nameOrID, nameOrID))
	if errors.Is(err, sql.ErrNoRows) {
		return v, fmt.Errorf("vm %q: %w", nameOrID, ErrNotFound)
	}
	return v, err
}

// ListVMs returns every VM ordered by creation.
func (s *Store) ListVMs(ctx context.Context) ([]VM, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+vmCols+` FROM vms ORDER BY created_at`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []VM
	for rows.Next() {
		v, err := scanVM(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// SetVMState records a state and the error that led to it ("" clears it).
func (s *Store) SetVMState(ctx context.Context, id, state, lastErr string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE vms SET state = ?, last_error = ?, updated_at = ? WHERE id = ?`,
		state, lastErr, time.Now().UnixNano(), id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("vm %s: %w", id, ErrNotFound)
	}
	return nil
}

// DeleteVM removes the VM row, releasing its name and address.
func (s *Store) DeleteVM(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM vms WHERE id = ?`, id)
	return err
}

// SetVMSize records new sizes for a VM.
func (s *Store) SetVMSize(ctx context.Context, id string, vcpu, memMiB int, diskBytes int64) error {
	res, err := s.db.ExecContext(ctx, `UPDATE vms SET vcpu = ?, memory_mib = ?, disk_bytes = ?, updated_at = ? WHERE id = ?`,
		vcpu, memMiB, diskBytes, time.Now().UnixNano(), id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("vm %s: %w", id, ErrNotFound)
	}
	return nil
}

// SetVMDiskUUIDs records the filesystem UUIDs of a VM's overlay and work
// disks (a warm clone's disks are copies of its template's).
func (s *Store) SetVMDiskUUIDs(ctx context.Context, id, overlay, work string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE vms SET overlay_uuid = ?, work_uuid = ?, updated_at = ? WHERE id = ?`,
		overlay, work, time.Now().UnixNano(), id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("vm %s: %w", id, ErrNotFound)
	}
	return nil
}
