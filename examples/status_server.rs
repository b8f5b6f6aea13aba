//! Serves the status page over a replayed store, without the daemon: for
//! the browser test (`scripts/browser-test.sh`) and for looking at the page.
//!
//! ```sh
//! cargo run --example status_server -- rulewatch.ron 2021-12-16T12:00 \
//!     --listen 127.0.0.1:8080 --ingest fixtures/2021/*.csv
//! ```
//!
//! Ingests the given files into the config's store, evaluates every rule at
//! each of its scheduled instants from 2021-01-01 up to AT (recording alerts,
//! history and queued mail, as the daemon would), then serves `GET /` and
//! `GET /rules/{id}` and prints `listening on http://ADDR` once ready.

use std::path::PathBuf;
use std::sync::Arc;

use rulewatch::config::Config;
use rulewatch::readings::store::Store;
use rulewatch::readings::stream::ingest;
use rulewatch::readings::Format;
use rulewatch::ruletest::snapshot::Snapshot;
use rulewatch::time::parse_time;

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: status_server CONFIG AT [--from DATE] [--listen ADDR] [--ingest FILE…]";
    let config_path = PathBuf::from(args.next().ok_or(usage)?);
    let at = args.next().ok_or(usage)?;
    let mut listen = "127.0.0.1:0".to_string();
    let mut from = "2021-01-01".to_string();
    let mut files = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => listen = args.next().ok_or(usage)?,
            "--from" => from = args.next().ok_or(usage)?,
            "--ingest" => files.extend(args.by_ref()),
            other => return Err(format!("unknown argument `{other}`; {usage}")),
        }
    }
    let config = Config::load(&config_path).map_err(|p| {
        p.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    let tz = config.timezone;
    let at = parse_time(&at, tz)?;
    let from = parse_time(&from, tz)?;
    if !files.is_empty() {
        let store = Store::open(&config.store_path).map_err(|e| e.to_string())?;
        for f in &files {
            let file = std::fs::File::open(f).map_err(|e| format!("{f}: {e}"))?;
            let format = Format::from_path(f.as_ref()).unwrap_or(Format::Csv);
            ingest(&store, file, format, tz, |_| {}).map_err(|e| format!("{f}: {e}"))?;
        }
    }
    let mut snapshot = Snapshot::open(config, at)?;
    let n = snapshot.replay(from, at)?;
    eprintln!("replayed {n} evaluations of {} rules", snapshot.rules.len());
    let router = rulewatch::web::router(Arc::new(snapshot));
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        println!("listening on http://{addr}");
        axum::serve(listener, router)
            .await
            .map_err(|e| e.to_string())
    })
}
