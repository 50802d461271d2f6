module linkmesh.dev/tools/remotecfgclient

go 1.26.0

require (
	connectrpc.com/connect v1.21.1
	github.com/grafana/alloy-remote-config v0.0.12
	google.golang.org/protobuf v1.36.11
)
