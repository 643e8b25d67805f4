package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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
}

// Kernel is a registered kernel (boot image + modules for the initramfs).
type Kernel struct {
	Name      string
	Dir       string
	Release   string
	Source    string
	CreatedAt time.Time
}

// PutImage registers an image; the name must be new.
func (s *Store) PutImage(ctx context.Context, im Image) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO images(name, path, uuid, size_bytes, source, created_at) VALUES (?,?,?,?,?,?)`,
		im.Name, im.Path, im.UUID, im.SizeBytes, im.Source, time.Now().UnixNano())
	if isUnique(err) {
		return fmt.Errorf("image %q: %w", im.Name, ErrConflict)
	}
	return err
}

// GetImage returns the image with this name.
func (s *Store) GetImage(ctx context.Context, name string) (Image, error) {
	var im Image
	var c int64
	err := s.db.QueryRowContext(ctx, `SELECT name, path, uuid, size_bytes, source, created_at FROM images WHERE name = ?`, name).
		Scan(&im.Name, &im.Path, &im.UUID, &im.SizeBytes, &im.Source, &c)
	if errors.Is(err, sql.ErrNoRows) {
		return im, fmt.Errorf("image %q: %w", name, ErrNotFound)
	}
	im.CreatedAt = time.Unix(0, c)
	return im, err
}

// ListImages returns all images by name.
func (s *Store) ListImages(ctx context.Context) ([]Image, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, path, uuid, size_bytes, source, created_at FROM images ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Image
	for rows.Next() {
		var im Image
		var c int64
		if err := rows.Scan(&im.Name, &im.Path, &im.UUID, &im.SizeBytes, &im.Source, &c); err != nil {
			return nil, err
		}
		im.CreatedAt = time.Unix(0, c)
		out = append(out, im)
	}
	return out, rows.Err()
}

// PutKernel registers a kernel; the name must be new.
func (s *Store) PutKernel(ctx context.Context, k Kernel) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO kernels(name, dir, release, source, created_at) VALUES (?,?,?,?,?)`,
		k.Name, k.Dir, k.Release, k.Source, time.Now().UnixNano())
	if isUnique(err) {
		return fmt.Errorf("kernel %q: %w", k.Name, ErrConflict)
	}
	return err
}

// GetKernel returns the kernel with this name.
func (s *Store) GetKernel(ctx context.Context, name string) (Kernel, error) {
	var k Kernel
	var c int64
	err := s.db.QueryRowContext(ctx, `SELECT name, dir, release, source, created_at FROM kernels WHERE name = ?`, name).
		Scan(&k.Name, &k.Dir, &k.Release, &k.Source, &c)
	if errors.Is(err, sql.ErrNoRows) {
		return k, fmt.Errorf("kernel %q: %w", name, ErrNotFound)
	}
	k.CreatedAt = time.Unix(0, c)
	return k, err
}

// ListKernels returns all kernels by name.
func (s *Store) ListKernels(ctx context.Context) ([]Kernel, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, dir, release, source, created_at FROM kernels ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Kernel
	for rows.Next() {
		var k Kernel
		var c int64
		if err := rows.Scan(&k.Name, &k.Dir, &k.Release, &k.Source, &c); err != nil {
			return nil, err
		}
		k.CreatedAt = time.Unix(0, c)
		out = append(out, k)
	}
	return out, rows.Err()
}
