{{- define "soberana.labels" -}}
app.kubernetes.io/name: soberana
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}
{{- define "soberana.selector" -}}
app.kubernetes.io/name: soberana
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
