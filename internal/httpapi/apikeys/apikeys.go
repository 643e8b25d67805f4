// Package apikeys owns the HTTP API's keys: create (the key shown once),
// list, revoke, and the check every API request goes through. A key is
// "bgr_" and 32 random bytes in base32; the store keeps only its SHA-256
// (a key is random, so there is no dictionary a slow salted hash would
// protect against: SHA-256 of 256 random bits cannot be inverted). The
// daemon serves one user, so every key acts as that user.
package apikeys

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"regexp"
	"strings"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/store"
)

// Prefix starts every key, so a leaked one is recognisable (secret
// scanners, logs).
const Prefix = "bgr_"

// Store is what the service keeps keys in (*store.Store).
type Store interface {
	PutAPIKey(ctx context.Context, k store.APIKey) error
	ListAPIKeys(ctx context.Context) ([]store.APIKey, error)
	DeleteAPIKey(ctx context.Context, name string) error
	TouchAPIKey(ctx context.Context, name string, at time.Time) error
}

// touchEvery is how stale a key's "last used" may get.
const touchEvery = time.Minute

// Service manages the keys.
type Service struct {
	Store Store
	Now   func() time.Time // default time.Now
}

// New is the service over st.
func New(st Store) *Service { return &Service{Store: st, Now: time.Now} }

var keyName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// Create makes a key; its result carries the key, which is never shown
// again.
func (s *Service) Create(ctx context.Context, p api.APIKeyParams) (api.APIKeyCreated, error) {
	now := s.Now()
	if p.Name == "" {
		p.Name = "key-" + now.UTC().Format("20060102-150405")
	}
	if !keyName.MatchString(p.Name) {
		return api.APIKeyCreated{}, api.Invalidf("key name %q: use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit", p.Name)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return api.APIKeyCreated{}, err
	}
	key := Prefix + strings.ToLower(b32.EncodeToString(raw))
	k := store.APIKey{Name: p.Name, Hash: Hash(key), Prefix: key[:len(Prefix)+6], CreatedAt: now}
	if err := s.Store.PutAPIKey(ctx, k); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return api.APIKeyCreated{}, api.Conflictf("an API key named %q exists: choose another --name, or `banger api key rm %s` first", p.Name, p.Name)
		}
		return api.APIKeyCreated{}, err
	}
	return api.APIKeyCreated{APIKey: view(k), Key: key}, nil
}

// List is every key, without the keys themselves.
func (s *Service) List(ctx context.Context) ([]api.APIKey, error) {
	keys, err := s.Store.ListAPIKeys(ctx)
	out := []api.APIKey{}
	for _, k := range keys {
		out = append(out, view(k))
	}
	return out, err
}

// Delete revokes a key: the next request that carries it gets 401.
func (s *Service) Delete(ctx context.Context, p api.APIKeyParams) (api.APIKey, error) {
	keys, err := s.Store.ListAPIKeys(ctx)
	if err != nil {
		return api.APIKey{}, err
	}
	for _, k := range keys {
		if k.Name == p.Name {
			if err := s.Store.DeleteAPIKey(ctx, p.Name); err != nil {
				return api.APIKey{}, err
			}
			return view(k), nil
		}
	}
	return api.APIKey{}, api.NotFoundf("no API key named %q (`banger api key ls` lists them)", p.Name)
}

// Check reports which key key is: its name, or ok false. Every stored
// hash is compared, each in constant time, so the time taken says
// nothing about how close a guess was.
func (s *Service) Check(ctx context.Context, key string) (name string, ok bool, err error) {
	if key == "" {
		return "", false, nil
	}
	keys, err := s.Store.ListAPIKeys(ctx)
	if err != nil {
		return "", false, err
	}
	h := Hash(key)
	var used time.Time
	for _, k := range keys {
		if subtle.ConstantTimeCompare(h, k.Hash) == 1 {
			name, ok, used = k.Name, true, k.LastUsed
		}
	}
	// last use to the minute: a write per request would cost more than
	// the rest of most requests
	if now := s.Now(); ok && now.Sub(used) >= touchEvery {
		_ = s.Store.TouchAPIKey(ctx, name, now) // best effort: a failed touch must not refuse the key
	}
	return name, ok, nil
}

// Hash is what the store keeps of a key.
func Hash(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

func view(k store.APIKey) api.APIKey {
	return api.APIKey{Name: k.Name, Prefix: k.Prefix, CreatedAt: k.CreatedAt, LastUsed: k.LastUsed}
}
