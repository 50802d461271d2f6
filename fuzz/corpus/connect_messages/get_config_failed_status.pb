
web-01@9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08*951:1: component "otelcol.exporter.otlp" does not exist2_
]
[
	remotecfgN
@declare "linkmesh_pipeline" {
}
linkmesh_pipeline "default" { }

text/alloy