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

{{/*
"true" when the plugin runs each MPS daemon in a pod of its own: on real
GPUs, unless plugin.mps.podDaemons is off. A fake machine has no MPS
binaries to run; its plugin records the commands instead.
*/}}
{{- define "tierra.plugin.mpsPods" -}}
{{- if and .Values.plugin.mps.podDaemons (not (include "tierra.plugin.fake" .)) -}}true{{- end -}}
{{- end -}}

{{/*
The variables both tenancy admission policies (vap-tenancy.yaml,
map-tenant-slots.yaml) start with: the chart's one CEL definition of a
namespace's tenant, the twin of pkg/tenancy's Resolve and Allowed (the
deploy tests run both on the same cases, test/deploy/parity_test.go). The
parameter is the TierPolicy.
  labels      the namespace's labels.
  tenants     the tenants whose namespaceSelector matches them, in policy
              order. An empty selector matches nothing; matchLabels and
              matchExpressions (In, NotIn, Exists, DoesNotExist) must all
              hold, as in metav1.LabelSelectorAsSelector.
  tenant      the first of them, or '' (tenancy.Open): the open tenant of
              every namespace no tenant selects. The namespace's name plays
              no part.
  restricted  whether the tenant may claim only the tiers it lists: a named
              tenant always, the open tenant when spec.openTenant is set.
  allowed     the policy's tiers the tenant may claim, in policy order:
              every tier when not restricted.
*/}}
{{- define "tierra.tenancy.variables" -}}
- name: labels
  expression: >-
    namespaceObject != null && has(namespaceObject.metadata.labels)
    ? namespaceObject.metadata.labels : {}
- name: tenants
  expression: >-
    !has(params.spec.tenants) ? [] : params.spec.tenants.filter(t,
      ((has(t.namespaceSelector.matchLabels) && size(t.namespaceSelector.matchLabels) > 0) ||
       (has(t.namespaceSelector.matchExpressions) && size(t.namespaceSelector.matchExpressions) > 0)) &&
      (!has(t.namespaceSelector.matchLabels) || t.namespaceSelector.matchLabels.all(k,
        k in variables.labels && variables.labels[k] == t.namespaceSelector.matchLabels[k])) &&
      (!has(t.namespaceSelector.matchExpressions) || t.namespaceSelector.matchExpressions.all(e,
        e.operator == 'In' ? (e.key in variables.labels && has(e.values) && variables.labels[e.key] in e.values) :
        e.operator == 'NotIn' ? (!(e.key in variables.labels) || !has(e.values) || !(variables.labels[e.key] in e.values)) :
        e.operator == 'Exists' ? e.key in variables.labels :
        e.operator == 'DoesNotExist' ? !(e.key in variables.labels) :
        false)))
- name: tenant
  expression: "size(variables.tenants) > 0 ? variables.tenants[0].name : ''"
- name: restricted
  expression: "size(variables.tenants) > 0 || has(params.spec.openTenant)"
- name: allowedList
  expression: >-
    size(variables.tenants) > 0
    ? (has(variables.tenants[0].allowedTiers) ? variables.tenants[0].allowedTiers : [])
    : (has(params.spec.openTenant) && has(params.spec.openTenant.allowedTiers) ? params.spec.openTenant.allowedTiers : [])
- name: allowed
  expression: >-
    params.spec.tiers.map(t, t.name).filter(n, !variables.restricted || n in variables.allowedList)
{{- end -}}
