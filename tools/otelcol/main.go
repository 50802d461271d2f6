// Command otelcol is an OpenTelemetry Collector built from upstream factories (components.go), with
// the upstream command line (`otelcol --config FILE`, `components`, `validate`, `featuregate`), for
// an OpAMP supervisor to drive in linkmesh's end-to-end tests (tests/opamp_supervisor.rs).
package main

import (
	"fmt"
	"os"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/otelcol"
)

func settings() otelcol.CollectorSettings {
	return otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{
			Command:     "linkmesh-otelcol",
			Description: "OpenTelemetry Collector for linkmesh's OpAMP supervisor tests",
			Version:     "0.149.0",
		},
		Factories: components,
		ProviderModules: map[string]string{
			"env":  "go.opentelemetry.io/collector/confmap/provider/envprovider v1.55.0",
			"file": "go.opentelemetry.io/collector/confmap/provider/fileprovider v1.55.0",
			"yaml": "go.opentelemetry.io/collector/confmap/provider/yamlprovider v1.55.0",
		},
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				ProviderFactories: []confmap.ProviderFactory{
					envprovider.NewFactory(),
					fileprovider.NewFactory(),
					yamlprovider.NewFactory(),
				},
			},
		},
	}
}

func main() {
	if err := otelcol.NewCommand(settings()).Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "collector server run finished with error: %v\n", err)
		os.Exit(1)
	}
}
