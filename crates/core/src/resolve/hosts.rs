//! The inventory as the resolver reads it: the hosts plus what every resolution would otherwise
//! recompute from them (issue 17).
//!
//! Hosts that report the same release and the same advertised worlds bind plugins alike
//! (`plugins::profiles`), so the resolver judges one representative per *profile* and counts the
//! rest. [`Hosts`] computes each host's profile once, when the inventory changes, and remembers
//! the eligible set of each targeting (hostId, hostSelector, environment) it has been asked for,
//! so a review costs what its workload needs, not what the cluster holds.

use std::collections::{BTreeMap, HashMap};
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use crate::crd::{Host, HostWitInterface};

/// Distinct targetings remembered per inventory; the memo is emptied when it is full (each
/// entry is a few vectors of host indices, so this bounds it to about a megabyte per 1,000
/// eligible hosts at worst).
const REMEMBERED_TARGETINGS: usize = 256;

/// An inventory snapshot indexed for resolution. Dereferences to the hosts, in their order.
///
/// The hosts are shared (`Arc`) with whoever built the snapshot (the live inventory's store), so a
/// snapshot costs a pointer and a profile index per host, not a copy of each.
pub struct Hosts {
    list: Vec<Arc<Host>>,
    /// Per host, the index of its profile.
    profile_of: Vec<u32>,
    /// Eligible sets by targeting, filled on first use.
    eligible: Mutex<HashMap<TargetKey, Arc<Eligible>>>,
}

/// What selects the eligible hosts (see `eligibility::targeting`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TargetKey {
    /// `spec.hostId`, when set (then the selector is not used).
    pub host_id: Option<String>,
    /// `spec.hostSelector`.
    pub selector: BTreeMap<String, String>,
    /// The environment the hosts must be in, if any.
    pub environment: Option<String>,
}

impl TargetKey {
    /// Whether `host` is eligible under this targeting: Ready, then hostId or hostSelector,
    /// then the environment.
    pub(crate) fn admits(&self, h: &Host) -> bool {
        if h.ready_status() != Some("True") {
            return false;
        }
        match &self.host_id {
            // hostId bypasses selection and the environment rule (upstream skips the readiness
            // check too; a pinned host that is not Ready still cannot run it, so we keep it).
            Some(id) => h.host_id == *id,
            None => {
                let labels = h.metadata.labels.as_ref();
                self.selector
                    .iter()
                    .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
                    && self
                        .environment
                        .as_ref()
                        .is_none_or(|env| h.environment.as_deref() == Some(env.as_str()))
            }
        }
    }
}

/// The hosts one targeting selects, grouped by profile.
#[derive(Debug, Default)]
pub(crate) struct Eligible {
    /// The first eligible host of each profile (an index into the inventory).
    pub representatives: Vec<u32>,
    /// How many eligible hosts each profile has.
    pub counts: Vec<usize>,
    /// Per profile, its eligible hosts (indices into the inventory) in the order of their
    /// names, so a message can name the first few that can run a workload without sorting
    /// every eligible host.
    pub members: Vec<Vec<u32>>,
}

impl Eligible {
    /// How many hosts are eligible.
    pub fn total(&self) -> usize {
        self.counts.iter().sum()
    }
}

impl Hosts {
    /// Indexes `list` (kept in its order).
    pub fn new(list: Vec<Host>) -> Self {
        Self::shared(list.into_iter().map(Arc::new).collect())
    }

    /// Indexes `list` (kept in its order), sharing the hosts.
    pub fn shared(list: Vec<Arc<Host>>) -> Self {
        let mut index: HashMap<ProfileKey<'_>, u32> = HashMap::new();
        let mut profile_of = Vec::with_capacity(list.len());
        for h in &list {
            let next = u32::try_from(index.len()).unwrap_or(u32::MAX);
            profile_of.push(*index.entry(ProfileKey::of(h)).or_insert(next));
        }
        Self {
            list,
            profile_of,
            eligible: Mutex::new(HashMap::new()),
        }
    }

    /// The hosts, in their order.
    pub fn as_slice(&self) -> &[Arc<Host>] {
        &self.list
    }

    /// The hosts, in their order.
    pub fn iter(&self) -> HostIter<'_> {
        self.list.iter().map(|h| &**h)
    }

    /// The eligible hosts of `target`, computed once per inventory and targeting.
    pub(crate) fn eligible(&self, target: &TargetKey) -> Arc<Eligible> {
        // A poisoned memo only means another resolution panicked mid-insert: the map is still
        // a valid cache.
        let mut memo = self.eligible.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = memo.get(target) {
            return found.clone();
        }
        let computed = Arc::new(self.compute(target));
        if memo.len() >= REMEMBERED_TARGETINGS {
            memo.clear();
        }
        memo.insert(target.clone(), computed.clone());
        computed
    }

    fn compute(&self, target: &TargetKey) -> Eligible {
        let mut out = Eligible::default();
        let mut local: HashMap<u32, u32> = HashMap::new();
        for (i, h) in self.list.iter().enumerate() {
            if !target.admits(h) {
                continue;
            }
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            let global = self.profile_of[i as usize];
            let next = u32::try_from(out.representatives.len()).unwrap_or(u32::MAX);
            let p = *local.entry(global).or_insert(next);
            if p == next {
                out.representatives.push(i);
                out.counts.push(0);
                out.members.push(Vec::new());
            }
            out.counts[p as usize] += 1;
            out.members[p as usize].push(i);
        }
        for members in &mut out.members {
            members.sort_by(|&a, &b| {
                host_label(&self.list[a as usize]).cmp(host_label(&self.list[b as usize]))
            });
        }
        out
    }
}

/// How messages name a host: its name, else its id.
pub(crate) fn host_label(h: &Host) -> &str {
    h.metadata.name.as_deref().unwrap_or(&h.host_id)
}

/// The hosts of a [`Hosts`], in their order.
pub type HostIter<'a> = std::iter::Map<std::slice::Iter<'a, Arc<Host>>, fn(&Arc<Host>) -> &Host>;

impl<'a> IntoIterator for &'a Hosts {
    type Item = &'a Host;
    type IntoIter = HostIter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl Deref for Hosts {
    type Target = [Arc<Host>];

    fn deref(&self) -> &[Arc<Host>] {
        &self.list
    }
}

impl From<Vec<Host>> for Hosts {
    fn from(list: Vec<Host>) -> Self {
        Self::new(list)
    }
}

impl Default for Hosts {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl Clone for Hosts {
    fn clone(&self) -> Self {
        Self {
            list: self.list.clone(),
            profile_of: self.profile_of.clone(),
            eligible: Mutex::new(HashMap::new()),
        }
    }
}

impl PartialEq for Hosts {
    fn eq(&self, other: &Self) -> bool {
        self.list == other.list
    }
}

impl std::fmt::Debug for Hosts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.list).finish()
    }
}

/// What makes two hosts bind plugins alike: their release and advertised worlds.
#[derive(PartialEq, Eq, Hash)]
struct ProfileKey<'h> {
    version: Option<&'h str>,
    imports: &'h [HostWitInterface],
    exports: &'h [HostWitInterface],
}

impl<'h> ProfileKey<'h> {
    fn of(h: &'h Host) -> Self {
        let status = h.status.as_ref();
        Self {
            version: status.and_then(|s| s.version.as_deref()),
            imports: status
                .and_then(|s| s.imports.as_deref())
                .unwrap_or_default(),
            exports: status
                .and_then(|s| s.exports.as_deref())
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;
    use crate::crd::{Condition, HostStatus};

    fn host(name: &str, group: &str, version: &str) -> Host {
        Host {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(BTreeMap::from([("hostgroup".into(), group.into())])),
                ..Default::default()
            },
            host_id: format!("id-{name}"),
            status: Some(HostStatus {
                version: Some(version.into()),
                conditions: Some(
                    vec![Condition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        ..Default::default()
                    }]
                    .into(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn selecting(group: &str) -> TargetKey {
        TargetKey {
            host_id: None,
            selector: BTreeMap::from([("hostgroup".into(), group.into())]),
            environment: None,
        }
    }

    #[test]
    fn groups_eligible_hosts_by_profile_with_members_in_name_order() {
        // Out of name order on purpose: the members of a profile come out sorted by name.
        let hosts = Hosts::new(vec![
            host("h3", "data", "2.7.0"),
            host("h1", "data", "2.7.0"),
            host("h2", "data", "2.8.0"),
            host("h0", "edge", "2.7.0"),
        ]);
        let e = hosts.eligible(&selecting("data"));
        assert_eq!(e.total(), 3);
        assert_eq!(e.counts, vec![2, 1]);
        let names = |p: usize| -> Vec<&str> {
            e.members[p]
                .iter()
                .map(|&i| host_label(&hosts[i as usize]))
                .collect()
        };
        assert_eq!(names(0), vec!["h1", "h3"]);
        assert_eq!(names(1), vec!["h2"]);
        // The representative is an eligible host of its profile.
        assert_eq!(host_label(&hosts[e.representatives[1] as usize]), "h2");
    }

    #[test]
    fn remembers_each_targeting_and_forgets_on_a_new_inventory() {
        let hosts = Hosts::new(vec![
            host("h1", "data", "2.7.0"),
            host("h2", "edge", "2.7.0"),
        ]);
        let first = hosts.eligible(&selecting("data"));
        assert!(Arc::ptr_eq(&first, &hosts.eligible(&selecting("data"))));
        let other = hosts.eligible(&selecting("edge"));
        assert!(!Arc::ptr_eq(&first, &other));
        assert_eq!(other.total(), 1);
        // A clone is another inventory: nothing remembered.
        let copy = hosts.clone();
        assert!(!Arc::ptr_eq(&first, &copy.eligible(&selecting("data"))));
    }

    #[test]
    fn the_memo_stays_bounded() {
        let hosts = Hosts::new(vec![host("h1", "data", "2.7.0")]);
        for i in 0..(REMEMBERED_TARGETINGS * 2 + 1) {
            hosts.eligible(&selecting(&format!("g{i}")));
        }
        let memo = hosts.eligible.lock().unwrap_or_else(|e| e.into_inner());
        assert!(
            memo.len() <= REMEMBERED_TARGETINGS,
            "{} remembered",
            memo.len()
        );
    }
}
