//! Reviews of an object already judged against the same worlds and hosts reuse the judgment.
//!
//! The defaults and the resolution are pure functions of the namespace, the object's spec (and
//! its kind and deployment fields), the component worlds, the inventory snapshot and the
//! policy. The apiserver sends the same spec many times: the mutating and then the validating
//! webhook for one apply, a WorkloadDeployment's template again in its WorkloadReplicaSet and
//! in every Workload that stamps out, and every GitOps re-sync. A [`ReviewMemo`] keeps the
//! defaulted spec and both webhooks' verdicts for the last inputs it saw, and gives them back
//! only when every input is the same: the spec compared in full, each world the same shared
//! object, and the inventory the same snapshot (held weakly, so a remembered judgment never
//! keeps an old inventory in memory, and a new snapshot never matches an old one's address).
//! The policy is fixed for the engine that owns the memo.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock, Weak};

use crate::crd::WorkloadSpec;
use crate::inventory::Snapshot;
use crate::resolve::{Defaulted, DeploymentContext, WorldState};

use super::{AdmittedObject, Verdict};

/// How many judged objects are remembered by default.
pub const DEFAULT_MEMO_ENTRIES: u64 = 512;

/// A remembered judgment takes one entry per this many bytes of its spec (as JSON), so the memo
/// holds at most `entries` x 64 KiB of specs however large the objects reviewed (an object of
/// 1.5 MB, etcd's limit, takes 24 entries): a client cannot fill memory with large objects.
pub const MEMO_ENTRY_BYTES: usize = 64 * 1024;

/// Everything a judgment depends on besides the policy.
#[derive(Debug)]
struct Inputs {
    namespace: String,
    /// The object's kind (the patch's paths depend on it).
    kind: &'static str,
    spec: WorkloadSpec,
    deployment: Option<DeploymentContext>,
    worlds: BTreeMap<String, WorldState>,
    /// Digests the images were validated at (they change the defaulted spec when pinning).
    pinned: BTreeMap<String, String>,
    snapshot: Weak<Snapshot>,
}

/// One remembered judgment: the defaulted spec, and each webhook's verdict once computed.
#[derive(Debug)]
pub struct Judgment {
    inputs: Inputs,
    /// The memo entries it takes ([`MEMO_ENTRY_BYTES`]).
    entries: u32,
    /// The spec with the defaults applied.
    pub defaulted: Arc<Defaulted>,
    mutation: OnceLock<Verdict>,
    validation: OnceLock<Verdict>,
}

impl Judgment {
    /// Whether this judgment was made against `snapshot`.
    pub fn judged_against(&self, snapshot: &Arc<Snapshot>) -> bool {
        std::ptr::eq(self.inputs.snapshot.as_ptr(), Arc::as_ptr(snapshot))
    }

    /// Whether this judgment answers `case`: every input compared in full (the memo's key is
    /// only a hash of some of them).
    fn answers(&self, case: &JudgmentCase<'_>) -> bool {
        let i = &self.inputs;
        self.judged_against(case.snapshot)
            && i.kind == case.obj.kind()
            && i.namespace == case.namespace
            && i.spec == *case.obj.spec()
            && i.deployment == case.obj.deployment_context()
            && i.worlds == *case.worlds
            && i.pinned == *case.pinned
    }

    /// The mutating webhook's verdict, computed by `make` the first time.
    pub fn mutation(&self, make: impl FnOnce() -> Verdict) -> Verdict {
        self.mutation.get_or_init(make).clone()
    }

    /// The validating webhook's verdict, computed by `make` the first time.
    pub fn validation(&self, make: impl FnOnce() -> Verdict) -> Verdict {
        self.validation.get_or_init(make).clone()
    }
}

/// What one judgment is of: an object in a namespace, its components' worlds (and pinned
/// digests) and the inventory snapshot it is resolved against.
#[derive(Clone, Copy)]
pub struct JudgmentCase<'a> {
    /// The namespace the object is reviewed in.
    pub namespace: &'a str,
    /// The object.
    pub obj: &'a AdmittedObject,
    /// Its components' worlds.
    pub worlds: &'a BTreeMap<String, WorldState>,
    /// Its images' pinned digests.
    pub pinned: &'a BTreeMap<String, String>,
    /// The inventory snapshot.
    pub snapshot: &'a Arc<Snapshot>,
}

impl JudgmentCase<'_> {
    fn key(&self) -> u64 {
        key(
            self.namespace,
            self.obj.kind(),
            self.obj.spec(),
            self.snapshot,
        )
    }
}

/// The remembered judgments, keyed by a hash of the inputs that tell objects apart quickly
/// (a collision is only a miss: a hit compares every input).
pub struct ReviewMemo {
    entries: Option<moka::sync::Cache<u64, Arc<Judgment>>>,
}

impl std::fmt::Debug for ReviewMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReviewMemo")
            .field("entries", &self.entries.as_ref().map(|c| c.entry_count()))
            .finish()
    }
}

impl ReviewMemo {
    /// A memo of at most `capacity` entries (a judgment takes one per [`MEMO_ENTRY_BYTES`] of
    /// its spec); 0 remembers nothing.
    pub fn new(capacity: u64) -> Self {
        Self {
            entries: (capacity > 0).then(|| {
                moka::sync::Cache::builder()
                    .max_capacity(capacity)
                    .weigher(|_, j: &Arc<Judgment>| j.entries)
                    .eviction_policy(moka::policy::EvictionPolicy::lru())
                    .build()
            }),
        }
    }

    /// The remembered judgment of `case`, if any; nothing is remembered. For callers that
    /// would churn the memo with judgments no webhook asks for again (the reconciler preparing
    /// every stored object at its start).
    pub fn lookup(&self, case: &JudgmentCase<'_>) -> Option<Arc<Judgment>> {
        let cache = self.entries.as_ref()?;
        cache.get(&case.key()).filter(|found| found.answers(case))
    }

    /// The judgment of `case`: remembered, or made by `defaults` now (and remembered); `None`
    /// when the memo is off.
    pub fn judgment(
        &self,
        case: &JudgmentCase<'_>,
        defaults: impl FnOnce() -> Defaulted,
    ) -> Option<Arc<Judgment>> {
        let cache = self.entries.as_ref()?;
        let key = case.key();
        if let Some(found) = cache.get(&key).filter(|found| found.answers(case)) {
            return Some(found);
        }
        let JudgmentCase {
            namespace,
            obj,
            worlds,
            pinned,
            snapshot,
        } = *case;
        let spec = obj.spec();
        let judgment = Arc::new(Judgment {
            entries: entries_for(spec),
            inputs: Inputs {
                namespace: namespace.to_string(),
                kind: obj.kind(),
                spec: spec.clone(),
                deployment: obj.deployment_context(),
                worlds: worlds.clone(),
                pinned: pinned.clone(),
                snapshot: Arc::downgrade(snapshot),
            },
            defaulted: Arc::new(defaults()),
            mutation: OnceLock::new(),
            validation: OnceLock::new(),
        });
        cache.insert(key, judgment.clone());
        Some(judgment)
    }
}

/// The memo entries a judgment of `spec` takes: its size as JSON, counted without building it,
/// in [`MEMO_ENTRY_BYTES`] (at least one).
fn entries_for(spec: &WorkloadSpec) -> u32 {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // A spec that cannot be serialized (not expected: strings, numbers, string-keyed maps)
    // counts as one entry; it is compared in full on a hit all the same.
    let _ = serde_json::to_writer(&mut count, spec);
    u32::try_from(count.0 / MEMO_ENTRY_BYTES + 1).unwrap_or(u32::MAX)
}

fn key(namespace: &str, kind: &str, spec: &WorkloadSpec, snapshot: &Arc<Snapshot>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    namespace.hash(&mut h);
    kind.hash(&mut h);
    for c in spec.components.iter().flatten() {
        c.name.hash(&mut h);
        c.image.hash(&mut h);
    }
    if let Some(s) = &spec.service {
        s.image.hash(&mut h);
    }
    Arc::as_ptr(snapshot).hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use crate::components::WorldResolver;
    use crate::crd::{Host, Workload, WorkloadComponent, WorkloadSpec};
    use crate::engine::{AdmittedObject, Engine, Mode, Verdict};
    use crate::inventory::SharedInventory;
    use crate::policy::Policy;

    fn host(name: &str, postgres: &str) -> Host {
        crate::engine::testing::postgres_host(name, true, postgres)
    }

    /// A Workload whose one component imports `import`, its world in an annotation.
    fn orders(import: &str) -> AdmittedObject {
        let spec = crate::engine::testing::orders_spec();
        let mut w = Workload::new("orders", spec);
        w.metadata.annotations = Some(BTreeMap::from([(
            "wit.wasmgate.dev/api".to_string(),
            format!("package acme:orders@1.0.0;\n\nworld orders {{\n  import {import};\n}}\n"),
        )]));
        AdmittedObject::Workload(Box::new(w))
    }

    fn engine(entries: u64, postgres: &str) -> (Engine, Arc<SharedInventory>) {
        let inventory = Arc::new(SharedInventory::new(vec![host("h1", postgres)]));
        let engine = Engine::with_memo(
            Arc::new(WorldResolver::new(vec![])),
            inventory.clone(),
            Arc::new(Policy::default()),
            entries,
        );
        (engine, inventory)
    }

    async fn validate(engine: &Engine, obj: &AdmittedObject) -> Verdict {
        engine
            .review_object(Mode::Validate, "default", obj, false)
            .await
    }

    fn same_report(a: &Verdict, b: &Verdict) -> bool {
        match (&a.report, &b.report) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    #[tokio::test]
    async fn the_same_object_again_reuses_the_judgment() {
        let (engine, _) = engine(16, "0.2.0");
        let obj = orders("wasmcloud:postgres/query@0.2.0");
        let first = validate(&engine, &obj).await;
        let again = validate(&engine, &obj).await;
        assert!(first.allowed, "{first:?}");
        assert_eq!(first, again);
        assert!(
            same_report(&first, &again),
            "the second review was judged again"
        );
        let patch = engine
            .review_object(Mode::Mutate, "default", &obj, false)
            .await;
        let patch_again = engine
            .review_object(Mode::Mutate, "default", &obj, false)
            .await;
        assert_eq!(patch, patch_again);
        assert!(!patch.patch.is_empty(), "imagePullPolicy is defaulted");
    }

    #[tokio::test]
    async fn a_new_inventory_is_judged_again() {
        let (engine, inventory) = engine(16, "0.2.0");
        let obj = orders("wasmcloud:postgres/query@0.2.0");
        let before = validate(&engine, &obj).await;
        assert!(before.allowed, "{before:?}");
        // The only host now offers a version the import does not link to.
        inventory.replace(vec![host("h1", "0.1.0")]);
        let after = validate(&engine, &obj).await;
        assert!(
            !after.allowed,
            "judged against the old inventory: {after:?}"
        );
    }

    #[tokio::test]
    async fn another_world_for_the_same_spec_is_judged_again() {
        let (engine, _) = engine(16, "0.2.0");
        let linked = validate(&engine, &orders("wasmcloud:postgres/query@0.2.0")).await;
        assert!(linked.allowed, "{linked:?}");
        // Same spec, same namespace: only the annotation's world differs.
        let unlinked = validate(&engine, &orders("wasmcloud:postgres/query@0.1.0")).await;
        assert!(!unlinked.allowed, "judged with the old world: {unlinked:?}");
        assert!(!same_report(&linked, &unlinked));
    }

    #[tokio::test]
    async fn another_namespace_is_judged_again() {
        let (engine, _) = engine(16, "0.2.0");
        let obj = orders("wasmcloud:postgres/query@0.2.0");
        let a = validate(&engine, &obj).await;
        let b = engine
            .review_object(Mode::Validate, "other", &obj, false)
            .await;
        assert_eq!(a.allowed, b.allowed);
        assert!(!same_report(&a, &b));
    }

    #[tokio::test]
    async fn preparing_reuses_a_judgment_but_remembers_none() {
        let (engine, _) = engine(16, "0.2.0");
        let obj = orders("wasmcloud:postgres/query@0.2.0");
        // The reconciler prepares an object no webhook has judged: nothing is remembered, so a
        // review after it judges afresh, and preparing again defaults afresh.
        let prepared = engine.prepare("default", &obj).await;
        let prepared_again = engine.prepare("default", &obj).await;
        assert!(!Arc::ptr_eq(&prepared.defaulted, &prepared_again.defaulted));
        let reviewed = validate(&engine, &obj).await;
        assert!(reviewed.allowed, "{reviewed:?}");
        assert!(engine.memo.entries.as_ref().is_some_and(|c| {
            c.run_pending_tasks();
            c.entry_count() == 1
        }));
        // Once a webhook's review is remembered, preparing the same object reuses it.
        let (_, judgment) = engine.judge("default", &obj).await;
        let judgment = judgment.expect("the memo is on");
        let prepared_after = engine.prepare("default", &obj).await;
        assert!(Arc::ptr_eq(&judgment.defaulted, &prepared_after.defaulted));
        assert_eq!(prepared_after.defaulted.spec, prepared.defaulted.spec);
    }

    #[test]
    fn a_large_spec_takes_an_entry_per_64_kib() {
        let small = WorkloadSpec::default();
        assert_eq!(super::entries_for(&small), 1);
        let large = WorkloadSpec {
            components: Some(
                (0..1000)
                    .map(|i| WorkloadComponent {
                        name: format!("c{i}"),
                        image: format!("registry.test/{}:1", "x".repeat(200)),
                        ..WorkloadComponent::default()
                    })
                    .collect(),
            ),
            ..WorkloadSpec::default()
        };
        let bytes = serde_json::to_vec(&large).unwrap().len();
        assert!(bytes > 3 * super::MEMO_ENTRY_BYTES, "{bytes}");
        assert_eq!(
            super::entries_for(&large) as usize,
            bytes / super::MEMO_ENTRY_BYTES + 1
        );
    }

    #[tokio::test]
    async fn without_a_memo_every_review_is_judged() {
        let (engine, _) = engine(0, "0.2.0");
        let obj = orders("wasmcloud:postgres/query@0.2.0");
        let first = validate(&engine, &obj).await;
        let again = validate(&engine, &obj).await;
        assert_eq!(first, again);
        assert!(!same_report(&first, &again));
    }
}
