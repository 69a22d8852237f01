{{- define "chart-svc.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "chart-svc.labels" -}}
{{ include "chart-svc.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
devctl.dev/team: {{ include "chart-svc.labelValue" .Values.team }}
devctl.dev/owner: {{ include "chart-svc.labelValue" .Values.owner }}
devctl.dev/cost-center: {{ include "chart-svc.labelValue" .Values.costCenter }}
{{- end -}}


{{- /* chart-svc.labelValue makes any string (an e-mail) a valid label value. */ -}}
{{- define "chart-svc.labelValue" -}}
{{- regexReplaceAll "[^A-Za-z0-9._-]" (toString .) "-" | trunc 63 | trimAll "-._" | quote -}}
{{- end -}}
