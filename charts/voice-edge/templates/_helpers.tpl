{{/* The chart's name, shortened to a DNS label. */}}
{{- define "voice-edge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: <release> when it already contains the chart name, else <release>-<chart>. */}}
{{- define "voice-edge.fullname" -}}
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

{{/* The Kubernetes recommended labels of every object of this release, but the component. */}}
{{- define "voice-edge.releaseLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "voice-edge.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: voice-edge
{{- end }}

{{/* The labels of the operator's objects. */}}
{{- define "voice-edge.labels" -}}
{{ include "voice-edge.releaseLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{/* The labels that select the operator's pods (never change them: Deployment selectors are immutable). */}}
{{- define "voice-edge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "voice-edge.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "voice-edge.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "voice-edge.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image the operator runs and hands to the pods it creates. */}}
{{- define "voice-edge.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
