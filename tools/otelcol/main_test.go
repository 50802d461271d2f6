package main

import (
	"strings"
	"testing"

	"go.opentelemetry.io/collector/component"
)

func TestFactoriesHaveWhatTheSupervisorNeeds(t *testing.T) {
	factories, err := components()
	if err != nil {
		t.Fatal(err)
	}
	if factories.Telemetry == nil {
		t.Error("no telemetry factory: the collector would refuse to start")
	}
	for kind, present := range map[string]bool{
		"extension opamp":    factories.Extensions[component.MustNewType("opamp")] != nil,
		"receiver otlp":      factories.Receivers[component.MustNewType("otlp")] != nil,
		"exporter otlp_http": factories.Exporters[component.MustNewType("otlp_http")] != nil,
		// The supervisor's bootstrap config when it did not learn of service.AllowNoPipelines.
		"receiver nop": factories.Receivers[component.MustNewType("nop")] != nil,
		"exporter nop": factories.Exporters[component.MustNewType("nop")] != nil,
	} {
		if !present {
			t.Errorf("missing %s", kind)
		}
	}
	if _, ok := factories.Exporters[component.MustNewType("kafka")]; ok {
		t.Error("kafka exporter present: this build leaves it out")
	}
}

// Every factory has a module line, as a builder-generated build records it: the opamp extension
// reports available components from these maps.
func TestEveryFactoryHasItsModule(t *testing.T) {
	factories, err := components()
	if err != nil {
		t.Fatal(err)
	}
	check := func(kind string, types []component.Type, modules map[component.Type]string) {
		// A deprecated alias (otlp for otlp_grpc) shares its factory, and its module is the factory's.
		if len(types) == 0 {
			t.Errorf("no %s", kind)
		}
		for _, componentType := range types {
			module := modules[componentType]
			name, version, found := strings.Cut(module, " ")
			if !found || !strings.Contains(name, "/") || !strings.HasPrefix(version, "v0.1") {
				t.Errorf("%s %s: module %q is not \"<path> v<version>\"", kind, componentType, module)
			}
		}
		if len(modules) != len(types) {
			t.Errorf("%s: %d modules for %d factories", kind, len(modules), len(types))
		}
	}
	check("receiver", ownTypes(factories.Receivers), factories.ReceiverModules)
	check("processor", ownTypes(factories.Processors), factories.ProcessorModules)
	check("exporter", ownTypes(factories.Exporters), factories.ExporterModules)
	check("extension", ownTypes(factories.Extensions), factories.ExtensionModules)
	check("connector", ownTypes(factories.Connectors), factories.ConnectorModules)
}

// ownTypes lists the factories' own types, leaving out the deprecated aliases the map also holds.
func ownTypes[F component.Factory](byType map[component.Type]F) []component.Type {
	out := make([]component.Type, 0, len(byType))
	for componentType, factory := range byType {
		if factory.Type() == componentType {
			out = append(out, componentType)
		}
	}
	return out
}
