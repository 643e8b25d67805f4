package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/vms"
)

// Images lists banger's images (*artifacts.Service): E2B's templates.
type Images interface {
	List(ctx context.Context) ([]api.Image, error)
}

type metricJSON struct {
	Timestamp     time.Time `json:"timestamp"`
	TimestampUnix int64     `json:"timestampUnix"`
	CPUCount      int       `json:"cpuCount"`
	CPUUsedPct    float64   `json:"cpuUsedPct"`
	MemUsed       uint64    `json:"memUsed"`
	MemTotal      uint64    `json:"memTotal"`
	MemCache      uint64    `json:"memCache"`
	DiskUsed      uint64    `json:"diskUsed"`
	DiskTotal     uint64    `json:"diskTotal"`
}

// metrics is the daemon's last sample of the guest (`vm stats`); E2B
// keeps a history, banger the latest: one entry, or none before the
// first sample or while the sandbox is paused.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	vm, _, ok := s.find(w, r)
	if !ok {
		return
	}
	out := []metricJSON{}
	if st, err := s.d.VMs.Stats(r.Context(), vm.Name); err == nil && !st.SampledAt.IsZero() {
		out = append(out, metricJSON{Timestamp: st.SampledAt, TimestampUnix: st.SampledAt.Unix(), CPUCount: st.CPUs,
			CPUUsedPct: st.CPUPercent, MemUsed: st.MemUsedBytes, MemTotal: st.MemTotalBytes,
			DiskUsed: st.RootDiskUsed + st.WorkDiskUsed, DiskTotal: st.RootDiskBytes + st.WorkDiskBytes})
	}
	writeJSON(w, http.StatusOK, out)
}

type logLine struct {
	Timestamp time.Time `json:"timestamp"`
	Line      string    `json:"line"`
}

type logEntry struct {
	Timestamp time.Time         `json:"timestamp"`
	Message   string            `json:"message"`
	Level     string            `json:"level"`
	Fields    map[string]string `json:"fields"`
}

// maxLogBytes bounds what one logs request reads of a console log.
const maxLogBytes = 4 << 20

// consoleLines is the last limit lines of the sandbox's console (the
// serial console, as `vm logs` shows it). The console has no
// timestamps: every line carries the time it was read.
func (s *Server) consoleLines(w http.ResponseWriter, r *http.Request) ([]string, time.Time, bool) {
	vm, _, ok := s.find(w, r)
	if !ok {
		return nil, time.Time{}, false
	}
	limit := 1000
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 10000 {
			writeError(w, http.StatusBadRequest, "limit: want 0..10000 lines")
			return nil, time.Time{}, false
		}
		limit = n
	}
	now := s.d.Now()
	if limit == 0 {
		return nil, now, true
	}
	sess, err := s.d.VMs.Logs(r.Context(), api.LogsParams{Name: vm.Name, Tail: limit})
	if err != nil {
		if ae, ok := err.(*api.Error); ok && ae.Code == api.CodeNotFound {
			return nil, now, true // not booted yet: no lines
		}
		fail(w, err)
		return nil, time.Time{}, false
	}
	text := collect(sess)
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), maxLogBytes)
	for sc.Scan() {
		lines = append(lines, strings.TrimRight(sc.Text(), "\r"))
	}
	return lines, now, true
}

func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	lines, now, ok := s.consoleLines(w, r)
	if !ok {
		return
	}
	out := struct {
		Logs       []logLine  `json:"logs"`
		LogEntries []logEntry `json:"logEntries"`
	}{Logs: []logLine{}, LogEntries: []logEntry{}}
	for _, l := range lines {
		out.Logs = append(out.Logs, logLine{Timestamp: now, Line: l})
		out.LogEntries = append(out.LogEntries, logEntry{Timestamp: now, Message: l, Level: "info", Fields: map[string]string{}})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) logsV2(w http.ResponseWriter, r *http.Request) {
	lines, now, ok := s.consoleLines(w, r)
	if !ok {
		return
	}
	search := r.URL.Query().Get("search")
	out := struct {
		Logs []logEntry `json:"logs"`
	}{Logs: []logEntry{}}
	for _, l := range lines {
		if search == "" || strings.Contains(l, search) {
			out.Logs = append(out.Logs, logEntry{Timestamp: now, Message: l, Level: "info", Fields: map[string]string{}})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// collect runs a log session into memory (at most maxLogBytes).
func collect(sess *vms.Session) string {
	c := &sink{done: make(chan struct{})}
	sess.Relay(vms.Client{Conn: c})
	<-c.done
	return c.buf.String()
}

// sink is a session's client end kept in memory: it sends nothing and
// keeps what it is written, up to maxLogBytes.
type sink struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	once sync.Once
	done chan struct{}
}

func (c *sink) Read([]byte) (int, error) { return 0, io.EOF }

func (c *sink) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := maxLogBytes - c.buf.Len(); room < len(p) {
		c.buf.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return c.buf.Write(p)
}

func (c *sink) Close() error {
	c.once.Do(func() { close(c.done) })
	return nil
}

type templateJSON struct {
	TemplateID    string     `json:"templateID"`
	BuildID       string     `json:"buildID"`
	CPUCount      int        `json:"cpuCount"`
	MemoryMB      int        `json:"memoryMB"`
	DiskSizeMB    int64      `json:"diskSizeMB"`
	Public        bool       `json:"public"`
	Aliases       []string   `json:"aliases"`
	Names         []string   `json:"names"`
	CreatedAt     time.Time  `json:"createdAt"`
	UpdatedAt     time.Time  `json:"updatedAt"`
	CreatedBy     *string    `json:"createdBy"`
	LastSpawnedAt *time.Time `json:"lastSpawnedAt"`
	SpawnCount    int64      `json:"spawnCount"`
	BuildCount    int        `json:"buildCount"`
	EnvdVersion   string     `json:"envdVersion"`
	BuildStatus   string     `json:"buildStatus"`
}

// templates are banger's images; the default image is also "base".
// Sizes are per VM, not per image, in banger: 0 here.
func (s *Server) templates(w http.ResponseWriter, r *http.Request) {
	imgs, err := s.d.Images.List(r.Context())
	if err != nil {
		fail(w, err)
		return
	}
	out := []templateJSON{}
	for _, im := range imgs {
		names := []string{im.Name}
		if im.Name == s.d.DefaultImage {
			names = append(names, "base")
		}
		out = append(out, templateJSON{TemplateID: im.Name, BuildID: im.Name, DiskSizeMB: im.SizeBytes >> 20,
			Aliases: names, Names: names, CreatedAt: im.CreatedAt, UpdatedAt: im.CreatedAt,
			BuildCount: 1, EnvdVersion: s.d.EnvdVersion, BuildStatus: "ready"})
	}
	writeJSON(w, http.StatusOK, out)
}
