package store

import (
	"context"
	"database/sql"
	"errors"
)

// PutNetPolicy records a VM's network policy (JSON of api.NetPolicy).
func (s *Store) PutNetPolicy(ctx context.Context, vmID, policy string) error {
	return s.putVMNetwork(ctx, "policy", vmID, policy)
}

// putVMNetwork sets one column of a VM's vm_network row.
func (s *Store) putVMNetwork(ctx context.Context, col, vmID, v string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO vm_network (vm_id, `+col+`) VALUES (?, ?)
		ON CONFLICT (vm_id) DO UPDATE SET `+col+` = excluded.`+col, vmID, v)
	return err
}

// GetNetPolicy returns a VM's recorded policy, or ErrNotFound.
func (s *Store) GetNetPolicy(ctx context.Context, vmID string) (string, error) {
	p, err := s.vmNetwork(ctx, "policy", vmID)
	if err == nil && p == "" {
		return "", ErrNotFound
	}
	return p, err
}

// vmNetwork reads one column of a VM's vm_network row ("" without one).
func (s *Store) vmNetwork(ctx context.Context, col, vmID string) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, `SELECT `+col+` FROM vm_network WHERE vm_id = ?`, vmID).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, err
}

// PutPorts records a VM's forwards (JSON).
func (s *Store) PutPorts(ctx context.Context, vmID, ports string) error {
	return s.putVMNetwork(ctx, "ports", vmID, ports)
}

// GetPorts returns a VM's recorded forwards ("" when none).
func (s *Store) GetPorts(ctx context.Context, vmID string) (string, error) {
	return s.vmNetwork(ctx, "ports", vmID)
}
