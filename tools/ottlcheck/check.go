package main

import (
	"fmt"
	"regexp"

	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/filterprocessor"
	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/transformprocessor"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/xconfmap"
)

// filterConditionConfig is the filter processor config linkmesh renders for one condition in an
// OTTL context: the explicit per-context lists (`logs.log_record`, `traces.span`, ...), which both
// src/render/otelcol.rs and Alloy's otelcol.processor.filter produce. Those lists have no scope
// context, so scope goes through the context-tagged `log_conditions` form.
func filterConditionConfig(context, condition string) (map[string]any, error) {
	conditions := []any{condition}
	explicitSections := map[string][2]string{
		"log":       {"logs", "log_record"},
		"resource":  {"logs", "resource"},
		"span":      {"traces", "span"},
		"spanevent": {"traces", "spanevent"},
		"metric":    {"metrics", "metric"},
		"datapoint": {"metrics", "datapoint"},
	}
	if section, ok := explicitSections[context]; ok {
		return map[string]any{
			"error_mode": "ignore",
			section[0]:   map[string]any{section[1]: conditions},
		}, nil
	}
	if context == "scope" {
		return map[string]any{
			"error_mode":     "ignore",
			"log_conditions": []any{map[string]any{"context": "scope", "conditions": conditions}},
		}, nil
	}
	return nil, unknownContextError(context)
}

// transformStatementConfig is the transform processor config linkmesh renders for one statement:
// a context-tagged group in the statements list of a signal that has that context.
func transformStatementConfig(context, statement string) (map[string]any, error) {
	return transformGroupConfig(context, map[string]any{"context": context, "statements": []any{statement}})
}

// transformConditionConfig puts a condition in a transform group's `conditions`, which guard the
// group's statements; used to compare the two processors, not for the verdict.
func transformConditionConfig(context, condition string) (map[string]any, error) {
	return transformGroupConfig(context, map[string]any{
		"context":    context,
		"conditions": []any{condition},
		"statements": []any{`set(cache["ottlcheck"], true)`},
	})
}

func transformGroupConfig(context string, group map[string]any) (map[string]any, error) {
	statementSections := map[string]string{
		"log":       "log_statements",
		"resource":  "log_statements",
		"scope":     "log_statements",
		"span":      "trace_statements",
		"spanevent": "trace_statements",
		"metric":    "metric_statements",
		"datapoint": "metric_statements",
	}
	section, ok := statementSections[context]
	if !ok {
		return nil, unknownContextError(context)
	}
	return map[string]any{"error_mode": "ignore", section: []any{group}}, nil
}

func unknownContextError(context string) error {
	return fmt.Errorf("unknown context %q (want log, span, spanevent, metric, datapoint, resource or scope)", context)
}

func checkFilterCondition(context, condition string) error {
	raw, err := filterConditionConfig(context, condition)
	if err != nil {
		return err
	}
	return loadProcessorConfig(filterprocessor.NewFactory().CreateDefaultConfig(), raw)
}

func checkTransformStatement(context, statement string) error {
	raw, err := transformStatementConfig(context, statement)
	if err != nil {
		return err
	}
	return loadProcessorConfig(transformprocessor.NewFactory().CreateDefaultConfig(), raw)
}

func checkTransformCondition(context, condition string) error {
	raw, err := transformConditionConfig(context, condition)
	if err != nil {
		return err
	}
	return loadProcessorConfig(transformprocessor.NewFactory().CreateDefaultConfig(), raw)
}

// loadProcessorConfig does what the collector does with a processor's YAML at startup: unmarshal
// onto the factory's default config (through the processor's own Unmarshal, which both processors
// have) and run every Validate in the config tree.
func loadProcessorConfig(config component.Config, raw map[string]any) error {
	conf := confmap.NewFromStringMap(raw)
	if unmarshaler, ok := config.(confmap.Unmarshaler); ok {
		if err := unmarshaler.Unmarshal(conf); err != nil {
			return err
		}
	} else if err := conf.Unmarshal(config); err != nil {
		return err
	}
	return xconfmap.Validate(config)
}

func checkRegex(pattern string) error {
	_, err := regexp.Compile(pattern)
	return err
}
