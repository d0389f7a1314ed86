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

{{/*
credchain.delivery is the event delivery flags both commands share, as credchain.flags pairs. Args (a
dict): c (the component's values), root. The component's nats block wins over the shared one, files
over Secrets (credchain.natsFiles).
*/}}
{{- define "credchain.delivery" -}}
{{- $c := .c -}}
{{- $files := include "credchain.natsFiles" . | fromJson -}}
{{- toJson (list
  (list "--cluster" $c.cluster)
  (list "--nats-url" (include "credchain.natsURLs" . | fromJsonArray))
  (list "--nats-create-stream" $c.nats.createStream)
  (list "--nats-creds" $files.creds)
  (list "--nats-nkey-seed" $files.seed)
  (list "--nats-ca" $files.ca)
  (list "--nats-cert" $c.nats.certFile)
  (list "--nats-key" $c.nats.keyFile)
  (list "--slack-webhook-file" $c.slackWebhookFile)
  (list "-v" ($c.logLevel | default nil))) -}}
{{- end }}

{{/* credchain.natsURLs (dict c root): the component's NATS URLs, else the shared nats.urls, as JSON. */}}
{{- define "credchain.natsURLs" -}}
{{- toJson (.c.nats.urls | default .root.Values.nats.urls | default list) -}}
{{- end }}

{{/*
credchain.natsFiles (dict c root): the creds, nkey seed and CA file paths as JSON {creds, seed, ca}:
the component's credsFile/nkeySeedFile/caFile, else where its credsSecret/nkeySeedSecret or the
shared nats.caSecret is mounted, else "".
*/}}
{{- define "credchain.natsFiles" -}}
{{- $creds := .c.nats.credsFile | default (ternary "/etc/credchain/nats-creds/nats.creds" "" (ne (.c.nats.credsSecret | default "") "")) -}}
{{- $seed := .c.nats.nkeySeedFile | default (ternary "/etc/credchain/nats-nkey/nkey.seed" "" (ne (.c.nats.nkeySeedSecret | default "") "")) -}}
{{- $ca := .c.nats.caFile | default (ternary "/etc/credchain/nats-ca/ca.crt" "" (ne (.root.Values.nats.caSecret | default "") "")) -}}
{{- toJson (dict "creds" $creds "seed" $seed "ca" $ca) -}}
{{- end }}

{{/* credchain.natsVolumeMounts (dict c root): the mounts of the Secrets credchain.natsFiles points at. */}}
{{- define "credchain.natsVolumeMounts" -}}
{{- if and .c.nats.credsSecret (not .c.nats.credsFile) }}
- name: nats-creds
  mountPath: /etc/credchain/nats-creds
  readOnly: true
{{- end }}
{{- if and .c.nats.nkeySeedSecret (not .c.nats.nkeySeedFile) }}
- name: nats-nkey
  mountPath: /etc/credchain/nats-nkey
  readOnly: true
{{- end }}
{{- if and .root.Values.nats.caSecret (not .c.nats.caFile) }}
- name: nats-ca
  mountPath: /etc/credchain/nats-ca
  readOnly: true
{{- end }}
{{- end }}

{{/* credchain.natsVolumes (dict c root): the volumes of credchain.natsVolumeMounts. */}}
{{- define "credchain.natsVolumes" -}}
{{- if and .c.nats.credsSecret (not .c.nats.credsFile) }}
- name: nats-creds
  secret:
    secretName: {{ .c.nats.credsSecret }}
{{- end }}
{{- if and .c.nats.nkeySeedSecret (not .c.nats.nkeySeedFile) }}
- name: nats-nkey
  secret:
    secretName: {{ .c.nats.nkeySeedSecret }}
{{- end }}
{{- if and .root.Values.nats.caSecret (not .c.nats.caFile) }}
- name: nats-ca
  secret:
    secretName: {{ .root.Values.nats.caSecret }}
{{- end }}
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
