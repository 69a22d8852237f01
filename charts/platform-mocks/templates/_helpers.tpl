{{/* platform-mocks.labelValue makes any string a valid label value. */}}
{{- define "platform-mocks.labelValue" -}}
{{- regexReplaceAll "[^A-Za-z0-9._-]" (toString .) "-" | trunc 63 | trimAll "-._" -}}
{{- end -}}

{{/* platform-mocks.fullname: "<release>-<component>", at most 63 characters. */}}
{{- define "platform-mocks.fullname" -}}
{{- printf "%s-%s" .root.Release.Name .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
platform-mocks.selectorLabels: each component is its own instance, so a
port-forward to "<release>-<component>" reaches that component's pod.
*/}}
{{- define "platform-mocks.selectorLabels" -}}
app.kubernetes.io/name: {{ .component }}
app.kubernetes.io/instance: {{ include "platform-mocks.fullname" . }}
{{- end -}}

{{- define "platform-mocks.labels" -}}
{{ include "platform-mocks.selectorLabels" . }}
app.kubernetes.io/part-of: platform-mocks
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
devctl.dev/team: {{ include "platform-mocks.labelValue" .root.Values.team | quote }}
devctl.dev/owner: {{ include "platform-mocks.labelValue" .root.Values.owner | quote }}
devctl.dev/cost-center: {{ include "platform-mocks.labelValue" .root.Values.costCenter | quote }}
{{- end -}}

{{- define "platform-mocks.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/*
platform-mocks.generated returns the value of key in Secret name when the
Secret exists (upgrades keep credentials), else a new random string.
*/}}
{{- define "platform-mocks.generated" -}}
{{- $s := lookup "v1" "Secret" .root.Release.Namespace .name -}}
{{- if and $s $s.data (index $s.data .key) -}}
{{- index $s.data .key | b64dec -}}
{{- else -}}
{{- randAlphaNum (.length | default 32) -}}
{{- end -}}
{{- end -}}

{{/* platform-mocks.podSecurity: the restricted Pod Security Standard. */}}
{{- define "platform-mocks.podSecurity" -}}
runAsNonRoot: true
runAsUser: {{ .uid | default 65532 }}
runAsGroup: {{ .uid | default 65532 }}
fsGroup: {{ .uid | default 65532 }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "platform-mocks.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/*
platform-mocks.service renders a ClusterIP Service for component on port.
*/}}
{{- define "platform-mocks.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "platform-mocks.fullname" . }}
  labels:
    {{- include "platform-mocks.labels" . | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "platform-mocks.selectorLabels" . | nindent 4 }}
  ports:
    - name: {{ .portName }}
      port: {{ .port }}
      targetPort: {{ .portName }}
{{- end -}}

{{/* platform-mocks.networkPolicy lets any pod of the namespace reach component,
which itself calls nothing but DNS. */}}
{{- define "platform-mocks.networkPolicy" -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "platform-mocks.fullname" . }}
  labels:
    {{- include "platform-mocks.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "platform-mocks.selectorLabels" . | nindent 6 }}
  policyTypes: [Ingress, Egress]
  ingress:
    - from:
        - podSelector: {}
      ports:
        - port: {{ .port }}
  egress:
    - ports:
        - {port: 53, protocol: UDP}
        - {port: 53, protocol: TCP}
{{- end -}}
