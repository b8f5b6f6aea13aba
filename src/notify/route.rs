//! Stage 1 of the pipeline: who reads each notice.
//!
//! A notice goes to its rule's recipients (`notify`), or to `admin` for rule
//! errors and for rules without any. **Routing by subject**: a rule may
//! watch figures several bureaus report (the overdue-report rules list
//! 人社局's and 医保局's monthly figures). The config's `owners:` map says
//! which recipient group owns a metric (`new_urban_jobs: "hr"`), or one
//! subject (`"item:养老服务指导中心": "civil"`). A notice whose subject (or
//! `details.metric`) names an owned metric goes to that owner instead of the
//! rule's other bureau groups; groups of the rule that own no metric at all
//! (the 目标考核办 that follows everything) still get it.

use std::collections::{BTreeMap, BTreeSet};

use crate::alerts::state::{Audience, Notice};
use crate::config::Config;

/// The config's `owners:` map, resolved to addresses (and robot targets).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routing {
    /// `metric` or `label:value` → the owner group's addresses.
    owners: BTreeMap<String, Vec<String>>,
    /// The addresses of every group that owns something: these get a
    /// rule's notices about owned subjects only when they own them.
    owning: BTreeSet<String>,
}

impl Routing {
    pub fn from_config(config: &Config) -> Routing {
        let mut routing = Routing::default();
        for (key, group) in &config.owners {
            // The owner's mail addresses and chat robots alike.
            let addresses = config.group_targets(group);
            routing.owning.extend(addresses.iter().cloned());
            routing.owners.insert(key.clone(), addresses);
        }
        routing
    }

    /// The owner of what `n` is about: a `label:value` of its subject first,
    /// then its metric (subject label `metric`, else `details.metric`).
    fn owner(&self, n: &Notice) -> Option<&Vec<String>> {
        let by_label = n
            .subject
            .iter()
            .find_map(|(k, v)| self.owners.get(&format!("{k}:{v}")));
        let metric = n
            .subject
            .get("metric")
            .map(String::as_str)
            .or_else(|| n.details.get("metric").and_then(|m| m.as_str()));
        by_label.or_else(|| metric.and_then(|m| self.owners.get(m)))
    }

    /// Who reads `n` (before the `admin` fallback).
    pub fn readers(&self, n: &Notice) -> Vec<String> {
        let Some(owner) = self.owner(n) else {
            return n.recipients.clone();
        };
        let mut out: Vec<String> = owner.clone();
        out.extend(
            n.recipients
                .iter()
                .filter(|r| !self.owning.contains(*r))
                .cloned(),
        );
        out.sort();
        out.dedup();
        out
    }
}

/// Each notice to its readers. Keys are addresses; each reader gets each
/// notice once. A rule without recipients goes to `admin`, so nothing is lost.
pub fn route<'a>(
    notices: &'a [Notice],
    admin: &[String],
    routing: &Routing,
) -> BTreeMap<String, Vec<&'a Notice>> {
    let mut out: BTreeMap<String, Vec<&Notice>> = BTreeMap::new();
    for n in notices {
        let readers = match n.kind.audience() {
            Audience::Rule if !n.recipients.is_empty() => routing.readers(n),
            _ => admin.to_vec(),
        };
        for address in readers {
            let list = out.entry(address).or_default();
            // Notices are taken one at a time, so this one can only be the
            // last of the list (an address named twice). Searching the whole
            // list made a first cycle of 5,000 rules (479,400 notices to one
            // address) quadratic: over three minutes.
            if list.last().is_none_or(|m| !std::ptr::eq(*m, n)) {
                list.push(n);
            }
        }
    }
    out
}
