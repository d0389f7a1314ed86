{{/*
credchain.metadata renders name, namespace, labels and annotations. Args (a dict): ctx (the root),
name, namespaced (bool), labels, annotations. The object's own labels are merged with
.Values.commonLabels; nothing is rendered for empty maps, so the default render carries exactly the
labels of manifests/default.
*/}}
{{- define "credchain.metadata" -}}
name: {{ .name }}
{{- if .namespaced }}
namespace: {{ .ctx.Release.Namespace }}
{{- end }}
{{- $labels := merge (dict) (.labels | default dict) .ctx.Values.commonLabels }}
{{- with $labels }}
labels:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .annotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{- define "credchain.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}
{{- end }}

{{/*
credchain.flag renders "- --name=value" when value is set: nil and "" mean the command's default
and render nothing. Lists are joined with commas (the flags are string slices).
*/}}
{{- define "credchain.flag" -}}
{{- $v := .value -}}
{{- if kindIs "slice" $v }}{{ $v = join "," $v }}{{ end -}}
{{- /* values.yaml numbers arrive as float64 (1048576 would print as 1.048576e+06); every numeric flag is an integer */ -}}
{{- if kindIs "float64" $v }}{{ $v = int64 $v }}{{ end -}}
{{- if and (not (kindIs "invalid" $v)) (ne (toString $v) "") }}
- --{{ .name }}={{ $v }}
{{- end -}}
{{- end }}

{{/* credchain.delivery renders the event delivery flags shared by both commands. */}}
{{- define "credchain.delivery" -}}
{{- include "credchain.flag" (dict "name" "cluster" "value" .cluster) }}
{{- include "credchain.flag" (dict "name" "nats-url" "value" .nats.urls) }}
{{- if .nats.createStream }}
- --nats-create-stream
{{- end }}
{{- include "credchain.flag" (dict "name" "nats-creds" "value" .nats.credsFile) }}
{{- include "credchain.flag" (dict "name" "nats-nkey-seed" "value" .nats.nkeySeedFile) }}
{{- include "credchain.flag" (dict "name" "nats-ca" "value" .nats.caFile) }}
{{- include "credchain.flag" (dict "name" "nats-cert" "value" .nats.certFile) }}
{{- include "credchain.flag" (dict "name" "nats-key" "value" .nats.keyFile) }}
{{- include "credchain.flag" (dict "name" "slack-webhook-file" "value" .slackWebhookFile) }}
{{- if .logLevel }}
- -v={{ .logLevel }}
{{- end }}
{{- with .extraArgs }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* credchain.exempt is the exempt namespace list: webhook.exemptNamespaces plus the release namespace. */}}
{{- define "credchain.exempt" -}}
{{- $ns := .Values.webhook.exemptNamespaces | default list -}}
{{- if not (has .Release.Namespace $ns) }}{{ $ns = append $ns .Release.Namespace }}{{ end -}}
{{- toJson $ns -}}
{{- end }}

{{/* The pod and container securityContext of manifests/default: restricted Pod Security. */}}
{{- define "credchain.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
{{- end }}
