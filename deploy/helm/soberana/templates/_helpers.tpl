{{- define "soberana.labels" -}}
app.kubernetes.io/name: soberana
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}
{{- define "soberana.selector" -}}
app.kubernetes.io/name: soberana
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- /* The port the gateway listens on (config.listen.port; the gateway's default is 8080): the pod's
port, its probes (by name) and the NetworkPolicy follow it. */ -}}
{{- define "soberana.port" -}}
{{- (.Values.config.listen | default dict).port | default 8080 -}}
{{- end -}}
{{- /* Where the audit and keys volumes are mounted: the folders config.audit.path and config.keys name
(absolute: a relative one is under /etc/soberana, the read-only config map). */ -}}
{{- define "soberana.auditPath" -}}
{{- $p := (.Values.config.audit | default dict).path | default "/var/lib/soberana/audit" -}}
{{- if not (isAbs $p) }}{{ fail (printf "config.audit.path (%s) must be absolute: a relative path is under the read-only config map" $p) }}{{ end -}}
{{- $p -}}
{{- end -}}
{{- define "soberana.keysPath" -}}
{{- $p := .Values.config.keys | default "/var/lib/soberana/keys" -}}
{{- if not (isAbs $p) }}{{ fail (printf "config.keys (%s) must be absolute: a relative path is under the read-only config map" $p) }}{{ end -}}
{{- $p -}}
{{- end -}}
