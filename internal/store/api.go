package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// APIKey is one key of the HTTP API (issue 15); the key itself is never
// stored, only its SHA-256.
type APIKey struct {
	Name      string
	Hash      []byte
	Prefix    string
	CreatedAt time.Time
	LastUsed  time.Time // zero: never
}

// PutAPIKey inserts a key; a name in use is ErrConflict.
func (s *Store) PutAPIKey(ctx context.Context, k APIKey) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO api_keys(name, hash, prefix, created_at) VALUES (?,?,?,?)`,
		k.Name, k.Hash, k.Prefix, k.CreatedAt.UnixNano())
	if isUnique(err) {
		return fmt.Errorf("api key %q: %w", k.Name, ErrConflict)
	}
	return err
}

// ListAPIKeys returns every key, oldest first.
func (s *Store) ListAPIKeys(ctx context.Context) ([]APIKey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, hash, prefix, created_at, last_used FROM api_keys ORDER BY created_at, name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []APIKey
	for rows.Next() {
		var k APIKey
		var c, u int64
		if err := rows.Scan(&k.Name, &k.Hash, &k.Prefix, &c, &u); err != nil {
			return nil, err
		}
		k.CreatedAt = time.Unix(0, c)
		if u != 0 {
			k.LastUsed = time.Unix(0, u)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// DeleteAPIKey removes a key by name; an unknown name is ErrNotFound.
func (s *Store) DeleteAPIKey(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM api_keys WHERE name = ?`, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("api key %q: %w", name, ErrNotFound)
	}
	return nil
}

// TouchAPIKey records that a key was used.
func (s *Store) TouchAPIKey(ctx context.Context, name string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE api_keys SET last_used = ? WHERE name = ?`, at.UnixNano(), name)
	return err
}

// Sandbox is what the HTTP API keeps with a VM it created (E2B's
// sandbox): its template, metadata, environment, timeout.
type Sandbox struct {
	VMID      string
	Template  string
	Metadata  map[string]string
	EnvVars   map[string]string
	AutoPause bool
	// Deadline is when the daemon kills (or pauses, with AutoPause) the
	// VM; zero: none.
	Deadline  time.Time
	StartedAt time.Time
	// AccessToken authenticates envd requests for this sandbox (E2B's
	// envdAccessToken).
	AccessToken string
}

const sandboxCols = `vm_id, template, metadata, env_vars, auto_pause, deadline, started_at, access_token`

func scanSandbox(row interface{ Scan(...any) error }) (Sandbox, error) {
	var sb Sandbox
	var md, env string
	var dl, st int64
	if err := row.Scan(&sb.VMID, &sb.Template, &md, &env, &sb.AutoPause, &dl, &st, &sb.AccessToken); err != nil {
		return sb, err
	}
	if err := json.Unmarshal([]byte(md), &sb.Metadata); err != nil {
		return sb, fmt.Errorf("sandbox %s: metadata: %w", sb.VMID, err)
	}
	if err := json.Unmarshal([]byte(env), &sb.EnvVars); err != nil {
		return sb, fmt.Errorf("sandbox %s: env_vars: %w", sb.VMID, err)
	}
	if dl != 0 {
		sb.Deadline = time.Unix(0, dl)
	}
	sb.StartedAt = time.Unix(0, st)
	return sb, nil
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// PutSandbox inserts or replaces a VM's sandbox record.
func (s *Store) PutSandbox(ctx context.Context, sb Sandbox) error {
	md, err := json.Marshal(orEmpty(sb.Metadata))
	if err != nil {
		return err
	}
	env, err := json.Marshal(orEmpty(sb.EnvVars))
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT OR REPLACE INTO sandboxes(`+sandboxCols+`) VALUES (?,?,?,?,?,?,?,?)`,
		sb.VMID, sb.Template, string(md), string(env), sb.AutoPause, nanos(sb.Deadline), nanos(sb.StartedAt), sb.AccessToken)
	return err
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// GetSandbox returns a VM's sandbox record; ErrNotFound when the VM has
// none (it was not made through the API).
func (s *Store) GetSandbox(ctx context.Context, vmID string) (Sandbox, error) {
	sb, err := scanSandbox(s.db.QueryRowContext(ctx, `SELECT `+sandboxCols+` FROM sandboxes WHERE vm_id = ?`, vmID))
	if errors.Is(err, sql.ErrNoRows) {
		return sb, fmt.Errorf("sandbox %s: %w", vmID, ErrNotFound)
	}
	return sb, err
}

// ListSandboxes returns every sandbox record.
func (s *Store) ListSandboxes(ctx context.Context) ([]Sandbox, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+sandboxCols+` FROM sandboxes ORDER BY started_at`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Sandbox
	for rows.Next() {
		sb, err := scanSandbox(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sb)
	}
	return out, rows.Err()
}

// SetSandboxDeadline sets (zero: clears) a sandbox's deadline; a VM
// without a record is ErrNotFound.
func (s *Store) SetSandboxDeadline(ctx context.Context, vmID string, deadline time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE sandboxes SET deadline = ? WHERE vm_id = ?`, nanos(deadline), vmID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("sandbox %s: %w", vmID, ErrNotFound)
	}
	return nil
}
