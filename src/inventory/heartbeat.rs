//! `HostHeartbeat` in the proto3 JSON mapping, exactly as wasmCloud v2 hosts publish it on
//! `runtime.operator.heartbeat.<host_id>` (spec/wasmcloud-v2.md 3.1, 3.2).
//!
//! The host serializes with `pbjson`: camelCase field names, 64-bit integers as JSON *strings*,
//! timestamps as RFC 3339 strings, and zero values omitted. Decoding here is what a proto3 JSON
//! parser accepts: the camelCase and the original snake_case field names, 64-bit integers as
//! strings or numbers, floats as numbers or strings (`"NaN"`, `"Infinity"`), `null` for any
//! field as its zero value; unknown fields are ignored (newer hosts may add some). A value of the
//! wrong type is an error, as with protojson. Encoding (for `wasmgate sim-hosts`) is what pbjson
//! writes.

use std::collections::BTreeMap;
use std::time::SystemTime;

use k8s_openapi::jiff::Timestamp;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

/// The subject hosts publish heartbeats to, with the host id as the last token.
pub const HEARTBEAT_SUBJECT_PREFIX: &str = "runtime.operator.heartbeat.";
/// The subscription that receives every host's heartbeats.
pub const HEARTBEAT_SUBJECT: &str = "runtime.operator.heartbeat.>";

/// One WIT package's interfaces in a heartbeat (`wasmcloud.runtime.v2.WitInterface`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WitInterface {
    /// WIT namespace, e.g. `wasmcloud`.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub namespace: String,
    /// WIT package, e.g. `postgres`.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub package: String,
    /// Package version; empty means unversioned.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub version: String,
    /// Interfaces of the package.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<String>,
    /// Plugin configuration (not kept in the inventory).
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub config: BTreeMap<String, String>,
    /// Named instance; empty when unnamed.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
}

/// A host heartbeat (`wasmcloud.runtime.v2.HostHeartbeat`). Every field is optional on the
/// wire; an absent field is its zero value.
///
/// `L` is how the two interface lists are held: parsed (`Vec<WitInterface>`, the default), as
/// the JSON text they arrived as ([`ListText`], so that the ingestion can look a fleet's
/// byte-identical lists up instead of parsing each again), or as the inventory shares them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(
    default,
    rename_all = "camelCase",
    bound(
        serialize = "L: Serialize + InterfaceField",
        deserialize = "L: Deserialize<'de> + Default"
    )
)]
pub struct HostHeartbeat<L = Vec<WitInterface>> {
    /// Host UUID (field 1).
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub id: String,
    /// `--host-name` or the OS hostname (2).
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub hostname: String,
    /// Generated adjective-noun-number name, or `host-<uuid>` (3).
    #[serde(
        alias = "friendly_name",
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub friendly_name: String,
    /// Host runtime version (4).
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub version: String,
    /// Labels, including `hostgroup` (5).
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    /// Start time (6), a `google.protobuf.Timestamp` (RFC 3339 on the wire).
    #[serde(
        alias = "started_at",
        with = "timestamp",
        skip_serializing_if = "Option::is_none"
    )]
    pub started_at: Option<SystemTime>,
    /// CPU architecture (7).
    #[serde(
        alias = "os_arch",
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub os_arch: String,
    /// Operating system (8).
    #[serde(
        alias = "os_name",
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub os_name: String,
    /// OS family (9).
    #[serde(
        alias = "os_kernel",
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub os_kernel: String,
    /// CPU usage in percent (10, a proto `float`).
    #[serde(
        alias = "system_cpu_usage",
        deserialize_with = "float",
        skip_serializing_if = "is_zero_f64"
    )]
    pub system_cpu_usage: f64,
    /// Total memory in bytes (11, uint64).
    #[serde(
        alias = "system_memory_total",
        with = "uint64",
        skip_serializing_if = "is_zero_u64"
    )]
    pub system_memory_total: u64,
    /// Free memory in bytes (12, uint64).
    #[serde(
        alias = "system_memory_free",
        with = "uint64",
        skip_serializing_if = "is_zero_u64"
    )]
    pub system_memory_free: u64,
    /// Components of Running workloads (13, uint64).
    #[serde(
        alias = "component_count",
        with = "uint64",
        skip_serializing_if = "is_zero_u64"
    )]
    pub component_count: u64,
    /// Workloads in any state (14, uint64).
    #[serde(
        alias = "workload_count",
        with = "uint64",
        skip_serializing_if = "is_zero_u64"
    )]
    pub workload_count: u64,
    /// Interfaces the host's plugins provide to components (15).
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "InterfaceField::is_absent"
    )]
    pub imports: L,
    /// Interfaces the host's plugins call on components (16).
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "InterfaceField::is_absent"
    )]
    pub exports: L,
    /// The host's HTTP port (17, uint32: a JSON number, or a string).
    #[serde(
        alias = "http_port",
        deserialize_with = "uint32",
        skip_serializing_if = "is_zero_u32"
    )]
    pub http_port: u32,
    /// Environment (18): the pod namespace in-cluster.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub environment: String,
}

/// A heartbeat's interface list as the JSON text it arrived as (`None` when absent or
/// `null`), borrowed from the payload.
#[derive(Clone, Copy, Debug, Default)]
pub struct ListText<'a>(Option<&'a RawValue>);

impl<'a> ListText<'a> {
    /// The list's JSON text; `None` when the heartbeat has no list.
    pub fn json(&self) -> Option<&'a str> {
        self.0.map(RawValue::get)
    }

    /// Parses the list (what [`HostHeartbeat::decode`] reads into `imports` and `exports`).
    pub fn parse(&self) -> Result<Vec<WitInterface>, HeartbeatError> {
        match self.json() {
            // Never `null` here: a `null` list is no text at all.
            Some(json) => Ok(serde_json::from_str(json)?),
            None => Ok(Vec::new()),
        }
    }
}

impl<'de> Deserialize<'de> for ListText<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&'de RawValue>::deserialize(d).map(|raw| Self(Some(raw)))
    }
}

impl PartialEq for ListText<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.json() == other.json()
    }
}

impl Serialize for ListText<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// What a heartbeat's interface-list field can say about itself when the heartbeat is
/// encoded: whether it is left out (pbjson omits an empty list).
pub trait InterfaceField {
    /// The list is empty or absent.
    fn is_absent(&self) -> bool;
}

impl InterfaceField for Vec<WitInterface> {
    fn is_absent(&self) -> bool {
        self.is_empty()
    }
}

impl InterfaceField for ListText<'_> {
    fn is_absent(&self) -> bool {
        self.0.is_none()
    }
}

/// A heartbeat whose interface lists are still JSON text: what the ingestion decodes.
pub type HeartbeatText<'a> = HostHeartbeat<ListText<'a>>;

/// Why a heartbeat was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum HeartbeatError {
    /// The payload is not a proto3 JSON `HostHeartbeat`.
    #[error("malformed heartbeat: {0}")]
    Decode(#[from] serde_json::Error),
    /// The heartbeat carries no host id (and the subject names none).
    #[error("heartbeat without a host id")]
    NoId,
    /// The message was not published on a heartbeat subject.
    #[error("not a heartbeat subject (want {HEARTBEAT_SUBJECT_PREFIX}<host id>)")]
    Subject,
    /// The payload names another host than its subject: a publisher allowed on one host's
    /// subject must not speak for another host.
    #[error("heartbeat id {payload:?} differs from the subject's host id {subject:?}")]
    IdMismatch {
        /// The host id in the subject.
        subject: String,
        /// The host id in the payload.
        payload: String,
    },
}

impl HostHeartbeat {
    /// Decodes a heartbeat payload.
    pub fn decode(payload: &[u8]) -> Result<Self, HeartbeatError> {
        decode_as(payload)
    }

    /// Decodes a payload received on `subject` (`runtime.operator.heartbeat.<host_id>`): a
    /// heartbeat without an `id` takes the subject's last token; one with neither is rejected.
    pub fn decode_from_subject(subject: &str, payload: &[u8]) -> Result<Self, HeartbeatError> {
        decode_from_subject_as(subject, payload)
    }

    /// The proto3 JSON encoding, as a host sends it.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a heartbeat always serializes")
    }
}

impl<'a> HeartbeatText<'a> {
    /// [`HostHeartbeat::decode_from_subject`], the interface lists left as text: checked to
    /// be JSON, not yet parsed ([`ListText::parse`]).
    pub fn decode_text_from_subject(
        subject: &str,
        payload: &'a [u8],
    ) -> Result<Self, HeartbeatError> {
        decode_from_subject_as(subject, payload)
    }
}

impl<L> HostHeartbeat<L> {
    /// The same heartbeat with its interface lists converted by `convert`.
    pub fn try_map_lists<M, E>(
        self,
        mut convert: impl FnMut(L) -> Result<M, E>,
    ) -> Result<HostHeartbeat<M>, E> {
        Ok(HostHeartbeat {
            imports: convert(self.imports)?,
            exports: convert(self.exports)?,
            id: self.id,
            hostname: self.hostname,
            friendly_name: self.friendly_name,
            version: self.version,
            labels: self.labels,
            started_at: self.started_at,
            os_arch: self.os_arch,
            os_name: self.os_name,
            os_kernel: self.os_kernel,
            system_cpu_usage: self.system_cpu_usage,
            system_memory_total: self.system_memory_total,
            system_memory_free: self.system_memory_free,
            component_count: self.component_count,
            workload_count: self.workload_count,
            http_port: self.http_port,
            environment: self.environment,
        })
    }

    /// Checks what the inventory needs: a host id. Everything else may be absent.
    pub fn validate(&self) -> Result<(), HeartbeatError> {
        if self.id.trim().is_empty() {
            return Err(HeartbeatError::NoId);
        }
        Ok(())
    }
}

/// Decodes a heartbeat payload, its lists held as `L`.
fn decode_as<'a, L>(payload: &'a [u8]) -> Result<HostHeartbeat<L>, HeartbeatError>
where
    L: Deserialize<'a> + Default,
{
    // A message is a JSON object (serde would also read a struct from an array).
    if payload.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(HeartbeatError::Decode(serde::de::Error::custom(
            "a heartbeat is a JSON object",
        )));
    }
    // JSON text is UTF-8 (RFC 8259), and protojson refuses anything else. Checked over the
    // whole payload, not string by string: serde skips an unknown field's value without
    // looking at its bytes, and the ingestion keeps each interface list as text (which must
    // be UTF-8), so only a whole-payload check makes both paths accept the same payloads
    // (found by the heartbeat fuzz target).
    let text = std::str::from_utf8(payload).map_err(|e| {
        HeartbeatError::Decode(serde::de::Error::custom(format!(
            "a heartbeat is UTF-8 JSON: {e}"
        )))
    })?;
    Ok(serde_json::from_str(text)?)
}

/// [`HostHeartbeat::decode_from_subject`], the lists held as `L`.
fn decode_from_subject_as<'a, L>(
    subject: &str,
    payload: &'a [u8],
) -> Result<HostHeartbeat<L>, HeartbeatError>
where
    L: Deserialize<'a> + Default,
{
    // The subject is what NATS permissions can restrict per host (a host's user may publish
    // only on `runtime.operator.heartbeat.<its id>`), so the subject's id is the one that
    // counts; a payload naming another host is refused rather than trusted.
    let from_subject = subject
        .strip_prefix(HEARTBEAT_SUBJECT_PREFIX)
        .ok_or(HeartbeatError::Subject)?;
    let mut hb = decode_as::<L>(payload)?;
    if hb.id.is_empty() {
        hb.id = from_subject.to_string();
    } else if hb.id != from_subject {
        return Err(HeartbeatError::IdMismatch {
            subject: from_subject.to_string(),
            payload: hb.id,
        });
    }
    hb.validate()?;
    Ok(hb)
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

fn is_zero_f64(v: &f64) -> bool {
    *v == 0.0
}

/// proto3 JSON: `null` is the field's zero value.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A number that proto3 JSON may write as a JSON number or a string.
struct NumberVisitor {
    expecting: &'static str,
}

enum Number {
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Text(String),
    Null,
}

impl<'de> Visitor<'de> for NumberVisitor {
    type Value = Number;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(self.expecting)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Number, E> {
        Ok(Number::Unsigned(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Number, E> {
        Ok(Number::Signed(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Number, E> {
        Ok(Number::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Number, E> {
        Ok(Number::Text(v.to_string()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Number, E> {
        Ok(Number::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Number, E> {
        Ok(Number::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Number, D::Error> {
        d.deserialize_any(self)
    }
}

/// An unsigned integer from a JSON number (integral, in range) or a decimal string.
fn unsigned<E: de::Error>(n: Number, max: u64, what: &str) -> Result<u64, E> {
    let v = match n {
        Number::Null => 0,
        Number::Unsigned(v) => v,
        Number::Signed(v) => {
            u64::try_from(v).map_err(|_| E::custom(format!("negative value {v} for {what}")))?
        }
        Number::Float(f) => {
            if f.fract() != 0.0 || !(0.0..=u64::MAX as f64).contains(&f) {
                return Err(E::custom(format!("{f} is not a valid {what}")));
            }
            f as u64
        }
        Number::Text(s) => s
            .trim()
            .parse::<u64>()
            .map_err(|_| E::custom(format!("{s:?} is not a valid {what}")))?,
    };
    if v > max {
        return Err(E::custom(format!("{v} is out of range for {what}")));
    }
    Ok(v)
}

fn uint32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = d.deserialize_any(NumberVisitor {
        expecting: "a uint32 (number or string)",
    })?;
    unsigned(n, u32::MAX.into(), "uint32").map(|v| v as u32)
}

fn float<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let n = d.deserialize_any(NumberVisitor {
        expecting: "a float (number or string)",
    })?;
    Ok(match n {
        Number::Null => 0.0,
        Number::Unsigned(v) => v as f64,
        Number::Signed(v) => v as f64,
        Number::Float(v) => v,
        Number::Text(s) => match s.as_str() {
            "NaN" => f64::NAN,
            "Infinity" => f64::INFINITY,
            "-Infinity" => f64::NEG_INFINITY,
            other => other
                .trim()
                .parse::<f64>()
                .map_err(|_| de::Error::custom(format!("{s:?} is not a valid float")))?,
        },
    })
}

/// uint64: written as a decimal string; read from a string or a number.
mod uint64 {
    use super::*;

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let n = d.deserialize_any(NumberVisitor {
            expecting: "a uint64 (string or number)",
        })?;
        unsigned(n, u64::MAX, "uint64")
    }
}

/// `google.protobuf.Timestamp`: RFC 3339 in UTC with a `Z` and 0, 3, 6 or 9 fractional digits
/// (read with any offset).
pub(crate) mod timestamp {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            None => s.serialize_none(),
            Some(t) => {
                let ts = Timestamp::try_from(*t).map_err(serde::ser::Error::custom)?;
                s.collect_str(&format_proto(ts))
            }
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        let ts: Timestamp = text.parse().map_err(|e| {
            de::Error::custom(format!("{text:?} is not an RFC 3339 timestamp: {e}"))
        })?;
        Ok(Some(SystemTime::from(ts)))
    }

    /// RFC 3339 the way protobuf writes a Timestamp.
    pub fn format_proto(ts: Timestamp) -> String {
        let nanos = ts.subsec_nanosecond();
        let secs = Timestamp::from_second(ts.as_second()).unwrap_or(ts);
        let base = secs.strftime("%Y-%m-%dT%H:%M:%S").to_string();
        if nanos == 0 {
            format!("{base}Z")
        } else if nanos % 1_000_000 == 0 {
            format!("{base}.{:03}Z", nanos / 1_000_000)
        } else if nanos % 1_000 == 0 {
            format!("{base}.{:06}Z", nanos / 1_000)
        } else {
            format!("{base}.{nanos:09}Z")
        }
    }
}

/// RFC 3339 with second precision (`metav1.Time`, as Kubernetes writes `lastSeen`).
pub fn rfc3339_seconds(t: SystemTime) -> String {
    let secs = match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs_f64().ceil() as i64),
    };
    Timestamp::from_second(secs)
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A heartbeat as a wasmCloud host (pbjson) writes it.
    const REAL: &str = r#"{
      "id": "14b0a1df-3f91-441c-b304-2aa56e9bef6e",
      "hostname": "10.244.0.17",
      "friendlyName": "exotic-toes-5866",
      "version": "2.7.0",
      "labels": { "hostgroup": "default" },
      "startedAt": "2026-08-20T10:00:00.123456789Z",
      "osArch": "x86_64",
      "osName": "linux",
      "osKernel": "unix",
      "systemCpuUsage": 3.5,
      "systemMemoryTotal": "16777216000",
      "systemMemoryFree": "8000000000",
      "workloadCount": "2",
      "imports": [
        { "namespace": "wasi", "package": "config", "version": "0.2.0-rc.1", "interfaces": ["store"] },
        { "namespace": "wasi", "package": "keyvalue", "interfaces": ["store", "atomics", "batch"],
          "config": { "bucket": "x" } }
      ],
      "exports": [
        { "namespace": "wasmcloud", "package": "messaging", "version": "0.2.0", "interfaces": ["handler"] }
      ],
      "httpPort": 9191,
      "environment": "team-a"
    }"#;

    #[test]
    fn decodes_what_hosts_send() {
        let hb = HostHeartbeat::decode(REAL.as_bytes()).unwrap();
        assert_eq!(hb.id, "14b0a1df-3f91-441c-b304-2aa56e9bef6e");
        assert_eq!(hb.friendly_name, "exotic-toes-5866");
        assert_eq!(hb.labels["hostgroup"], "default");
        assert_eq!(hb.system_cpu_usage, 3.5);
        assert_eq!(hb.system_memory_total, 16_777_216_000);
        assert_eq!(hb.system_memory_free, 8_000_000_000);
        assert_eq!(hb.component_count, 0, "omitted zero");
        assert_eq!(hb.workload_count, 2);
        assert_eq!(hb.http_port, 9191);
        assert_eq!(hb.imports.len(), 2);
        assert_eq!(hb.imports[1].version, "");
        assert_eq!(hb.exports[0].interfaces, vec!["handler"]);
        let started = hb.started_at.unwrap();
        let ts = Timestamp::try_from(started).unwrap();
        assert_eq!(ts.subsec_nanosecond(), 123_456_789);
    }

    #[test]
    fn round_trips_in_the_hosts_encoding() {
        let hb = HostHeartbeat::decode(REAL.as_bytes()).unwrap();
        let bytes = hb.encode();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["systemMemoryTotal"], "16777216000", "uint64 as a string");
        assert_eq!(v["httpPort"], 9191, "uint32 as a number");
        assert_eq!(v["startedAt"], "2026-08-20T10:00:00.123456789Z");
        assert!(v.get("componentCount").is_none(), "zero omitted");
        assert!(v.get("friendlyName").is_some(), "camelCase");
        assert_eq!(HostHeartbeat::decode(&bytes).unwrap(), hb);
    }

    #[test]
    fn accepts_proto3_json_variants() {
        let hb = HostHeartbeat::decode(
            br#"{"id":"a","friendly_name":"x-1","system_memory_total":12,"systemCpuUsage":"NaN",
                 "httpPort":"80","labels":null,"imports":null,"componentCount":null,"unknownField":{"a":1}}"#,
        )
        .unwrap();
        assert_eq!(hb.friendly_name, "x-1");
        assert_eq!(hb.system_memory_total, 12);
        assert!(hb.system_cpu_usage.is_nan());
        assert_eq!(hb.http_port, 80);
        assert!(hb.labels.is_empty());
        let empty = HostHeartbeat::decode(b"{}").unwrap();
        assert_eq!(empty, HostHeartbeat::default());
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            &b"not json"[..],
            b"[]",
            br#"{"id": 5}"#,
            br#"{"systemMemoryTotal": "-1"}"#,
            br#"{"systemMemoryTotal": -1}"#,
            br#"{"systemMemoryTotal": 1.5}"#,
            br#"{"httpPort": 5000000000}"#,
            br#"{"startedAt": "yesterday"}"#,
            br#"{"labels": {"a": 1}}"#,
            // Invalid UTF-8, even in a field that is not read.
            b"{\"unknownField\": \"\x9e\x90\"}",
            b"{\"id\": \"a\xff\"}",
        ] {
            assert!(
                HostHeartbeat::decode(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn id_from_subject() {
        let hb =
            HostHeartbeat::decode_from_subject("runtime.operator.heartbeat.abc", b"{}").unwrap();
        assert_eq!(hb.id, "abc");
        assert!(HostHeartbeat::decode_from_subject("other", b"{}").is_err());
        assert!(matches!(
            HostHeartbeat::decode_from_subject("other", br#"{"id":"abc"}"#),
            Err(HeartbeatError::Subject)
        ));
        let same = HostHeartbeat::decode_from_subject(
            "runtime.operator.heartbeat.abc",
            br#"{"id":"abc"}"#,
        )
        .unwrap();
        assert_eq!(same.id, "abc");
        // A publisher on host abc's subject cannot speak for host xyz.
        assert!(matches!(
            HostHeartbeat::decode_from_subject(
                "runtime.operator.heartbeat.abc",
                br#"{"id":"xyz"}"#
            ),
            Err(HeartbeatError::IdMismatch { .. })
        ));
    }

    #[test]
    fn timestamps() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_250);
        assert_eq!(
            timestamp::format_proto(Timestamp::try_from(t).unwrap()),
            "2023-11-14T22:13:20.250Z"
        );
        assert_eq!(rfc3339_seconds(t), "2023-11-14T22:13:20Z");
    }
}
