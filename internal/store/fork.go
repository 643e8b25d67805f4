package store

import (
	"context"
	"database/sql"
	"net/netip"
	"time"
)

// ReserveForks inserts the children of a fork of parent (a VM id), each
// leased an address as ReserveVM does, and marks them pending, all in one
// transaction: either every child is recorded or none. It sets each IP.
// A name in use fails with ErrConflict, a full subnet with ErrNoAddress.
func (s *Store) ReserveForks(ctx context.Context, parent string, children []*VM, subnet netip.Prefix, gateway netip.Addr) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		now := time.Now().UnixNano()
		for _, v := range children {
			if err := reserveTx(ctx, tx, v, subnet, gateway); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO fork_pending(vm_id, parent, created_at) VALUES (?,?,?)`, v.ID, parent, now); err != nil {
				return err
			}
		}
		return nil
	})
}

// ForkDone records that a fork's child is whole: it is no longer pending.
func (s *Store) ForkDone(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM fork_pending WHERE vm_id = ?`, id)
	return err
}

// PendingForks is the ids of the children of forks that never finished.
func (s *Store) PendingForks(ctx context.Context) (map[string]bool, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT vm_id FROM fork_pending`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out[id] = true
	}
	return out, rows.Err()
}

// FreeAddresses is how many addresses of subnet no VM leases (network,
// gateway and broadcast excluded).
func (s *Store) FreeAddresses(ctx context.Context, subnet netip.Prefix, gateway netip.Addr) (int, error) {
	vms, err := s.ListVMs(ctx)
	if err != nil {
		return 0, err
	}
	used := map[netip.Addr]bool{gateway: true}
	for _, v := range vms {
		if a, err := netip.ParseAddr(v.IP); err == nil && subnet.Contains(a) {
			used[a] = true
		}
	}
	subnet = subnet.Masked()
	total := 1<<(subnet.Addr().BitLen()-subnet.Bits()) - 2 // network, broadcast
	if subnet.Contains(gateway) {
		return max(0, total-len(used)), nil
	}
	return max(0, total-len(used)+1), nil
}
