package envd

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func (e *testEnv) do(t *testing.T, method, path, ctype string, body io.Reader, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	c := e.http
	if _, raw := header["raw"]; raw {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func multipartBody(t *testing.T, files map[string]string) (string, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for name, content := range files {
		w, err := mw.CreateFormFile("file", name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(content))
	}
	mw.Close()
	return mw.FormDataContentType(), &buf
}

func TestFilesUploadDownload(t *testing.T) {
	e := newTestEnv(t)
	dir := t.TempDir()
	// One file to ?path=, its parents created.
	ct, body := multipartBody(t, map[string]string{"ignored": "one"})
	code, out := e.do(t, "POST", "/files?path="+dir+"/new/one.txt", ct, body, nil)
	var entries []entry
	if json.Unmarshal([]byte(out), &entries); code != 200 || len(entries) != 1 || entries[0] != (entry{Path: dir + "/new/one.txt", Name: "one.txt", Type: "file"}) {
		t.Fatalf("upload: %d %s", code, out)
	}
	if b, _ := os.ReadFile(dir + "/new/one.txt"); string(b) != "one" {
		t.Fatalf("content %q", b)
	}
	// Many files, each named by its filename; an existing file replaced.
	ct, body = multipartBody(t, map[string]string{dir + "/new/one.txt": "uno", dir + "/two.txt": "two"})
	if code, out := e.do(t, "POST", "/files", ct, body, nil); code != 200 || strings.Count(out, `"type":"file"`) != 2 {
		t.Fatalf("upload many: %d %s", code, out)
	}
	if b, _ := os.ReadFile(dir + "/new/one.txt"); string(b) != "uno" {
		t.Fatalf("replaced content %q", b)
	}
	// A raw body.
	if code, out := e.do(t, "POST", "/files?path="+dir+"/raw.bin", "application/octet-stream", strings.NewReader("raw"), nil); code != 200 {
		t.Fatalf("raw upload: %d %s", code, out)
	}
	left, _ := filepath.Glob(dir + "/.banger-upload-*")
	left2, _ := filepath.Glob(dir + "/new/.banger-upload-*")
	if len(left)+len(left2) != 0 {
		t.Fatalf("temporary directories left: %v %v", left, left2)
	}

	code, out = e.do(t, "GET", "/files?path="+dir+"/raw.bin", "", nil, nil)
	if code != 200 || out != "raw" {
		t.Fatalf("download: %d %q", code, out)
	}
	if code, out := e.do(t, "GET", "/files?path="+dir+"/missing", "", nil, nil); code != 404 || !strings.Contains(out, `"code":404`) {
		t.Fatalf("download missing: %d %s", code, out)
	}
	if code, out := e.do(t, "GET", "/files?path="+dir, "", nil, nil); code != 400 || !strings.Contains(out, "is a directory") {
		t.Fatalf("download a directory: %d %s", code, out)
	}
	if code, _ := e.do(t, "GET", "/files?path=x&username=nobody-here", "", nil, nil); code != 400 {
		t.Fatalf("unknown user: %d", code)
	}
	if code, _ := e.do(t, "POST", "/files?path="+dir+"/x", "text/plain", strings.NewReader("x"), nil); code != 400 {
		t.Fatalf("text/plain upload: %d", code)
	}
}

func TestFilesOversizeUpload(t *testing.T) {
	e := newTestEnv(t) // MaxUpload 1 MiB
	dir := t.TempDir()
	big := strings.Repeat("x", 2<<20)
	// Announced size over the limit: refused before anything is read.
	code, out := e.do(t, "POST", "/files?path="+dir+"/big", "application/octet-stream", strings.NewReader(big), nil)
	if code != 413 || !strings.Contains(out, "limit of 1048576 bytes") {
		t.Fatalf("oversize: %d %s", code, out)
	}
	// Size unknown (multipart, chunked): cut at the limit.
	ct, body := multipartBody(t, map[string]string{dir + "/big": big})
	code, out = e.do(t, "POST", "/files", ct, io.MultiReader(body), nil)
	if code != 413 {
		t.Fatalf("oversize chunked: %d %s", code, out)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("an oversize upload left %v", ents)
	}
}

func TestFilesGzipUpload(t *testing.T) {
	e := newTestEnv(t) // MaxUpload 1 MiB
	dir := t.TempDir()
	gz := func(s string) *bytes.Buffer {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write([]byte(s))
		zw.Close()
		return &b
	}
	h := map[string]string{"Content-Encoding": "gzip"}
	if code, out := e.do(t, "POST", "/files?path="+dir+"/z.txt", "application/octet-stream", gz("unzipped"), h); code != 200 {
		t.Fatalf("gzip upload: %d %s", code, out)
	}
	if b, _ := os.ReadFile(dir + "/z.txt"); string(b) != "unzipped" {
		t.Fatalf("content %q", b)
	}
	// 2 MiB of zeros is a few KiB compressed: the limit holds for what
	// would be written.
	if code, out := e.do(t, "POST", "/files?path="+dir+"/bomb", "application/octet-stream", gz(strings.Repeat("\x00", 2<<20)), h); code != 413 {
		t.Fatalf("gzip bomb: %d %s", code, out)
	}
	if _, err := os.Stat(dir + "/bomb"); !os.IsNotExist(err) {
		t.Fatalf("a refused upload left a file: %v", err)
	}
	if code, _ := e.do(t, "POST", "/files?path="+dir+"/x", "application/octet-stream", strings.NewReader("x"), map[string]string{"Content-Encoding": "br"}); code != 415 {
		t.Fatalf("brotli: %d", code)
	}
}

func TestHealthEnvsAndSandboxErrors(t *testing.T) {
	e := newTestEnv(t)
	if code, _ := e.do(t, "GET", "/health", "", nil, nil); code != 204 {
		t.Fatalf("health: %d", code)
	}
	if code, out := e.do(t, "GET", "/envs", "", nil, nil); code != 200 || out != "{\"IMAGE_VAR\":\"from-image\"}\n" {
		t.Fatalf("envs: %d %s", code, out)
	}
	for _, tc := range []struct {
		header map[string]string
		code   int
		want   string
	}{
		{map[string]string{"raw": ""}, 400, "missing E2b-Sandbox-Id"},
		{map[string]string{"raw": "", "E2b-Sandbox-Id": "nope"}, 502, `"sandboxId":"nope","message":"The sandbox nope was not found","code":502`},
		{map[string]string{"raw": "", "E2b-Sandbox-Id": "stopped"}, 502, "The sandbox stopped is not running"},
		{map[string]string{"E2b-Sandbox-Port": "8080"}, 502, "port 8080"},
	} {
		code, out := e.do(t, "GET", "/health", "", nil, tc.header)
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("%v: %d %s", tc.header, code, out)
		}
	}
	// Connect calls to a stopped sandbox fail the same way.
	code, _ := e.do(t, "POST", "/process.Process/List", "application/json", strings.NewReader("{}"), map[string]string{"raw": "", "E2b-Sandbox-Id": "stopped"})
	if code != 502 {
		t.Fatalf("list in a stopped sandbox: %d", code)
	}
}

func TestMalformedConnect(t *testing.T) {
	e := newTestEnv(t)
	// Unary, JSON that is not the message.
	code, out := e.do(t, "POST", "/filesystem.Filesystem/Stat", "application/json", strings.NewReader(`{"path": 5`), nil)
	if code != 400 || !strings.Contains(out, `"code":"invalid_argument"`) {
		t.Fatalf("bad unary JSON: %d %s", code, out)
	}
	// Unary, bytes that are not protobuf.
	code, out = e.do(t, "POST", "/filesystem.Filesystem/Stat", "application/proto", strings.NewReader("\xff\xff\xff"), nil)
	if code != 400 {
		t.Fatalf("bad unary proto: %d %s", code, out)
	}
	// Streaming, an envelope that claims more bytes than it carries.
	env := []byte{0, 0, 0, 0, 100}
	code, out = e.do(t, "POST", "/process.Process/Start", "application/connect+json", bytes.NewReader(append(env, `{"process"`...)), nil)
	if code != 200 || !strings.Contains(out, `"code":"internal","message":"protocol error: promised 100 bytes`) {
		t.Fatalf("truncated envelope: %d %s", code, out)
	}
	// Streaming, a compressed flag with no compression negotiated.
	code, out = e.do(t, "POST", "/process.Process/Start", "application/connect+json", bytes.NewReader([]byte{1, 0, 0, 0, 2, '{', '}'}), nil)
	if code != 200 || !strings.Contains(out, "protocol error: sent compressed message without compression support") {
		t.Fatalf("compressed envelope: %d %s", code, out)
	}
	// An unknown method.
	if code, _ := e.do(t, "POST", "/process.Process/Nope", "application/json", strings.NewReader("{}"), nil); code != 404 {
		t.Fatalf("unknown method: %d", code)
	}
}
