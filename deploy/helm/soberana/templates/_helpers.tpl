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
