{{/*
Names, labels and the privilege profile shared by the templates.
*/}}

{{/* Chart name, overridable with nameOverride. */}}
{{- define "sockdiag-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Resource name: fullnameOverride, or release-name (once when the release name contains it). */}}
{{- define "sockdiag-exporter.fullname" -}}
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

{{/* Namespace of every resource. */}}
{{- define "sockdiag-exporter.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride }}
{{- end }}

{{/* chart-version label value. */}}
{{- define "sockdiag-exporter.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select the pods; never change them in an upgrade. */}}
{{- define "sockdiag-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sockdiag-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every resource. */}}
{{- define "sockdiag-exporter.labels" -}}
helm.sh/chart: {{ include "sockdiag-exporter.chart" . }}
{{ include "sockdiag-exporter.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: metrics
app.kubernetes.io/part-of: {{ include "sockdiag-exporter.name" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Labels of a Prometheus Operator object: the common ones, then
prometheus.selectorLabels merged with the object's additionalLabels (which
win). Call with (list $ .additionalLabels).
*/}}
{{- define "sockdiag-exporter.monitoringLabels" -}}
{{- $ := index . 0 }}
{{- include "sockdiag-exporter.labels" $ }}
{{- $extra := merge (deepCopy (index . 1 | default dict)) (($.Values.prometheus | default dict).selectorLabels | default dict) }}
{{- with $extra }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* ServiceAccount name. */}}
{{- define "sockdiag-exporter.serviceAccountName" -}}
{{- $sa := .Values.serviceAccount | default dict }}
{{- if $sa.create }}
{{- default (include "sockdiag-exporter.fullname" .) $sa.name }}
{{- else }}
{{- default "default" $sa.name }}
{{- end }}
{{- end }}

{{/* Image reference: [registry/]repository, then @digest or :tag (appVersion by default). */}}
{{- define "sockdiag-exporter.image" -}}
{{- $repo := .Values.image.repository }}
{{- if .Values.image.registry }}
{{- $repo = printf "%s/%s" .Values.image.registry .Values.image.repository }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repo .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Capabilities the enabled features need, comma-separated and sorted; empty
when none is needed. The same table as the exporter's own capability report
(src/caps.cc), which flags any other held capability as unneeded:
  conntrack.enabled         NET_ADMIN (ctnetlink dumps and stats)
  netns.mode=pods           SYS_ADMIN (setns), SYS_PTRACE (other processes' /proc/PID/ns/net)
  service.targetPort < 1024 NET_BIND_SERVICE (a privileged port)
*/}}
{{- define "sockdiag-exporter.capabilities" -}}
{{- $caps := list }}
{{- if .Values.conntrack.enabled }}
{{- $caps = append $caps "NET_ADMIN" }}
{{- end }}
{{- if eq .Values.netns.mode "pods" }}
{{- $caps = concat $caps (list "SYS_ADMIN" "SYS_PTRACE") }}
{{- end }}
{{- if lt (int .Values.service.targetPort) 1024 }}
{{- $caps = append $caps "NET_BIND_SERVICE" }}
{{- end }}
{{- $caps | uniq | sortAlpha | join "," }}
{{- end }}

{{/*
The pods' affinity: .Values.affinity with nodeAffinityExclusions ANDed into
every required node selector term (one term of them alone without a user
node affinity). Empty when there is nothing.
*/}}
{{- define "sockdiag-exporter.affinity" -}}
{{- $affinity := deepCopy (.Values.affinity | default dict) }}
{{- $exclusions := .Values.nodeAffinityExclusions | default list }}
{{- if $exclusions }}
{{- $node := $affinity.nodeAffinity | default dict }}
{{- $required := $node.requiredDuringSchedulingIgnoredDuringExecution | default dict }}
{{- $terms := list }}
{{- range ($required.nodeSelectorTerms | default (list dict)) }}
{{- $term := deepCopy . }}
{{- $_ := set $term "matchExpressions" (concat ($term.matchExpressions | default list) $exclusions) }}
{{- $terms = append $terms $term }}
{{- end }}
{{- $_ := set $required "nodeSelectorTerms" $terms }}
{{- $_ := set $node "requiredDuringSchedulingIgnoredDuringExecution" $required }}
{{- $_ := set $affinity "nodeAffinity" $node }}
{{- end }}
{{- if $affinity }}
{{- toYaml $affinity }}
{{- end }}
{{- end }}

{{/* The metrics port: on the node with hostNetwork. */}}
{{- define "sockdiag-exporter.listenAddress" -}}
{{- if .Values.service.listenOnAllInterfaces }}
{{- printf ":%d" (int .Values.service.targetPort) }}
{{- else }}
{{- printf "$(HOST_IP):%d" (int .Values.service.targetPort) }}
{{- end }}
{{- end }}
