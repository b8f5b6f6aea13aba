//! The daemon's HTTP API, against the real binary on loopback.

use crate::daemon_support;

use daemon_support::{daemon, pm25_rule, Daemon, TOKEN};

fn with_pm25_rule() -> Daemon {
    // A schedule that never comes during a test: evaluations here are the API's.
    daemon()
        .rule("pm25.rhai", pm25_rule("pm25-high", "v1", "0 0 9 1 1 *"))
        .start()
}

const NDJSON_OK: &str = concat!(
    r#"{"metric":"pm25","value":48.2,"time":"2021-03-01T10:00:00+08:00","labels":{"county":"南宫"}}"#,
    "\n",
    r#"{"metric":"pm25","value":91.5,"time":"2021-03-02T10:00:00+08:00","labels":{"county":"南宫"}}"#,
    "\n",
);

#[test]
fn readings_in_each_format_are_stored() {
    let d = with_pm25_rule();
    // Nothing yet.
    assert_eq!(d.messages("pm25-high"), ["v1: no pm25"]);

    let r = d.post("/api/v1/readings", "application/x-ndjson", NDJSON_OK);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json(),
        serde_json::json!({ "accepted": 2, "new": 2, "unchanged": 0, "changed": 0 })
    );
    assert_eq!(d.messages("pm25-high"), ["v1: pm25 91.5"]);
    // The same batch again: nothing new.
    let r = d.post("/api/v1/readings", "application/x-ndjson", NDJSON_OK);
    assert_eq!(
        r.json(),
        serde_json::json!({ "accepted": 2, "new": 0, "unchanged": 2, "changed": 0 })
    );

    let json = r#"[{"metric":"pm25","value":99.0,"time":"2021-03-03T10:00:00+08:00","labels":{"county":"南宫"}}]"#;
    let r = d.post("/api/v1/readings", "application/json; charset=utf-8", json);
    assert_eq!(
        (r.status, r.json()["accepted"].as_u64()),
        (200, Some(1)),
        "{}",
        r.text
    );
    assert_eq!(d.messages("pm25-high"), ["v1: pm25 99.0"]);

    let csv = "metric,time,value,county\npm25,2021-03-04T10:00,12.5,南宫\npm25,2021-03-04T10:00,300,清河\n";
    let r = d.post("/api/v1/readings", "text/csv", csv);
    assert_eq!(
        (r.status, r.json()["accepted"].as_u64()),
        (200, Some(2)),
        "{}",
        r.text
    );
    assert!(d.messages("pm25-high").is_empty(), "12.5 is fine");

    // 2 + 2 (the same again) + 1 + 2.
    assert_eq!(d.metric("rulewatch_readings_ingested_total"), Some(7.0));
}

#[test]
fn a_bad_reading_rejects_the_batch_naming_its_line() {
    let d = with_pm25_rule();
    let body = format!(
        "{NDJSON_OK}{}\n{}\n",
        r#"{"metric":"pm25","value":"high","time":"2021-03-05T10:00:00+08:00","labels":{"county":"南宫"}}"#,
        r#"{"metric":"pm25","value":50,"time":"2021-03-06T10:00:00+08:00","labels":{"county":"南宫"}}"#,
    );
    let r = d.post("/api/v1/readings", "application/x-ndjson", body);
    assert_eq!(r.status, 400, "{}", r.text);
    let v = r.json();
    // The words an official reads: Chinese first, the fix named.
    assert_eq!(
        v["error"],
        "未存入：发现 1 条有错的读数，本批数据均未存入，请按 errors 改正后重新发送整批 / batch rejected: 1 bad reading(s), nothing stored",
        "{v}"
    );
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{v}");
    assert_eq!(errors[0]["line"], 3, "{v}");
    assert_eq!(
        errors[0]["message"],
        "数值 `high` 不是数，请填写数字（如 `48`、`4.5`） / value `high` is not a number",
        "{v}"
    );
    // Nothing of it stored: the good lines before and after are not there.
    assert_eq!(d.messages("pm25-high"), ["v1: no pm25"]);
    assert_eq!(d.metric("rulewatch_readings_ingested_total"), Some(0.0));
    assert_eq!(
        d.metric("rulewatch_ingest_batches_total{result=\"rejected\"}"),
        Some(1.0)
    );

    // CSV: the line number counts the header.
    let r = d.post(
        "/api/v1/readings",
        "text/csv",
        "metric,time,value,county\npm25,2021-03-04,1,南宫\npm25,not-a-time,2,南宫\n",
    );
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.json()["errors"][0]["line"], 3, "{}", r.text);

    // Two values for one series and time: both places named, nothing stored.
    let r = d.post(
        "/api/v1/readings",
        "text/csv",
        "metric,time,value,county\npm25,2021-03-05,1,南宫\npm25,2021-03-05,2,南宫\n",
    );
    assert_eq!(r.status, 400, "{}", r.text);
    let e = &r.json()["errors"][0];
    assert_eq!(
        (e["line"].as_u64(), e["item"].as_u64()),
        (Some(3), Some(2)),
        "{}",
        r.text
    );
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("repeats line 2 (item 1)"),
        "{}",
        r.text
    );
    // An empty body: one error.
    let r = d.post("/api/v1/readings", "application/json", "");
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.json()["total"], 1, "{}", r.text);
    assert!(r.text.contains("没有读数"), "{}", r.text);

    // JSON array: the item index.
    let r = d.post("/api/v1/readings", "application/json", r#"[{"metric":"pm25","value":1,"time":"2021-03-04"},{"metric":"pm-25","value":1,"time":"2021-03-04"}]"#);
    assert_eq!(r.status, 400, "{}", r.text);
    // Items count from 1, as lines do: the second element is item 2.
    assert_eq!(r.json()["errors"][0]["item"], 2, "{}", r.text);
    assert_eq!(d.messages("pm25-high"), ["v1: no pm25"]);
}

#[test]
fn writes_need_the_token() {
    let d = with_pm25_rule();
    for auth in [
        None,
        Some("Bearer wrong-token"),
        Some(&format!("Bearer {TOKEN}x")[..]),
        Some(&format!("Basic {TOKEN}")[..]),
    ] {
        let r = d.post_as(
            "/api/v1/readings",
            auth,
            Some("application/x-ndjson"),
            NDJSON_OK,
        );
        assert_eq!(r.status, 401, "{auth:?}: {}", r.text);
        assert!(r.json()["error"].is_string());
        assert!(r.headers.get("www-authenticate").is_some());
        assert_eq!(r.headers["connection"], "close");
        let r = d.post_as("/api/v1/evaluate", auth, None, "");
        assert_eq!(r.status, 401, "{auth:?}: {}", r.text);
    }
    assert_eq!(
        d.messages("pm25-high"),
        ["v1: no pm25"],
        "nothing stored by refused writes"
    );
    // The scheme is case-insensitive.
    let r = d.post_as(
        "/api/v1/readings",
        Some(&format!("bearer {TOKEN}")),
        Some("application/x-ndjson"),
        NDJSON_OK,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    // Reads are open.
    for path in [
        "/api/v1/rules",
        "/healthz",
        "/metrics",
        "/api/v1/alerts",
        "/api/v1/history",
    ] {
        assert_eq!(d.get(path).status, 200, "{path}");
    }
}

#[test]
fn without_a_token_configured_writes_are_open() {
    let d = daemon()
        .no_token()
        .rule("pm25.rhai", pm25_rule("pm25-high", "v1", "0 0 9 1 1 *"))
        .start();
    let r = d.post_as(
        "/api/v1/readings",
        None,
        Some("application/x-ndjson"),
        NDJSON_OK,
    );
    assert_eq!(r.status, 200, "{}", r.text);
}

#[test]
fn bodies_over_the_limit_are_refused() {
    let d = daemon()
        .max_body(1024)
        .rule("pm25.rhai", pm25_rule("pm25-high", "v1", "0 0 9 1 1 *"))
        .start();
    let line = r#"{"metric":"pm25","value":91.5,"time":"2021-03-02T10:00:00+08:00","labels":{"county":"南宫"}}"#;
    let big = format!("{line}\n").repeat(40); // ~3.9 KB
    let r = d.post("/api/v1/readings", "application/x-ndjson", big.clone());
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(
        r.json()["error"],
        "请求内容超过 1024 字节的上限，本批未存入：请分成几批发送，大文件请用 `rulewatch ingest` 导入 / request body over the limit of 1024 bytes: split the batch, or load large files with `rulewatch ingest`"
    );
    // Chunked, without Content-Length: cut off while reading.
    let r = d
        .http
        .post(d.url("/api/v1/readings"))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .header("Content-Type", "application/x-ndjson")
        .body(reqwest::blocking::Body::new(std::io::Cursor::new(
            big.into_bytes(),
        )))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    assert!(r.text().unwrap().contains("\"error\""));
    assert_eq!(d.messages("pm25-high"), ["v1: no pm25"]);
    // Under the limit: fine.
    let r = d.post(
        "/api/v1/readings",
        "application/x-ndjson",
        format!("{line}\n"),
    );
    assert_eq!(r.status, 200, "{}", r.text);
}

#[test]
fn unknown_content_types_are_refused() {
    let d = with_pm25_rule();
    let r = d.post("/api/v1/readings", "application/xml", "<pm25/>");
    assert_eq!(r.status, 415, "{}", r.text);
    assert_eq!(r.headers["connection"], "close");
    assert_eq!(
        r.json()["error"],
        "不支持的内容类型 `application/xml`：请在 Content-Type 里写 `application/json`、`application/x-ndjson` 或 `text/csv` / unsupported content type `application/xml`: send `application/json`, `application/x-ndjson` or `text/csv`"
    );
    let r = d.post_as(
        "/api/v1/readings",
        Some(&format!("Bearer {TOKEN}")),
        None,
        NDJSON_OK,
    );
    assert_eq!(r.status, 415, "{}", r.text);
}

#[test]
fn a_refusal_before_the_body_says_the_connection_closes() {
    // A client that sends the headers, waits for `100 Continue` or simply
    // has not sent the body yet, and gets its 401/415 first must be told the
    // connection is closing, or its next request on it fails.
    use std::io::{Read, Write};
    let d = with_pm25_rule();
    for (auth, content_type, status) in [
        ("", "application/x-ndjson", "401"),
        (
            &format!("Authorization: Bearer {TOKEN}\r\n")[..],
            "application/xml",
            "415",
        ),
    ] {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", d.port)).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        write!(
            s,
            "POST /api/v1/readings HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: {content_type}\r\nContent-Length: 100000\r\n\r\n"
        )
        .unwrap();
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer).to_lowercase();
        assert!(
            answer.starts_with(&format!("http/1.1 {status}")),
            "{answer}"
        );
        assert!(answer.contains("\r\nconnection: close\r\n"), "{answer}");
    }
}

#[test]
fn errors_are_json_everywhere() {
    let d = with_pm25_rule();
    let r = d.get("/nowhere");
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].as_str().unwrap().contains("/nowhere"));
    let r = d.get("/api/v1/readings");
    assert_eq!(r.status, 405);
    assert!(r.json()["error"].is_string());
    let r = d.post("/api/v1/evaluate?rule=no-such-rule", "application/json", "");
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].as_str().unwrap().contains("no-such-rule"));
    let r = d.post("/api/v1/evaluate?bogus=1", "application/json", "");
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].is_string());
    let r = d.get("/api/v1/history?since=yesterday");
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().contains("since"));
}

#[test]
fn rules_health_and_metrics() {
    let d = daemon()
        .rule("pm25.rhai", pm25_rule("pm25-high", "v1", "0 0 9 1 1 *"))
        .rule(
            "broken.rhai",
            "const RULE = #{ id: \"broken\", title: ".into(),
        )
        .start();
    let h = d.get("/healthz");
    assert_eq!(h.status, 200);
    assert_eq!(h.json()["status"], "ok");
    assert_eq!(h.json()["rules"], 1);

    let rules = d.get("/api/v1/rules").json();
    let list = rules["rules"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{rules}");
    let r = &list[0];
    assert_eq!(r["id"], "pm25-high");
    assert_eq!(r["title"], "PM2.5 ≤ 75 (v1)");
    assert_eq!(r["owner"], "生态环境局");
    assert_eq!(r["severity"], "warning");
    assert_eq!(r["schedule"], "0 0 9 1 1 *");
    assert!(r["file"].as_str().unwrap().ends_with("pm25.rhai"));
    assert_eq!(r["status"], "ok");
    assert!(r["last_evaluation"].is_null());
    assert!(r["error"].is_null());
    assert!(r["next_evaluation"]
        .as_str()
        .unwrap()
        .contains("-01-01T09:00:00+08:00"));
    // The file that does not load is listed, with its error and position.
    let b = &list[1];
    assert!(b["id"].is_null());
    assert_eq!(b["status"], "broken");
    assert!(b["file"].as_str().unwrap().ends_with("broken.rhai"));
    assert!(
        b["error"].as_str().unwrap().contains("broken.rhai:1:"),
        "{b}"
    );

    d.evaluate(None);
    let r = d.rule_status("pm25-high").unwrap();
    let last = &r["last_evaluation"];
    assert_eq!(last["trigger"], "api");
    assert_eq!(last["findings"], 1);
    assert!(last["duration_ms"].as_f64().unwrap() >= 0.0);
    assert!(last["error"].is_null());
    assert_eq!(d.get("/api/v1/rules/pm25-high").json()["id"], "pm25-high");
    assert_eq!(d.get("/api/v1/rules/nope").status, 404);

    let m = d.get("/metrics");
    assert_eq!(m.status, 200);
    assert!(m.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    for name in [
        "rulewatch_readings_ingested_total 0",
        "rulewatch_evaluations_total{rule=\"pm25-high\",result=\"ok\"} 1",
        "rulewatch_rule_errors_total{rule=\"pm25-high\"} 0",
        "rulewatch_evaluations_skipped_total{rule=\"pm25-high\"} 0",
        "rulewatch_evaluation_duration_seconds_count{rule=\"pm25-high\"} 1",
        "rulewatch_rules_loaded 1",
        "rulewatch_rule_files_broken 1",
        "rulewatch_alerts{state=\"no_data\"} 1",
        "rulewatch_alerts{state=\"firing\"} 0",
        "rulewatch_mails{status=\"queued\"}",
        "rulewatch_mails_sent_total",
        "rulewatch_mails_failed_total 0",
    ] {
        assert!(m.text.contains(name), "missing `{name}` in\n{}", m.text);
    }
}

#[test]
fn evaluate_answers_with_findings_and_alerts_follow() {
    let d = with_pm25_rule();
    let r = d.post("/api/v1/readings", "application/x-ndjson", NDJSON_OK);
    assert_eq!(r.status, 200);
    let v = d.evaluate(Some("pm25-high"));
    assert_eq!(v["evaluated"], 1);
    assert_eq!(v["failed"], 0);
    let f = &v["findings"][0];
    assert_eq!(f["rule"], "pm25-high");
    assert_eq!(f["kind"], "breach");
    assert_eq!(f["subject"]["county"], "南宫");
    assert_eq!(f["details"]["value"], 91.5);
    assert_eq!(v["rules"][0]["rule"], "pm25-high");

    // The alert fired (for: 0s) and its mail went to the env group.
    let alerts = d.get("/api/v1/alerts").json();
    assert_eq!(alerts["alerts"][0]["state"], "firing", "{alerts}");
    let mails = d.wait_for(10, "the firing mail", |d| {
        let m = d.outbox();
        m.iter()
            .any(|m| m.contains("huanbao@example.cn"))
            .then_some(m)
    });
    assert_eq!(mails.len(), 1);
    let history = d
        .get("/api/v1/history?rule=pm25-high&since=2000-01-01")
        .json();
    let events: Vec<&str> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(
        events.contains(&"transition") && events.contains(&"queued"),
        "{history}"
    );

    // Evaluating again: nothing new to tell.
    d.evaluate(None);
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(d.outbox().len(), 1);

    // Recovery: a newer, lower reading; the next evaluation resolves the
    // alert and sends exactly one more mail, the resolved one.
    let r = d.post(
        "/api/v1/readings",
        "application/x-ndjson",
        r#"{"metric":"pm25","value":20,"time":"2021-03-03T10:00:00+08:00","labels":{"county":"南宫"}}"#,
    );
    assert_eq!(r.status, 200);
    let v = d.evaluate(Some("pm25-high"));
    assert_eq!(v["findings"].as_array().unwrap().len(), 0, "{v}");
    let mails = d.wait_for(10, "the resolved mail", |d| {
        let m = d.outbox();
        (m.len() == 2).then_some(m)
    });
    // The subject is RFC 2047-encoded: "[已恢复]" in UTF-8 base64 starts `W+W3suaBouWkjV0`.
    let resolved = mails
        .iter()
        .filter(|m| m.contains("W+W3suaBouWkjV0"))
        .count();
    assert_eq!(resolved, 1, "{mails:#?}");
    assert!(d.get("/api/v1/alerts").json()["alerts"]
        .as_array()
        .unwrap()
        .is_empty());
    d.evaluate(None);
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(d.outbox().len(), 2, "nothing more after recovery");
}

#[test]
fn the_token_never_appears_in_logs_or_answers() {
    let d = daemon()
        .log("trace")
        .rule("pm25.rhai", pm25_rule("pm25-high", "v1", "0 0 9 1 1 *"))
        .start();
    let wrong = format!("{TOKEN}-wrong");
    let mut answers = Vec::new();
    for auth in [
        format!("Bearer {TOKEN}"),
        format!("Bearer {wrong}"),
        format!("Basic {TOKEN}"),
        TOKEN.to_string(),
    ] {
        for (path, ct, body) in [
            ("/api/v1/readings", Some("application/x-ndjson"), NDJSON_OK),
            (
                "/api/v1/readings",
                Some("application/x-ndjson"),
                "{bad json\n",
            ),
            ("/api/v1/readings", Some("application/xml"), "x"),
            ("/api/v1/evaluate", None, ""),
            ("/api/v1/evaluate?rule=nope", None, ""),
        ] {
            answers.push(d.post_as(path, Some(&auth), ct, body).text);
        }
    }
    answers.push(d.get("/metrics").text);
    answers.push(d.get("/api/v1/rules").text);
    d.signal("TERM");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let logs = d.logs();
    assert!(
        logs.contains("write refused"),
        "the refusals are logged:\n{logs}"
    );
    assert!(!logs.contains(TOKEN), "token in the log:\n{logs}");
    for a in answers {
        assert!(!a.contains(TOKEN), "token in an answer: {a}");
    }
}

#[test]
fn concurrent_batches_with_new_series_are_all_stored() {
    // Many requests at once, each creating series others also create: they
    // are committed together (group commit) and each answered on its own.
    let d = with_pm25_rule();
    let threads: Vec<_> = (0..16)
        .map(|i| {
            let http = d.http.clone();
            let url = d.url("/api/v1/readings");
            std::thread::spawn(move || {
                let mut body = String::new();
                for c in 0..200 {
                    body.push_str(&format!(
                        "{{\"metric\":\"water_class\",\"value\":{},\"time\":\"2021-03-{:02}\",\"labels\":{{\"section\":\"s{c:03}\"}}}}\n",
                        1 + (i + c) % 4,
                        1 + i
                    ));
                }
                let r = http
                    .post(url)
                    .header("Authorization", format!("Bearer {TOKEN}"))
                    .header("Content-Type", "application/x-ndjson")
                    .body(body)
                    .send()
                    .unwrap();
                (r.status().as_u16(), r.text().unwrap())
            })
        })
        .collect();
    for t in threads {
        let (status, body) = t.join().unwrap();
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(d.metric("rulewatch_readings_ingested_total"), Some(3200.0));
    let commits = d.metric("rulewatch_ingest_commits_total").unwrap();
    assert!((1.0..=16.0).contains(&commits), "{commits}");
}

#[test]
fn a_series_is_one_series_however_its_labels_are_written() {
    // The daemon finds a known series by the bytes of its labels: every way
    // of writing one series (label order, spaces, escapes, an empty label),
    // first stored by CSV or by `rulewatch ingest`, must land in it; a bad
    // label next to a known series is still refused, and nothing stored.
    let d = with_pm25_rule();
    let csv = "metric,time,value,station,county\npm25,2021-03-01T10:00,50,a,南宫\n";
    let r = d.post("/api/v1/readings", "text/csv", csv);
    assert_eq!(r.json()["new"], 1, "{}", r.text);
    let post = |body: &str| {
        let r = d.post("/api/v1/readings", "application/x-ndjson", body.to_string());
        assert_eq!(r.status, 200, "{}", r.text);
        let j = r.json();
        (
            j["new"].as_u64(),
            j["unchanged"].as_u64(),
            j["changed"].as_u64(),
        )
    };
    let same = r#"{"metric":"pm25","value":50,"time":"2021-03-01T10:00:00+08:00","labels":{"county":"\u5357\u5bab","station":"a"}}"#;
    assert_eq!(post(same), (Some(0), Some(1), Some(0)));
    let reordered = r#" { "labels" : { "station" : "a" , "x" : "" , "county" : "南宫" } , "time" : "2021-03-01T10:00:00+08:00" , "value" : 80 , "metric" : "pm25" }"#;
    assert_eq!(post(reordered), (Some(0), Some(0), Some(1)));
    assert_eq!(d.messages("pm25-high"), ["v1: pm25 80.0"]);
    // A bad label after a known series: refused, nothing of the batch stored.
    let bad = r#"{"metric":"pm25","value":1,"time":"2021-03-02T10:00:00+08:00","labels":{"county":"南宫","station":"a","bad-x":"1"}}"#;
    let r = d.post(
        "/api/v1/readings",
        "application/x-ndjson",
        format!("{same}\n{bad}\n"),
    );
    assert_eq!(r.status, 400, "{}", r.text);
    let e = &r.json()["errors"][0];
    assert_eq!((e["line"].as_u64(), e["item"].as_u64()), (Some(2), Some(2)));
    assert!(e["message"].as_str().unwrap().contains("bad-x"), "{e}");
    assert_eq!(d.messages("pm25-high"), ["v1: pm25 80.0"]);
    // A series first stored by `rulewatch ingest` while the daemon runs.
    std::fs::write(
        d.path("later.ndjson"),
        r#"{"metric":"pm25","value":60,"time":"2021-03-03T10:00:00+08:00","labels":{"county":"南宫"}}"#,
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rulewatch"))
        .current_dir(d.path(""))
        .args(["ingest", "--config", "rulewatch.ron", "later.ndjson"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let escaped = r#"{"metric":"pm25","value":60,"time":"2021-03-03T10:00:00+08:00","labels":{"county":"\u5357\u5bab"}}"#;
    assert_eq!(post(escaped), (Some(0), Some(1), Some(0)));
    let changed = r#"{"labels":{"county":"南宫"},"metric":"pm25","time":"2021-03-03T10:00:00+08:00","value":90}"#;
    assert_eq!(post(changed), (Some(0), Some(0), Some(1)));
    // Both 南宫 series: the rule's `latest` over them sees the last one.
    assert_eq!(d.messages("pm25-high"), ["v1: pm25 90.0"]);
}
