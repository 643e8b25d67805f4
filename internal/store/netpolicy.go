package store

import (
	"context"
	"database/sql"
	"errors"
)

// PutNetPolicy records a VM's network policy (JSON of api.NetPolicy).
func (s *Store) PutNetPolicy(ctx context.Context, vmID, policy string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO vm_network (vm_id, policy) VALUES (?, ?)
		ON CONFLICT (vm_id) DO UPDATE SET policy = excluded.policy`, vmID, policy)
	return err
}

// GetNetPolicy returns a VM's recorded policy, or ErrNotFound.
func (s *Store) GetNetPolicy(ctx context.Context, vmID string) (string, error) {
	var p string
	err := s.db.QueryRowContext(ctx, `SELECT policy FROM vm_network WHERE vm_id = ?`, vmID).Scan(&p)
	if errors.Is(err, sql.ErrNoRows) || err == nil && p == "" {
		return "", ErrNotFound
	}
	return p, err
}

// PutPorts records a VM's forwards (JSON).
func (s *Store) PutPorts(ctx context.Context, vmID, ports string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO vm_network (vm_id, ports) VALUES (?, ?)
		ON CONFLICT (vm_id) DO UPDATE SET ports = excluded.ports`, vmID, ports)
	return err
}

// GetPorts returns a VM's recorded forwards ("" when none).
func (s *Store) GetPorts(ctx context.Context, vmID string) (string, error) {
	var p string
	err := s.db.QueryRowContext(ctx, `SELECT ports FROM vm_network WHERE vm_id = ?`, vmID).Scan(&p)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return p, err
}
