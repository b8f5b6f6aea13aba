//! `rulewatch ingest`: store readings from files (or stdin).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use crate::readings::store::Store;
use crate::readings::stream::{ingest, sniff_format, IngestError};
use crate::readings::Format;

use super::{load_config, Exit};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files to read (.csv, .json, .ndjson/.jsonl, .xlsx/.xls/.ods); `-` reads stdin
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Mapping file for wide workbooks (default: `BOOK.xlsx.ron` or `BOOK.ron` beside each; see docs/excel.md)
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<PathBuf>,
    /// Format, when the file name does not tell (stdin is sniffed otherwise)
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    Json,
    Ndjson,
    Csv,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Json => Format::Json,
            FormatArg::Ndjson => Format::Ndjson,
            FormatArg::Csv => Format::Csv,
        }
    }
}

/// Inputs smaller than this finish before a progress bar would be read.
const PROGRESS_MIN_BYTES: u64 = 16 * 1024 * 1024;

pub fn run(config_path: &Path, args: Args) -> Exit {
    let config = match load_config(config_path) {
        Ok(c) => c,
        Err(e) => return e,
    };
    crate::db::set_size_limit(&config.store_path, config.retention.max_store_bytes);
    let store = match Store::open(&config.store_path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Trouble;
        }
    };
    let mut exit = Exit::Ok;
    for file in &args.files {
        let result = if crate::readings::excel::is_workbook(file) {
            super::ingest_workbook::ingest_one(
                &store,
                file,
                args.mapping.as_deref(),
                config.timezone,
            )
        } else {
            ingest_one(&store, file, args.format.map(Format::from), config.timezone)
        };
        match result {
            Ok(()) => {}
            Err(e) => exit = e,
        }
    }
    exit
}

fn ingest_one(
    store: &Store,
    file: &Path,
    format: Option<Format>,
    tz: chrono_tz::Tz,
) -> Result<(), Exit> {
    let started = Instant::now();
    let name = file.display().to_string();
    let result = if file == Path::new("-") {
        let mut stdin = std::io::stdin().lock();
        let mut head = Vec::new();
        let format = match format {
            Some(f) => f,
            None => {
                use std::io::Read;
                (&mut stdin)
                    .take(4096)
                    .read_to_end(&mut head)
                    .map_err(|e| {
                        eprintln!("error: stdin: {e}");
                        Exit::Trouble
                    })?;
                sniff_format(&head)
            }
        };
        use std::io::Read;
        ingest(
            store,
            std::io::Cursor::new(head).chain(stdin),
            format,
            tz,
            |_| {},
        )
    } else {
        let Some(format) = format.or_else(|| Format::from_path(file)) else {
            eprintln!("{name}: error: 无法判断文件类型：请把文件名后缀改为 .csv、.json、.ndjson、.xlsx、.xls 或 .ods，或加 --format csv|json|ndjson / unknown file type: name it .csv, .json, .ndjson, .xlsx, .xls or .ods, or pass --format");
            return Err(Exit::Problems);
        };
        let f = std::fs::File::open(file).map_err(|e| {
            eprintln!("{name}: error: 无法打开文件，请检查路径和读取权限 / cannot open: {e}");
            Exit::Problems
        })?;
        let size = f.metadata().map(|m| m.len()).unwrap_or(0);
        let bar = (size >= PROGRESS_MIN_BYTES && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(size);
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_message(name.clone());
            bar
        });
        let r = ingest(
            store,
            std::io::BufReader::with_capacity(1 << 20, f),
            format,
            tz,
            |n| {
                if let Some(b) = &bar {
                    b.set_position(n);
                }
            },
        );
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        r
    };
    match result {
        Ok(summary) => {
            let secs = started.elapsed().as_secs_f64();
            let (zh, en) = super::shared::write_counts(&summary);
            println!(
                "{name}: {zh} / {en} ({} new series) in {:.2} s ({:.0} readings/s)",
                summary.new_series,
                secs,
                summary.readings as f64 / secs.max(1e-9)
            );
            Ok(())
        }
        Err(IngestError::Rejected(e)) => {
            for item in &e.errors {
                let d = crate::diag::Diagnostic::error(
                    file,
                    item.line,
                    item.col,
                    match item.item {
                        Some(i) => format!("第{}项：{}", i + 1, item.message),
                        None => item.message.clone(),
                    },
                );
                eprintln!("{d}");
            }
            if e.total > e.errors.len() {
                let more = e.total - e.errors.len();
                eprintln!("{name}: 另有 {more} 处错误未列出 / … and {more} more error(s)");
            }
            eprintln!(
                "{name}: 未导入：发现 {n} 条有错的读数，此文件的数据均未存入，请改正后重新导入整个文件 / rejected: {n} bad reading(s), nothing from this file stored",
                n = e.total
            );
            Err(Exit::Problems)
        }
        Err(IngestError::Store(e)) if e.is_disk_full() => {
            eprintln!(
                "{name}: 存储空间已满，本文件的读数一条也未保存：请清理存储库所在磁盘，或缩短 retention 保留期限（或调高 max_store_bytes），之后重新导入 / \
                 error: store full, nothing from this file stored: free disk space, or shorten `retention` (or raise `max_store_bytes`), then ingest again ({e})"
            );
            Err(Exit::Trouble)
        }
        Err(e) => {
            eprintln!("{name}: error: {e}");
            Err(Exit::Trouble)
        }
    }
}
