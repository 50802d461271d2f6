package main

// The -idle mode: many agents in one process, each its own opamp-go WebSocket client with its own
// instance uid, that connect, acknowledge the configs they are offered and then stay idle (heartbeats
// off until the server offers an interval; against a server offering an hour they send nothing more).
// For measuring what idle OpAMP connections cost a server (scripts/bench_opamp_idle.sh).
//
// Events (JSON lines on stdout):
//
//	{"event":"idle_progress","connected":N,"connects":N,"configs":N,"connect_failures":N,"elapsed_ms":N}   every second
//	{"event":"idle_ready",...the same fields}   all connected (and configured); "connects" > N: reconnections
//	{"event":"idle_disconnected","count":N}   connections the server closed while idle (once per second, when any)
//	{"event":"stopped"}
//
// It exits (0) when its stdin closes, closing every connection without a goodbye (as a host that loses
// power would; -idle-goodbye sends one per agent first), or (4) at -timeout when not all connected.

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/open-telemetry/opamp-go/client"
	"github.com/open-telemetry/opamp-go/client/types"
	"github.com/open-telemetry/opamp-go/protobufs"
)

type idleOptions struct {
	url         string
	token       string
	count       int
	concurrency int
	seed        string
	name        string
	waitConfigs bool
	goodbye     bool
	timeout     time.Duration
}

// quietLogger drops opamp-go's logs: thousands of clients would flood stdout.
type quietLogger struct{}

func (quietLogger) Debugf(context.Context, string, ...any) {}
func (quietLogger) Errorf(context.Context, string, ...any) {}

// idleUID is agent i's instance uid: random, or derived from -idle-seed (the same agents again: the
// server finds their collectors by uid).
func idleUID(seed string, i int) uuid.UUID {
	if seed == "" {
		id, err := uuid.NewV7()
		if err != nil {
			panic(err)
		}
		return id
	}
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", seed, i)))
	var id uuid.UUID
	copy(id[:], sum[:16])
	id[6] = (id[6] & 0x0f) | 0x40 // version 4
	id[8] = (id[8] & 0x3f) | 0x80 // RFC 4122 variant
	return id
}

func stringKV(key, value string) *protobufs.KeyValue {
	return &protobufs.KeyValue{Key: key, Value: &protobufs.AnyValue{Value: &protobufs.AnyValue_StringValue{StringValue: value}}}
}

func runIdle(out *output, o idleOptions) int {
	header := http.Header{}
	if o.token != "" {
		header.Set("Authorization", "Bearer "+o.token)
	}
	capabilities := protobufs.AgentCapabilities_AgentCapabilities_ReportsStatus |
		protobufs.AgentCapabilities_AgentCapabilities_AcceptsRemoteConfig |
		protobufs.AgentCapabilities_AgentCapabilities_ReportsRemoteConfig |
		protobufs.AgentCapabilities_AgentCapabilities_ReportsHeartbeat
	var connected, connects, configs, failures, disconnects atomic.Int64
	// At most -idle-concurrency connection attempts in flight: a slot is taken before a client starts
	// and given back at its first connect (or first failure).
	slots := make(chan struct{}, o.concurrency)
	clients := make([]client.OpAMPClient, o.count)
	started := time.Now()
	heartbeat := time.Duration(0)
	go func() {
		for i := 0; i < o.count; i++ {
			slots <- struct{}{}
			uid := idleUID(o.seed, i)
			var once sync.Once
			release := func() { once.Do(func() { <-slots }) }
			var wasConnected atomic.Bool
			agent := client.NewWebSocket(quietLogger{})
			description := &protobufs.AgentDescription{
				IdentifyingAttributes: []*protobufs.KeyValue{
					stringKV("service.name", o.name),
					stringKV("service.instance.id", uid.String()),
				},
				NonIdentifyingAttributes: []*protobufs.KeyValue{
					stringKV("os.type", "linux"),
					stringKV("host.name", fmt.Sprintf("idle-%06d", i)),
				},
			}
			if err := agent.SetAgentDescription(description); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			settings := types.StartSettings{
				OpAMPServerURL:    o.url,
				Header:            header,
				InstanceUid:       types.InstanceUid(uid),
				Capabilities:      capabilities,
				HeartbeatInterval: &heartbeat,
				Callbacks: types.Callbacks{
					OnConnect: func(context.Context) {
						connects.Add(1)
						if wasConnected.CompareAndSwap(false, true) {
							connected.Add(1)
						}
						release()
					},
					OnConnectFailed: func(context.Context, error) {
						failures.Add(1)
						if wasConnected.CompareAndSwap(true, false) {
							connected.Add(-1)
							disconnects.Add(1)
						}
						release()
					},
					OnMessage: func(_ context.Context, msg *types.MessageData) {
						if msg.RemoteConfig == nil {
							return
						}
						configs.Add(1)
						_ = agent.SetRemoteConfigStatus(&protobufs.RemoteConfigStatus{
							LastRemoteConfigHash: msg.RemoteConfig.GetConfigHash(),
							Status:               protobufs.RemoteConfigStatuses_RemoteConfigStatuses_APPLIED,
						})
					},
				},
			}
			clients[i] = agent
			if err := agent.Start(context.Background(), settings); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
	}()

	stdinClosed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	snapshot := func(event string) {
		out.emit(map[string]any{
			"event": event, "connected": connected.Load(), "connects": connects.Load(), "configs": configs.Load(),
			"connect_failures": failures.Load(), "elapsed_ms": time.Since(started).Milliseconds(),
		})
	}
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	deadline := time.After(o.timeout)
	ready := false
	code := 0
loop:
	for {
		select {
		case <-stdinClosed:
			break loop
		case <-deadline:
			if !ready {
				snapshot("idle_timeout")
				code = 4
				break loop
			}
		case <-ticker.C:
			if !ready {
				snapshot("idle_progress")
			}
			if n := disconnects.Swap(0); n > 0 {
				out.emit(map[string]any{"event": "idle_disconnected", "count": n})
			}
		}
		if !ready && connected.Load() == int64(o.count) && (!o.waitConfigs || configs.Load() >= int64(o.count)) {
			ready = true
			snapshot("idle_ready")
		}
	}
	if o.goodbye {
		var wg sync.WaitGroup
		stopSlots := make(chan struct{}, 64)
		for _, agent := range clients {
			if agent == nil {
				continue
			}
			wg.Add(1)
			stopSlots <- struct{}{}
			go func(agent client.OpAMPClient) {
				defer wg.Done()
				defer func() { <-stopSlots }()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = agent.Stop(ctx)
			}(agent)
		}
		wg.Wait()
	}
	out.emit(map[string]any{"event": "stopped"})
	return code
}
