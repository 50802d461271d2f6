// Command remotecfgclient is a tiny test client for Grafana Alloy's remotecfg
// Connect-RPC API (collector.v1.CollectorService). It is built from the same
// published Go modules Alloy uses (connectrpc.com/connect and
// github.com/grafana/alloy-remote-config), performs exactly one kind of RPC
// per invocation (optionally repeated with -count) and prints one JSON line
// per call on stdout, so integration tests written in other languages can
// drive it step by step.
//
// Exit status: 0 whenever every call either succeeded or failed with a
// Connect error (the JSON line says which); 2 for usage errors; 1 when a call
// fails with an error that is not a Connect error (printed to stderr).
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	collectorv1 "github.com/grafana/alloy-remote-config/api/gen/proto/go/collector/v1"
	"github.com/grafana/alloy-remote-config/api/gen/proto/go/collector/v1/collectorv1connect"
	"google.golang.org/protobuf/proto"
)

const defaultUserAgent = "Alloy/v1.12.0 (linux; remotecfgclient)"

// getMaxURLSize is the URL size limit used with -transport get. It is
// deliberately generous (it can only be reached with -effective-config-file;
// argv limits single arguments to 128 KiB on Linux), and fallback to POST is
// disabled so that a GET test never silently turns into a POST.
//
// connect-go quirk: when the marshaled GET URL exceeds the limit, Send fails
// with resource_exhausted but the client still closes the request, which sends
// a POST with an EMPTY body to the server. checkGetURLSize therefore rejects
// such requests before connect-go ever sees them.
const getMaxURLSize = 1 << 20

// kvFlag is a repeatable k=v flag.
type kvFlag struct {
	m map[string]string
}

func (f *kvFlag) String() string {
	if f == nil || len(f.m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(f.m))
	for k := range f.m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+f.m[k])
	}
	return strings.Join(parts, ",")
}

func (f *kvFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("expected k=v, got %q", s)
	}
	if f.m == nil {
		f.m = map[string]string{}
	}
	f.m[k] = v
	return nil
}

type options struct {
	url             string
	token           string
	rpc             string
	id              string
	name            string
	hash            string
	attrs           kvFlag
	headers         kvFlag
	legacyAttrs     bool
	status          string
	statusError     string
	effectiveConfig string
	effectiveFile   string
	transport       string
	auth            string
	userAgent       string
	count           int
	timeout         time.Duration
	deadline        time.Duration
	verbose         bool

	set map[string]bool // flags explicitly given on the command line
}

// authTransport adds authentication, the User-Agent and extra headers to
// every request, records the HTTP status of the last response and optionally
// logs the wire-level request to stderr.
type authTransport struct {
	base       http.RoundTripper
	opts       *options
	lastStatus atomic.Int64
}

func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	switch t.opts.auth {
	case "bearer":
		req.Header.Set("Authorization", "Bearer "+t.opts.token)
	case "basic":
		req.SetBasicAuth("alloy", t.opts.token)
	case "none":
		req.Header.Del("Authorization")
	}
	req.Header.Set("User-Agent", t.opts.userAgent)
	for k, v := range t.opts.headers.m {
		req.Header.Set(k, v)
	}
	t.lastStatus.Store(0)
	if t.opts.verbose {
		fmt.Fprintf(os.Stderr, "> %s %s\n", req.Method, req.URL.String())
		for _, h := range []string{"Content-Type", "Content-Encoding", "Connect-Protocol-Version", "Connect-Timeout-Ms", "Accept-Encoding", "User-Agent", "Authorization"} {
			if v := req.Header.Get(h); v != "" {
				fmt.Fprintf(os.Stderr, "> %s: %s\n", h, v)
			}
		}
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		if t.opts.verbose {
			fmt.Fprintf(os.Stderr, "< transport error: %v\n", err)
		}
		return nil, err
	}
	t.lastStatus.Store(int64(resp.StatusCode))
	if t.opts.verbose {
		fmt.Fprintf(os.Stderr, "< %s\n", resp.Status)
		for _, h := range []string{"Content-Type", "Content-Encoding"} {
			if v := resp.Header.Get(h); v != "" {
				fmt.Fprintf(os.Stderr, "< %s: %s\n", h, v)
			}
		}
	}
	return resp, nil
}

type getResult struct {
	OK          bool   `json:"ok"`
	Content     string `json:"content"`
	Hash        string `json:"hash"`
	NotModified bool   `json:"not_modified"`
}

type okResult struct {
	OK bool `json:"ok"`
}

type errResult struct {
	OK         bool   `json:"ok"`
	Code       string `json:"code"`
	Message    string `json:"message"`
	HTTPStatus int    `json:"http_status"`
}

func usageErr(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "remotecfgclient: "+format+"\n", args...)
	fmt.Fprintln(os.Stderr, "run with -h for usage")
	os.Exit(2)
}

func parseFlags(args []string) *options {
	o := &options{}
	fs := flag.NewFlagSet("remotecfgclient", flag.ExitOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: remotecfgclient -url URL -rpc get|register|unregister [flags]\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.url, "url", "", "base URL of the remotecfg server, e.g. http://127.0.0.1:8080 (required)")
	fs.StringVar(&o.token, "token", "", "bearer token, or basic-auth password with -auth basic")
	fs.StringVar(&o.rpc, "rpc", "", "RPC to call: get, register or unregister (required)")
	fs.StringVar(&o.id, "id", "", "collector id")
	fs.StringVar(&o.name, "name", "", "collector name (register)")
	fs.StringVar(&o.hash, "hash", "", "hash of the config the collector already has (get)")
	fs.Var(&o.attrs, "attr", "attribute k=v (repeatable); goes to local_attributes (field 4) (get, register)")
	fs.BoolVar(&o.legacyAttrs, "legacy-attrs", false, "send -attr values in the deprecated attributes field (field 2) instead of local_attributes")
	fs.StringVar(&o.status, "status", "", "remote_config_status.status to report: unset, applied, applying or failed (get)")
	fs.StringVar(&o.statusError, "status-error", "", "remote_config_status.error_message (get; requires -status)")
	fs.StringVar(&o.effectiveConfig, "effective-config", "", "effective config text, sent as effective_config.config_map.config_map[\"\"] with content_type text/plain (get)")
	fs.StringVar(&o.effectiveFile, "effective-config-file", "", "like -effective-config, but read the text from this file (for bodies too large for argv)")
	fs.StringVar(&o.transport, "transport", "post", "post (binary proto POST, Alloy's default), get (HTTP GET for GetConfig), json (protojson POST) or gzip (gzip-compressed binary proto POST)")
	fs.StringVar(&o.auth, "auth", "bearer", "bearer (Authorization: Bearer TOKEN), basic (user alloy, password TOKEN) or none")
	fs.StringVar(&o.userAgent, "user-agent", defaultUserAgent, "User-Agent header")
	fs.Var(&o.headers, "header", "extra request header k=v (repeatable)")
	fs.IntVar(&o.count, "count", 1, "number of times to repeat the RPC (one JSON line per call)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "per-call HTTP client timeout (http.Client.Timeout; sends no Connect-Timeout-Ms header, like Alloy)")
	fs.DurationVar(&o.deadline, "deadline", 0, "if > 0, per-call context deadline, which connect-go sends as the Connect-Timeout-Ms header")
	fs.BoolVar(&o.verbose, "v", false, "log HTTP method, URL, key headers and response status to stderr")
	_ = fs.Parse(args)

	if fs.NArg() > 0 {
		usageErr("unexpected arguments: %v", fs.Args())
	}
	o.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })

	if o.url == "" {
		usageErr("-url is required")
	}
	switch o.rpc {
	case "get", "register", "unregister":
	case "":
		usageErr("-rpc is required")
	default:
		usageErr("unknown -rpc %q (want get, register or unregister)", o.rpc)
	}
	switch o.transport {
	case "post", "get", "json", "gzip":
	default:
		usageErr("unknown -transport %q (want post, get, json or gzip)", o.transport)
	}
	switch o.auth {
	case "bearer", "basic", "none":
	default:
		usageErr("unknown -auth %q (want bearer, basic or none)", o.auth)
	}
	if o.status != "" {
		if _, ok := parseStatus(o.status); !ok {
			usageErr("unknown -status %q (want unset, applied, applying or failed)", o.status)
		}
	}
	if o.set["status-error"] && !o.set["status"] {
		usageErr("-status-error requires -status")
	}
	if o.count < 1 {
		usageErr("-count must be >= 1")
	}
	if o.timeout <= 0 {
		usageErr("-timeout must be > 0")
	}
	if o.deadline < 0 {
		usageErr("-deadline must be >= 0")
	}
	if o.set["effective-config"] && o.set["effective-config-file"] {
		usageErr("-effective-config and -effective-config-file are mutually exclusive")
	}
	if o.set["effective-config-file"] {
		b, err := os.ReadFile(o.effectiveFile)
		if err != nil {
			usageErr("reading -effective-config-file: %v", err)
		}
		o.effectiveConfig = string(b)
		o.set["effective-config"] = true
	}

	// Warn (but do not fail) about flags the chosen RPC does not use.
	applies := map[string][]string{
		"get":        {"id", "hash", "attr", "legacy-attrs", "status", "status-error", "effective-config", "effective-config-file"},
		"register":   {"id", "name", "attr", "legacy-attrs"},
		"unregister": {"id"},
	}
	for _, f := range []string{"name", "hash", "attr", "legacy-attrs", "status", "status-error", "effective-config", "effective-config-file"} {
		if o.set[f] && !contains(applies[o.rpc], f) {
			fmt.Fprintf(os.Stderr, "remotecfgclient: warning: -%s is ignored for -rpc %s\n", f, o.rpc)
		}
	}
	return o
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func parseStatus(s string) (collectorv1.RemoteConfigStatuses, bool) {
	switch s {
	case "unset":
		return collectorv1.RemoteConfigStatuses_RemoteConfigStatuses_UNSET, true
	case "applied":
		return collectorv1.RemoteConfigStatuses_RemoteConfigStatuses_APPLIED, true
	case "applying":
		return collectorv1.RemoteConfigStatuses_RemoteConfigStatuses_APPLYING, true
	case "failed":
		return collectorv1.RemoteConfigStatuses_RemoteConfigStatuses_FAILED, true
	}
	return 0, false
}

func clientOptions(transport string) []connect.ClientOption {
	switch transport {
	case "get":
		// connect-go only issues GET for unary procedures whose idempotency
		// level is NO_SIDE_EFFECTS; the generated client declares that for
		// GetConfig (register/unregister still POST).
		return []connect.ClientOption{
			connect.WithHTTPGet(),
			connect.WithHTTPGetMaxURLSize(getMaxURLSize, false),
		}
	case "json":
		return []connect.ClientOption{connect.WithProtoJSON()}
	case "gzip":
		// WithCompressMinBytes(0) makes sure even tiny (and empty) bodies are
		// compressed. (0 is also connect-go's default, but be explicit.)
		return []connect.ClientOption{
			connect.WithSendGzip(),
			connect.WithCompressMinBytes(0),
		}
	default:
		return nil
	}
}

// checkGetURLSize mirrors connect-go's GET URL construction for the binary
// codec (deterministic marshal, unpadded base64url message) and fails with
// resource_exhausted, without sending anything, when it would exceed
// getMaxURLSize. See the comment on getMaxURLSize.
func checkGetURLSize(baseURL string, msg proto.Message) error {
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		return connect.NewError(connect.CodeInternal, fmt.Errorf("marshal message stable: %w", err))
	}
	size := len(strings.TrimRight(baseURL, "/")) +
		len(collectorv1connect.CollectorServiceGetConfigProcedure) +
		len("?connect=v1&base64=1&encoding=proto&message=") +
		base64.RawURLEncoding.EncodedLen(len(data))
	if size > getMaxURLSize {
		return connect.NewError(connect.CodeResourceExhausted, fmt.Errorf(
			"url size %d exceeds getURLMaxBytes %d (checked by remotecfgclient; nothing was sent)", size, getMaxURLSize))
	}
	return nil
}

func attrsFor(o *options) (local, legacy map[string]string) {
	if len(o.attrs.m) == 0 {
		return nil, nil
	}
	if o.legacyAttrs {
		return nil, o.attrs.m
	}
	return o.attrs.m, nil
}

// call performs one RPC and returns the value to print as JSON.
func call(ctx context.Context, client collectorv1connect.CollectorServiceClient, o *options) (any, error) {
	local, legacy := attrsFor(o)
	switch o.rpc {
	case "get":
		msg := &collectorv1.GetConfigRequest{
			Id:              o.id,
			Hash:            o.hash,
			LocalAttributes: local,
			Attributes:      legacy, //nolint:staticcheck // deliberately exercising the deprecated field
		}
		if o.set["status"] {
			st, _ := parseStatus(o.status)
			msg.RemoteConfigStatus = &collectorv1.RemoteConfigStatus{
				Status:       st,
				ErrorMessage: o.statusError,
			}
		}
		if o.set["effective-config"] {
			msg.EffectiveConfig = &collectorv1.EffectiveConfig{
				ConfigMap: &collectorv1.AgentConfigMap{
					ConfigMap: map[string]*collectorv1.AgentConfigFile{
						"": {Body: []byte(o.effectiveConfig), ContentType: "text/plain"},
					},
				},
			}
		}
		if o.transport == "get" {
			if err := checkGetURLSize(o.url, msg); err != nil {
				return nil, err
			}
		}
		resp, err := client.GetConfig(ctx, connect.NewRequest(msg))
		if err != nil {
			return nil, err
		}
		return getResult{
			OK:          true,
			Content:     resp.Msg.GetContent(),
			Hash:        resp.Msg.GetHash(),
			NotModified: resp.Msg.GetNotModified(),
		}, nil
	case "register":
		msg := &collectorv1.RegisterCollectorRequest{
			Id:              o.id,
			Name:            o.name,
			LocalAttributes: local,
			Attributes:      legacy,
		}
		if _, err := client.RegisterCollector(ctx, connect.NewRequest(msg)); err != nil {
			return nil, err
		}
		return okResult{OK: true}, nil
	case "unregister":
		msg := &collectorv1.UnregisterCollectorRequest{Id: o.id}
		if _, err := client.UnregisterCollector(ctx, connect.NewRequest(msg)); err != nil {
			return nil, err
		}
		return okResult{OK: true}, nil
	}
	return nil, fmt.Errorf("unknown rpc %q", o.rpc)
}

func run(args []string, stdout io.Writer) int {
	o := parseFlags(args)

	base := http.DefaultTransport.(*http.Transport).Clone()
	rt := &authTransport{base: base, opts: o}
	httpClient := &http.Client{Transport: rt, Timeout: o.timeout}
	client := collectorv1connect.NewCollectorServiceClient(httpClient, o.url, clientOptions(o.transport)...)

	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	for i := 0; i < o.count; i++ {
		ctx, cancel := context.Background(), context.CancelFunc(func() {})
		if o.deadline > 0 {
			ctx, cancel = context.WithTimeout(ctx, o.deadline)
		}
		rt.lastStatus.Store(0)
		out, err := call(ctx, client, o)
		cancel()
		if err != nil {
			var connectErr *connect.Error
			if !errors.As(err, &connectErr) {
				fmt.Fprintf(os.Stderr, "remotecfgclient: %v\n", err)
				return 1
			}
			out = errResult{
				OK:         false,
				Code:       connect.CodeOf(err).String(),
				Message:    connectErr.Message(),
				HTTPStatus: int(rt.lastStatus.Load()),
			}
		}
		if err := enc.Encode(out); err != nil {
			fmt.Fprintf(os.Stderr, "remotecfgclient: writing output: %v\n", err)
			return 1
		}
	}
	return 0
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout))
}
