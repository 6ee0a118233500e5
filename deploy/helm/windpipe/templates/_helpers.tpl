{{/* The release's name prefix, at most 63 characters with the suffixes below. */}}
{{- define "windpipe.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "windpipe.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}

{{- define "windpipe.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "windpipe.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The restricted Pod Security Standard: the image's user (10001), no privilege, no writes
     outside the emptyDir volumes. */}}
{{- define "windpipe.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "windpipe.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* A variable from the Secret, by its own name as key. */}}
{{- define "windpipe.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .root.Values.secretName }}
      key: {{ .name }}
{{- end -}}

{{/* What every windpipe container reads: the fleet, where data may go, the log level. */}}
{{- define "windpipe.commonEnv" -}}
- name: WINDPIPE_CONFIG
  value: /etc/windpipe/windpipe.toml
- name: WINDPIPE_DATA_DIR
  value: /var/lib/windpipe
- name: WINDPIPE_LOG_LEVEL
  value: {{ .Values.settings.logLevel | quote }}
{{- end -}}

{{/* What the code location and every run read: `windpipe dagster`'s exports and the EnvVars of
     the definitions (tests/deploy/test_helm_chart.py keeps this list complete). */}}
{{- define "windpipe.etlEnv" -}}
{{ include "windpipe.commonEnv" . }}
- name: WINDPIPE_API_URL
  value: {{ printf "http://%s-api.%s.svc.cluster.local:%v" (include "windpipe.fullname" .) .Release.Namespace .Values.api.port | quote }}
- name: WINDPIPE_API_TIMEOUT_SECONDS
  value: {{ .Values.settings.apiTimeoutSeconds | quote }}
- name: WINDPIPE_ETL_VARIABLES
  value: {{ .Values.settings.etlVariables | quote }}
- name: WINDPIPE_ETL_AGGREGATIONS
  value: {{ .Values.settings.etlAggregations | quote }}
- name: WINDPIPE_PARTITIONS_START
  value: {{ .Values.settings.partitionsStart | quote }}
{{ include "windpipe.secretEnv" (dict "root" . "name" "WINDPIPE_TARGET_DB_URL") }}
{{ include "windpipe.secretEnv" (dict "root" . "name" "WINDPIPE_API_KEY") }}
{{- end -}}

{{/* The fleet's file and the writable scratch directories (the root filesystem is read-only). */}}
{{- define "windpipe.volumes" -}}
- name: fleet
  configMap:
    name: {{ include "windpipe.fullname" . }}-fleet
- name: tmp
  emptyDir: {}
- name: data
  emptyDir: {}
{{- end -}}

{{- define "windpipe.volumeMounts" -}}
- name: fleet
  mountPath: /etc/windpipe
  readOnly: true
- name: tmp
  mountPath: /tmp
- name: data
  mountPath: /var/lib/windpipe
{{- end -}}

{{/* The container context of the code location (Dagster's `k8s` keys): every run's Job gets
     the same env, volumes, security and these resources (what the user-deployments chart's
     includeConfigInLaunchedRuns does, written out). */}}
{{- define "windpipe.containerContext" -}}
k8s:
  env:
{{ include "windpipe.etlEnv" . | indent 4 }}
  volumes:
{{ include "windpipe.volumes" . | indent 4 }}
  volume_mounts:
{{ include "windpipe.volumeMounts" . | indent 4 }}
  resources:
{{ toYaml .Values.runs.resources | indent 4 }}
  security_context:
{{ include "windpipe.containerSecurityContext" . | indent 4 }}
  run_k8s_config:
    pod_spec_config:
      security_context:
{{ include "windpipe.podSecurityContext" . | indent 8 }}
{{- end -}}
