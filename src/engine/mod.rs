//! The evaluation engine: one object in, both webhooks' verdicts out.
//!
//! The validating and mutating webhooks, the reconciler and `wasmgate check` all judge through
//! [`Engine`]: it learns the component worlds ([`crate::components`]), applies the defaults and
//! resolves against the current inventory with the pure resolver of `wasmgate-core`. The
//! validating verdict is computed on the *defaulted* spec, so an object is judged as the mutating
//! webhook leaves it, whichever order the apiserver runs them in.

mod memo;
mod object;
#[cfg(test)]
pub(crate) mod testing;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::components::{PullRef, WorldResolver};
use crate::inventory::{InventorySource, Snapshot};
use crate::policy::Policy;
use crate::resolve::{
    apply_defaults_checked, resolve, Defaulted, Report, ResolveInput, WorldState, SERVICE_KEY,
};

pub use memo::{Judgment, JudgmentCase, ReviewMemo, DEFAULT_MEMO_ENTRIES, MEMO_ENTRY_BYTES};
pub use object::{AdmittedObject, ObjectError};

/// Which webhook is being served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `POST /validate`.
    Validate,
    /// `POST /mutate`.
    Mutate,
}

/// What every front end judges with: where worlds come from, the hosts, the policy.
pub struct Engine {
    /// Where component worlds come from.
    pub worlds: Arc<WorldResolver>,
    /// The host inventory.
    pub inventory: Arc<dyn InventorySource>,
    /// Resolution policy.
    pub policy: Arc<Policy>,
    /// Judgments of objects reviewed before, reused while their inputs are the same.
    memo: ReviewMemo,
}

/// The outcome of one review, before it is written as an AdmissionReview.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// Whether the request is admitted.
    pub allowed: bool,
    /// The denial message.
    pub message: Option<String>,
    /// Warnings for kubectl.
    pub warnings: Vec<String>,
    /// The JSONPatch (mutate only), empty when nothing changes.
    pub patch: Vec<json_patch::PatchOperation>,
    /// The resolver's report, when the object was resolved (shared with the review memo).
    pub report: Option<Arc<Report>>,
}

impl Verdict {
    /// What each webhook answers for an object that does not decode as its kind.
    pub fn undecodable(mode: Mode, message: String) -> Self {
        match mode {
            // The validating webhook denies; the mutating one has nothing to default.
            Mode::Mutate => Self::allow(),
            Mode::Validate => Self {
                allowed: false,
                message: Some(message),
                ..Self::allow()
            },
        }
    }

    /// An admitted request with nothing to say.
    pub fn allow() -> Self {
        Self {
            allowed: true,
            message: None,
            warnings: Vec::new(),
            patch: Vec::new(),
            report: None,
        }
    }
}

/// Prefixes a path in a JSON patch.
fn prefix_patch(
    patch: json_patch::Patch,
    prefix: &json_patch::jsonptr::Pointer,
) -> Vec<json_patch::PatchOperation> {
    patch
        .0
        .into_iter()
        .map(|mut op| {
            use json_patch::PatchOperation as P;
            let path = match &mut op {
                P::Add(o) => &mut o.path,
                P::Remove(o) => &mut o.path,
                P::Replace(o) => &mut o.path,
                P::Move(o) => &mut o.path,
                P::Copy(o) => &mut o.path,
                P::Test(o) => &mut o.path,
            };
            *path = prefix.concat(path);
            op
        })
        .collect()
}

impl Engine {
    /// An engine whose review memo has [`DEFAULT_MEMO_ENTRIES`] entries.
    pub fn new(
        worlds: Arc<WorldResolver>,
        inventory: Arc<dyn InventorySource>,
        policy: Arc<Policy>,
    ) -> Self {
        Self::with_memo(worlds, inventory, policy, DEFAULT_MEMO_ENTRIES)
    }

    /// An engine whose review memo has `entries` entries, a judgment taking one per
    /// [`MEMO_ENTRY_BYTES`] of its spec, least recently used out first (0: no memo,
    /// every review is judged from scratch).
    pub fn with_memo(
        worlds: Arc<WorldResolver>,
        inventory: Arc<dyn InventorySource>,
        policy: Arc<Policy>,
        entries: u64,
    ) -> Self {
        Self {
            worlds,
            inventory,
            policy,
            memo: ReviewMemo::new(entries),
        }
    }

    /// Reviews a decoded object: the core both webhooks and `wasmgate check` share (see
    /// [`Engine::evaluate`]).
    ///
    /// `stored`: the object is stored when admitted (not a dry run), so an admitted validation
    /// remembers its annotation worlds.
    pub async fn review_object(
        &self,
        mode: Mode,
        namespace: &str,
        obj: &AdmittedObject,
        stored: bool,
    ) -> Verdict {
        let (prepared, judgment) = self.judge(namespace, obj).await;
        match mode {
            Mode::Mutate => match &judgment {
                Some(j) => j.mutation(|| prepared.mutation(obj)),
                None => prepared.mutation(obj),
            },
            Mode::Validate => {
                let verdict = self.validation(namespace, obj, &prepared, judgment.as_deref());
                if verdict.allowed && stored {
                    self.remember(namespace, &prepared);
                }
                verdict
            }
        }
    }

    /// What both webhooks answer for one object of kind `kind` in `group`, decoded from `raw`
    /// (`None` for kinds wasmgate does not handle): the verdict of `POST /mutate` and of
    /// `POST /validate` (on the defaulted object), computed by the same functions the webhook
    /// runs, from one lookup of the component worlds. `wasmgate check` reports exactly this.
    pub async fn evaluate(
        &self,
        group: &str,
        kind: &str,
        namespace: &str,
        raw: Value,
    ) -> Option<Evaluation> {
        let obj = match AdmittedObject::from_request(group, kind, raw) {
            Ok(Some(o)) => o,
            Ok(None) => return None,
            Err(e) => {
                return Some(Evaluation {
                    mutate: Verdict::undecodable(Mode::Mutate, e.to_string()),
                    validate: Verdict::undecodable(Mode::Validate, e.to_string()),
                    notes: Vec::new(),
                    worlds: BTreeMap::new(),
                })
            }
        };
        let (prepared, judgment) = self.judge(namespace, &obj).await;
        Some(Evaluation {
            mutate: match &judgment {
                Some(j) => j.mutation(|| prepared.mutation(&obj)),
                None => prepared.mutation(&obj),
            },
            validate: self.validation(namespace, &obj, &prepared, judgment.as_deref()),
            notes: prepared.defaulted.notes.clone(),
            worlds: prepared.worlds,
        })
    }

    /// Learns the component worlds and applies the defaults (shared by both webhooks and the
    /// reconciler, which keeps the result and re-resolves it as the inventory changes).
    ///
    /// It reuses a judgment the review memo holds but adds none: the reconciler prepares every
    /// stored object when it starts, and remembering them would push out the judgments the
    /// webhooks ask for again.
    pub async fn prepare(&self, namespace: &str, obj: &AdmittedObject) -> Prepared {
        self.judge_with(namespace, obj, false).await.0
    }

    /// [`Engine::prepare`], and the memo's judgment it came from (`None` when the memo is
    /// off), which also keeps both webhooks' verdicts.
    async fn judge(
        &self,
        namespace: &str,
        obj: &AdmittedObject,
    ) -> (Prepared, Option<Arc<Judgment>>) {
        self.judge_with(namespace, obj, true).await
    }

    /// [`Engine::judge`]; a judgment not in the memo is remembered only when `remember`.
    async fn judge_with(
        &self,
        namespace: &str,
        obj: &AdmittedObject,
        remember: bool,
    ) -> (Prepared, Option<Arc<Judgment>>) {
        let spec = obj.spec();
        let mut components: Vec<PullRef<'_>> = spec
            .components
            .iter()
            .flatten()
            .map(|c| PullRef {
                name: &c.name,
                image: &c.image,
                pull_secret: secret_name(&c.image_pull_secret),
            })
            .collect();
        if let Some(s) = &spec.service {
            components.push(PullRef {
                name: SERVICE_KEY,
                image: &s.image,
                pull_secret: secret_name(&s.image_pull_secret),
            });
        }
        let annotations: BTreeMap<String, String> = obj.wit_annotations();
        // For a replica set or deployment this lookup is also the prefetch: the Workloads it
        // stamps out name the same images and pull secrets, and find them cached by image (for
        // the tag TTL) and by digest (memory and --cache-dir).
        let found = self
            .worlds
            .lookup(namespace, &components, &annotations)
            .await;
        let worlds = found.states;
        let snapshot = self.inventory.snapshot();
        let deployment = obj.deployment_context();
        let judge = |candidate: &crate::crd::WorkloadSpec| {
            resolve(&ResolveInput {
                namespace,
                spec: candidate,
                worlds: &worlds,
                hosts: &snapshot.hosts,
                policy: &self.policy,
                deployment: deployment.as_ref(),
            })
        };
        let defaults = || {
            let mut defaulted = apply_defaults_checked(spec, &worlds, &self.policy, judge);
            if self.policy.pin_digests {
                pin_images(&mut defaulted, &found.pinned);
            }
            defaulted
        };
        let case = JudgmentCase {
            namespace,
            obj,
            worlds: &worlds,
            pinned: &found.pinned,
            snapshot: &snapshot,
        };
        let judgment = if remember {
            self.memo.judgment(&case, defaults)
        } else {
            self.memo.lookup(&case)
        };
        let defaulted = match &judgment {
            Some(j) => j.defaulted.clone(),
            None => Arc::new(defaults()),
        };
        let prepared = Prepared {
            worlds,
            defaulted,
            learned: found.learned,
        };
        (prepared, judgment)
    }

    /// Remembers the annotation worlds of an object that is admitted and stored (a validated,
    /// allowed, non-dry-run review; or an object the reconciler sees stored), for the Workloads
    /// a replica set stamps out without the template's annotations.
    pub fn remember(&self, namespace: &str, prepared: &Prepared) {
        self.worlds.remember(namespace, &prepared.learned);
    }

    /// Resolves a prepared object (its defaulted spec) against `hosts`: pure, no I/O.
    pub fn resolve_prepared(
        &self,
        namespace: &str,
        obj: &AdmittedObject,
        prepared: &Prepared,
        hosts: &crate::resolve::Hosts,
    ) -> Report {
        let deployment = obj.deployment_context();
        resolve(&ResolveInput {
            namespace,
            spec: &prepared.defaulted.spec,
            worlds: &prepared.worlds,
            hosts,
            policy: &self.policy,
            deployment: deployment.as_ref(),
        })
    }

    /// The validating webhook's verdict: the *defaulted* spec, resolved; the judgment's, when
    /// it was made against the current inventory.
    fn validation(
        &self,
        namespace: &str,
        obj: &AdmittedObject,
        prepared: &Prepared,
        judgment: Option<&Judgment>,
    ) -> Verdict {
        let snapshot = self.inventory.snapshot();
        match judgment.filter(|j| j.judged_against(&snapshot)) {
            Some(j) => j.validation(|| self.validation_on(namespace, obj, prepared, &snapshot)),
            None => self.validation_on(namespace, obj, prepared, &snapshot),
        }
    }

    fn validation_on(
        &self,
        namespace: &str,
        obj: &AdmittedObject,
        prepared: &Prepared,
        snapshot: &Snapshot,
    ) -> Verdict {
        let report = self.resolve_prepared(namespace, obj, prepared, &snapshot.hosts);
        let message = (!report.allowed()).then(|| report.denial_message());
        Verdict {
            allowed: report.allowed(),
            message,
            warnings: report
                .warnings
                .iter()
                .map(|w| format!("wasmgate: {}", w.message))
                .collect(),
            patch: Vec::new(),
            report: Some(Arc::new(report)),
        }
    }
}

/// Component worlds and the defaulted spec of one object.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// Worlds by component name.
    pub worlds: BTreeMap<String, WorldState>,
    /// The spec with the mutating webhook's defaults applied (shared with the review memo).
    pub defaulted: Arc<Defaulted>,
    /// (image, world) learned from the object's annotations, to remember once it is admitted
    /// and stored ([`Engine::remember`]).
    pub learned: Vec<(String, std::sync::Arc<crate::wit::ComponentWorld>)>,
}

impl Prepared {
    /// The mutating webhook's verdict: the defaults as a JSONPatch, one warning per default.
    ///
    /// A spec that cannot be serialized (not expected: the types hold only strings, numbers and
    /// string-keyed maps) denies rather than admitting the object without the defaults that
    /// validation judged it with.
    fn mutation(&self, obj: &AdmittedObject) -> Verdict {
        let (before, after) = match (
            serde_json::to_value(obj.spec()),
            serde_json::to_value(&self.defaulted.spec),
        ) {
            (Ok(before), Ok(after)) => (before, after),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "cannot serialize a spec to compute the defaults");
                return Verdict {
                    allowed: false,
                    message: Some(format!("wasmgate cannot compute the defaults: {e}")),
                    ..Verdict::allow()
                };
            }
        };
        let patch = prefix_patch(json_patch::diff(&before, &after), obj.spec_pointer());
        Verdict {
            warnings: self
                .defaulted
                .notes
                .iter()
                .map(|n| format!("wasmgate: {n}"))
                .collect(),
            patch,
            ..Verdict::allow()
        }
    }
}

/// Both webhooks' answers for one object ([`Engine::evaluate`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// What `POST /mutate` answers (always allowed; the patch and one warning per default).
    pub mutate: Verdict,
    /// What `POST /validate` answers (judged on the defaulted object).
    pub validate: Verdict,
    /// The defaults applied, one line each, without the `wasmgate: ` prefix of the warnings.
    pub notes: Vec<String>,
    /// The component worlds it was judged with, by component name (empty when the object did
    /// not decode).
    pub worlds: BTreeMap<String, WorldState>,
}

/// The name of an `imagePullSecret`, if set.
fn secret_name(s: &Option<crate::crd::LocalObjectReference>) -> Option<&str> {
    s.as_ref()
        .map(|r| r.name.as_str())
        .filter(|n| !n.is_empty())
}

/// Rewrites images to the digests their worlds were read from (`--pin-digests`), one note each.
fn pin_images(defaulted: &mut Defaulted, pinned: &BTreeMap<String, String>) {
    let spec = &mut defaulted.spec;
    let mut images: Vec<(&str, &mut String)> = spec
        .components
        .iter_mut()
        .flatten()
        .map(|c| (c.name.as_str(), &mut c.image))
        .collect();
    if let Some(s) = spec.service.as_mut() {
        images.push((SERVICE_KEY, &mut s.image));
    }
    for (who, image) in images {
        if let Some(p) = pinned.get(who).filter(|p| p.as_str() != image.as_str()) {
            defaulted.notes.push(format!(
                "component {who:?}: image {image} pinned to {p}, the digest wasmgate validated"
            ));
            *image = p.clone();
        }
    }
}
