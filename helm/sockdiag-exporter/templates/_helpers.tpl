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

{{/*
fullname-SUFFIX within 63 characters: the fullname is cut, not the suffix,
so names stay unique. Call with (list $ "SUFFIX").
*/}}
{{- define "sockdiag-exporter.suffixedName" -}}
{{- $suffix := index . 1 }}
{{- printf "%s-%s" (include "sockdiag-exporter.fullname" (index . 0) | trunc (sub 62 (len $suffix) | int) | trimSuffix "-") $suffix }}
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

{{/*
A monitor endpoint's scheme, tlsConfig, basicAuth and authorization, lined
up with the exporter's web config; fails on what cannot scrape. Call with
(list $ MONITOR_VALUES "prometheus.monitor").
*/}}
{{- define "sockdiag-exporter.endpointAuth" -}}
{{- $ := index . 0 }}
{{- $m := index . 1 }}
{{- $key := index . 2 }}
{{- $web := fromYaml (include "sockdiag-exporter.web" $) }}
{{- $webValues := $.Values.web | default dict }}
{{- $releaseNamespace := include "sockdiag-exporter.namespace" $ }}
{{- $scheme := $m.scheme | default (ternary "https" "http" $web.tls) }}
{{- if and $web.tls (ne $scheme "https") }}
{{- fail (printf "%s.scheme: %s, but the exporter serves TLS (web config): use https or leave it empty" $key $scheme) }}
{{- end }}
{{- if and (not $web.tls) (eq $scheme "https") }}
{{- fail (printf "%s.scheme: https, but the exporter serves plain HTTP (no tls_server_config in web.config, web.tls false)" $key) }}
{{- end }}
{{- $tlsConfig := $m.tlsConfig | default dict }}
{{- if and $web.tls (not $tlsConfig) }}
{{- if and $webValues.tlsSecret (eq (default $releaseNamespace $m.namespace) $releaseNamespace) }}
{{- /* Verify against the CA of web.tlsSecret (ca.crt, as cert-manager
     writes it) for the Service's DNS name, which the certificate must carry. */}}
{{- $tlsConfig = dict "ca" (dict "secret" (dict "name" $webValues.tlsSecret "key" "ca.crt")) "serverName" (printf "%s.%s.svc" (include "sockdiag-exporter.fullname" $) $releaseNamespace) }}
{{- else }}
{{- fail (printf "%s.tlsConfig: the exporter serves TLS: say how Prometheus verifies it (ca, serverName); only with web.tlsSecret and the monitor in the release namespace is it derived" $key) }}
{{- end }}
{{- end }}
{{- if and $web.clientCerts (not (and $tlsConfig.cert $tlsConfig.keySecret)) }}
{{- fail (printf "%s.tlsConfig: the exporter requires client certificates: give Prometheus one (cert and keySecret)" $key) }}
{{- end }}
{{- if and $web.basicAuth (not (or $m.basicAuth $m.authorization)) }}
{{- fail (printf "%s.basicAuth: the exporter asks for a password (basic_auth_users): give Prometheus the username and password Secret keys" $key) }}
{{- end }}
scheme: {{ $scheme }}
{{- with $tlsConfig }}
tlsConfig:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $m.basicAuth }}
basicAuth:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $m.authorization }}
authorization:
  {{- toYaml . | nindent 2 }}
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

{{/*
What the web config enables, as a dict: config (mount it), tls, clientCerts
(client certificates required), basicAuth. From web.config when inline, or
web.tls / web.clientCertificates / web.basicAuth with web.existingSecret.
Use with fromYaml.
*/}}
{{- define "sockdiag-exporter.web" -}}
{{- $web := .Values.web | default dict }}
{{- $config := $web.config | default dict }}
{{- $tlsServer := $config.tls_server_config | default dict }}
{{- $clientAuth := $tlsServer.client_auth_type | default "" }}
{{- $existing := not (empty $web.existingSecret) }}
{{- $inline := and (not (empty $config)) (not $existing) }}
config: {{ or $inline $existing }}
tls: {{ or (and $existing (eq $web.tls true)) (and $inline (not (empty $tlsServer))) }}
clientCerts: {{ or (and $existing (eq $web.clientCertificates true)) (and $inline (has $clientAuth (list "RequireAnyClientCert" "RequireAndVerifyClientCert"))) }}
basicAuth: {{ or (and $existing (eq $web.basicAuth true)) (and $inline (not (empty $config.basic_auth_users))) }}
{{- end }}

{{/*
The listen address: every address (":PORT": IPv4 and IPv6 where the node
has it), or only the node's primary IP (status.hostIP, in brackets when
service.ipFamilies puts IPv6 first).
*/}}
{{- define "sockdiag-exporter.listenAddress" -}}
{{- if .Values.service.listenOnAllInterfaces }}
{{- printf ":%d" (int .Values.service.targetPort) }}
{{- else if eq (first (.Values.service.ipFamilies | default (list "IPv4"))) "IPv6" }}
{{- printf "[$(HOST_IP)]:%d" (int .Values.service.targetPort) }}
{{- else }}
{{- printf "$(HOST_IP):%d" (int .Values.service.targetPort) }}
{{- end }}
{{- end }}
