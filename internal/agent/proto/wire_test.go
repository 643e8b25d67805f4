package proto

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"
)

func TestReadLineStopsAtNewline(t *testing.T) {
	var b bytes.Buffer
	if err := WriteLine(&b, Request{Op: OpExec, Exec: &ExecRequest{Argv: []string{"true"}}}); err != nil {
		t.Fatal(err)
	}
	b.WriteString("REST")
	var req Request
	if err := ReadLine(&b, &req); err != nil {
		t.Fatal(err)
	}
	if req.Op != OpExec || req.Exec == nil || req.Exec.Argv[0] != "true" {
		t.Fatalf("bad request %+v", req)
	}
	if b.String() != "REST" {
		t.Fatalf("ReadLine consumed past the line: %q left", b.String())
	}
}

func TestFramesRoundTrip(t *testing.T) {
	var b bytes.Buffer
	big := bytes.Repeat([]byte("x"), 80<<10)
	if _, err := (FrameWriter{W: &b, Type: FrameStdout}).Write(big); err != nil {
		t.Fatal(err)
	}
	if err := WriteFrame(&b, FrameSignal, []byte{15}); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for len(got) < len(big) {
		typ, p, err := ReadFrame(&b)
		if err != nil {
			t.Fatal(err)
		}
		if typ != FrameStdout || len(p) > 32<<10 {
			t.Fatalf("frame type %d len %d", typ, len(p))
		}
		got = append(got, p...)
	}
	if !bytes.Equal(got, big) {
		t.Fatal("stdout payload corrupted")
	}
	typ, p, err := ReadFrame(&b)
	if err != nil || typ != FrameSignal || !bytes.Equal(p, []byte{15}) {
		t.Fatalf("signal frame: %d %v %v", typ, p, err)
	}
	if err := WriteFrame(io.Discard, FrameStdin, make([]byte, MaxFrame+1)); err == nil {
		t.Fatal("oversized frame accepted")
	}
}

func TestScanForLineSkipsGarbage(t *testing.T) {
	garbage := strings.Repeat("\x00\x01junk", 30<<10) // long, no newline
	in := garbage + "noise\n" + "xx" + ReadyPrefix + "abc 1.0\r\nafter"
	r := bufio.NewReader(strings.NewReader(in))
	rest, err := ScanForLine(r, ReadyPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if rest != "abc 1.0" {
		t.Fatalf("rest = %q", rest)
	}
	tail, _ := io.ReadAll(r)
	if string(tail) != "after" {
		t.Fatalf("bytes after the line = %q", tail)
	}
	if _, err := ScanForLine(bufio.NewReader(strings.NewReader("nothing here\n")), ReadyPrefix); err != io.EOF {
		t.Fatalf("err = %v, want EOF", err)
	}
}

// TestPumpExec plays the agent side of an exec stream by hand.
func TestPumpExec(t *testing.T) {
	host, guest := net.Pipe()
	defer host.Close()
	go func() {
		defer guest.Close()
		var stdin []byte
		for {
			typ, p, err := ReadFrame(guest)
			if err != nil {
				return
			}
			if typ == FrameStdin {
				stdin = append(stdin, p...)
			}
			if typ == FrameStdinEOF {
				break
			}
		}
		WriteFrame(guest, FrameStdout, bytes.ToUpper(stdin))
		WriteFrame(guest, FrameStderr, []byte("warn"))
		st, _ := json.Marshal(ExitStatus{Code: 7})
		WriteFrame(guest, FrameExit, st)
	}()
	var out, errb bytes.Buffer
	st, err := PumpExec(host, strings.NewReader("hello"), &out, &errb, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Code != 7 || out.String() != "HELLO" || errb.String() != "warn" {
		t.Fatalf("status %+v stdout %q stderr %q", st, out.String(), errb.String())
	}
}
