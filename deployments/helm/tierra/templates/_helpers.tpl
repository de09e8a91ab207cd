{{/* The driver name is fixed: DeviceClasses, slices and claims carry it. */}}
{{- define "tierra.driverName" -}}gpu.tierra.dev{{- end -}}

{{- define "tierra.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "tierra.controller.name" -}}{{ include "tierra.fullname" . | trunc 52 | trimSuffix "-" }}-controller{{- end -}}
{{- define "tierra.plugin.name" -}}{{ include "tierra.fullname" . | trunc 49 | trimSuffix "-" }}-kubelet-plugin{{- end -}}

{{- define "tierra.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "tierra.controller.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end -}}

{{- define "tierra.plugin.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: kubelet-plugin
{{- end -}}

{{- define "tierra.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The user name the apiserver gives a service account's tokens. */}}
{{- define "tierra.plugin.username" -}}
system:serviceaccount:{{ .Release.Namespace }}:{{ include "tierra.plugin.name" . }}
{{- end -}}

{{/* Whether the plugin drives a fake machine (demo only). */}}
{{- define "tierra.plugin.fake" -}}
{{- if hasPrefix "fake:" .Values.plugin.machine -}}true{{- end -}}
{{- end -}}
