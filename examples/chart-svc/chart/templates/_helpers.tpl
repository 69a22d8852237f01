{{- define "chart-svc.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "chart-svc.labels" -}}
{{ include "chart-svc.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
devctl.dev/team: {{ .Values.team | quote }}
devctl.dev/owner: {{ .Values.owner | quote }}
devctl.dev/cost-center: {{ .Values.costCenter | quote }}
{{- end -}}
