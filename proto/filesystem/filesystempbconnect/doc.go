// Package filesystempbconnect is the Connect-RPC handler and client code
// protoc-gen-connect-go generates for filesystem.proto's
// filesystem.Filesystem service (internal/envd implements the handler).
// Regenerate with `make generate`; only this file is written by hand.
package filesystempbconnect
