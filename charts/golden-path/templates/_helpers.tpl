{{/*
golden-path.name is the name of every object: the release name, which devctl
sets to the service name.
*/}}
{{- define "golden-path.name" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
golden-path.labelValue turns any string (a branch such as "feature/x") into a
valid label value: invalid characters become "-", at most 63 characters,
alphanumeric at both ends.
*/}}
{{- define "golden-path.labelValue" -}}
{{- regexReplaceAll "[^A-Za-z0-9._-]" (toString .) "-" | trunc 63 | trimAll "-._" -}}
{{- end -}}

{{/*
golden-path.version is the app.kubernetes.io/version value: the image tag, or
the chart appVersion when the tag is empty or a digest.
*/}}
{{- define "golden-path.version" -}}
{{- $tag := .Values.image.tag | default "" -}}
{{- if or (eq $tag "") (hasPrefix "sha256:" $tag) -}}
{{- include "golden-path.labelValue" .Chart.AppVersion -}}
{{- else -}}
{{- include "golden-path.labelValue" $tag -}}
{{- end -}}
{{- end -}}

{{/*
golden-path.image is the image reference: repository:tag, or
repository@sha256:... for a digest.
*/}}
{{- define "golden-path.image" -}}
{{- $repo := required "image.repository is required: set it to the image name, e.g. localhost:5001/my-service" .Values.image.repository -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if hasPrefix "sha256:" $tag -}}
{{- printf "%s@%s" $repo $tag -}}
{{- else -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}
{{- end -}}

{{/* golden-path.selectorLabels are the immutable labels the Deployment selects on. */}}
{{- define "golden-path.selectorLabels" -}}
app.kubernetes.io/name: {{ include "golden-path.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* golden-path.labels go on every object and on the pod template. */}}
{{- define "golden-path.labels" -}}
{{ include "golden-path.selectorLabels" . }}
app.kubernetes.io/version: {{ include "golden-path.version" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: {{ include "golden-path.labelValue" (.Values.partOf | default .Release.Name) | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
devctl.dev/team: {{ include "golden-path.labelValue" .Values.team | quote }}
devctl.dev/owner: {{ include "golden-path.labelValue" .Values.owner | quote }}
devctl.dev/cost-center: {{ include "golden-path.labelValue" .Values.costCenter | quote }}
devctl.dev/branch: {{ include "golden-path.labelValue" .Values.branch | quote }}
devctl.dev/env: {{ include "golden-path.labelValue" .Values.environment | quote }}
{{- range $k, $v := .Values.extraLabels }}
{{ $k }}: {{ $v | quote }}
{{- end }}
{{- end -}}

{{/* golden-path.podDisruptionBudget is "true" when a PDB is rendered. */}}
{{- define "golden-path.podDisruptionBudget" -}}
{{- if and .Values.pdb.enabled (or .Values.hpa.enabled (gt (int .Values.replicas) 1)) -}}
true
{{- end -}}
{{- end -}}

{{/*
golden-path.containerSecurityContext is the restricted securityContext of
every container.
*/}}
{{- define "golden-path.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
golden-path.liveTokenSecret is the Secret holding the agent's token. It also
checks the live values the schema cannot: a token, distinct ports, and sync
directories that do not collide with the chart's own mounts.
*/}}
{{- define "golden-path.liveTokenSecret" -}}
{{- if not (or .Values.live.token .Values.live.tokenSecret) -}}
{{- fail "live.enabled needs live.token (devctl generates one) or live.tokenSecret (an existing Secret with the key \"token\")" -}}
{{- end -}}
{{- if eq (int .Values.live.port) (int .Values.service.port) -}}
{{- fail (printf "live.port %d is the app's port (service.port): choose another port for the agent" (int .Values.live.port)) -}}
{{- end -}}
{{- $seen := dict -}}
{{- range .Values.live.syncs -}}
{{- if or (eq .dest "/tmp") (eq .dest "/devctl") (hasPrefix "/devctl/" .dest) (hasKey $seen .dest) -}}
{{- fail (printf "live.syncs: %s cannot be synced: /tmp and /devctl are the chart's own volumes, and each directory is listed once" .dest) -}}
{{- end -}}
{{- $_ := set $seen .dest true -}}
{{- end -}}
{{- .Values.live.tokenSecret | default (printf "%s-devctl-agent" (include "golden-path.name" .)) -}}
{{- end -}}

{{/*
golden-path.secretsTarget is the Secret the service's ExternalSecret writes.
*/}}
{{- define "golden-path.secretsTarget" -}}
{{- printf "%s-secrets" (include "golden-path.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
golden-path.dependencyEnv: the env vars of the declared dependencies, each
read from the connection Secret the platform's claim (or devctl's stand-in)
writes, so no value is ever in the chart or the release.
*/}}
{{- define "golden-path.dependencyEnv" -}}
{{- $deps := .Values.dependencies -}}
{{- if $deps.postgres.enabled }}
{{- range $name, $key := dict "PGHOST" "PGHOST" "PGPORT" "PGPORT" "PGDATABASE" "PGDATABASE" "PGUSER" "PGUSER" "PGPASSWORD" "PGPASSWORD" "PGSSLMODE" "PGSSLMODE" "DATABASE_URL" "DATABASE_URL" }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ $deps.postgres.connectionSecret }}
      key: {{ $key }}
{{- end }}
{{- end }}
{{- if $deps.s3.enabled }}
{{- range $name, $key := dict "AWS_ENDPOINT_URL_S3" "endpoint" "S3_BUCKET" "bucket" "AWS_REGION" "region" "AWS_ACCESS_KEY_ID" "accessKeyId" "AWS_SECRET_ACCESS_KEY" "secretAccessKey" }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ $deps.s3.connectionSecret }}
      key: {{ $key }}
{{- end }}
{{- end }}
{{- end -}}
