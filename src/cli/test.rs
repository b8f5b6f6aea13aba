//! `rulewatch test [PATH...]`: run rule tests (`*.test.ron`).

use std::path::{Path, PathBuf};

use crate::ruletest::diff;
use crate::ruletest::runner::{Outcome, Runner};

use super::{load_config, Exit};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Test files, or folders searched for `*.test.ron` (default: the configured rules folder)
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

/// Every `*.test.ron` under `dir`, sorted.
pub fn test_files(dir: &Path) -> Vec<PathBuf> {
    crate::rules::loader::files_ending_in(dir, ".test.ron")
}

pub fn run(config_path: &Path, args: Args) -> Exit {
    let config = match load_config(config_path) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let mut files = Vec::new();
    let mut failed = 0usize;
    if args.paths.is_empty() {
        files = test_files(&config.rules_dir);
    }
    for p in &args.paths {
        if p.is_dir() {
            files.extend(test_files(p));
        } else if p.is_file() {
            files.push(p.clone());
        } else {
            println!(
                "{}: error: 没有这个测试文件或文件夹，请检查路径 / no such test file or folder",
                p.display()
            );
            failed += 1;
        }
    }
    if files.is_empty() && failed == 0 {
        let (zh, en) = if args.paths.is_empty() {
            let dir = format!("`{}`", config.rules_dir.display());
            (dir.clone(), dir)
        } else {
            ("所给的路径".to_string(), "the paths given".to_string())
        };
        eprintln!(
            "在{zh}里没有找到测试文件（`*.test.ron`） / no test files (`*.test.ron`) found in {en}"
        );
    }

    let tz = config.timezone;
    let mut runner = Runner::new(&config);
    let mut passed = 0usize;
    let mut report = String::new();
    for path in &files {
        let result = runner.run_file(path);
        match &result.outcome {
            Err(problems) => {
                for p in problems {
                    print!("{}", p.render());
                }
                println!("test {} ... FAILED", path.display());
                failed += 1;
            }
            Ok(cases) => {
                let default_rule = result.rules.first().cloned().unwrap_or_default();
                for case in cases {
                    let name = diff::test_name(path, &case.name);
                    if case.outcome == Outcome::Passed {
                        println!("test {name} ... ok");
                        passed += 1;
                    } else {
                        println!("test {name} ... FAILED");
                        failed += 1;
                        diff::failure(&mut report, path, case, &default_rule, tz);
                    }
                }
            }
        }
    }
    if !report.is_empty() {
        println!("\n未通过的测试 / failures:\n");
        print!("{report}");
    }
    println!("通过 {passed} 个，未通过 {failed} 个 / {passed} passed, {failed} failed");
    if failed > 0 {
        Exit::Problems
    } else {
        Exit::Ok
    }
}
