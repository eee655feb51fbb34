//! `meta.k8s.io/v1` Table rendering of hosts for `kubectl get` (server-side printing).
//!
//! Columns at priority 0: NAME, HOSTID, HOSTGROUP, ENVIRONMENT, READY, VERSION, WORKLOADS, AGE;
//! at priority 1 (shown by `-o wide`, which sends the same request): HOSTNAME, OS, ARCH, CPU,
//! MEMORY-FREE, INTERFACES, LAST-SEEN.

use std::time::SystemTime;

use k8s_openapi::jiff::Timestamp;
use serde_json::{json, Value};

use crate::crd::Host;

use super::status::{encode, EncodeError};
use super::{host_json, host_what};

/// An `includeObject` value other than `Object`, `Metadata` or `None`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("includeObject: unsupported value {0:?} (Object, Metadata or None)")]
pub struct UnsupportedIncludeObject(pub String);

/// What each row carries as `object` (`includeObject`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IncludeObject {
    /// A `PartialObjectMetadata` (the default).
    #[default]
    Metadata,
    /// The whole Host.
    Object,
    /// Nothing.
    None,
}

impl IncludeObject {
    /// Parses the `includeObject` query parameter.
    pub fn parse(s: Option<&str>) -> Result<Self, UnsupportedIncludeObject> {
        match s {
            None | Some("") | Some("Metadata") => Ok(Self::Metadata),
            Some("Object") => Ok(Self::Object),
            Some("None") => Ok(Self::None),
            Some(other) => Err(UnsupportedIncludeObject(other.to_string())),
        }
    }
}

/// The column definitions, in cell order.
pub fn column_definitions() -> Value {
    let col = |name: &str, ty: &str, format: &str, description: &str, priority: u8| {
        json!({"name": name, "type": ty, "format": format, "description": description,
               "priority": priority})
    };
    json!([
        col(
            "Name",
            "string",
            "name",
            "Name must be unique within a namespace. The host's friendly name.",
            0
        ),
        col("HostID", "string", "", "The host's UUID.", 0),
        col("HostGroup", "string", "", "The hostgroup label.", 0),
        col(
            "Environment",
            "string",
            "",
            "The host's environment (its namespace in-cluster).",
            0
        ),
        col(
            "Ready",
            "string",
            "",
            "Status of the Ready condition: True, False or Unknown.",
            0
        ),
        col("Version", "string", "", "Host runtime version.", 0),
        col(
            "Workloads",
            "integer",
            "",
            "Workloads running on the host.",
            0
        ),
        col(
            "Age",
            "string",
            "",
            "Time since the host was first seen.",
            0
        ),
        col(
            "Hostname",
            "string",
            "",
            "Hostname (the pod IP for chart-deployed hosts).",
            1
        ),
        col("OS", "string", "", "Operating system.", 1),
        col("Arch", "string", "", "CPU architecture.", 1),
        col("CPU", "string", "", "CPU usage in percent.", 1),
        col("Memory-Free", "string", "", "Free memory.", 1),
        col(
            "Interfaces",
            "string",
            "",
            "WIT packages the host's plugins provide.",
            1
        ),
        col(
            "Last-Seen",
            "string",
            "",
            "Time since the last heartbeat.",
            1
        ),
    ])
}

/// kube's `duration.HumanDuration`: "5s", "3m20s", "7h", "4d2h", "2y".
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    if secs < 0 {
        return "0s".into();
    }
    if secs < 120 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        let s = secs % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = secs / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

pub(crate) fn since(ts: Option<Timestamp>, now: SystemTime) -> String {
    match ts {
        Some(t) => human_duration(unix_secs(now) - t.as_second()),
        None => "<unknown>".into(),
    }
}

/// Binary-unit bytes: "512Mi", "15.6Gi".
pub fn human_bytes(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["", "Ki", "Mi", "Gi", "Ti"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v.abs() >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 || v >= 100.0 || v.fract() < 0.05 {
        format!("{:.0}{}", v, UNITS[unit])
    } else {
        format!("{:.1}{}", v, UNITS[unit])
    }
}

const INTERFACES_WIDTH: usize = 60;

fn interfaces_cell(host: &Host) -> String {
    let Some(imports) = host.status.as_ref().and_then(|s| s.imports.as_ref()) else {
        return "<none>".into();
    };
    if imports.is_empty() {
        return "<none>".into();
    }
    let all: Vec<String> = imports
        .iter()
        .map(|i| match &i.version {
            Some(v) => format!("{}:{}@{v}", i.namespace, i.package),
            None => format!("{}:{}", i.namespace, i.package),
        })
        .collect();
    let mut out = String::new();
    for (n, item) in all.iter().enumerate() {
        let sep = if out.is_empty() { "" } else { "," };
        let rest = all.len() - n;
        if out.len() + sep.len() + item.len() > INTERFACES_WIDTH && !out.is_empty() {
            out.push_str(&format!(" +{rest}"));
            return out;
        }
        out.push_str(sep);
        out.push_str(item);
    }
    out
}

fn or_none(s: Option<&str>) -> String {
    match s {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => "<none>".into(),
    }
}

/// The cells of one host's row.
pub fn cells(host: &Host, now: SystemTime) -> Vec<Value> {
    let status = host.status.as_ref();
    let created = host.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let last_seen = status
        .and_then(|s| s.last_seen.as_deref())
        .and_then(|s| s.parse::<Timestamp>().ok());
    let cpu = status
        .and_then(|s| s.system_cpu_usage.as_deref())
        .map(|c| match c.parse::<f64>() {
            Ok(v) => format!("{v:.1}%"),
            Err(_) => c.to_string(),
        });
    vec![
        json!(host.metadata.name.clone().unwrap_or_default()),
        json!(or_none(Some(&host.host_id))),
        json!(or_none(
            host.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("hostgroup"))
                .map(String::as_str)
        )),
        json!(or_none(host.environment.as_deref())),
        json!(or_none(host.ready_status())),
        json!(or_none(status.and_then(|s| s.version.as_deref()))),
        json!(status.and_then(|s| s.workload_count).unwrap_or(0)),
        json!(since(created, now)),
        json!(or_none(host.hostname.as_deref())),
        json!(or_none(status.and_then(|s| s.os_name.as_deref()))),
        json!(or_none(status.and_then(|s| s.os_arch.as_deref()))),
        json!(or_none(cpu.as_deref())),
        json!(status
            .and_then(|s| s.system_memory_free)
            .map(human_bytes)
            .unwrap_or_else(|| "<none>".into())),
        json!(interfaces_cell(host)),
        json!(since(last_seen, now)),
    ]
}

/// The row `object` for `includeObject`.
fn row_object(host: &Host, include: IncludeObject) -> Result<Option<Value>, EncodeError> {
    Ok(match include {
        IncludeObject::None => None,
        IncludeObject::Object => Some(host_json(host)?),
        IncludeObject::Metadata => Some(partial_metadata(host)?),
    })
}

/// A `PartialObjectMetadata` of a host.
pub fn partial_metadata(host: &Host) -> Result<Value, EncodeError> {
    Ok(json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": encode(|| format!("the metadata of {}", host_what(host)), &host.metadata)?,
    }))
}

/// One row.
pub fn row(host: &Host, include: IncludeObject, now: SystemTime) -> Result<Value, EncodeError> {
    let mut r = json!({ "cells": cells(host, now) });
    if let Some(o) = row_object(host, include)? {
        r["object"] = o;
    }
    Ok(r)
}

/// A Table of `hosts`. `headers: false` omits `columnDefinitions` (watch events after the first).
pub fn table(
    hosts: &[Host],
    resource_version: u64,
    continue_token: Option<&str>,
    remaining: Option<u64>,
    include: IncludeObject,
    headers: bool,
    now: SystemTime,
) -> Result<Value, EncodeError> {
    let mut t = table_head(resource_version, continue_token, remaining, headers);
    t["rows"] = hosts
        .iter()
        .map(|h| row(h, include, now))
        .collect::<Result<Vec<_>, _>>()?
        .into();
    Ok(t)
}

/// A Table without its `rows` (a streamed list adds them a chunk at a time).
pub fn table_head(
    resource_version: u64,
    continue_token: Option<&str>,
    remaining: Option<u64>,
    headers: bool,
) -> Value {
    let metadata = super::list_body::list_meta(resource_version, continue_token, remaining);
    let columns = if headers {
        column_definitions()
    } else {
        json!([])
    };
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{Condition, HostStatus, HostWitInterface};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use std::time::Duration;

    #[test]
    fn durations_like_kubectl() {
        for (secs, want) in [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (59, "59s"),
            (119, "119s"),
            (120, "2m"),
            (200, "3m20s"),
            (600, "10m"),
            (179 * 60, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 60 * 5, "3h5m"),
            (9 * 3600, "9h"),
            (50 * 3600, "2d2h"),
            (48 * 3600, "2d"),
            (10 * 86400, "10d"),
            (800 * 86400, "2y70d"),
            (9 * 365 * 86400, "9y"),
        ] {
            assert_eq!(human_duration(secs), want, "{secs}");
        }
    }

    #[test]
    fn bytes() {
        assert_eq!(human_bytes(512), "512");
        assert_eq!(human_bytes(1024 * 1024 * 512), "512Mi");
        assert_eq!(human_bytes(16_750_000_000), "15.6Gi");
        assert_eq!(human_bytes(8 * 1024 * 1024 * 1024), "8Gi");
    }

    #[test]
    fn row_cells_and_columns() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut h = Host::default();
        h.metadata.name = Some("host-a".into());
        h.metadata.labels = Some([("hostgroup".to_string(), "edge".to_string())].into());
        h.metadata.creation_timestamp =
            Some(Time(Timestamp::from_second(1_800_000_000 - 300).unwrap()));
        h.host_id = "id-a".into();
        h.hostname = Some("10.0.0.5".into());
        h.environment = Some("prod".into());
        h.status = Some(HostStatus {
            version: Some("2.0.1".into()),
            os_name: Some("linux".into()),
            os_arch: Some("x86_64".into()),
            system_cpu_usage: Some("12.345".into()),
            system_memory_free: Some(8 * 1024 * 1024 * 1024),
            workload_count: Some(3),
            last_seen: Some("2027-01-15T08:00:00Z".into()),
            conditions: Some(
                vec![Condition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    ..Default::default()
                }]
                .into(),
            ),
            imports: Some(
                vec![HostWitInterface {
                    namespace: "wasi".into(),
                    package: "keyvalue".into(),
                    version: Some("0.2.0-draft".into()),
                    interfaces: vec!["store".into()],
                    name: None,
                }]
                .into(),
            ),
            ..Default::default()
        });
        let c = cells(&h, now);
        let cols = column_definitions();
        assert_eq!(c.len(), cols.as_array().unwrap().len());
        let names: Vec<String> = cols
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_uppercase())
            .collect();
        assert_eq!(
            names,
            [
                "NAME",
                "HOSTID",
                "HOSTGROUP",
                "ENVIRONMENT",
                "READY",
                "VERSION",
                "WORKLOADS",
                "AGE",
                "HOSTNAME",
                "OS",
                "ARCH",
                "CPU",
                "MEMORY-FREE",
                "INTERFACES",
                "LAST-SEEN"
            ]
        );
        let wide: Vec<bool> = cols
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["priority"] == 1)
            .collect();
        assert_eq!(wide.iter().filter(|w| **w).count(), 7);
        assert!(!wide[..8].iter().any(|w| *w));
        assert_eq!(
            c[..8],
            [
                json!("host-a"),
                json!("id-a"),
                json!("edge"),
                json!("prod"),
                json!("True"),
                json!("2.0.1"),
                json!(3),
                json!("5m")
            ]
        );
        assert_eq!(c[11], "12.3%");
        assert_eq!(c[12], "8Gi");
        assert_eq!(c[13], "wasi:keyvalue@0.2.0-draft");
        let t = table(
            &[h],
            7,
            Some("tok"),
            Some(3),
            IncludeObject::Metadata,
            true,
            now,
        )
        .unwrap();
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(t["metadata"]["resourceVersion"], "7");
        assert_eq!(t["metadata"]["continue"], "tok");
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(t["rows"][0]["object"]["metadata"]["name"], "host-a");
    }

    #[test]
    fn missing_values() {
        let h = Host::default();
        let c = cells(&h, SystemTime::now());
        assert_eq!(c[1], "<none>");
        assert_eq!(c[4], "<none>");
        assert_eq!(c[7], "<unknown>");
        assert_eq!(c[13], "<none>");
    }
}
