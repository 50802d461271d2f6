package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const validConfig = `receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:4317
processors:
  batch: {}
exporters:
  debug: {}
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [debug]
`

// fullConfig uses every component type this build registers.
const fullConfig = `receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:4318
  prometheus:
    config:
      scrape_configs:
        - job_name: self
          static_configs:
            - targets: ["127.0.0.1:8888"]
  filelog:
    include: [/var/log/app/*.log]
  hostmetrics:
    collection_interval: 30s
    scrapers:
      cpu: {}
      memory: {}
processors:
  batch: {}
  filter/drop_debug:
    error_mode: ignore
    logs:
      log_record:
        - 'severity_number < SEVERITY_NUMBER_INFO'
  transform:
    log_statements:
      - context: log
        statements:
          - set(attributes["linkmesh"], "yes")
  attributes:
    actions:
      - key: env
        value: prod
        action: upsert
  resource:
    attributes:
      - key: service.namespace
        value: linkmesh
        action: insert
  redaction:
    allow_all_keys: true
    blocked_values: ["4[0-9]{12}(?:[0-9]{3})?"]
exporters:
  otlp:
    endpoint: otel.example:4317
  otlphttp:
    endpoint: https://otel.example:4318
  debug: {}
  kafka:
    brokers: ["127.0.0.1:9092"]
  prometheusremotewrite:
    endpoint: https://prom.example/api/v1/write
connectors:
  forward: {}
  routing:
    default_pipelines: [logs/default]
    table:
      - context: resource
        condition: attributes["env"] == "prod"
        pipelines: [logs/prod]
service:
  pipelines:
    logs/in:
      receivers: [otlp, filelog]
      processors: [filter/drop_debug, transform, attributes, resource, redaction]
      exporters: [routing]
    logs/prod:
      receivers: [routing]
      processors: [batch]
      exporters: [otlp, kafka]
    logs/default:
      receivers: [routing]
      exporters: [debug]
    metrics/in:
      receivers: [prometheus, hostmetrics]
      exporters: [forward]
    metrics/out:
      receivers: [forward]
      processors: [batch]
      exporters: [prometheusremotewrite, otlphttp]
`

func TestValidateValid(t *testing.T) {
	for name, cfg := range map[string]string{"otlp-batch-debug": validConfig, "all components": fullConfig} {
		t.Run(name, func(t *testing.T) {
			if err := Validate(context.Background(), []byte(cfg), io.Discard); err != nil {
				t.Fatalf("want valid, got: %v", err)
			}
		})
	}
}

func TestValidateInvalid(t *testing.T) {
	tests := []struct {
		name string
		cfg  string
		want string // substring of the collector's error text
	}{
		{
			name: "unknown component type",
			cfg:  strings.Replace(validConfig, "  debug: {}", "  nosuchexporter: {}", 1),
			want: `unknown type: "nosuchexporter"`,
		},
		{
			name: "unknown config key",
			cfg:  strings.Replace(validConfig, "  batch: {}", "  batch:\n    send_batch_sizee: 10", 1),
			want: "send_batch_sizee",
		},
		{
			name: "otlp exporter without endpoint",
			cfg: `receivers:
  otlp:
    protocols:
      grpc: {}
exporters:
  otlp: {}
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp]
`,
			want: "endpoint",
		},
		{
			name: "filter processor with invalid OTTL condition",
			cfg: `receivers:
  otlp:
    protocols:
      grpc: {}
processors:
  filter:
    logs:
      log_record:
        - 'attributes["x"] =='
exporters:
  debug: {}
service:
  pipelines:
    logs:
      receivers: [otlp]
      processors: [filter]
      exporters: [debug]
`,
			want: `processors::filter: unable to parse OTTL condition`,
		},
		{
			name: "pipeline references undefined component",
			cfg:  strings.Replace(validConfig, "exporters: [debug]", "exporters: [debug, otlphttp/missing]", 1),
			want: `references exporter "otlphttp/missing" which is not configured`,
		},
		{
			name: "connector used only as exporter",
			cfg: `receivers:
  otlp:
    protocols:
      grpc: {}
exporters:
  debug: {}
connectors:
  forward: {}
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug, forward]
`,
			want: `connector "forward" used as exporter in [traces] pipeline but not used in any supported receiver pipeline`,
		},
		{
			name: "no pipelines",
			cfg:  "receivers:\n  otlp:\n    protocols:\n      grpc: {}\nservice: {}\n",
			want: "service must have at least one pipeline",
		},
		{
			name: "not YAML",
			cfg:  "receivers: [\n",
			want: "cannot resolve the configuration",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(context.Background(), []byte(tc.cfg), io.Discard)
			if err == nil {
				t.Fatalf("want an error containing %q, got valid", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestFilterOTTLErrorMentionsCondition(t *testing.T) {
	cfg := `receivers:
  otlp:
    protocols:
      grpc: {}
processors:
  filter:
    logs:
      log_record:
        - 'attributes["x"] =='
exporters:
  debug: {}
service:
  pipelines:
    logs:
      receivers: [otlp]
      processors: [filter]
      exporters: [debug]
`
	err := Validate(context.Background(), []byte(cfg), io.Discard)
	if err == nil || !strings.Contains(err.Error(), `"attributes[\"x\"] =="`) {
		t.Fatalf("want the OTTL parse error to quote the condition, got %v", err)
	}
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte(validConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(strings.Replace(validConfig, "[debug]", "[nope]", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		stdin    string
		wantCode int
		wantOut  string
	}{
		{"valid file", []string{good}, "", 0, "ok\n"},
		{"valid stdin", nil, validConfig, 0, "ok\n"},
		{"valid stdin dash", []string{"-"}, validConfig, 0, "ok\n"},
		{"invalid file", []string{bad}, "", 1, `references exporter "nope" which is not configured`},
		{"json ok", []string{"-json", good}, "", 0, `{"ok":true,"errors":[]}` + "\n"},
		{"json invalid", []string{"-json", bad}, "", 1, `{"ok":false,"errors":["`},
		{"components", []string{"-components"}, "", 0, "routing"},
		{"unknown flag", []string{"-nope"}, "", 2, ""},
		{"two files", []string{good, bad}, "", 2, ""},
		{"missing file", []string{filepath.Join(dir, "missing.yaml")}, "", 2, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, strings.NewReader(tc.stdin), &stdout, &stderr)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d (stdout %q, stderr %q)", code, tc.wantCode, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.wantOut) {
				t.Errorf("stdout %q, want it to contain %q", stdout.String(), tc.wantOut)
			}
			if strings.HasPrefix(tc.wantOut, "{") {
				var res jsonResult
				if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
					t.Errorf("stdout is not JSON: %v", err)
				}
			}
		})
	}
}
