package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"connectrpc.com/connect"
	collectorv1 "github.com/grafana/alloy-remote-config/api/gen/proto/go/collector/v1"
	"github.com/grafana/alloy-remote-config/api/gen/proto/go/collector/v1/collectorv1connect"
)

// seen records the wire-level details of the last request the fake server got.
type seen struct {
	mu                            sync.Mutex
	method, ctype, encoding, auth string
	userAgent                     string
	get                           *collectorv1.GetConfigRequest
	register                      *collectorv1.RegisterCollectorRequest
	unregister                    *collectorv1.UnregisterCollectorRequest
}

type fakeService struct{ s *seen }

func authOK(h http.Header) error {
	switch h.Get("Authorization") {
	case "Bearer secret", "Basic YWxsb3k6c2VjcmV0": // alloy:secret
		return nil
	}
	return connect.NewError(connect.CodeUnauthenticated, errors.New("bad token"))
}

func (f fakeService) GetConfig(_ context.Context, r *connect.Request[collectorv1.GetConfigRequest]) (*connect.Response[collectorv1.GetConfigResponse], error) {
	if err := authOK(r.Header()); err != nil {
		return nil, err
	}
	f.s.mu.Lock()
	f.s.get = r.Msg
	f.s.mu.Unlock()
	if r.Msg.GetHash() == "h1" {
		return connect.NewResponse(&collectorv1.GetConfigResponse{Hash: "h1", NotModified: true}), nil
	}
	return connect.NewResponse(&collectorv1.GetConfigResponse{Content: "cfg <&>", Hash: "h1"}), nil
}

func (f fakeService) RegisterCollector(_ context.Context, r *connect.Request[collectorv1.RegisterCollectorRequest]) (*connect.Response[collectorv1.RegisterCollectorResponse], error) {
	if err := authOK(r.Header()); err != nil {
		return nil, err
	}
	f.s.mu.Lock()
	f.s.register = r.Msg
	f.s.mu.Unlock()
	return connect.NewResponse(&collectorv1.RegisterCollectorResponse{}), nil
}

func (f fakeService) UnregisterCollector(_ context.Context, r *connect.Request[collectorv1.UnregisterCollectorRequest]) (*connect.Response[collectorv1.UnregisterCollectorResponse], error) {
	if err := authOK(r.Header()); err != nil {
		return nil, err
	}
	f.s.mu.Lock()
	f.s.unregister = r.Msg
	f.s.mu.Unlock()
	return connect.NewResponse(&collectorv1.UnregisterCollectorResponse{}), nil
}

func newServer(t *testing.T) (*httptest.Server, *seen) {
	t.Helper()
	s := &seen{}
	path, h := collectorv1connect.NewCollectorServiceHandler(fakeService{s})
	mux := http.NewServeMux()
	mux.Handle(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.method, s.ctype = r.Method, r.Header.Get("Content-Type")
		s.encoding, s.auth = r.Header.Get("Content-Encoding"), r.Header.Get("Authorization")
		s.userAgent = r.Header.Get("User-Agent")
		s.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, s
}

func runJSON(t *testing.T, args ...string) []map[string]any {
	t.Helper()
	var out bytes.Buffer
	if rc := run(args, &out); rc != 0 {
		t.Fatalf("run(%v) = %d", args, rc)
	}
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("bad JSON line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	return lines
}

func TestTransports(t *testing.T) {
	srv, s := newServer(t)
	cases := []struct {
		transport, method, ctype, encoding string
	}{
		{"post", "POST", "application/proto", ""},
		{"get", "GET", "", ""},
		{"json", "POST", "application/json", ""},
		{"gzip", "POST", "application/proto", "gzip"},
	}
	for _, c := range cases {
		t.Run(c.transport, func(t *testing.T) {
			got := runJSON(t, "-url", srv.URL, "-token", "secret", "-rpc", "get", "-transport", c.transport,
				"-id", "h1", "-attr", "env=prod", "-status", "failed", "-status-error", "boom", "-effective-config", "x")
			if len(got) != 1 || got[0]["ok"] != true || got[0]["content"] != "cfg <&>" || got[0]["hash"] != "h1" || got[0]["not_modified"] != false {
				t.Fatalf("unexpected output %v", got)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.method != c.method || s.ctype != c.ctype || s.encoding != c.encoding {
				t.Fatalf("wire: method=%q ctype=%q enc=%q, want %q %q %q", s.method, s.ctype, s.encoding, c.method, c.ctype, c.encoding)
			}
			if s.userAgent != defaultUserAgent || s.auth != "Bearer secret" {
				t.Fatalf("headers: ua=%q auth=%q", s.userAgent, s.auth)
			}
			g := s.get
			if g.GetId() != "h1" || g.GetLocalAttributes()["env"] != "prod" || len(g.GetAttributes()) != 0 ||
				g.GetRemoteConfigStatus().GetStatus() != collectorv1.RemoteConfigStatuses_RemoteConfigStatuses_FAILED ||
				g.GetRemoteConfigStatus().GetErrorMessage() != "boom" {
				t.Fatalf("request: %v", g)
			}
			f := g.GetEffectiveConfig().GetConfigMap().GetConfigMap()[""]
			if string(f.GetBody()) != "x" || f.GetContentType() != "text/plain" {
				t.Fatalf("effective config: %v", f)
			}
		})
	}
}

func TestAuthAndErrors(t *testing.T) {
	srv, s := newServer(t)
	got := runJSON(t, "-url", srv.URL, "-token", "secret", "-auth", "basic", "-rpc", "register",
		"-id", "h1", "-name", "n", "-attr", "a=b", "-legacy-attrs", "-count", "2")
	if len(got) != 2 || got[0]["ok"] != true || got[1]["ok"] != true || len(got[0]) != 1 {
		t.Fatalf("unexpected output %v", got)
	}
	if s.register.GetName() != "n" || s.register.GetAttributes()["a"] != "b" || len(s.register.GetLocalAttributes()) != 0 {
		t.Fatalf("register request: %v", s.register)
	}

	for _, args := range [][]string{{"-auth", "none"}, {"-token", "wrong"}} {
		got = runJSON(t, append([]string{"-url", srv.URL, "-rpc", "unregister", "-id", "h1"}, args...)...)
		if got[0]["ok"] != false || got[0]["code"] != "unauthenticated" || got[0]["message"] != "bad token" || got[0]["http_status"] != float64(401) {
			t.Fatalf("unexpected output %v", got)
		}
	}

	got = runJSON(t, "-url", srv.URL, "-token", "secret", "-rpc", "get", "-id", "h1", "-hash", "h1")
	if got[0]["not_modified"] != true || got[0]["content"] != "" {
		t.Fatalf("unexpected output %v", got)
	}
}

func TestCheckGetURLSize(t *testing.T) {
	small := &collectorv1.GetConfigRequest{Id: "h1"}
	if err := checkGetURLSize("http://127.0.0.1:1", small); err != nil {
		t.Fatalf("small request rejected: %v", err)
	}
	big := &collectorv1.GetConfigRequest{Id: "h1", EffectiveConfig: &collectorv1.EffectiveConfig{
		ConfigMap: &collectorv1.AgentConfigMap{ConfigMap: map[string]*collectorv1.AgentConfigFile{
			"": {Body: bytes.Repeat([]byte("a"), getMaxURLSize)},
		}},
	}}
	if err := checkGetURLSize("http://127.0.0.1:1", big); connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Fatalf("big request: got %v, want resource_exhausted", err)
	}
}
