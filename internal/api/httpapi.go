package api

import "time"

// Keys of the HTTP API (issue 15), managed over the unix socket.
const (
	MethodAPIKeyCreate = "api.key.create"
	MethodAPIKeyList   = "api.key.list"
	MethodAPIKeyDelete = "api.key.delete"
)

// APIKeyParams names a key; for create, an empty Name is one from the
// time.
type APIKeyParams struct {
	Name string `json:"name,omitempty"`
}

// APIKey is a key as `banger api key ls` shows it: never the key itself.
type APIKey struct {
	Name      string    `json:"name"`
	Prefix    string    `json:"prefix"` // the key's first characters, to tell keys apart
	CreatedAt time.Time `json:"created_at"`
	LastUsed  time.Time `json:"last_used,omitzero"`
}

// APIKeyCreated is api.key.create's result: the key, shown this once.
type APIKeyCreated struct {
	APIKey
	Key string `json:"key"`
}
