package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/banger-dev/banger/internal/api"
)

// apiError is E2B's error body: {"code": <HTTP status>, "message": …};
// the SDK turns 401 into AuthenticationError, 404 into NotFoundError…
type apiError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, apiError{Code: status, Message: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// fail answers a service error with the status its code means.
func fail(w http.ResponseWriter, err error) {
	var ae *api.Error
	if errors.As(err, &ae) {
		writeError(w, statusOf(ae.Code), ae.Message)
		return
	}
	writeError(w, http.StatusInternalServerError, err.Error())
}

func statusOf(code string) int {
	switch code {
	case api.CodeInvalid:
		return http.StatusBadRequest
	case api.CodeNotFound:
		return http.StatusNotFound
	case api.CodeConflict:
		return http.StatusConflict
	case api.CodeBusy:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// decode reads a JSON body into v; an empty body leaves v as it is when
// optional. Unknown fields are allowed: E2B's SDKs send fields banger
// has no use for (mcp, iam, volumeMounts, …), which must not fail.
func decode(w http.ResponseWriter, r *http.Request, v any, optional bool) bool {
	err := json.NewDecoder(r.Body).Decode(v)
	if errors.Is(err, io.EOF) && optional {
		return true
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", tooBig.Limit))
			return false
		}
		if errors.Is(err, io.EOF) {
			writeError(w, http.StatusBadRequest, "a JSON request body is required")
			return false
		}
		writeError(w, http.StatusBadRequest, "bad JSON in request body: "+err.Error())
		return false
	}
	return true
}

func notImplemented(w http.ResponseWriter, what string) {
	writeError(w, http.StatusNotImplemented, what+" is not part of this banger build yet")
}
