{{/* Chart name (app.kubernetes.io/name): the alert rules and the dashboard select on it. */}}
{{- define "ct.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Object name prefix: the release name if it contains the chart name, else <release>-<chart>. */}}
{{- define "ct.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "ct.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "ct.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ct.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ct.labels" -}}
{{ include "ct.selectorLabels" . }}
app.kubernetes.io/part-of: changetrail
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "ct.secretName" -}}
{{- if .Values.secret.create -}}
{{- printf "%s-secrets" (include "ct.fullname" .) -}}
{{- else -}}
{{- required "secret.existingSecret is required when secret.create=false" .Values.secret.existingSecret -}}
{{- end -}}
{{- end -}}

{{/* The port of config.http.listen (host:port). */}}
{{- define "ct.port" -}}
{{- $listen := required "config.http.listen is required" (index .Values.config "http" "listen") | toString -}}
{{- if hasPrefix "127." $listen -}}
{{- fail "config.http.listen must not be loopback: probes and scrapes come from outside the pod" -}}
{{- end -}}
{{- splitList ":" $listen | last -}}
{{- end -}}

{{/* An INI value: whole numbers from values files (float64) without exponent. */}}
{{- define "ct.iniValue" -}}
{{- if kindIs "float64" . -}}
{{- if eq (float64 (int64 .)) . -}}{{ int64 . }}{{- else -}}{{ . }}{{- end -}}
{{- else -}}
{{- . -}}
{{- end -}}
{{- end -}}

{{/* consumer.ini from .Values.config: kafka, mongodb, consumer, http first, then the other sections. */}}
{{- define "ct.consumerIni" -}}
{{- $cfg := .Values.config -}}
{{- $order := list "kafka" "mongodb" "consumer" "http" -}}
{{- range $s := keys $cfg | sortAlpha -}}
{{- if not (has $s $order) -}}{{- $order = append $order $s -}}{{- end -}}
{{- end -}}
{{- $first := true -}}
{{- range $s := $order -}}
{{- $sec := index $cfg $s -}}
{{- if $sec -}}
{{- if not $first }}
{{ end -}}
{{- $first = false -}}
[{{ $s }}]
{{ range $k := keys $sec | sortAlpha -}}
{{- $v := index $sec $k -}}
{{- if not (kindIs "invalid" $v) -}}
{{ $k }} = {{ include "ct.iniValue" $v }}
{{ end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Checks across values that Kubernetes cannot make. */}}
{{- define "ct.validate" -}}
{{- $shutdown := 30000 -}}
{{- with .Values.config.consumer -}}{{- if hasKey . "shutdown_timeout_ms" -}}{{- $shutdown = int64 .shutdown_timeout_ms -}}{{- end -}}{{- end -}}
{{- if le (mul (int64 .Values.terminationGracePeriodSeconds) 1000) $shutdown -}}
{{- fail (printf "terminationGracePeriodSeconds (%v s) must be longer than config.consumer.shutdown_timeout_ms (%v ms)" .Values.terminationGracePeriodSeconds $shutdown) -}}
{{- end -}}
{{- if and .Values.keda.enabled .Values.hpa.enabled -}}
{{- fail "keda.enabled and hpa.enabled are alternatives: enable one" -}}
{{- end -}}
{{- if and .Values.keda.enabled (gt (int64 .Values.keda.maxReplicaCount) (int64 .Values.partitions)) -}}
{{- fail (printf "keda.maxReplicaCount (%v) exceeds partitions (%v): extra workers would stay idle" .Values.keda.maxReplicaCount .Values.partitions) -}}
{{- end -}}
{{- if and .Values.hpa.enabled (gt (int64 .Values.hpa.maxReplicas) (int64 .Values.partitions)) -}}
{{- fail (printf "hpa.maxReplicas (%v) exceeds partitions (%v): extra workers would stay idle" .Values.hpa.maxReplicas .Values.partitions) -}}
{{- end -}}
{{- if and .Values.serviceMonitor.enabled (not .Values.service.enabled) -}}
{{- fail "serviceMonitor.enabled needs service.enabled" -}}
{{- end -}}
{{- end -}}
