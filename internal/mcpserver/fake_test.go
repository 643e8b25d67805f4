package mcpserver

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"path"
	"sync"
	"time"

	agentclient "github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
)

// fakeDaemon is an in-memory daemon: VMs in a map, a guest filesystem
// of files, directories and symlinks, and exec answered by a script.
// Its streams speak the real wire formats (agent/proto exec frames,
// copy_in/copy_out tar streams with their trailer and result lines), so
// the tools' stream code runs for real.
type fakeDaemon struct {
	mu      sync.Mutex
	vms     map[string]api.VM
	files   map[string]fakeFile // absolute guest path → entry
	created []api.CreateParams
	deleted []string
	execs   []api.ExecRequest
	imports []api.WorkspacePrepareParams
	exports []api.WorkspaceExportParams
	// run answers an exec: the command's output and exit status. sig
	// receives the signals the host sends and is closed when the host
	// closes the stream.
	run func(req api.ExecRequest, stdin string, sig <-chan byte) (stdout, stderr string, st proto.ExitStatus)
	// prepareErr fails every workspace import.
	prepareErr error
}

type fakeFile struct {
	data   string
	mode   int64
	dir    bool
	target string // a symlink's
}

var _ Daemon = (*fakeDaemon)(nil)

func newFakeDaemon() *fakeDaemon {
	return &fakeDaemon{vms: map[string]api.VM{}, files: map[string]fakeFile{
		"/": {dir: true, mode: 0o755}, "/root": {dir: true, mode: 0o700}, "/etc": {dir: true, mode: 0o755},
	}}
}

func notFound(name string) error {
	return &api.Error{Code: api.CodeNotFound, Message: fmt.Sprintf("no VM named %q", name)}
}

func (f *fakeDaemon) VMCreate(ctx context.Context, p api.CreateParams, onProgress func(api.Progress)) (api.VM, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.created = append(f.created, p)
	if _, ok := f.vms[p.Name]; ok {
		return api.VM{}, &api.Error{Code: api.CodeConflict, Message: fmt.Sprintf("a VM named %q already exists", p.Name)}
	}
	if p.Name == "" {
		p.Name = fmt.Sprintf("vm%d", len(f.vms)+1)
	}
	if onProgress != nil {
		onProgress(api.Progress{Stage: api.StageSpec, Message: "2 vcpu · 1 GiB memory"})
		onProgress(api.Progress{Stage: "boot", Message: "starting qemu"})
	}
	vm := api.VM{Name: p.Name, State: "running", Image: p.Image, VCPU: max(p.VCPU, 1), MemoryMiB: max(p.MemoryMiB, 1024), IP: "10.77.0.2", CreatedAt: time.Unix(1, 0).UTC()}
	f.vms[p.Name] = vm
	return vm, nil
}

func (f *fakeDaemon) VMList(ctx context.Context) ([]api.VM, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []api.VM
	for _, vm := range f.vms {
		out = append(out, vm)
	}
	return out, nil
}

func (f *fakeDaemon) VMDelete(ctx context.Context, name string, onProgress func(api.Progress)) (api.VM, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	vm, ok := f.vms[name]
	if !ok {
		return vm, notFound(name)
	}
	delete(f.vms, name)
	f.deleted = append(f.deleted, name)
	return vm, nil
}

func (f *fakeDaemon) running(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.vms[name]; !ok {
		return notFound(name)
	}
	return nil
}

func (f *fakeDaemon) VMExec(ctx context.Context, p api.ExecParams) (io.ReadWriteCloser, error) {
	if err := f.running(p.Name); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.execs = append(f.execs, p.ExecRequest)
	f.mu.Unlock()
	return f.execStream(func(stdin string, sig <-chan byte) (string, string, proto.ExitStatus) {
		return f.run(p.ExecRequest, stdin, sig)
	}), nil
}

// execStream is the guest's end of an exec stream running script.
func (f *fakeDaemon) execStream(script func(stdin string, sig <-chan byte) (string, string, proto.ExitStatus)) io.ReadWriteCloser {
	host, guest := net.Pipe()
	go func() {
		defer guest.Close()
		var stdin bytes.Buffer
		eof, sig := make(chan struct{}), make(chan byte, 4)
		go func() {
			for {
				typ, p, err := proto.ReadFrame(guest)
				if err != nil {
					close(sig) // the host closed the stream
					return
				}
				switch typ {
				case proto.FrameStdin:
					stdin.Write(p)
				case proto.FrameStdinEOF:
					close(eof)
				case proto.FrameSignal:
					sig <- p[0]
				}
			}
		}()
		<-eof
		stdout, stderr, st := script(stdin.String(), sig)
		proto.FrameWriter{W: guest, Type: proto.FrameStdout}.Write([]byte(stdout))
		proto.FrameWriter{W: guest, Type: proto.FrameStderr}.Write([]byte(stderr))
		b, _ := json.Marshal(st)
		proto.WriteFrame(guest, proto.FrameExit, b)
	}()
	return host
}

// VMCopyIn takes entries into an existing directory (CopyInParams with
// Base empty, as write_file sends them).
func (f *fakeDaemon) VMCopyIn(ctx context.Context, p api.CopyInParams) (io.ReadWriteCloser, error) {
	if err := f.running(p.Name); err != nil {
		return nil, err
	}
	host, guest := net.Pipe()
	go func() {
		defer guest.Close()
		br := bufio.NewReader(guest)
		tr := tar.NewReader(br)
		var res proto.CopyResult
		got := map[string]fakeFile{}
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			data, _ := io.ReadAll(tr)
			got[path.Join(p.Path, h.Name)] = fakeFile{data: string(data), mode: h.Mode}
			res.Entries++
			res.Bytes += int64(len(data))
		}
		var tl proto.CopyTrailer
		if err := proto.ReadLine(br, &tl); err != nil || !tl.Done {
			return // no trailer: the agent keeps nothing
		}
		f.mu.Lock()
		if d, ok := f.files[p.Path]; !ok || !d.dir {
			res = proto.CopyResult{Error: fmt.Sprintf("copy_in: %s: no such directory", p.Path)}
		} else {
			for k, v := range got {
				f.files[k] = v
			}
		}
		f.mu.Unlock()
		proto.WriteLine(guest, res)
	}()
	return host, nil
}

// VMCopyOut sends one entry, the path itself (directories without
// their contents: read_file stops at the first entry anyway).
func (f *fakeDaemon) VMCopyOut(ctx context.Context, p api.CopyOutParams) (io.ReadWriteCloser, error) {
	if err := f.running(p.Name); err != nil {
		return nil, err
	}
	f.mu.Lock()
	e, ok := f.files[p.Path]
	f.mu.Unlock()
	if !ok {
		return nil, &api.Error{Code: api.CodeNotFound, Message: fmt.Sprintf("copy_out: %s: no such file or directory", p.Path)}
	}
	host, guest := net.Pipe()
	go func() {
		defer guest.Close()
		agentclient.WriteArchive(guest, func(tw *agentclient.TarWriter) error {
			h := &tar.Header{Name: path.Base(p.Path), Mode: e.mode, Typeflag: tar.TypeReg, Size: int64(len(e.data))}
			switch {
			case e.dir:
				h.Typeflag, h.Size = tar.TypeDir, 0
			case e.target != "":
				h.Typeflag, h.Size, h.Linkname = tar.TypeSymlink, 0, e.target
			}
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			_, err := io.WriteString(tw, e.data)
			return err
		})
	}()
	return host, nil
}

func (f *fakeDaemon) WorkspacePrepare(ctx context.Context, p api.WorkspacePrepareParams, archive io.Reader, onProgress func(api.Progress)) (api.Workspace, error) {
	if _, err := io.Copy(io.Discard, archive); err != nil {
		return api.Workspace{}, err
	}
	f.mu.Lock()
	f.imports = append(f.imports, p)
	f.mu.Unlock()
	if f.prepareErr != nil {
		return api.Workspace{}, f.prepareErr
	}
	return api.Workspace{VM: p.Name, GuestPath: p.GuestPath, Commit: p.Commit, Branch: p.Branch, Files: p.Files}, nil
}

func (f *fakeDaemon) WorkspaceExport(ctx context.Context, p api.WorkspaceExportParams) (io.ReadWriteCloser, error) {
	if err := f.running(p.Name); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.exports = append(f.exports, p)
	f.mu.Unlock()
	return f.execStream(func(string, <-chan byte) (string, string, proto.ExitStatus) {
		return f.run(api.ExecRequest{Argv: []string{"export", p.GuestPath}}, "", nil)
	}), nil
}
