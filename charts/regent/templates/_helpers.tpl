{{/*
The chart's name, or nameOverride.
*/}}
{{- define "regent.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every resource name: "<release>-<name>", or the release name when it already
contains the name, or fullnameOverride. At most 52 characters: a StatefulSet's pods carry a
controller-revision-hash label "<statefulset>-<hash>" that must fit in 63.
*/}}
{{- define "regent.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The headless Service that gives each replica its stable DNS name.
*/}}
{{- define "regent.headless" -}}
{{- printf "%s-headless" (include "regent.fullname" .) }}
{{- end }}

{{/*
chart label: name-version.
*/}}
{{- define "regent.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The image tag actually deployed: image.tag, else the chart's appVersion.
*/}}
{{- define "regent.tag" -}}
{{- .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/*
The image reference: repository:tag, or repository@digest when a digest pins it.
*/}}
{{- define "regent.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "regent.tag" .) }}
{{- end }}
{{- end }}

{{/*
Selector labels: what the StatefulSet, the Services and the PodDisruptionBudget select pods by.
They never change during the release's life.
*/}}
{{- define "regent.selectorLabels" -}}
app.kubernetes.io/name: {{ include "regent.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The standard labels of every resource (app.kubernetes.io/*, helm.sh/chart). Call with a dict
{"ctx": $, "component": "..."}.
*/}}
{{- define "regent.labels" -}}
{{- $ := .ctx -}}
helm.sh/chart: {{ include "regent.chart" $ }}
{{ include "regent.selectorLabels" $ }}
app.kubernetes.io/version: {{ regexReplaceAll "[^A-Za-z0-9._-]" (include "regent.tag" $) "_" | trunc 63 | trimSuffix "-" | trimSuffix "_" | trimSuffix "." | quote }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: regent
app.kubernetes.io/managed-by: {{ $.Release.Service }}
{{- end }}

{{/*
The ServiceAccount the pods run as.
*/}}
{{- define "regent.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "regent.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
"https" when the replicas serve TLS, else "http".
*/}}
{{- define "regent.scheme" -}}
{{- if .Values.server.tls.secretName }}https{{ else }}http{{ end }}
{{- end }}

{{/*
The store: "etcd" or "zookeeper". The schema demands exactly one; this fails clearly when
schema validation was skipped.
*/}}
{{- define "regent.store" -}}
{{- $etcd := gt (len (default (list) .Values.store.etcd.endpoints)) 0 }}
{{- $zk := gt (len (default (list) .Values.store.zookeeper.servers)) 0 }}
{{- if and $etcd $zk }}
{{- fail "store: both store.etcd.endpoints and store.zookeeper.servers are set; configure exactly one store" }}
{{- else if $etcd }}etcd
{{- else if $zk }}zookeeper
{{- else }}
{{- fail "store: neither store.etcd.endpoints nor store.zookeeper.servers is set; configure exactly one store" }}
{{- end }}
{{- end }}

{{/*
The election's time budget in seconds: how soon a replica that lost the store stops leading.
etcd: the election TTL. ZooKeeper: half the session timeout (a cut-off leader steps down then).
*/}}
{{- define "regent.electionSeconds" -}}
{{- if eq (include "regent.store" .) "etcd" }}
{{- int .Values.store.etcd.electionTTLSeconds }}
{{- else }}
{{- max 1 (div (int .Values.store.zookeeper.sessionTimeoutSeconds) 2) }}
{{- end }}
{{- end }}

{{/*
readinessProbe.periodSeconds: half the election budget (at least 1s), so that with
failureThreshold 2 a replica that cannot reach the store leaves the Service within about the
time the election takes to replace it.
*/}}
{{- define "regent.readinessPeriod" -}}
{{- max 1 (div (int (include "regent.electionSeconds" .)) 2) }}
{{- end }}

{{/*
terminationGracePeriodSeconds: the preStop sleep, then up to --shutdown-timeout for the
hand-over and up to --shutdown-timeout again for in-flight requests, plus 5s to spare.
*/}}
{{- define "regent.terminationGrace" -}}
{{- add (int .Values.server.preStopSleepSeconds) (mul 2 (int .Values.server.shutdownTimeoutSeconds)) 5 }}
{{- end }}

{{/*
The base URL a replica advertises to the others (REGENT_ADVERTISE_URL). $(REGENT_ID) and
$(POD_IP) are expanded by the kubelet from variables set before it.
*/}}
{{- define "regent.advertiseURL" -}}
{{- $port := int .Values.server.port }}
{{- if eq .Values.advertise.mode "podIP" }}
{{- printf "%s://$(POD_IP):%d" (include "regent.scheme" .) $port }}
{{- else }}
{{- printf "%s://$(REGENT_ID).%s.%s.svc.%s:%d" (include "regent.scheme" .) (include "regent.headless" .) .Release.Namespace .Values.advertise.clusterDomain $port }}
{{- end }}
{{- end }}
