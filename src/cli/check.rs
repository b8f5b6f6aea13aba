//! `rulewatch check`: the config and every rule file, every problem listed
//! with its source line, a caret and the fix; and a warning for each metric
//! a rule reads that the store has never seen (when the store exists).

use std::path::Path;

use crate::config::Config;
use crate::diag::Diagnostic;
use crate::readings::store::Store;
use crate::rules::engine::new_engine;
use crate::rules::{load_rules, mistakes, source, Rule};

use super::Exit;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(config_path: &Path, _args: Args) -> Exit {
    let config = match Config::load(config_path) {
        Ok(c) => c,
        Err(problems) => {
            for p in &problems {
                print!("{}", p.render());
            }
            return Exit::Problems;
        }
    };
    let engine = new_engine(&config.limits);
    let (rules, mut problems) = load_rules(&engine, &config);
    problems.extend(unseen_metrics(&config, &rules));
    problems.extend(unnamed_groups(&config, &rules));
    for p in &problems {
        print!("{}", p.render());
    }
    let errors = problems.iter().filter(|p| p.is_error).count();
    if errors > 0 {
        eprintln!(
            "{errors} 处错误，在 {} 个规则文件中；{} 条规则可用（{errors} error(s)）",
            problems
                .iter()
                .filter(|p| p.is_error)
                .map(|p| &p.path)
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            rules.len()
        );
        return Exit::Problems;
    }
    eprintln!(
        "ok: 配置 {} 和 `{}` 里的 {} 条规则都没有错误 / {} and {} rule(s) in `{}`",
        config.path.display(),
        config.rules_dir.display(),
        rules.len(),
        config.path.display(),
        rules.len(),
        config.rules_dir.display()
    );
    Exit::Ok
}

/// A warning for each metric a rule reads (by name, as a string literal)
/// that the store has never stored, with the nearest stored name. Nothing
/// when there is no store yet, or it is empty: then every name is unseen.
/// A warning per recipient group that rules notify but that officials
/// would see only by its key (`hr`): no `group_names` entry, no named
/// address. Pointed at the group in the config.
fn unnamed_groups(config: &Config, rules: &[Rule]) -> Vec<Diagnostic> {
    let text = std::fs::read_to_string(&config.path).unwrap_or_default();
    let mut groups: Vec<&str> = rules
        .iter()
        .flat_map(|r| r.meta.notify.iter().map(String::as_str))
        .filter(|g| config.unnamed_group(g))
        .collect();
    groups.sort_unstable();
    groups.dedup();
    groups
        .into_iter()
        .map(|group| {
            let quoted = format!("\"{group}\"");
            let (line, col) = text
                .lines()
                .enumerate()
                .find_map(|(i, l)| {
                    let code = l.split("//").next().unwrap_or("");
                    code.find(&quoted)
                        .map(|b| (i + 1, code[..b].chars().count() + 1))
                })
                .unwrap_or((0, 0));
            Diagnostic::warning(
                &config.path,
                line,
                col,
                format!(
                    "收件组 `{group}` 没有显示名：页面、汇总和邮件里只能显示为“{}” / recipient group `{group}` has no display name",
                    config.group_name(group)
                ),
            )
            .with_width(quoted.chars().count())
            .with_hint(format!(
                "在 group_names 里加上 \"{group}\": \"人社局\"（写该组的单位简称）"
            ))
        })
        .collect()
}

fn unseen_metrics(config: &Config, rules: &[Rule]) -> Vec<Diagnostic> {
    if !config.store_path.is_file() {
        return Vec::new();
    }
    let Ok(store) = Store::open(&config.store_path) else {
        return Vec::new();
    };
    let stored = store.metrics();
    if stored.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for rule in rules {
        let tokens = source::scan(&rule.source);
        for (metric, line, col, width) in mistakes::metric_names(&tokens) {
            if stored.binary_search(&metric).is_ok() {
                continue;
            }
            let d = Diagnostic::warning(
                &rule.path,
                line,
                col,
                format!("数据库里还没有指标 `{metric}` 的数据"),
            )
            .with_width(width);
            out.push(
                match mistakes::nearest(&metric, stored.iter().map(String::as_str)) {
                    Some(n) => {
                        d.with_hint(format!("是否想用 \"{n}\"？若此指标尚未上报，可忽略本提醒"))
                    }
                    None => {
                        d.with_hint("检查指标名是否与上报数据一致；若此指标尚未上报，可忽略本提醒")
                    }
                },
            );
        }
    }
    out
}
