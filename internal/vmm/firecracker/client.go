package firecracker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Client talks to one Firecracker process over its API socket. Calls are
// serialised: Firecracker handles one request at a time anyway, and its
// HTTP server holds at most 10 connections, so one keep-alive connection
// is kept.
type Client struct {
	sock string
	hc   *http.Client
	log  *slog.Logger

	// CallTimeout bounds each call (InstanceStart gets startCallFactor
	// times as much), inside whatever deadline the caller's ctx has.
	CallTimeout time.Duration

	mu      sync.Mutex
	version *Version // set by Version; enables field gating
}

// startCallFactor gives InstanceStart a larger budget: it builds the VM and
// starts vCPUs, which is much slower than a configuration call.
const startCallFactor = 5

// snapshotCallFactor gives snapshot create and load their own budget:
// they write or map all of guest memory (a minute with the default).
const snapshotCallFactor = 30

// NewClient returns a client for the API socket at sock. log may be nil.
func NewClient(sock string, log *slog.Logger) *Client {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		MaxConnsPerHost:     1,
		MaxIdleConnsPerHost: 1,
		DisableCompression:  true,
	}
	return &Client{sock: sock, hc: &http.Client{Transport: tr}, log: log, CallTimeout: 2 * time.Second}
}

// Close drops the idle keep-alive connection.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// Info is GET /.
func (c *Client) Info(ctx context.Context) (InstanceInfo, error) {
	var out InstanceInfo
	err := c.do(ctx, http.MethodGet, "/", nil, &out)
	return out, err
}

// Version is GET /version. Its answer gates the fields later calls send.
func (c *Client) Version(ctx context.Context) (Version, error) {
	var out FirecrackerVersion
	if err := c.do(ctx, http.MethodGet, "/version", nil, &out); err != nil {
		return Version{}, err
	}
	v, err := ParseVersion(out.FirecrackerVersion)
	if err != nil {
		return Version{}, err
	}
	c.mu.Lock()
	c.version = &v
	c.mu.Unlock()
	return v, nil
}

// PutMachineConfig is PUT /machine-config.
func (c *Client) PutMachineConfig(ctx context.Context, m MachineConfig) error {
	return c.do(ctx, http.MethodPut, "/machine-config", m, nil)
}

// PutBootSource is PUT /boot-source.
func (c *Client) PutBootSource(ctx context.Context, b BootSource) error {
	return c.do(ctx, http.MethodPut, "/boot-source", b, nil)
}

// PutDrive is PUT /drives/{drive_id}.
func (c *Client) PutDrive(ctx context.Context, d Drive) error {
	return c.do(ctx, http.MethodPut, "/drives/"+d.DriveID, d, nil)
}

// PutNetworkInterface is PUT /network-interfaces/{iface_id}.
func (c *Client) PutNetworkInterface(ctx context.Context, n NetworkInterface) error {
	return c.do(ctx, http.MethodPut, "/network-interfaces/"+n.IfaceID, n, nil)
}

// PutVsock is PUT /vsock.
func (c *Client) PutVsock(ctx context.Context, v Vsock) error {
	return c.do(ctx, http.MethodPut, "/vsock", v, nil)
}

// PutLogger is PUT /logger.
func (c *Client) PutLogger(ctx context.Context, l Logger) error {
	return c.do(ctx, http.MethodPut, "/logger", l, nil)
}

// PutMetrics is PUT /metrics.
func (c *Client) PutMetrics(ctx context.Context, m Metrics) error {
	return c.do(ctx, http.MethodPut, "/metrics", m, nil)
}

// PatchVM is PATCH /vm: VMStatePaused or VMStateResumed.
func (c *Client) PatchVM(ctx context.Context, state string) error {
	return c.do(ctx, http.MethodPatch, "/vm", VM{State: state}, nil)
}

// CreateSnapshot is PUT /snapshot/create.
func (c *Client) CreateSnapshot(ctx context.Context, p SnapshotCreateParams) error {
	return c.do(ctx, http.MethodPut, "/snapshot/create", p, nil)
}

// LoadSnapshot is PUT /snapshot/load.
func (c *Client) LoadSnapshot(ctx context.Context, p SnapshotLoadParams) error {
	return c.do(ctx, http.MethodPut, "/snapshot/load", p, nil)
}

// Action is PUT /actions.
func (c *Client) Action(ctx context.Context, actionType string) error {
	return c.do(ctx, http.MethodPut, "/actions", InstanceActionInfo{ActionType: actionType}, nil)
}

// do sends one request. Bodies are buffered so that Content-Length is
// always set: Firecracker reads exactly that many bytes and rejects chunked
// or empty PUTs.
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.version != nil {
		if err := checkFields(*c.version, path, body); err != nil {
			return err
		}
	}
	timeout := c.CallTimeout
	if a, ok := body.(InstanceActionInfo); ok && a.ActionType == ActionInstanceStart {
		timeout *= startCallFactor
	}
	if strings.HasPrefix(path, "/snapshot/") {
		timeout *= snapshotCallFactor
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := newRequest(ctx, method, path, body)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("firecracker %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Deprecation") != "" {
		c.log.Warn("firecracker: deprecated API use", "method", method, "path", path)
	}
	if resp.StatusCode/100 != 2 {
		return decodeAPIError(method, path, resp)
	}
	if out == nil {
		_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("firecracker %s %s: decode response: %w", method, path, err)
	}
	return nil
}

func newRequest(ctx context.Context, method, path string, body any) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b) // sets ContentLength
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://localhost"+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

func decodeAPIError(method, path string, resp *http.Response) error {
	e := &APIError{Method: method, Path: path, Status: resp.StatusCode}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body struct {
		FaultMessage string `json:"fault_message"`
	}
	if json.Unmarshal(b, &body) == nil {
		e.FaultMessage = body.FaultMessage
	}
	if e.FaultMessage == "" {
		e.FaultMessage = string(bytes.TrimSpace(b))
	}
	return e
}

// IsAPIError reports whether err is an answer from Firecracker (as opposed
// to a transport failure) and returns it.
func IsAPIError(err error) (*APIError, bool) {
	var e *APIError
	ok := errors.As(err, &e)
	return e, ok
}
