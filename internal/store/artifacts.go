package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Image is a registered root filesystem image.
type Image struct {
	Name      string
	Path      string
	UUID      string
	SizeBytes int64
	Source    string
	CreatedAt time.Time
	// Kernel is the kernel the image asks to boot with ("" = the default).
	Kernel string
	// Init is "" when not recorded, InitNone when the image has none (the
	// agent then stays PID 1), else the init's path.
	Init    string
	HasSSHD bool
	Digest  string // sha256 of the rootfs (bundles) or OCI manifest digest
	Ref     string // where it came from: OCI reference, catalog name
	// Runtime is how the image asks to be run (zero = nothing recorded).
	Runtime ImageRuntime
}

// ImageRuntime is an image's environment, working directory and default
// command, from its OCI config; stored as JSON in images.runtime.
type ImageRuntime struct {
	Env        []string `json:"env,omitempty"` // KEY=VALUE
	WorkingDir string   `json:"working_dir,omitempty"`
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	User       string   `json:"user,omitempty"` // name or uid, optionally :group or :gid
}

// IsZero reports that nothing is recorded.
func (r ImageRuntime) IsZero() bool {
	return len(r.Env) == 0 && r.WorkingDir == "" && len(r.Entrypoint) == 0 && len(r.Cmd) == 0 && r.User == ""
}

// runtimeColumn encodes r for images.runtime: the empty string when
// nothing is recorded.
func runtimeColumn(r ImageRuntime) (string, error) {
	if r.IsZero() {
		return "", nil
	}
	b, err := json.Marshal(r)
	return string(b), err
}

// InitNone records that an image has no init system.
const InitNone = "none"

// Kernel is a registered kernel (boot image + modules for the initramfs).
type Kernel struct {
	Name      string
	Dir       string
	Release   string
	Source    string
	CreatedAt time.Time
	Digest    string // sha256 of the catalog bundle it came from
}

// InUseError is returned when an image or kernel is used by VMs.
type InUseError struct {
	What string
	VMs  []string
}

func (e *InUseError) Error() string {
	return fmt.Sprintf("%s is used by VM(s) %s", e.What, strings.Join(e.VMs, ", "))
}

const imageCols = `name, path, uuid, size_bytes, source, created_at, kernel, init, has_sshd, digest, ref, runtime`

func scanImage(row interface{ Scan(...any) error }) (Image, error) {
	var im Image
	var c int64
	var rt string
	err := row.Scan(&im.Name, &im.Path, &im.UUID, &im.SizeBytes, &im.Source, &c, &im.Kernel, &im.Init, &im.HasSSHD, &im.Digest, &im.Ref, &rt)
	im.CreatedAt = time.Unix(0, c)
	if err == nil && rt != "" {
		if jerr := json.Unmarshal([]byte(rt), &im.Runtime); jerr != nil {
			err = fmt.Errorf("image %q: runtime: %w", im.Name, jerr)
		}
	}
	return im, err
}

// PutImage registers an image; the name must be new. Concurrent puts of
// one name: exactly one succeeds, the others get ErrConflict.
func (s *Store) PutImage(ctx context.Context, im Image) error {
	rt, err := runtimeColumn(im.Runtime)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO images(`+imageCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`,
		im.Name, im.Path, im.UUID, im.SizeBytes, im.Source, time.Now().UnixNano(), im.Kernel, im.Init, im.HasSSHD, im.Digest, im.Ref, rt)
	if isUnique(err) {
		return fmt.Errorf("image %q: %w", im.Name, ErrConflict)
	}
	return err
}

// GetImage returns the image with this name.
func (s *Store) GetImage(ctx context.Context, name string) (Image, error) {
	im, err := scanImage(s.db.QueryRowContext(ctx, `SELECT `+imageCols+` FROM images WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return im, fmt.Errorf("image %q: %w", name, ErrNotFound)
	}
	return im, err
}

// ListImages returns all images by name.
func (s *Store) ListImages(ctx context.Context) ([]Image, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+imageCols+` FROM images ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Image
	for rows.Next() {
		im, err := scanImage(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, im)
	}
	return out, rows.Err()
}

// DeleteImage removes an image's row unless VMs use it (*InUseError
// names them), and reports whether another image still uses its file.
func (s *Store) DeleteImage(ctx context.Context, name string) (fileShared bool, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		var path string
		if err := tx.QueryRowContext(ctx, `SELECT path FROM images WHERE name = ?`, name).Scan(&path); errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("image %q: %w", name, ErrNotFound)
		} else if err != nil {
			return err
		}
		vms, err := vmNamesWhere(ctx, tx, "image", name)
		if err != nil {
			return err
		}
		if len(vms) > 0 {
			return &InUseError{What: "image " + name, VMs: vms}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM images WHERE name = ?`, name); err != nil {
			return err
		}
		var n int
		err = tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM images WHERE path = ?`, path).Scan(&n)
		fileShared = n > 0
		return err
	})
	return fileShared, err
}

// VMsUsing lists the names of VMs whose image (column "image") or kernel
// (column "kernel") is name.
func (s *Store) VMsUsing(ctx context.Context, column, name string) ([]string, error) {
	return vmNamesWhere(ctx, s.db, column, name)
}

type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

func vmNamesWhere(ctx context.Context, q querier, column, name string) ([]string, error) {
	if column != "image" && column != "kernel" {
		return nil, fmt.Errorf("bad column %q", column)
	}
	rows, err := q.QueryContext(ctx, `SELECT name FROM vms WHERE `+column+` = ? ORDER BY name`, name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

const kernelCols = `name, dir, release, source, created_at, digest`

func scanKernel(row interface{ Scan(...any) error }) (Kernel, error) {
	var k Kernel
	var c int64
	err := row.Scan(&k.Name, &k.Dir, &k.Release, &k.Source, &c, &k.Digest)
	k.CreatedAt = time.Unix(0, c)
	return k, err
}

// PutKernel registers a kernel; the name must be new.
func (s *Store) PutKernel(ctx context.Context, k Kernel) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO kernels(`+kernelCols+`) VALUES (?,?,?,?,?,?)`,
		k.Name, k.Dir, k.Release, k.Source, time.Now().UnixNano(), k.Digest)
	if isUnique(err) {
		return fmt.Errorf("kernel %q: %w", k.Name, ErrConflict)
	}
	return err
}

// GetKernel returns the kernel with this name.
func (s *Store) GetKernel(ctx context.Context, name string) (Kernel, error) {
	k, err := scanKernel(s.db.QueryRowContext(ctx, `SELECT `+kernelCols+` FROM kernels WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return k, fmt.Errorf("kernel %q: %w", name, ErrNotFound)
	}
	return k, err
}

// ListKernels returns all kernels by name.
func (s *Store) ListKernels(ctx context.Context) ([]Kernel, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+kernelCols+` FROM kernels ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Kernel
	for rows.Next() {
		k, err := scanKernel(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// DeleteKernel removes a kernel's row unless VMs use it, and reports
// whether another kernel still uses its directory.
func (s *Store) DeleteKernel(ctx context.Context, name string) (dirShared bool, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		var dir string
		if err := tx.QueryRowContext(ctx, `SELECT dir FROM kernels WHERE name = ?`, name).Scan(&dir); errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("kernel %q: %w", name, ErrNotFound)
		} else if err != nil {
			return err
		}
		vms, err := vmNamesWhere(ctx, tx, "kernel", name)
		if err != nil {
			return err
		}
		if len(vms) > 0 {
			return &InUseError{What: "kernel " + name, VMs: vms}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM kernels WHERE name = ?`, name); err != nil {
			return err
		}
		var n int
		err = tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM kernels WHERE dir = ?`, dir).Scan(&n)
		dirShared = n > 0
		return err
	})
	return dirShared, err
}
