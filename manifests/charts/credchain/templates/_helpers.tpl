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
credchain.flags turns a list of (flag, value) pairs into a JSON list of arguments: "--flag=value", or
"--flag" for true. nil, "", false and 0-as-unset (pass nil) mean the command's own default and render
nothing. Lists are joined with commas (the flags are string slices); values.yaml numbers arrive as
float64 (1048576 would print as 1.048576e+06) and every numeric flag is an integer.
*/}}
{{- define "credchain.flags" -}}
{{- $out := list -}}
{{- range . -}}
{{- $name := index . 0 -}}
{{- $v := index . 1 -}}
{{- if kindIs "slice" $v }}{{ $v = join "," $v }}{{ end -}}
{{- if kindIs "float64" $v }}{{ $v = int64 $v }}{{ end -}}
{{- if kindIs "bool" $v -}}
{{- if $v }}{{ $out = append $out $name }}{{ end -}}
{{- else if and (not (kindIs "invalid" $v)) (ne (toString $v) "") -}}
{{- $out = append $out (printf "%s=%v" $name $v) -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end }}

{{/* credchain.delivery is the event delivery flags both commands share, as credchain.flags pairs. */}}
{{- define "credchain.delivery" -}}
{{- toJson (list
  (list "--cluster" .cluster)
  (list "--nats-url" .nats.urls)
  (list "--nats-create-stream" .nats.createStream)
  (list "--nats-creds" .nats.credsFile)
  (list "--nats-nkey-seed" .nats.nkeySeedFile)
  (list "--nats-ca" .nats.caFile)
  (list "--nats-cert" .nats.certFile)
  (list "--nats-key" .nats.keyFile)
  (list "--slack-webhook-file" .slackWebhookFile)
  (list "-v" (.logLevel | default nil))) -}}
{{- end }}

{{/* credchain.auditFiles: one --audit-file pair per file (the flag repeats rather than taking a list). */}}
{{- define "credchain.auditFiles" -}}
{{- $out := list -}}
{{- range .auditFiles }}{{ $out = append $out (list "--audit-file" .) }}{{ end -}}
{{- toJson $out -}}
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
