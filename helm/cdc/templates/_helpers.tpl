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

{{/* platform.yaml: health_port is set from .Values.healthPort when platform is a map. */}}
{{- define "cdc.platform" -}}
{{- $platform := .Values.platform | default dict }}
{{- if kindIs "map" $platform }}
{{- $platform = deepCopy $platform }}
{{- $_ := set $platform "health_port" (int .Values.healthPort) }}
{{- end }}
{{- include "cdc.yamlText" $platform }}
{{- end }}
