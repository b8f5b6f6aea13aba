//! `rulewatch ingest` of a workbook (.xlsx/.xls/.ods): read whole, every
//! problem printed with its file, sheet and cell, stored in one transaction
//! only when there is none.

use std::path::Path;
use std::time::Instant;

use crate::readings::excel;
use crate::readings::store::Store;

use super::Exit;

pub fn ingest_one(
    store: &Store,
    file: &Path,
    mapping: Option<&Path>,
    tz: chrono_tz::Tz,
) -> Result<(), Exit> {
    let started = Instant::now();
    let name = file.display().to_string();
    match excel::read_path(file, mapping, tz) {
        Ok((readings, mapping_used)) => {
            let batch = excel::to_batch(&readings);
            let summary = store.write(&batch).map_err(|e| {
                eprintln!("{name}: error: {e}");
                Exit::Trouble
            })?;
            let mut sheets: Vec<&str> = readings.iter().map(|r| r.sheet.as_str()).collect();
            sheets.dedup();
            sheets.sort_unstable();
            sheets.dedup();
            let via = match mapping_used {
                Some(m) => format!(", mapping {}", m.display()),
                None => String::new(),
            };
            let (zh, en) = super::shared::write_counts(&summary);
            println!(
                "{name}: {zh} / {en} ({} new series) from {} sheet(s){via} in {:.2} s",
                summary.new_series,
                sheets.len(),
                started.elapsed().as_secs_f64(),
            );
            Ok(())
        }
        Err(e) => {
            eprintln!("{e}");
            eprintln!(
                "{name}: 未导入：发现 {} 处错误，此文件的数据均未存入 (rejected: {} problem(s), nothing from this file stored)",
                e.total, e.total
            );
            Err(Exit::Problems)
        }
    }
}
