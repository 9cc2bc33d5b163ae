//! Kubernetes manifests from `k8s-openapi`'s typed structs.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec, MetricTarget,
    ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar,
    EnvVarSource, HTTPGetAction, Lifecycle, LifecycleHandler, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SeccompProfile, SecretKeySelector, SecurityContext, Service, ServicePort, ServiceSpec,
    SleepAction, TopologySpreadConstraint, Volume, VolumeMount,
};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule, IngressServiceBackend, IngressSpec,
    IngressTLS, ServiceBackendPort,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use mlops_core::CoreError;
use serde::{Deserialize, Serialize};

use crate::{DeployError, Result, invalid};

/// The `kubernetes` section of `configs/deployment.yaml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesParams {
    /// The namespace every object goes into.
    pub namespace: String,
    /// The image repository, e.g. `registry.example.com/team/penguins-species`; the tag is the
    /// model version. Default: the model's name, the tag `mlops containerize` suggests.
    pub image: Option<String>,
    /// `IfNotPresent`, `Always` or `Never`.
    pub image_pull_policy: String,
    /// Pods of the stable Deployment when autoscaling is off (when it is on, the autoscaler sets
    /// the count and the manifest leaves it out, so a reapply does not reset it).
    pub replicas: u32,
    /// Rolling update: extra pods during an update (a count or a percentage).
    pub max_surge: String,
    /// Rolling update: pods that may be unavailable during an update (a count or a percentage).
    pub max_unavailable: String,
    /// CPU and memory requests and limits of the server container.
    pub resources: Resources,
    /// The HorizontalPodAutoscaler.
    pub autoscaling: Autoscaling,
    /// The optional Ingress.
    pub ingress: IngressParams,
    /// The optional canary Deployment.
    pub canary: CanaryParams,
    /// A Secret (key `token`) whose value becomes the server's admin token, when set.
    pub admin_token_secret: Option<String>,
}

impl Default for KubernetesParams {
    fn default() -> Self {
        Self {
            namespace: "mlops".into(),
            image: None,
            image_pull_policy: "IfNotPresent".into(),
            replicas: 2,
            max_surge: "25%".into(),
            max_unavailable: "0".into(),
            resources: Resources::default(),
            autoscaling: Autoscaling::default(),
            ingress: IngressParams::default(),
            canary: CanaryParams::default(),
            admin_token_secret: None,
        }
    }
}

/// Requests and limits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Resources {
    /// What the scheduler reserves.
    pub requests: Amounts,
    /// What the container may use at most.
    pub limits: Amounts,
}

impl Default for Resources {
    fn default() -> Self {
        Self {
            requests: Amounts { cpu: Some("250m".into()), memory: Some("128Mi".into()) },
            limits: Amounts { cpu: Some("1".into()), memory: Some("512Mi".into()) },
        }
    }
}

/// CPU and memory as Kubernetes quantities (`250m`, `1`, `128Mi`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Amounts {
    /// CPU.
    pub cpu: Option<String>,
    /// Memory.
    pub memory: Option<String>,
}

/// The HorizontalPodAutoscaler (autoscaling/v2, on CPU utilization).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Autoscaling {
    /// Whether to write it.
    pub enabled: bool,
    /// Floor.
    pub min_replicas: u32,
    /// Ceiling.
    pub max_replicas: u32,
    /// Target average CPU utilization, percent of the request.
    pub cpu_utilization: u32,
}

impl Default for Autoscaling {
    fn default() -> Self {
        Self { enabled: true, min_replicas: 2, max_replicas: 10, cpu_utilization: 70 }
    }
}

/// The optional Ingress.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngressParams {
    /// Whether to write it.
    pub enabled: bool,
    /// The host name it answers.
    pub host: String,
    /// The ingress class (`nginx`: the canary then gets an exact weight at the ingress).
    pub class: String,
    /// The path prefix.
    pub path: String,
    /// A TLS Secret for the host, when set.
    pub tls_secret: Option<String>,
}

impl Default for IngressParams {
    fn default() -> Self {
        Self {
            enabled: false,
            host: "models.example.com".into(),
            class: "nginx".into(),
            path: "/".into(),
            tls_secret: None,
        }
    }
}

/// The optional canary: a second Deployment serving another version next to the stable one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CanaryParams {
    /// Whether to write it.
    pub enabled: bool,
    /// The canary's model: `models:/NAME@ALIAS` or `models:/NAME/VERSION`.
    pub model: String,
    /// Percent of the traffic the canary should get (1-50).
    pub weight: u32,
}

impl Default for CanaryParams {
    fn default() -> Self {
        Self { enabled: false, model: "models:/penguins-species@challenger".into(), weight: 10 }
    }
}

/// What the manifests deploy (the caller reads it from the registry and the other config
/// sections).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ManifestFacts {
    /// Registered model name.
    pub model: String,
    /// Registered version.
    pub version: u32,
    /// The URI it was resolved from.
    pub uri: String,
    /// SHA-256 of the package manifest.
    pub package_sha256: String,
    /// The port the server listens on in the container.
    pub port: u16,
    /// The UID and GID the image runs as.
    pub uid: u32,
    /// The image's one writable directory (an `emptyDir` volume here).
    pub data_dir: String,
    /// The server's settings: a `configs/deployment.yaml` for the container, mounted from the
    /// ConfigMap at `/etc/mlops/deployment.yaml`.
    pub config_yaml: String,
    /// The environment variable the server reads its admin token from, if any.
    pub admin_token_env: Option<String>,
    /// Seconds the server drains requests after SIGTERM.
    pub shutdown_grace_seconds: u64,
}

/// The canary's model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CanaryFacts {
    /// Registered version.
    pub version: u32,
    /// The URI it was resolved from.
    pub uri: String,
    /// SHA-256 of its package manifest.
    pub package_sha256: String,
}

/// Where the ConfigMap is mounted in the container.
const CONFIG_DIR: &str = "/etc/mlops";
/// Seconds a pod keeps answering after it is told to stop, while the endpoints controller and
/// the proxies take it out of rotation.
const PRE_STOP_SECONDS: i64 = 5;

/// `250m`, `1`, `0.5`, `128Mi`, `1G`, `1e3`: what the API server parses as a quantity.
fn is_quantity(s: &str) -> bool {
    let number_end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, suffix) = s.split_at(number_end);
    let number_ok = !number.is_empty() && number.matches('.').count() <= 1 && number != ".";
    let suffix_ok = ["", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"].contains(&suffix)
        || suffix.strip_prefix(['e', 'E']).is_some_and(|e| !e.is_empty() && e.chars().all(|c| c.is_ascii_digit()));
    number_ok && suffix_ok
}

/// `3` or `25%`.
fn int_or_percent(key: &str, s: &str) -> Result<IntOrString> {
    if let Ok(n) = s.parse::<i32>() {
        return if n >= 0 { Ok(IntOrString::Int(n)) } else { invalid(key, format!("must not be negative, got {n}")) };
    }
    match s.strip_suffix('%').map(str::parse::<u32>) {
        Some(Ok(p)) if p <= 100 => Ok(IntOrString::String(s.to_string())),
        _ => invalid(key, format!("must be a count or a percentage such as 25%, got {s:?}")),
    }
}

/// A DNS-1123 label: lowercase letters, digits and `-`, at most 63 characters, starting and
/// ending with a letter or digit.
fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// The model's name as a Kubernetes object name: lowercase, other characters as `-`.
fn object_name(model: &str) -> Result<String> {
    let mut name: String =
        model.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    name = name.trim_matches('-').to_string();
    // Room for the longest suffix (`-canary`, `-config`).
    name.truncate(63 - "-canary".len());
    let name = name.trim_end_matches('-').to_string();
    if name.is_empty() {
        return invalid("model", format!("{model:?} gives no usable Kubernetes name"));
    }
    Ok(name)
}

impl KubernetesParams {
    /// Checks what serde cannot.
    pub fn check(&self) -> Result<()> {
        if !is_dns_label(&self.namespace) {
            return invalid(
                "namespace",
                format!("{:?} is not a DNS-1123 label (lowercase letters, digits, -)", self.namespace),
            );
        }
        if !["IfNotPresent", "Always", "Never"].contains(&self.image_pull_policy.as_str()) {
            return invalid(
                "image_pull_policy",
                format!("must be IfNotPresent, Always or Never, got {:?}", self.image_pull_policy),
            );
        }
        if let Some(image) = &self.image {
            let last = image.rsplit('/').next().unwrap_or(image);
            if image.is_empty() || last.contains(':') || image.contains('@') || image.contains(char::is_whitespace) {
                return invalid("image", format!("{image:?}: give the repository only; the tag is the model version"));
            }
        }
        if self.replicas == 0 {
            return invalid("replicas", "must be at least 1");
        }
        let surge = int_or_percent("max_surge", &self.max_surge)?;
        let unavailable = int_or_percent("max_unavailable", &self.max_unavailable)?;
        let zero =
            |v: &IntOrString| matches!(v, IntOrString::Int(0)) || matches!(v, IntOrString::String(s) if s == "0%");
        if zero(&surge) && zero(&unavailable) {
            return invalid("max_unavailable", "and max_surge cannot both be 0: the rollout could never progress");
        }
        for (key, amount) in [
            ("resources.requests.cpu", &self.resources.requests.cpu),
            ("resources.requests.memory", &self.resources.requests.memory),
            ("resources.limits.cpu", &self.resources.limits.cpu),
            ("resources.limits.memory", &self.resources.limits.memory),
        ] {
            if let Some(a) = amount.as_deref().filter(|a| !is_quantity(a)) {
                return invalid(key, format!("{a:?} is not a Kubernetes quantity (like 250m, 1, 128Mi)"));
            }
        }
        let a = &self.autoscaling;
        if a.enabled {
            if self.resources.requests.cpu.is_none() {
                return invalid("resources.requests.cpu", "is needed by autoscaling on CPU utilization");
            }
            if a.min_replicas == 0 || a.min_replicas > a.max_replicas {
                return invalid(
                    "autoscaling.min_replicas",
                    format!("must be between 1 and max_replicas ({}), got {}", a.max_replicas, a.min_replicas),
                );
            }
            if !(1..=100).contains(&a.cpu_utilization) {
                return invalid(
                    "autoscaling.cpu_utilization",
                    format!("must be 1-100 (percent), got {}", a.cpu_utilization),
                );
            }
        }
        let i = &self.ingress;
        if i.enabled {
            if i.host.is_empty() || !i.host.split('.').all(is_dns_label) {
                return invalid("ingress.host", format!("{:?} is not a DNS name", i.host));
            }
            if !i.path.starts_with('/') {
                return invalid("ingress.path", format!("must start with /, got {:?}", i.path));
            }
        }
        if self.canary.enabled && !(1..=50).contains(&self.canary.weight) {
            return invalid("canary.weight", format!("must be 1-50 (percent), got {}", self.canary.weight));
        }
        Ok(())
    }

    /// Canary pods next to `replicas` stable ones so that their share comes closest to the
    /// weight (at least one): the Service spreads requests evenly over the pods of both.
    pub fn canary_replicas(&self) -> u32 {
        let w = f64::from(self.canary.weight);
        ((f64::from(self.stable_replicas()) * w / (100.0 - w)).round() as u32).max(1)
    }

    /// The stable pods to plan for: the autoscaler's floor when it runs, else `replicas`.
    pub fn stable_replicas(&self) -> u32 {
        if self.autoscaling.enabled { self.autoscaling.min_replicas } else { self.replicas }
    }
}

fn labels(name: &str, track: &str, version: u32) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), name.to_string()),
        (
            "app.kubernetes.io/instance".to_string(),
            if track == "stable" { name.to_string() } else { format!("{name}-{track}") },
        ),
        ("app.kubernetes.io/version".to_string(), version.to_string()),
        ("app.kubernetes.io/component".to_string(), "model-server".to_string()),
        ("app.kubernetes.io/part-of".to_string(), "mlops".to_string()),
        ("app.kubernetes.io/managed-by".to_string(), "mlops".to_string()),
        ("mlops.io/track".to_string(), track.to_string()),
    ])
}

fn selector(name: &str, track: Option<&str>) -> BTreeMap<String, String> {
    let mut s = BTreeMap::from([("app.kubernetes.io/name".to_string(), name.to_string())]);
    if let Some(t) = track {
        s.insert("mlops.io/track".to_string(), t.to_string());
    }
    s
}

fn meta(name: &str, params: &KubernetesParams, labels: BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(params.namespace.clone()),
        labels: Some(labels),
        ..ObjectMeta::default()
    }
}

fn amounts(a: &Amounts) -> Option<BTreeMap<String, Quantity>> {
    let map: BTreeMap<String, Quantity> = [("cpu", &a.cpu), ("memory", &a.memory)]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k.to_string(), Quantity(v.clone()))))
        .collect();
    (!map.is_empty()).then_some(map)
}

fn http_probe(path: &str, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_string()),
            port: IntOrString::String("http".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(3),
        failure_threshold: Some(failures),
        ..Probe::default()
    }
}

/// One track of the model: its object name, `stable` or `canary`, its replicas, and the
/// registered version it serves.
struct Track<'a> {
    name: &'a str,
    track: &'a str,
    replicas: u32,
    version: u32,
    uri: &'a str,
    package_sha256: &'a str,
}

/// One Deployment: the stable one, or the canary.
fn deployment(params: &KubernetesParams, facts: &ManifestFacts, track: &Track<'_>, config_sha256: &str) -> Deployment {
    let Track { name, track, replicas, version, uri, package_sha256 } = *track;
    let base = object_name(&facts.model).unwrap_or_else(|_| name.to_string());
    let image = format!("{}:{version}", params.image.clone().unwrap_or_else(|| facts.model.clone()));
    let uid = i64::from(facts.uid);
    let pod_labels = labels(&base, track, version);
    let env = match (&params.admin_token_secret, &facts.admin_token_env) {
        (Some(secret), Some(var)) => Some(vec![EnvVar {
            name: var.clone(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: secret.clone(),
                    key: "token".into(),
                    // A misspelt Secret stops the pod rather than silently closing the admin route.
                    optional: Some(false),
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        }]),
        _ => None,
    };
    let container = Container {
        name: "server".into(),
        image: Some(image),
        image_pull_policy: Some(params.image_pull_policy.clone()),
        // The image's entrypoint is `mlops --log-dir DATA/logs`; the settings come from the
        // ConfigMap, the model from the image.
        args: Some(vec!["serve".into(), "--config".into(), format!("{CONFIG_DIR}/deployment.yaml")]),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: i32::from(facts.port),
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        env,
        resources: Some(ResourceRequirements {
            requests: amounts(&params.resources.requests),
            limits: amounts(&params.resources.limits),
            ..ResourceRequirements::default()
        }),
        // Loading the package takes a moment: the startup probe holds the others off until then.
        startup_probe: Some(http_probe("/v2/health/ready", 2, 30)),
        liveness_probe: Some(http_probe("/v2/health/live", 10, 3)),
        readiness_probe: Some(http_probe("/v2/health/ready", 5, 2)),
        lifecycle: Some(Lifecycle {
            pre_stop: Some(LifecycleHandler {
                sleep: Some(SleepAction { seconds: PRE_STOP_SECONDS }),
                ..LifecycleHandler::default()
            }),
            ..Lifecycle::default()
        }),
        security_context: Some(SecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(uid),
            run_as_group: Some(uid),
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            privileged: Some(false),
            capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Capabilities::default() }),
            seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), ..SeccompProfile::default() }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![
            VolumeMount { name: "data".into(), mount_path: facts.data_dir.clone(), ..VolumeMount::default() },
            VolumeMount {
                name: "config".into(),
                mount_path: CONFIG_DIR.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
        ]),
        ..Container::default()
    };
    let pod = PodSpec {
        containers: vec![container],
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        termination_grace_period_seconds: Some(
            i64::try_from(facts.shutdown_grace_seconds).unwrap_or(i64::MAX / 2) + PRE_STOP_SECONDS + 5,
        ),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(uid),
            run_as_group: Some(uid),
            fs_group: Some(uid),
            seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), ..SeccompProfile::default() }),
            ..PodSecurityContext::default()
        }),
        // Replicas on different nodes where the cluster can: one node's loss does not take them all.
        topology_spread_constraints: Some(vec![TopologySpreadConstraint {
            max_skew: 1,
            topology_key: "kubernetes.io/hostname".into(),
            when_unsatisfiable: "ScheduleAnyway".into(),
            label_selector: Some(LabelSelector {
                match_labels: Some(selector(&base, Some(track))),
                ..LabelSelector::default()
            }),
            ..TopologySpreadConstraint::default()
        }]),
        volumes: Some(vec![
            Volume {
                name: "data".into(),
                empty_dir: Some(EmptyDirVolumeSource {
                    size_limit: Some(Quantity("1Gi".into())),
                    ..EmptyDirVolumeSource::default()
                }),
                ..Volume::default()
            },
            Volume {
                name: "config".into(),
                config_map: Some(ConfigMapVolumeSource {
                    name: format!("{base}-config"),
                    ..ConfigMapVolumeSource::default()
                }),
                ..Volume::default()
            },
        ]),
        ..PodSpec::default()
    };
    let mut metadata = meta(name, params, pod_labels.clone());
    metadata.annotations = Some(BTreeMap::from([
        ("mlops.io/model-uri".to_string(), uri.to_string()),
        ("mlops.io/package-sha256".to_string(), package_sha256.to_string()),
    ]));
    Deployment {
        metadata,
        spec: DeploymentSpec {
            // Under an autoscaler the count is its business: a reapplied manifest must not reset it.
            replicas: (track != "stable" || !params.autoscaling.enabled)
                .then(|| i32::try_from(replicas).unwrap_or(i32::MAX)),
            revision_history_limit: Some(5),
            progress_deadline_seconds: Some(300),
            selector: LabelSelector { match_labels: Some(selector(&base, Some(track))), ..LabelSelector::default() },
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: int_or_percent("max_surge", &params.max_surge).ok(),
                    max_unavailable: int_or_percent("max_unavailable", &params.max_unavailable).ok(),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(BTreeMap::from([
                        // A changed ConfigMap rolls the pods.
                        ("mlops.io/config-sha256".to_string(), config_sha256.to_string()),
                        ("prometheus.io/scrape".to_string(), "true".to_string()),
                        ("prometheus.io/port".to_string(), facts.port.to_string()),
                        ("prometheus.io/path".to_string(), "/metrics".to_string()),
                    ])),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..DeploymentSpec::default()
        },
        ..Deployment::default()
    }
}

fn service(params: &KubernetesParams, name: &str, base: &str, version: u32, track: Option<&str>) -> Service {
    Service {
        metadata: meta(name, params, labels(base, track.unwrap_or("stable"), version)),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(selector(base, track)),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: 80,
                target_port: Some(IntOrString::String("http".into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

fn ingress(params: &KubernetesParams, name: &str, base: &str, version: u32, canary_weight: Option<u32>) -> Ingress {
    let i = &params.ingress;
    let mut metadata =
        meta(name, params, labels(base, if canary_weight.is_some() { "canary" } else { "stable" }, version));
    if let Some(w) = canary_weight {
        metadata.annotations = Some(BTreeMap::from([
            ("nginx.ingress.kubernetes.io/canary".to_string(), "true".to_string()),
            ("nginx.ingress.kubernetes.io/canary-weight".to_string(), w.to_string()),
        ]));
    }
    Ingress {
        metadata,
        spec: Some(IngressSpec {
            ingress_class_name: Some(i.class.clone()),
            tls: i.tls_secret.as_ref().map(|secret| {
                vec![IngressTLS { hosts: Some(vec![i.host.clone()]), secret_name: Some(secret.clone()) }]
            }),
            rules: Some(vec![IngressRule {
                host: Some(i.host.clone()),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some(i.path.clone()),
                        path_type: "Prefix".into(),
                        backend: IngressBackend {
                            service: Some(IngressServiceBackend {
                                name: name.to_string(),
                                port: Some(ServiceBackendPort {
                                    name: Some("http".into()),
                                    ..ServiceBackendPort::default()
                                }),
                            }),
                            ..IngressBackend::default()
                        },
                    }],
                }),
            }]),
            ..IngressSpec::default()
        }),
        ..Ingress::default()
    }
}

fn yaml<T: Serialize>(what: &str, value: &T) -> Result<String> {
    serde_yaml::to_string(value).map_err(|e| DeployError::Yaml { what: what.to_string(), message: e.to_string() })
}

/// The manifests as `(file name, YAML text)`, in the order to apply them. A canary needs
/// `canary` (its model); the canary file holds its Deployment, plus a Service and a weighted
/// Ingress when the ingress is on.
pub fn manifests(
    params: &KubernetesParams,
    facts: &ManifestFacts,
    canary: Option<&CanaryFacts>,
) -> Result<Vec<(String, String)>> {
    params.check()?;
    let base = object_name(&facts.model)?;
    if params.canary.enabled && canary.is_none() {
        return invalid("canary.model", "the canary is enabled but its model was not resolved");
    }
    let canary = canary.filter(|_| params.canary.enabled);
    let header = |what: &str| {
        format!(
            "# {what} for {} (version {}), written by `mlops deploy kubernetes`.\n# Apply the folder: kubectl apply -f <this folder>\n",
            facts.uri, facts.version
        )
    };
    let config_sha256 = mlops_core::hash::to_hex(&mlops_core::hash::sha256_bytes(facts.config_yaml.as_bytes()));
    let mut files = Vec::new();

    let config = ConfigMap {
        metadata: meta(&format!("{base}-config"), params, labels(&base, "stable", facts.version)),
        data: Some(BTreeMap::from([("deployment.yaml".to_string(), facts.config_yaml.clone())])),
        ..ConfigMap::default()
    };
    files.push(("configmap.yaml".to_string(), header("The server's settings") + &yaml("the ConfigMap", &config)?));

    let stable = deployment(
        params,
        facts,
        &Track {
            name: &base,
            track: "stable",
            replicas: params.replicas,
            version: facts.version,
            uri: &facts.uri,
            package_sha256: &facts.package_sha256,
        },
        &config_sha256,
    );
    files.push(("deployment.yaml".to_string(), header("The model server") + &yaml("the Deployment", &stable)?));

    // Without an ingress the Service spreads requests over the pods of both tracks: the canary's
    // share is its share of the pods. With one, the Service keeps to the stable pods and the
    // ingress weighs the canary exactly.
    let weighted_at_ingress = canary.is_some() && params.ingress.enabled;
    let svc = service(params, &base, &base, facts.version, weighted_at_ingress.then_some("stable"));
    files.push(("service.yaml".to_string(), header("The Service") + &yaml("the Service", &svc)?));

    if params.autoscaling.enabled {
        let a = &params.autoscaling;
        let hpa = HorizontalPodAutoscaler {
            metadata: meta(&base, params, labels(&base, "stable", facts.version)),
            spec: HorizontalPodAutoscalerSpec {
                scale_target_ref: CrossVersionObjectReference {
                    api_version: Some("apps/v1".into()),
                    kind: "Deployment".into(),
                    name: base.clone(),
                },
                min_replicas: Some(i32::try_from(a.min_replicas).unwrap_or(i32::MAX)),
                max_replicas: i32::try_from(a.max_replicas).unwrap_or(i32::MAX),
                metrics: Some(vec![MetricSpec {
                    type_: "Resource".into(),
                    resource: Some(ResourceMetricSource {
                        name: "cpu".into(),
                        target: MetricTarget {
                            type_: "Utilization".into(),
                            average_utilization: Some(i32::try_from(a.cpu_utilization).unwrap_or(100)),
                            ..MetricTarget::default()
                        },
                    }),
                    ..MetricSpec::default()
                }]),
                ..HorizontalPodAutoscalerSpec::default()
            },
            ..HorizontalPodAutoscaler::default()
        };
        files.push(("hpa.yaml".to_string(), header("The autoscaler") + &yaml("the HorizontalPodAutoscaler", &hpa)?));
    }

    let floor = if params.autoscaling.enabled { params.autoscaling.min_replicas } else { params.replicas };
    if floor >= 2 {
        let pdb = PodDisruptionBudget {
            metadata: meta(&base, params, labels(&base, "stable", facts.version)),
            spec: Some(PodDisruptionBudgetSpec {
                min_available: Some(IntOrString::Int(1)),
                selector: Some(LabelSelector {
                    match_labels: Some(selector(&base, Some("stable"))),
                    ..LabelSelector::default()
                }),
                ..PodDisruptionBudgetSpec::default()
            }),
            ..PodDisruptionBudget::default()
        };
        files.push(("pdb.yaml".to_string(), header("The disruption budget") + &yaml("the PodDisruptionBudget", &pdb)?));
    }

    if params.ingress.enabled {
        let ing = ingress(params, &base, &base, facts.version, None);
        files.push(("ingress.yaml".to_string(), header("The Ingress") + &yaml("the Ingress", &ing)?));
    }

    if let Some(c) = canary {
        let name = format!("{base}-canary");
        let replicas = params.canary_replicas();
        let mut text = header(&format!(
            "The canary, version {} ({}): {}",
            c.version,
            c.uri,
            if weighted_at_ingress {
                format!("{}% of the ingress traffic", params.canary.weight)
            } else {
                format!("{replicas} of {} pods behind the Service", replicas + params.stable_replicas())
            }
        ));
        let dep = deployment(
            params,
            facts,
            &Track {
                name: &name,
                track: "canary",
                replicas,
                version: c.version,
                uri: &c.uri,
                package_sha256: &c.package_sha256,
            },
            &config_sha256,
        );
        text += &yaml("the canary Deployment", &dep)?;
        if weighted_at_ingress {
            text += "---\n";
            text += &yaml("the canary Service", &service(params, &name, &base, c.version, Some("canary")))?;
            text += "---\n";
            text += &yaml("the canary Ingress", &ingress(params, &name, &base, c.version, Some(params.canary.weight)))?;
        }
        files.push(("canary.yaml".to_string(), text));
    }
    Ok(files)
}

fn readme(params: &KubernetesParams, facts: &ManifestFacts, files: &[(String, String)]) -> String {
    let image = params.image.clone().unwrap_or_else(|| facts.model.clone());
    let list: String = files.iter().map(|(f, _)| format!("- `{f}`\n")).collect();
    format!(
        "# Kubernetes manifests for {uri} (version {version})\n\n\
         Written by `mlops deploy kubernetes`. They expect the image `{image}:{version}` (build it\n\
         from `mlops containerize`, push it, and set `kubernetes.image` to the repository you pushed\n\
         to) and the namespace `{ns}`.\n\n\
         ```sh\nkubectl create namespace {ns}   # once\nkubectl apply -f .\nkubectl -n {ns} rollout status deployment/{name}\n\
         kubectl -n {ns} port-forward service/{name} 8080:80\ncurl http://127.0.0.1:8080/v2/health/ready\n```\n\n\
         Files:\n{list}\n\
         See docs/deployment.md in the toolkit for the canary, the ingress and rollbacks.\n",
        uri = facts.uri,
        version = facts.version,
        ns = params.namespace,
        name = object_name(&facts.model).unwrap_or_default(),
    )
}

/// Writes the manifests and a README into `out` (refused when it exists and is not empty,
/// unless `force`; written whole or not at all). Returns the file names.
pub fn write_manifests(
    out: &Path,
    params: &KubernetesParams,
    facts: &ManifestFacts,
    canary: Option<&CanaryFacts>,
    force: bool,
) -> Result<Vec<String>> {
    let mut files = manifests(params, facts, canary)?;
    files.push(("README.md".to_string(), readme(params, facts, &files)));
    mlops_core::io::atomic_dir_replace(out, force, |tmp| -> Result<()> {
        for (file, text) in &files {
            let path = tmp.join(file);
            fs::write(&path, text).map_err(|e| CoreError::io("cannot write", &path, e))?;
        }
        Ok(())
    })?;
    tracing::info!(out = %out.display(), model = %facts.model, version = facts.version, files = files.len(), "manifests written");
    Ok(files.into_iter().map(|(f, _)| f).collect())
}
