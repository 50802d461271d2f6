package main

// The component set of this collector: tools/otelcheck's (what linkmesh renders) without the Kafka
// exporter, plus the opamp extension an OpAMP supervisor needs to drive it, and the nop receiver and
// exporter: the supervisor's bootstrap config uses them whenever it missed the collector's
// service.AllowNoPipelines feature gate (v0.149.0's `featuregate` query sometimes loses the output).
// Each factory is listed with the module (and version) it comes from, so that the collector fills its
// module maps the way a builder-generated distribution does: the opamp extension reports available
// components from them, and an empty map makes that report empty.

import (
	"fmt"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/connector/forwardconnector"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/debugexporter"
	"go.opentelemetry.io/collector/exporter/nopexporter"
	"go.opentelemetry.io/collector/exporter/otlpexporter"
	"go.opentelemetry.io/collector/exporter/otlphttpexporter"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/batchprocessor"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/nopreceiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"

	"github.com/open-telemetry/opentelemetry-collector-contrib/connector/routingconnector"
	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusremotewriteexporter"
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/basicauthextension"
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/bearertokenauthextension"
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/opampextension"
	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/attributesprocessor"
	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/filterprocessor"
	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/redactionprocessor"
	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/resourceprocessor"
	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/transformprocessor"
	"github.com/open-telemetry/opentelemetry-collector-contrib/receiver/filelogreceiver"
	"github.com/open-telemetry/opentelemetry-collector-contrib/receiver/hostmetricsreceiver"
	"github.com/open-telemetry/opentelemetry-collector-contrib/receiver/journaldreceiver"
	"github.com/open-telemetry/opentelemetry-collector-contrib/receiver/prometheusreceiver"
	"github.com/open-telemetry/opentelemetry-collector-contrib/receiver/syslogreceiver"
)

const (
	core     = "go.opentelemetry.io/collector/"
	contrib  = "github.com/open-telemetry/opentelemetry-collector-contrib/"
	release  = " v0.149.0" // the contrib and unstable core modules; keep in step with go.mod
	syslog   = " v0.148.0" // the newest syslog receiver the module proxy serves (README.md)
	journald = " v0.142.0" // the newest journald receiver the module proxy serves (README.md)
)

// withModule pairs a factory with the module line a builder would record for it.
type withModule struct {
	factory component.Factory
	module  string
}

func from(factory component.Factory, module string) withModule {
	return withModule{factory: factory, module: module}
}

// factoryMaps builds one kind's factory map and its module map.
func factoryMaps[F component.Factory](entries ...withModule) (map[component.Type]F, map[component.Type]string, error) {
	factories := make([]F, 0, len(entries))
	modules := make(map[component.Type]string, len(entries))
	for _, entry := range entries {
		factory, ok := entry.factory.(F)
		if !ok {
			return nil, nil, fmt.Errorf("%s (%s) is a %T, not a factory of this kind", entry.factory.Type(), entry.module, entry.factory)
		}
		factories = append(factories, factory)
		modules[factory.Type()] = entry.module
	}
	byType, err := otelcol.MakeFactoryMap(factories...)
	return byType, modules, err
}

// components returns the factories of every component this build knows, with their modules.
func components() (otelcol.Factories, error) {
	var err error
	factories := otelcol.Factories{Telemetry: otelconftelemetry.NewFactory()}

	factories.Extensions, factories.ExtensionModules, err = factoryMaps[extension.Factory](
		from(opampextension.NewFactory(), contrib+"extension/opampextension"+release),
		from(basicauthextension.NewFactory(), contrib+"extension/basicauthextension"+release),
		from(bearertokenauthextension.NewFactory(), contrib+"extension/bearertokenauthextension"+release),
	)
	if err != nil {
		return otelcol.Factories{}, err
	}

	factories.Receivers, factories.ReceiverModules, err = factoryMaps[receiver.Factory](
		from(otlpreceiver.NewFactory(), core+"receiver/otlpreceiver"+release),
		from(nopreceiver.NewFactory(), core+"receiver/nopreceiver"+release),
		from(prometheusreceiver.NewFactory(), contrib+"receiver/prometheusreceiver"+release),
		from(filelogreceiver.NewFactory(), contrib+"receiver/filelogreceiver"+release),
		from(hostmetricsreceiver.NewFactory(), contrib+"receiver/hostmetricsreceiver"+release),
		from(syslogreceiver.NewFactory(), contrib+"receiver/syslogreceiver"+syslog),
		from(journaldreceiver.NewFactory(), contrib+"receiver/journaldreceiver"+journald),
	)
	if err != nil {
		return otelcol.Factories{}, err
	}

	factories.Processors, factories.ProcessorModules, err = factoryMaps[processor.Factory](
		from(batchprocessor.NewFactory(), core+"processor/batchprocessor"+release),
		from(filterprocessor.NewFactory(), contrib+"processor/filterprocessor"+release),
		from(transformprocessor.NewFactory(), contrib+"processor/transformprocessor"+release),
		from(attributesprocessor.NewFactory(), contrib+"processor/attributesprocessor"+release),
		from(resourceprocessor.NewFactory(), contrib+"processor/resourceprocessor"+release),
		from(redactionprocessor.NewFactory(), contrib+"processor/redactionprocessor"+release),
	)
	if err != nil {
		return otelcol.Factories{}, err
	}

	factories.Exporters, factories.ExporterModules, err = factoryMaps[exporter.Factory](
		from(otlpexporter.NewFactory(), core+"exporter/otlpexporter"+release),
		from(otlphttpexporter.NewFactory(), core+"exporter/otlphttpexporter"+release),
		from(debugexporter.NewFactory(), core+"exporter/debugexporter"+release),
		from(nopexporter.NewFactory(), core+"exporter/nopexporter"+release),
		from(prometheusremotewriteexporter.NewFactory(), contrib+"exporter/prometheusremotewriteexporter"+release),
	)
	if err != nil {
		return otelcol.Factories{}, err
	}

	factories.Connectors, factories.ConnectorModules, err = factoryMaps[connector.Factory](
		from(forwardconnector.NewFactory(), core+"connector/forwardconnector"+release),
		from(routingconnector.NewFactory(), contrib+"connector/routingconnector"+release),
	)
	if err != nil {
		return otelcol.Factories{}, err
	}

	return factories, nil
}
