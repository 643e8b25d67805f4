package fakefc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// maxPayload is Firecracker's default --http-api-max-payload-size.
const maxPayload = 51200

// server holds the microVM's state. Firecracker's API thread handles one
// request at a time; the mutex does the same here.
type server struct {
	cfg            config
	ver            version
	stdout, stderr io.Writer

	mu      sync.Mutex
	started bool
	paused  bool // PATCH /vm, or restored without resume_vm
	// machineSet: PUT /machine-config was called (a load must come first).
	machineSet      bool
	restoredCmdline string // the guest's command line, after a load
	logger          *os.File
	metrics         bool
	machine         machineConfig
	boot            *bootSource
	drives          []drive // insertion order, as Firecracker attaches them
	ifaces          map[string]networkInterface
	vsock           *vsockDevice
	recorder        *recorder
}

func newServer(cfg config, v version, stdout, stderr io.Writer) *server {
	one, mem := 1, 128
	return &server{
		cfg: cfg, ver: v, stdout: stdout, stderr: stderr,
		machine:  machineConfig{VCPUCount: &one, MemSizeMiB: &mem},
		ifaces:   map[string]networkInterface{},
		recorder: &recorder{path: cfg.record},
	}
}

// apiError becomes a 400 with Firecracker's error body.
type apiError string

func (e apiError) Error() string { return string(e) }

func faultf(format string, a ...any) error { return apiError(fmt.Sprintf(format, a...)) }

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	body, err := io.ReadAll(io.LimitReader(r.Body, maxPayload+1))
	if err != nil {
		writeFault(w, faultf("read body: %v", err))
		return
	}
	s.recorder.add(r.Method, r.URL.Path, body)
	if s.logger != nil {
		fmt.Fprintf(s.logger, "[%s] %s %s\n", time.Now().Format(time.RFC3339Nano), r.Method, r.URL.Path)
	}
	if r.URL.Path == s.cfg.exitOn {
		fmt.Fprintf(s.stderr, "fake-firecracker: dying on %s %s as asked\n", r.Method, r.URL.Path)
		os.Exit(exitGeneric)
	}
	if r.URL.Path == s.cfg.failPath {
		writeFault(w, faultf("fake-firecracker: injected failure on %s %s", r.Method, r.URL.Path))
		return
	}
	out, err := s.route(r.Method, r.URL.Path, body)
	switch {
	case err != nil:
		writeFault(w, err)
	case out != nil:
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

func writeFault(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	json.NewEncoder(w).Encode(map[string]string{"fault_message": err.Error()})
}

func (s *server) route(method, path string, body []byte) (any, error) {
	if method == http.MethodGet {
		if len(body) > 0 {
			return nil, faultf("GET request cannot have a body.")
		}
		return s.get(path)
	}
	if method != http.MethodPut && !(method == http.MethodPatch && path == "/vm") {
		return nil, faultf("Invalid request method and/or path: %s %s.", method, path)
	}
	if len(body) == 0 {
		return nil, faultf("Empty PUT request.")
	}
	if len(body) > maxPayload {
		return nil, faultf("Request payload with size %d is larger than the limit of %d allowed by server.", len(body), maxPayload)
	}
	switch path {
	case "/actions":
		return nil, s.action(body)
	case "/vm":
		return nil, s.patchVM(body)
	case "/snapshot/create":
		return nil, s.snapshotCreate(body)
	case "/snapshot/load":
		return nil, s.snapshotLoad(body)
	}
	if s.started {
		return nil, faultf("The requested operation is not supported after starting the microVM.")
	}
	return nil, s.put(path, body)
}

func (s *server) get(path string) (any, error) {
	switch path {
	case "/":
		state := "Not started"
		if s.started {
			state = "Running"
		}
		if s.started && s.paused {
			state = "Paused"
		}
		return map[string]string{"app_name": "Firecracker", "id": s.cfg.id, "state": state, "vmm_version": s.cfg.version}, nil
	case "/version":
		return map[string]string{"firecracker_version": s.cfg.version}, nil
	case "/machine-config":
		return s.machine, nil
	}
	return nil, faultf("Invalid request method and/or path: GET %s.", path)
}

func (s *server) put(path string, body []byte) error {
	switch {
	case path == "/machine-config":
		return s.putMachine(body)
	case path == "/boot-source":
		return s.putBoot(body)
	case strings.HasPrefix(path, "/drives/"):
		return s.putDrive(strings.TrimPrefix(path, "/drives/"), body)
	case strings.HasPrefix(path, "/network-interfaces/"):
		return s.putIface(strings.TrimPrefix(path, "/network-interfaces/"), body)
	case path == "/vsock":
		return s.putVsock(body)
	case path == "/logger":
		return s.putLogger(body)
	case path == "/metrics":
		return s.putMetrics(body)
	}
	return faultf("Invalid request method and/or path: PUT %s.", path)
}

// decode is serde with deny_unknown_fields: unknown fields, trailing data
// and wrong types are all 400s.
func decode(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return faultf("An error occurred when deserializing the json body of a request: %v.", err)
	}
	if dec.More() {
		return faultf("An error occurred when deserializing the json body of a request: trailing characters.")
	}
	return nil
}

// recorder appends one JSON line per request; tests read it back.
type recorder struct {
	path string
	mu   sync.Mutex
}

// Request is one recorded API request.
type Request struct {
	Method string          `json:"method"`
	Path   string          `json:"path"`
	Body   json.RawMessage `json:"body,omitempty"`
}

func (r *recorder) add(method, path string, body []byte) {
	if r.path == "" {
		return
	}
	rec := Request{Method: method, Path: path}
	if json.Valid(body) {
		rec.Body = body
	} else if len(body) > 0 {
		rec.Body, _ = json.Marshal(string(body))
	}
	line, _ := json.Marshal(rec)
	r.mu.Lock()
	defer r.mu.Unlock()
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	f.Write(append(line, '\n'))
}

// ReadRecord parses a file written with --fake-record.
func ReadRecord(path string) ([]Request, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []Request
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var r Request
		if err := json.Unmarshal(line, &r); err != nil {
			return nil, fmt.Errorf("parse record line %q: %w", line, err)
		}
		out = append(out, r)
	}
	return out, nil
}
