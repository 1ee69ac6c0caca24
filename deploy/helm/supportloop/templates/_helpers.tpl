{{- define "supportloop.name" -}}
{{- printf "%s" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}

{{- define "supportloop.labels" -}}
app.kubernetes.io/name: supportloop
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{- define "supportloop.secretEnv" -}}
- name: SUPPORTLOOP_DATABASE_URL
  valueFrom: {secretKeyRef: {name: {{ .Values.existingSecret }}, key: database-url}}
- name: SUPPORTLOOP_REDIS_URL
  valueFrom: {secretKeyRef: {name: {{ .Values.existingSecret }}, key: redis-url}}
- name: SUPPORTLOOP_ADMIN_TOKEN
  valueFrom: {secretKeyRef: {name: {{ .Values.existingSecret }}, key: admin-token}}
- name: SUPPORTLOOP_SECRET_KEY
  valueFrom: {secretKeyRef: {name: {{ .Values.existingSecret }}, key: secret-key}}
- name: SUPPORTLOOP_METRICS_TOKEN
  valueFrom: {secretKeyRef: {name: {{ .Values.existingSecret }}, key: metrics-token}}
- name: SUPPORTLOOP_MODEL_DIR
  value: /data/models/smollm2-135m-instruct
- name: SUPPORTLOOP_ENGINE
  value: {{ if .Values.vllm.enabled }}vllm{{ else }}embedded{{ end }}
{{- if .Values.vllm.enabled }}
- name: SUPPORTLOOP_VLLM_URLS
  value: {{ include "supportloop.vllmUrls" . | quote }}
{{- end }}
{{- end -}}

{{- /* One URL per vLLM replica (a headless service gives each pod a stable name), so adapters
reach every replica and requests can prefer the replicas that hold one. */ -}}
{{- define "supportloop.vllmUrls" -}}
{{- $name := include "supportloop.name" . -}}
{{- $urls := list -}}
{{- range $i := until (int .Values.vllm.replicas) -}}
{{- $urls = append $urls (printf "http://%s-vllm-%d.%s-vllm:8100" $name $i $name) -}}
{{- end -}}
{{- toJson $urls -}}
{{- end -}}
