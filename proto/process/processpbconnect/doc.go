// Package processpbconnect is the Connect-RPC handler and client code
// protoc-gen-connect-go generates for process.proto's process.Process
// service (internal/envd implements the handler). Regenerate with
// `make generate`; only this file is written by hand.
package processpbconnect
