// The object kinds that tools/check-k8s-manifests.mjs --strict validates
// with unknown fields rejected: ts-json-schema-generator turns these
// interfaces (from the kubernetes-models and @kubernetes-models/prometheus-
// operator type declarations) into JSON schemas with additionalProperties
// false. Add a kind here before a manifest uses it.
import { IServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { ISecret } from "kubernetes-models/v1/Secret";
import { IConfigMap } from "kubernetes-models/v1/ConfigMap";
import { IService } from "kubernetes-models/v1/Service";
import { IPod } from "kubernetes-models/v1/Pod";
import { IDaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import { IDeployment } from "kubernetes-models/apps/v1/Deployment";
import { IServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import { IPodMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor";
import { IPrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";

export type Manifests = {
  "v1/ServiceAccount": IServiceAccount;
  "v1/Secret": ISecret;
  "v1/ConfigMap": IConfigMap;
  "v1/Service": IService;
  "v1/Pod": IPod;
  "apps/v1/DaemonSet": IDaemonSet;
  "apps/v1/Deployment": IDeployment;
  "monitoring.coreos.com/v1/ServiceMonitor": IServiceMonitor;
  "monitoring.coreos.com/v1/PodMonitor": IPodMonitor;
  "monitoring.coreos.com/v1/PrometheusRule": IPrometheusRule;
};
