// Command opampwsclient is a test agent for linkmesh's OpAMP endpoint over
// WebSocket, built from the published OpAMP Go module
// (github.com/open-telemetry/opamp-go, the library the opampsupervisor and the
// collector's opamp extension use). It connects with a bearer token, accepts
// remote configs (acknowledging each one APPLIED), and prints one JSON line per
// event on stdout so that tests in other languages can follow it:
//
//	{"event":"connected"}
//	{"event":"connect_failed","error":"..."}
//	{"event":"config","hash":"...","body":"..."}
//	{"event":"server_error","type":"BadRequest","message":"..."}
//	{"event":"error_log","message":"Server responded with status=401 Unauthorized"}
//	{"event":"stopped"}
//
// It stops (sending agent_disconnect, then a WebSocket close) once it has
// received -configs configs, after -connect-failures failed connections in a
// row (exit 3), after -timeout (exit 4), or when its stdin closes.
// -heartbeat 0 turns heartbeats off until the server offers an interval (the
// agent reports heartbeats, so opamp-go applies an offered
// connection_settings.opamp.heartbeat_interval_seconds): with a server that
// offers a long one, the agent sends nothing but its acknowledgements (one
// message each: it reports no effective config), so a config that arrives
// after the last acknowledgement was recorded was pushed by the server.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/open-telemetry/opamp-go/client"
	"github.com/open-telemetry/opamp-go/client/types"
	"github.com/open-telemetry/opamp-go/protobufs"
)

type output struct {
	mu sync.Mutex
}

func (o *output) emit(fields map[string]any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	line, _ := json.Marshal(fields)
	fmt.Println(string(line))
}

// logger turns opamp-go's error logs into events: a refused upgrade is reported
// there with its HTTP status ("Server responded with status=401 Unauthorized"),
// while OnConnectFailed only gets "websocket: bad handshake".
type logger struct{ out *output }

func (logger) Debugf(context.Context, string, ...any) {}
func (l logger) Errorf(_ context.Context, format string, args ...any) {
	l.out.emit(map[string]any{"event": "error_log", "message": fmt.Sprintf(format, args...)})
}

// prefix is the start of an Authorization value, enough to tell the kind of token (never the token).
func prefix(value string) string {
	if len(value) > 12 {
		return value[:12]
	}
	return value
}

func main() {
	url := flag.String("url", "", "ws:// URL of the OpAMP endpoint")
	token := flag.String("token", "", "bearer token sent on the upgrade request")
	configs := flag.Int("configs", 1, "stop after this many remote configs")
	connectFailures := flag.Int("connect-failures", 0, "stop (exit 3) after this many failed connections in a row; 0: never")
	heartbeat := flag.Duration("heartbeat", 0, "heartbeat interval; 0 turns heartbeats off")
	timeout := flag.Duration("timeout", 60*time.Second, "give up (exit 4) after this long")
	name := flag.String("name", "opampwsclient", "service.name in the agent description")
	acceptSettings := flag.Bool("accept-settings", false, "accept OpAMP connection settings: reconnect with the offered endpoint and headers")
	acceptRestart := flag.Bool("accept-restart", false, "report health and accept restart commands (a restart reports a new start time, healthy)")
	idle := flag.Int("idle", 0, "open this many agents (each its own instance uid and WebSocket) that stay idle; see idle.go")
	idleConcurrency := flag.Int("idle-concurrency", 100, "-idle: connection attempts in flight at once")
	idleSeed := flag.String("idle-seed", "", "-idle: derive the instance uids from this seed (the same agents again); empty: random")
	idleWaitConfigs := flag.Bool("idle-wait-configs", false, "-idle: ready once every agent also received a config")
	idleGoodbye := flag.Bool("idle-goodbye", false, "-idle: stop every client (agent_disconnect, close) before exiting")
	flag.Parse()
	if *url == "" {
		fmt.Fprintln(os.Stderr, "usage: opampwsclient -url ws://HOST/v1/opamp -token TOKEN [-configs N]")
		os.Exit(2)
	}

	out := &output{}
	if *idle > 0 {
		os.Exit(runIdle(out, idleOptions{
			url: *url, token: *token, count: *idle, concurrency: max(1, *idleConcurrency), seed: *idleSeed,
			name: *name, waitConfigs: *idleWaitConfigs, goodbye: *idleGoodbye, timeout: *timeout,
		}))
	}
	done := make(chan int, 1)
	finish := func(code int) {
		select {
		case done <- code:
		default: // already finishing
		}
	}
	var (
		mu       sync.Mutex
		received int
		failures int
	)
	uuidv7, err := uuid.NewV7()
	uid := types.InstanceUid(uuidv7)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}

	header := http.Header{}
	if *token != "" {
		header.Set("Authorization", "Bearer "+*token)
	}
	capabilities := protobufs.AgentCapabilities_AgentCapabilities_ReportsStatus |
		protobufs.AgentCapabilities_AgentCapabilities_AcceptsRemoteConfig |
		protobufs.AgentCapabilities_AgentCapabilities_ReportsRemoteConfig |
		protobufs.AgentCapabilities_AgentCapabilities_ReportsHeartbeat
	if *acceptSettings {
		capabilities |= protobufs.AgentCapabilities_AgentCapabilities_AcceptsOpAMPConnectionSettings
	}
	if *acceptRestart {
		capabilities |= protobufs.AgentCapabilities_AgentCapabilities_AcceptsRestartCommand |
			protobufs.AgentCapabilities_AgentCapabilities_ReportsHealth
	}
	healthy := func() *protobufs.ComponentHealth {
		return &protobufs.ComponentHealth{Healthy: true, Status: "StatusOK", StartTimeUnixNano: uint64(time.Now().UnixNano())}
	}
	// Offered connection settings are applied by the main goroutine: the client is stopped and a new
	// one started with them (as the supervisor does), never from inside the client's own callback.
	offered := make(chan *protobufs.OpAMPConnectionSettings, 1)
	var agent client.OpAMPClient
	settingsFor := func(endpoint string, header http.Header) types.StartSettings {
		return types.StartSettings{
			OpAMPServerURL:    endpoint,
			Header:            header,
			InstanceUid:       uid,
			Capabilities:      capabilities,
			HeartbeatInterval: heartbeat,
			Callbacks: types.Callbacks{
				OnConnect: func(context.Context) {
					mu.Lock()
					failures = 0
					mu.Unlock()
					out.emit(map[string]any{"event": "connected", "authorization_prefix": prefix(header.Get("Authorization"))})
				},
				OnConnectFailed: func(_ context.Context, err error) {
					out.emit(map[string]any{"event": "connect_failed", "error": err.Error()})
					mu.Lock()
					failures++
					if *connectFailures > 0 && failures >= *connectFailures {
						finish(3)
					}
					mu.Unlock()
				},
				OnError: func(_ context.Context, err *protobufs.ServerErrorResponse) {
					out.emit(map[string]any{"event": "server_error", "type": err.GetType().String(), "message": err.GetErrorMessage()})
				},
				OnOpampConnectionSettings: func(_ context.Context, settings *protobufs.OpAMPConnectionSettings) error {
					auth := ""
					for _, h := range settings.GetHeaders().GetHeaders() {
						if h.GetKey() == "Authorization" {
							auth = h.GetValue()
						}
					}
					out.emit(map[string]any{
						"event":                "connection_settings",
						"endpoint":             settings.GetDestinationEndpoint(),
						"authorization_prefix": prefix(auth),
						"heartbeat_seconds":    settings.GetHeartbeatIntervalSeconds(),
					})
					if *acceptSettings && settings.GetHeaders() != nil {
						select {
						case offered <- settings:
						default:
						}
					}
					return nil
				},
				OnCommand: func(_ context.Context, command *protobufs.ServerToAgentCommand) error {
					out.emit(map[string]any{"event": "command", "type": command.GetType().String()})
					mu.Lock()
					current := agent
					mu.Unlock()
					// The collector "restarts": a new start time, healthy again.
					return current.SetHealth(healthy())
				},
				OnMessage: func(_ context.Context, msg *types.MessageData) {
					if msg.RemoteConfig == nil {
						return
					}
					body := []byte{}
					if file, ok := msg.RemoteConfig.GetConfig().GetConfigMap()[""]; ok {
						body = file.GetBody()
					}
					mu.Lock()
					received++
					count := received
					current := agent
					mu.Unlock()
					out.emit(map[string]any{"event": "config", "hash": string(msg.RemoteConfig.GetConfigHash()), "body": string(body)})
					_ = current.SetRemoteConfigStatus(&protobufs.RemoteConfigStatus{
						LastRemoteConfigHash: msg.RemoteConfig.GetConfigHash(),
						Status:               protobufs.RemoteConfigStatuses_RemoteConfigStatuses_APPLIED,
					})
					if count >= *configs {
						finish(0)
					}
				},
			},
		}
	}
	description := &protobufs.AgentDescription{
		IdentifyingAttributes: []*protobufs.KeyValue{
			{Key: "service.name", Value: &protobufs.AnyValue{Value: &protobufs.AnyValue_StringValue{StringValue: *name}}},
			{Key: "service.instance.id", Value: &protobufs.AnyValue{Value: &protobufs.AnyValue_StringValue{StringValue: uuidv7.String()}}},
		},
		NonIdentifyingAttributes: []*protobufs.KeyValue{
			{Key: "os.type", Value: &protobufs.AnyValue{Value: &protobufs.AnyValue_StringValue{StringValue: "linux"}}},
			{Key: "host.name", Value: &protobufs.AnyValue{Value: &protobufs.AnyValue_StringValue{StringValue: "test-host"}}},
		},
	}
	start := func(endpoint string, header http.Header) {
		next := client.NewWebSocket(logger{out})
		if err := next.SetAgentDescription(description); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if *acceptRestart {
			if err := next.SetHealth(healthy()); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
		mu.Lock()
		agent = next
		mu.Unlock()
		if err := next.Start(context.Background(), settingsFor(endpoint, header)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	start(*url, header)
	go func() {
		for settings := range offered {
			mu.Lock()
			current := agent
			mu.Unlock()
			stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = current.Stop(stopCtx)
			cancel()
			endpoint := *url
			if settings.GetDestinationEndpoint() != "" {
				endpoint = settings.GetDestinationEndpoint()
			}
			next := http.Header{}
			for _, h := range settings.GetHeaders().GetHeaders() {
				next.Set(h.GetKey(), h.GetValue())
			}
			out.emit(map[string]any{"event": "reconnecting", "endpoint": endpoint})
			start(endpoint, next)
		}
	}()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		finish(0)
	}()
	code := 4
	select {
	case code = <-done:
	case <-time.After(*timeout):
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	mu.Lock()
	current := agent
	mu.Unlock()
	if err := current.Stop(stopCtx); err != nil {
		fmt.Fprintln(os.Stderr, "stop:", err)
	}
	out.emit(map[string]any{"event": "stopped"})
	os.Exit(code)
}
