package httpapi

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/store"
)

// GET /sandboxes (running ones, deprecated) and GET /v2/sandboxes: every
// VM that is running or paused is a sandbox, made through the API or
// not.

func (s *Server) listRunning(w http.ResponseWriter, r *http.Request) {
	s.listStates(w, r, map[string]bool{stateRunning: true})
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	states := map[string]bool{}
	for _, v := range r.URL.Query()["state"] {
		for _, st := range strings.Split(v, ",") {
			if st != stateRunning && st != statePaused {
				writeError(w, http.StatusBadRequest, "state "+strconv.Quote(st)+": want running or paused")
				return
			}
			states[st] = true
		}
	}
	if len(states) == 0 {
		states = map[string]bool{stateRunning: true, statePaused: true}
	}
	s.listStates(w, r, states)
}

func (s *Server) listStates(w http.ResponseWriter, r *http.Request, states map[string]bool) {
	q := r.URL.Query()
	want, err := metadataFilter(q.Get("metadata"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "metadata: "+err.Error()+` (want url-encoded "key=value&key2=value2")`)
		return
	}
	limit, offset, err := page(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	vmList, err := s.d.VMs.List(r.Context())
	if err != nil {
		fail(w, err)
		return
	}
	recs, err := s.d.Records.ListSandboxes(r.Context())
	if err != nil {
		fail(w, err)
		return
	}
	byVM := map[string]store.Sandbox{}
	for _, rec := range recs {
		byVM[rec.VMID] = rec
	}
	out := []listedSandbox{}
	for _, vm := range vmList {
		l := s.listed(vm, byVM[vm.ID])
		if !states[l.State] || (q.Get("template") != "" && l.TemplateID != q.Get("template")) || !matches(l.Metadata, want) {
			continue
		}
		out = append(out, l)
	}
	asc := q.Get("order") == "asc"
	sort.SliceStable(out, func(i, j int) bool {
		if asc {
			return out[i].StartedAt.Before(out[j].StartedAt)
		}
		return out[i].StartedAt.After(out[j].StartedAt)
	})
	if offset > len(out) {
		offset = len(out)
	}
	out = out[offset:]
	if limit > 0 && len(out) > limit {
		out = out[:limit]
		w.Header().Set("X-Next-Token", strconv.Itoa(offset+limit))
	}
	writeJSON(w, http.StatusOK, out)
}

// page reads limit and nextToken (banger's token is an offset).
func page(q url.Values) (limit, offset int, err error) {
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 0 {
			return 0, 0, api.Invalidf("limit %q: want a number of sandboxes", v)
		}
	}
	if v := q.Get("nextToken"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			return 0, 0, api.Invalidf("nextToken %q: not a token this server gave", v)
		}
	}
	return limit, offset, nil
}

// metadataFilter parses E2B's metadata query: "k=v&k2=v2" with each key
// and value url-encoded once more.
func metadataFilter(raw string) (map[string]string, error) {
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for k, vs := range vals {
		key, err := url.QueryUnescape(k)
		if err != nil {
			return nil, err
		}
		val, err := url.QueryUnescape(vs[len(vs)-1])
		if err != nil {
			return nil, err
		}
		out[key] = val
	}
	return out, nil
}

func matches(md, want map[string]string) bool {
	for k, v := range want {
		if got, ok := md[k]; !ok || got != v {
			return false
		}
	}
	return true
}
