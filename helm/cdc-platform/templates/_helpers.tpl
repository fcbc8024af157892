{{/* Prefix of every object: the release name, or fullnameOverride. */}}
{{- define "platform.prefix" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- end }}

{{- define "platform.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/part-of: cdc-platform
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one component: (list $ "kafka"). */}}
{{- define "platform.selectorLabels" -}}
{{- $root := index . 0 }}
app.kubernetes.io/name: {{ index . 1 }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
{{- end }}

{{- define "platform.kafka.headless" -}}
{{- printf "%s-kafka-headless" (include "platform.prefix" .) }}
{{- end }}

{{/* The bootstrap servers every component (and cdc) uses. */}}
{{- define "platform.bootstrapServers" -}}
{{- if .Values.kafka.enabled }}
{{- printf "%s-kafka:9092" (include "platform.prefix" .) }}
{{- else if .Values.externalKafka.bootstrapServers }}
{{- .Values.externalKafka.bootstrapServers }}
{{- else }}
{{- fail "values: kafka.enabled is false, so externalKafka.bootstrapServers is required" }}
{{- end }}
{{- end }}

{{/* Brokers' count, for replication factors: the chart's own, or the external cluster's factor. */}}
{{- define "platform.replicationFactor" -}}
{{- if .Values.kafka.enabled }}
{{- min 3 (int .Values.kafka.replicas) }}
{{- else }}
{{- int .Values.externalKafka.replicationFactor }}
{{- end }}
{{- end }}

{{- define "platform.schemaRegistryUrl" -}}
{{- if .Values.schemaRegistry.enabled }}
{{- printf "http://%s-schema-registry:8081" (include "platform.prefix" .) }}
{{- else }}
{{- .Values.schemaRegistry.url }}
{{- end }}
{{- end }}

{{- define "platform.connect.image" -}}
{{- printf "%s:%s" .Values.connect.image.repository (.Values.connect.image.tag | default .Chart.AppVersion) }}
{{- end }}
