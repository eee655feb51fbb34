{{/* Labels of every object. The selector uses app.kubernetes.io/name alone, as manifests/. */}}
{{- define "wasmgate.labels" -}}
app.kubernetes.io/name: wasmgate
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "wasmgate.selectorLabels" -}}
app.kubernetes.io/name: wasmgate
{{- end -}}

{{- define "wasmgate.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* The certificate mode, checked. */}}
{{- define "wasmgate.certMode" -}}
{{- $mode := .Values.certificates.mode -}}
{{- if not (has $mode (list "selfManaged" "certManager" "files")) -}}
{{- fail (printf "certificates.mode must be selfManaged, certManager or files, not %q" $mode) -}}
{{- end -}}
{{- if and (eq $mode "files") (not .Values.certificates.files.secretName) -}}
{{- fail "certificates.mode=files needs certificates.files.secretName (a kubernetes.io/tls Secret)" -}}
{{- end -}}
{{- $mode -}}
{{- end -}}

{{/* The Secret served in files and certManager modes. */}}
{{- define "wasmgate.tlsSecret" -}}
{{- if eq (include "wasmgate.certMode" .) "certManager" -}}
wasmgate-serving
{{- else -}}
{{ .Values.certificates.files.secretName }}
{{- end -}}
{{- end -}}

{{/* metadata.annotations of the objects whose caBundle cert-manager's CA injector fills. */}}
{{- define "wasmgate.caInjection" -}}
{{- if eq (include "wasmgate.certMode" .) "certManager" }}
  annotations:
    cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/wasmgate-serving
{{- end }}
{{- end -}}

{{/* caBundle of a clientConfig or APIService spec in files mode (when given). */}}
{{- define "wasmgate.caBundle" -}}
{{- if and (eq (include "wasmgate.certMode" .) "files") .Values.certificates.files.caBundle -}}
caBundle: {{ .Values.certificates.files.caBundle | quote }}
{{- end -}}
{{- end -}}

{{/* The webhook rules (both configurations). */}}
{{- define "wasmgate.webhookRules" -}}
rules:
  - apiGroups: ["runtime.wasmcloud.dev"]
    apiVersions: ["v1alpha1"]
    operations: ["CREATE", "UPDATE"]
    resources: ["workloads", "workloadreplicasets", "workloaddeployments"]
    scope: Namespaced
{{- end -}}

{{- define "wasmgate.webhookCommon" -}}
admissionReviewVersions: ["v1"]
sideEffects: None
failurePolicy: {{ .Values.webhooks.failurePolicy }}
matchPolicy: Equivalent
timeoutSeconds: {{ .Values.webhooks.timeoutSeconds }}
{{- with .Values.webhooks.namespaceSelector }}
namespaceSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.webhooks.objectSelector }}
objectSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
