//! Label and field selectors, with kube-apiserver's syntax.
//!
//! Labels: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, `k>N`, `k<N`,
//! joined by commas (all must hold). Fields of a Host: `metadata.name`, `metadata.namespace`
//! (always empty: hosts are cluster-scoped), `hostId`, `hostname`, `environment`,
//! `status.ready` (the Ready condition's status) and `status.version`, each with `=`, `==` or `!=`.

use std::collections::BTreeMap;

use crate::crd::Host;

/// Why a label or field selector does not parse (each a 400 BadRequest; the texts follow
/// kube-apiserver's where it has one).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// A `)` without its `(`.
    #[error("unbalanced ')'")]
    UnbalancedClose,
    /// A `(` without its `)`.
    #[error("unbalanced '('")]
    UnbalancedOpen,
    /// `in`/`notin` not followed by `( ... )`.
    #[error("expected a parenthesized set of values, found {0:?}")]
    ExpectedSet(String),
    /// A label value that is not a valid label value.
    #[error("invalid label value: {0:?}")]
    InvalidValue(String),
    /// A label key that is not a valid qualified name.
    #[error("invalid label key {0:?}")]
    InvalidKey(String),
    /// Two commas in a row, or a trailing comma.
    #[error("empty requirement in {0:?}")]
    EmptyRequirement(String),
    /// `k>N`/`k<N` with N not an integer.
    #[error("not an integer: {0:?}")]
    NotAnInteger(String),
    /// A field requirement without `=`, `==` or `!=`.
    #[error("invalid selector: '{0}'; can't understand '{0}'")]
    Unparsable(String),
    /// A field the resource does not support.
    #[error("field label not supported: {field} (supported: {supported})")]
    UnsupportedField {
        /// The field named.
        field: String,
        /// The fields the resource supports, comma-separated.
        supported: String,
    },
}

impl From<SelectorError> for super::status::ApiError {
    fn from(e: SelectorError) -> Self {
        Self::bad_request(e.to_string())
    }
}

/// One label requirement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelRequirement {
    /// `k=v`, `k==v`, `k in (..)`.
    In(String, Vec<String>),
    /// `k!=v`, `k notin (..)` (also true when the label is absent).
    NotIn(String, Vec<String>),
    /// `k`.
    Exists(String),
    /// `!k`.
    DoesNotExist(String),
    /// `k>N`.
    Gt(String, i64),
    /// `k<N`.
    Lt(String, i64),
}

/// A parsed label selector (empty: everything matches).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector(pub Vec<LabelRequirement>);

fn valid_key(key: &str) -> bool {
    // prefix/name, name: [A-Za-z0-9][-A-Za-z0-9_.]* up to 63; prefix: DNS subdomain.
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-.".contains(c))
    });
    name_ok && prefix_ok
}

fn valid_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

/// Splits on commas that are not inside parentheses.
fn split_top(s: &str) -> Result<Vec<&str>, SelectorError> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(SelectorError::UnbalancedClose);
                }
            }
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(SelectorError::UnbalancedOpen);
    }
    parts.push(&s[start..]);
    Ok(parts)
}

fn parse_set(rest: &str) -> Result<Vec<String>, SelectorError> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| SelectorError::ExpectedSet(rest.to_string()))?;
    let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
    for v in &values {
        if !valid_value(v) {
            return Err(SelectorError::InvalidValue(v.clone()));
        }
    }
    Ok(values)
}

/// Finds ` in ` / ` notin ` after a key (a word boundary on both sides).
fn split_set_op(req: &str) -> Option<(&str, bool, &str)> {
    for (op, negated) in [("notin", true), ("in", false)] {
        let mut search = 0;
        while let Some(pos) = req[search..].find(op) {
            let at = search + pos;
            let before = &req[..at];
            let after = &req[at + op.len()..];
            let bounded_before = before.ends_with(char::is_whitespace);
            let bounded_after = after.starts_with(|c: char| c.is_whitespace() || c == '(');
            if bounded_before && bounded_after && !before.trim().is_empty() {
                return Some((before.trim(), negated, after));
            }
            search = at + op.len();
        }
    }
    None
}

impl LabelSelector {
    /// Parses a `labelSelector` query value.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(Self::default());
        }
        let mut reqs = Vec::new();
        for raw in split_top(s)? {
            let req = raw.trim();
            if req.is_empty() {
                return Err(SelectorError::EmptyRequirement(s.to_string()));
            }
            let parsed = if let Some((key, negated, rest)) = split_set_op(req) {
                let values = parse_set(rest)?;
                if negated {
                    LabelRequirement::NotIn(key.into(), values)
                } else {
                    LabelRequirement::In(key.into(), values)
                }
            } else if let Some((k, v)) = req.split_once("!=") {
                LabelRequirement::NotIn(k.trim().into(), vec![v.trim().into()])
            } else if let Some((k, v)) = req.split_once("==") {
                LabelRequirement::In(k.trim().into(), vec![v.trim().into()])
            } else if let Some((k, v)) = req.split_once('=') {
                LabelRequirement::In(k.trim().into(), vec![v.trim().into()])
            } else if let Some((k, v)) = req.split_once('>') {
                let n = v
                    .trim()
                    .parse()
                    .map_err(|_| SelectorError::NotAnInteger(v.to_string()))?;
                LabelRequirement::Gt(k.trim().into(), n)
            } else if let Some((k, v)) = req.split_once('<') {
                let n = v
                    .trim()
                    .parse()
                    .map_err(|_| SelectorError::NotAnInteger(v.to_string()))?;
                LabelRequirement::Lt(k.trim().into(), n)
            } else if let Some(k) = req.strip_prefix('!') {
                LabelRequirement::DoesNotExist(k.trim().into())
            } else {
                LabelRequirement::Exists(req.into())
            };
            let (key, values): (&str, &[String]) = match &parsed {
                LabelRequirement::In(k, v) | LabelRequirement::NotIn(k, v) => (k, v),
                LabelRequirement::Exists(k)
                | LabelRequirement::DoesNotExist(k)
                | LabelRequirement::Gt(k, _)
                | LabelRequirement::Lt(k, _) => (k, &[]),
            };
            if !valid_key(key) {
                return Err(SelectorError::InvalidKey(key.to_string()));
            }
            if let Some(v) = values.iter().find(|v| !valid_value(v)) {
                return Err(SelectorError::InvalidValue(v.clone()));
            }
            reqs.push(parsed);
        }
        Ok(Self(reqs))
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k));
        self.0.iter().all(|r| match r {
            LabelRequirement::In(k, vs) => get(k).is_some_and(|v| vs.contains(v)),
            LabelRequirement::NotIn(k, vs) => get(k).is_none_or(|v| !vs.contains(v)),
            LabelRequirement::Exists(k) => get(k).is_some(),
            LabelRequirement::DoesNotExist(k) => get(k).is_none(),
            LabelRequirement::Gt(k, n) => get(k)
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v > *n),
            LabelRequirement::Lt(k, n) => get(k)
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v < *n),
        })
    }

    /// Whether the selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The field labels a Host supports.
pub const FIELD_LABELS: [&str; 7] = [
    "metadata.name",
    "metadata.namespace",
    "hostId",
    "hostname",
    "environment",
    "status.ready",
    "status.version",
];

/// One field requirement: `field=value` (or `!=`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRequirement {
    /// The field label.
    pub field: String,
    /// The value.
    pub value: String,
    /// `!=`.
    pub negated: bool,
}

/// A parsed field selector (empty: everything matches).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector(pub Vec<FieldRequirement>);

/// The value of a field label on a host.
pub fn field_value(host: &Host, field: &str) -> String {
    let status = host.status.as_ref();
    match field {
        "metadata.name" => host.metadata.name.clone().unwrap_or_default(),
        "metadata.namespace" => String::new(),
        "hostId" => host.host_id.clone(),
        "hostname" => host.hostname.clone().unwrap_or_default(),
        "environment" => host.environment.clone().unwrap_or_default(),
        "status.ready" => host.ready_status().unwrap_or_default().to_string(),
        "status.version" => status.and_then(|s| s.version.clone()).unwrap_or_default(),
        _ => String::new(),
    }
}

impl FieldSelector {
    /// Parses a `fieldSelector` query value for hosts; an unknown field label is an error (400).
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        Self::parse_for(s, &FIELD_LABELS)
    }

    /// Parses a `fieldSelector` query value for a resource whose field labels are `labels`.
    pub fn parse_for(s: &str, labels: &[&str]) -> Result<Self, SelectorError> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(Self::default());
        }
        let mut reqs = Vec::new();
        for raw in s.split(',') {
            let raw = raw.trim();
            let (field, value, negated) = if let Some((f, v)) = raw.split_once("!=") {
                (f, v, true)
            } else if let Some((f, v)) = raw.split_once("==") {
                (f, v, false)
            } else if let Some((f, v)) = raw.split_once('=') {
                (f, v, false)
            } else {
                return Err(SelectorError::Unparsable(raw.to_string()));
            };
            let field = field.trim();
            if !labels.contains(&field) {
                return Err(SelectorError::UnsupportedField {
                    field: field.to_string(),
                    supported: labels.join(", "),
                });
            }
            reqs.push(FieldRequirement {
                field: field.into(),
                value: value.trim().into(),
                negated,
            });
        }
        Ok(Self(reqs))
    }

    /// Whether `host` satisfies every requirement.
    pub fn matches(&self, host: &Host) -> bool {
        self.matches_with(|field| field_value(host, field))
    }

    /// Whether an object whose field labels have the values `value` gives satisfies every
    /// requirement.
    pub fn matches_with(&self, value: impl Fn(&str) -> String) -> bool {
        self.0
            .iter()
            .all(|r| (value(&r.field) == r.value) != r.negated)
    }

    /// The name a `metadata.name=X` requirement pins, if any.
    pub fn exact_name(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|r| r.field == "metadata.name" && !r.negated)
            .map(|r| r.value.as_str())
    }
}

/// Both selectors of a request.
#[derive(Clone, Debug, Default)]
pub struct Selectors {
    /// `labelSelector`.
    pub labels: LabelSelector,
    /// `fieldSelector`.
    pub fields: FieldSelector,
}

impl Selectors {
    /// Whether `host` is selected.
    pub fn matches(&self, host: &Host) -> bool {
        self.labels.matches(host.metadata.labels.as_ref()) && self.fields.matches(host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn sel(s: &str) -> LabelSelector {
        LabelSelector::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn label_operators() {
        let l = labels(&[("hostgroup", "edge"), ("zone", "a"), ("gen", "3")]);
        let l = Some(&l);
        for (s, want) in [
            ("", true),
            ("hostgroup=edge", true),
            ("hostgroup==edge", true),
            ("hostgroup=default", false),
            ("hostgroup!=default", true),
            ("hostgroup!=edge", false),
            ("missing!=x", true),
            ("hostgroup in (edge, default)", true),
            ("hostgroup in (default)", false),
            ("hostgroup notin (default,gpu)", true),
            ("hostgroup notin (edge)", false),
            ("missing notin (edge)", true),
            ("zone", true),
            ("missing", false),
            ("!missing", true),
            ("!zone", false),
            ("hostgroup=edge,zone=a", true),
            ("hostgroup=edge,zone=b", false),
            ("hostgroup in (edge,x),!missing,zone", true),
            ("gen>2", true),
            ("gen<2", false),
            ("example.com/tier in (gold)", false),
        ] {
            assert_eq!(sel(s).matches(l), want, "{s}");
        }
        assert!(!sel("zone").matches(None));
        assert!(sel("!zone").matches(None));
    }

    #[test]
    fn label_errors() {
        for bad in [
            "hostgroup in (a",
            "a)",
            "hostgroup in a",
            "-bad=x",
            "k=bad value",
            "k=,",
            "gen>x",
        ] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn fields() {
        let mut h = Host::default();
        h.metadata.name = Some("h1".into());
        h.host_id = "id-1".into();
        let f = FieldSelector::parse("metadata.name=h1").unwrap();
        assert!(f.matches(&h));
        assert_eq!(f.exact_name(), Some("h1"));
        assert!(!FieldSelector::parse("metadata.name!=h1")
            .unwrap()
            .matches(&h));
        assert!(FieldSelector::parse("metadata.namespace=,hostId==id-1")
            .unwrap()
            .matches(&h));
        let err = FieldSelector::parse("spec.nodeName=x").unwrap_err();
        assert!(
            err.to_string()
                .contains("field label not supported: spec.nodeName"),
            "{err}"
        );
        assert!(matches!(err, SelectorError::UnsupportedField { .. }));
        assert!(FieldSelector::parse("garbage").is_err());
    }
}
