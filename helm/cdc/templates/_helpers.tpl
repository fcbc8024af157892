{{/* Chart name, truncated to the 63 characters a label allows. */}}
{{- define "cdc.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: <release>-<chart> unless the release name already contains it. */}}
{{- define "cdc.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "cdc.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cdc.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cdc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "cdc.labels" -}}
helm.sh/chart: {{ include "cdc.chart" . }}
{{ include "cdc.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "cdc.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* A config value as YAML text: a string verbatim, anything else through toYaml. */}}
{{- define "cdc.yamlText" -}}
{{- if kindIs "string" . }}
{{- . | trimSuffix "\n" }}
{{- else }}
{{- toYaml . }}
{{- end }}
{{- end }}

{{/*
platform.yaml. The chart owns three keys: `health_port` (healthPort: the probes, Service and
scrape target use it), `health_enabled` (always true: without the health server the probes fail)
and `shutdown_timeout_seconds` (shutdownTimeoutSeconds: terminationGracePeriodSeconds is derived
from it). A map gets them set; a string is kept verbatim, its top-level `health_enabled:` line
forced to true and the missing keys appended. A port or timeout in `platform` that disagrees with
the chart's value fails the render instead of being overridden silently.
*/}}
{{- define "cdc.platform" -}}
{{- $platform := .Values.platform | default dict }}
{{- $owned := dict "health_port" (int .Values.healthPort) "shutdown_timeout_seconds" (int .Values.shutdownTimeoutSeconds) }}
{{- $given := $platform }}
{{- if kindIs "string" $platform }}
{{- $platform = regexReplaceAll "(?m)^health_enabled:.*$" ($platform | trimSuffix "\n") "health_enabled: true" }}
{{- $given = fromYaml $platform }}
{{- if hasKey $given "Error" }}
{{- fail (printf "values: `platform` is a string that is not a YAML map: %s" $given.Error) }}
{{- end }}
{{- else if not (kindIs "map" $platform) }}
{{- fail "values: `platform` must be a map or a string (the content of platform.yaml)" }}
{{- end }}
{{- range $key, $value := $owned }}
{{- if and (hasKey $given $key) (ne (toString (index $given $key)) (toString $value)) }}
{{- fail (printf "values: platform.%s is %v but the chart sets it to %v; set %s instead" $key (index $given $key) $value (ternary "healthPort" "shutdownTimeoutSeconds" (eq $key "health_port"))) }}
{{- end }}
{{- end }}
{{- if kindIs "string" $platform }}
{{- $platform }}
{{- range $key, $value := merge (dict "health_enabled" true) $owned }}
{{- if not (hasKey $given $key) }}
{{ printf "%s: %v" $key $value }}
{{- end }}
{{- end }}
{{- else }}
{{- $platform = merge (dict "health_enabled" true) $owned (deepCopy $platform) }}
{{- toYaml $platform }}
{{- end }}
{{- end }}

{{/* The pod's grace period: cdc's own shutdown deadline plus a margin above its watchdog's. */}}
{{- define "cdc.terminationGracePeriodSeconds" -}}
{{- if le (int .Values.shutdownGraceMarginSeconds) 5 }}
{{- fail "values: shutdownGraceMarginSeconds must be above 5 (cdc's watchdog ends an overrunning shutdown up to 5 s after shutdownTimeoutSeconds)" }}
{{- end }}
{{- add (int .Values.shutdownTimeoutSeconds) (int .Values.shutdownGraceMarginSeconds) }}
{{- end }}

{{/* Name of the Secret the chart writes from secretEnv. */}}
{{- define "cdc.secretName" -}}
{{- printf "%s-env" (include "cdc.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
