//! `rulewatch ingest` of workbooks through the real binary into a real SQLite
//! store: LibreOffice-written .xlsx, .ods and .xls (tests/fixtures/excel/
//! libreoffice/, made by scripts/excel-fixtures.sh) in both shapes, bad cells
//! named by cell with nothing stored, and the documented example
//! (fixtures/excel/人社.xlsx) evaluated by a shipped rule.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rulewatch::readings::store::Store;
use rulewatch::readings::Labels;
use rulewatch::time::{parse_time, Millis};

const BIN: &str = env!("CARGO_BIN_EXE_rulewatch");
const FORMATS: [&str; 3] = ["xlsx", "ods", "xls"];

fn excel_fixtures() -> PathBuf {
    common::repo().join("tests/fixtures/excel")
}

/// A temp folder with a config (store `data/rulewatch.db`) and `rules/`
/// (copied from the repository's when `shipped_rules`).
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new(shipped_rules: bool) -> Site {
        let dir = tempfile::tempdir().unwrap();
        if shipped_rules {
            std::fs::copy(
                common::repo().join("rulewatch.ron"),
                dir.path().join("rulewatch.ron"),
            )
            .unwrap();
            common::copy_shipped_rules(dir.path());
        } else {
            std::fs::create_dir(dir.path().join("rules")).unwrap();
            std::fs::write(
                dir.path().join("rulewatch.ron"),
                r#"(
    timezone: "Asia/Shanghai",
    rules: "rules",
    store: "data/rulewatch.db",
    mail: (from: "rulewatch <alerts@example.cn>", transport: File(dir: "outbox")),
    recipients: { "ops": ["ops@example.cn"] },
)"#,
            )
            .unwrap();
        }
        Site { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn copy(&self, from: &Path, name: &str) {
        std::fs::copy(from, self.path(name)).unwrap();
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .current_dir(self.dir.path())
            .args(args)
            .output()
            .unwrap()
    }

    fn stored(&self) -> usize {
        let db = self.path("data/rulewatch.db");
        if !db.exists() {
            return 0;
        }
        Store::open(&db).unwrap().count_readings().unwrap() as usize
    }

    /// (labels as `k=v,…`, time, value) of every reading of `metric`.
    fn series(&self, metric: &str) -> Vec<(String, Millis, f64)> {
        let store = Store::open(&self.path("data/rulewatch.db")).unwrap();
        let mut out = store
            .with_series(metric, &Labels::new(), Millis::MIN, |all| {
                let mut out = Vec::new();
                for s in all {
                    let labels: Vec<String> = s
                        .key
                        .labels
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                    let (times, values) = s.range(Millis::MIN, Millis::MAX);
                    for (t, v) in times.iter().zip(values) {
                        out.push((labels.join(","), *t, *v));
                    }
                }
                out
            })
            .unwrap();
        out.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        out
    }
}

fn t(s: &str) -> Millis {
    parse_time(s, chrono_tz::Asia::Shanghai).unwrap()
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

#[test]
fn wide_workbooks_written_by_libreoffice_in_three_formats() {
    for ext in FORMATS {
        let site = Site::new(false);
        let book = format!("wide.{ext}");
        site.copy(&excel_fixtures().join("libreoffice").join(&book), &book);
        // The mapping beside the workbook: `wide.ron` (BOOK.ron).
        site.copy(&excel_fixtures().join("wide.ron"), "wide.ron");
        let o = site.run(&["ingest", &book]);
        assert!(
            o.status.success(),
            "{book}: {}{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        assert!(
            text(&o.stdout).contains(&format!("{book}: 已存入 14 条读数：新增 14 条")),
            "{book}: {}",
            text(&o.stdout)
        );
        // February's rate is a percent-formatted cell (0.044 shown as 4.4%):
        // .xlsx and .ods say so; .xls keeps no format calamine exposes, so it
        // is read as stored (documented in docs/excel.md).
        let feb = if ext == "xls" { 0.044 } else { 4.4 };
        let nangong = "county=南宫".to_string();
        let weixian = "county=威县".to_string();
        assert_eq!(
            site.series("unemployment_rate"),
            vec![
                (nangong.clone(), t("2021-01-31"), 4.3),
                (nangong.clone(), t("2021-02-28"), feb),
                (nangong.clone(), t("2021-03-31"), 4.7),
                (nangong.clone(), t("2021-04-30"), 4.6),
                (nangong.clone(), t("2021-05-31"), 4.3),
                (nangong.clone(), t("2021-06-30"), 4.4),
                (nangong.clone(), t("2021-09-30"), 4.5),
                (weixian.clone(), t("2021-05-31"), 3.9),
                (weixian.clone(), t("2021-06-30"), 4.0),
                (weixian, t("2021-09-30"), 4.1),
            ],
            "{book}"
        );
        // Merged county cells filled down; full-width text, a formula's saved
        // result, a thousands separator; the 合计 row skipped.
        assert_eq!(
            site.series("new_urban_jobs"),
            vec![
                (nangong.clone(), t("2021-01-31"), 320.0),
                (nangong.clone(), t("2021-02-28"), 650.0),
                (nangong.clone(), t("2021-03-31"), 980.0),
                (nangong, t("2021-04-30"), 1250.0),
            ],
            "{book}"
        );
    }
}

#[test]
fn long_workbooks_written_by_libreoffice_in_three_formats() {
    for ext in FORMATS {
        let site = Site::new(false);
        let book = format!("long.{ext}");
        site.copy(&excel_fixtures().join("libreoffice").join(&book), &book);
        let o = site.run(&["ingest", &book]);
        assert!(o.status.success(), "{book}: {}", text(&o.stderr));
        let nangong = "county=南宫".to_string();
        assert_eq!(
            site.series("unemployment_rate"),
            vec![
                (nangong.clone(), t("2021-05-31"), 4.4),
                (nangong, t("2021-06-30"), 4.3)
            ],
            "{book}"
        );
        assert_eq!(
            site.series("new_urban_jobs"),
            vec![(String::new(), t("2021-06-30"), 1950.0)],
            "{book}"
        );
    }
}

#[test]
fn bad_cells_are_named_and_nothing_of_the_file_is_stored() {
    for ext in FORMATS {
        let site = Site::new(false);
        // Readings already stored stay as they are.
        std::fs::write(
            site.path("before.csv"),
            "metric,time,value\nunemployment_rate,2021-05-31,4.4\n",
        )
        .unwrap();
        assert!(site.run(&["ingest", "before.csv"]).status.success());
        assert_eq!(site.stored(), 1);

        let book = format!("bad.{ext}");
        site.copy(&excel_fixtures().join("libreoffice").join(&book), &book);
        let o = site.run(&["ingest", &book]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{book}: {err}");
        for (cell, words) in [
            ("C3", "“4.5亿”不是数字"),
            ("B4", "“2021年13月”不是可识别的时期"),
            ("C5", "#DIV/0!"),
            ("A6", "指标名“失业率”不合规"),
        ] {
            let place = format!("{book}:Sheet1!{cell}: 错误：");
            assert!(
                err.lines()
                    .any(|l| l.starts_with(&place) && l.contains(words)),
                "{book}: no `{place}…{words}` in:\n{err}"
            );
        }
        assert!(err.contains("  提示："), "{book}: {err}");
        assert!(
            err.contains("未导入：发现 4 处错误，此文件的数据均未存入"),
            "{book}: {err}"
        );
        // Row 2 was good, and is not stored either.
        assert_eq!(site.stored(), 1, "{book}");
        assert_eq!(
            site.series("unemployment_rate"),
            vec![(String::new(), t("2021-05-31"), 4.4)]
        );
    }
}

#[test]
fn formulas_never_computed_are_refused_by_cell() {
    // The rust_xlsxwriter source of wide.xlsx: its formulas hold placeholders.
    let site = Site::new(false);
    site.copy(&excel_fixtures().join("wide.xlsx"), "wide.xlsx");
    site.copy(&excel_fixtures().join("wide.ron"), "m.ron");
    let o = site.run(&["ingest", "--mapping", "m.ron", "wide.xlsx"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "wide.xlsx:月报!D5: 错误：这一格是公式（=D3+660），文件由不计算公式的程序生成"
        ),
        "{err}"
    );
    assert_eq!(site.stored(), 0);
}

#[test]
fn the_documented_example_feeds_the_shipped_rules() {
    let site = Site::new(true);
    std::fs::create_dir(site.path("excel")).unwrap();
    for f in ["人社.xlsx", "人社.xlsx.ron"] {
        site.copy(
            &common::repo().join("fixtures/excel").join(f),
            &format!("excel/{f}"),
        );
    }
    let o = site.run(&["ingest", "excel/人社.xlsx"]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    // 13 months × 4 indicators, May's jobs missing; 5 quarters of 医保.
    assert!(
        out.contains("excel/人社.xlsx: 已存入 56 条读数：新增 56 条，与已存的相同 0 条 / stored 56 readings: 56 new, 0 unchanged (5 new series) from 2 sheet(s), mapping excel/人社.xlsx.ron"),
        "{out}"
    );
    // The same breach as from fixtures/2021/socioeconomic.csv: March 4.7% > 4.5%.
    let o = site.run(&[
        "eval",
        "--rule",
        "unemployment-rate",
        "--at",
        "2021-04-16T09:00",
        "--format",
        "json",
    ]);
    let json = text(&o.stdout);
    assert!(o.status.success(), "{json}{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let findings = v.as_array().unwrap();
    assert_eq!(findings.len(), 1, "{json}");
    assert!(json.contains("4.7"), "{json}");
}
