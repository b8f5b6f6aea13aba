//! SIGHUP reloads the config file: the real daemon, a real config file
//! edited in place, a real signal, mail read from the file outbox.

use crate::daemon_support;

use daemon_support::{daemon, pm25_rule, Daemon};

const NEVER: &str = "0 0 9 1 1 *";
const BREACH: &str = r#"{"metric":"pm25","value":91.5,"time":"2021-03-02T10:00:00+08:00","labels":{"county":"南宫"}}"#;

fn config_text(d: &Daemon) -> String {
    std::fs::read_to_string(d.path("rulewatch.ron")).unwrap()
}

/// Writes the config as an editor saves it (temp file, rename).
fn write_config(d: &Daemon, text: &str) {
    let tmp = d.path("rulewatch.ron.tmp~");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, d.path("rulewatch.ron")).unwrap();
}

fn reload_error(d: &Daemon) -> serde_json::Value {
    d.get("/api/v1/rules").json()["config"]["reload_error"].clone()
}

fn mails_to(d: &Daemon, address: &str) -> Vec<String> {
    d.outbox()
        .into_iter()
        .filter(|m| m.contains(&format!("To: {address}")))
        .collect()
}

#[test]
fn sighup_swaps_in_a_good_config_and_keeps_the_last_good_one_on_error() {
    let mut d = daemon()
        .rule("pm25.rhai", pm25_rule("pm25-high", "first", NEVER))
        .rule("second.rhai", pm25_rule("pm25-second", "second", NEVER))
        .start();
    let original = config_text(&d);
    assert!(reload_error(&d).is_null());

    // New recipients for `env`, a new sender, and a new listen address
    // (which needs a restart: the old one keeps serving).
    let edited = original
        .replace(
            r#""env": ["huanbao@example.cn"]"#,
            r#""env": ["shengtai@example.cn"]"#,
        )
        .replace("<alerts@example.cn>", "<kaohe@example.cn>")
        .replace(
            &format!("127.0.0.1:{}", d.port),
            &format!("127.0.0.1:{}", d.port + 1),
        );
    assert_ne!(edited, original);
    write_config(&d, &edited);
    d.signal("HUP");
    d.wait_for(10, "the config reload", |d| {
        d.logs().contains("config reloaded").then_some(())
    });
    let logs = d.logs();
    assert!(
        logs.contains("配置项 `listen` 已改动，需要重启才能生效")
            && logs.contains("needs a restart"),
        "{logs}"
    );
    assert_eq!(d.get("/healthz").status, 200, "still on the old address");

    // A breach now mails the new recipient, from the new sender.
    assert_eq!(
        d.post("/api/v1/readings", "application/x-ndjson", BREACH)
            .status,
        200
    );
    assert_eq!(d.messages("pm25-high"), ["first: pm25 91.5"]);
    let mail = d.wait_for(10, "the mail to the new recipient", |d| {
        mails_to(d, "shengtai@example.cn").into_iter().next()
    });
    assert!(mail.contains("kaohe@example.cn"), "{mail}");
    assert!(
        mails_to(&d, "huanbao@example.cn").is_empty(),
        "the old recipient gets nothing"
    );

    // A broken config: a syntax error on a known line, and a recipient
    // change that must not take effect.
    let broken = edited
        .replace(
            r#""env": ["shengtai@example.cn"]"#,
            r#""env": ["wrong@example.cn"]"#,
        )
        .replace("admin: [", "admin: [[");
    let line = broken
        .lines()
        .position(|l| l.contains("admin: [["))
        .unwrap()
        + 1;
    write_config(&d, &broken);
    d.signal("HUP");
    let error = d.wait_for(10, "the failed reload in /api/v1/rules", |d| {
        Some(reload_error(d)).filter(|e| !e.is_null())
    });
    let text = error["errors"][0].as_str().unwrap();
    assert!(
        text.contains(&format!("rulewatch.ron:{line}:")),
        "file:line:col of the error: {text}"
    );
    let logs = d.logs();
    assert!(
        logs.contains("配置文件重新加载失败，继续按上一个可用的配置和规则运行")
            && logs.contains(&format!("rulewatch.ron:{line}:")),
        "{logs}"
    );
    // Admin is told, once for this broken version.
    let note = d.wait_for(10, "the note to admin", |d| {
        d.outbox()
            .into_iter()
            .find(|m| m.contains("To: ops@example.cn") && m.contains("X-Rulewatch-Rule: config"))
    });
    assert!(note.contains("rulewatch.ron"), "{note}");
    // The status page shows it.
    let page = d.get("/");
    assert_eq!(page.status, 200);
    assert!(
        page.text.contains("配置文件重新加载失败") && page.text.contains("rulewatch.ron"),
        "{}",
        page.text
    );
    // The same broken file again: nobody is told twice.
    d.signal("HUP");
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let notes = d
        .outbox()
        .iter()
        .filter(|m| m.contains("X-Rulewatch-Rule: config"))
        .count();
    assert_eq!(notes, 1);

    // The last good config (and rules) still run: the second rule's mail
    // goes to the recipient of the last good config.
    assert_eq!(d.messages("pm25-second"), ["second: pm25 91.5"]);
    d.wait_for(10, "the second rule's mail", |d| {
        (mails_to(d, "shengtai@example.cn").len() == 2).then_some(())
    });
    assert!(mails_to(&d, "wrong@example.cn").is_empty());
    assert_eq!(d.get("/healthz").status, 200);

    // Fixed: the error goes away.
    write_config(&d, &edited);
    d.signal("HUP");
    d.wait_for(10, "the error to clear", |d| {
        reload_error(d).is_null().then_some(())
    });
    d.signal("TERM");
    assert_eq!(d.wait_exit(20).code(), Some(0));
}

/// The legend of a mail's chart names its lines through the `labels:` of
/// the config in force when the mail is sent, not the one the daemon
/// started with.
#[test]
fn a_reload_renames_the_lines_of_mail_charts() {
    let chart_rule = |id: &str| {
        include_str!("../fixtures/web/two-series-chart.rhai")
            .replace("two-series-chart", id)
            .replace("0 0 9 * * *", NEVER)
    };
    let d = daemon()
        .rule("before.rhai", chart_rule("chart-before"))
        .rule("after.rhai", chart_rule("chart-after"))
        .config(r#"labels: { "county": "县份" },"#)
        .start();
    // Within the chart's 30 days before now (the API evaluates at now).
    let time = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let readings = [("南宫", 80.0), ("临城", 60.0)]
        .iter()
        .map(|(county, v)| {
            format!(r#"{{"metric":"pm25","value":{v},"time":"{time}","labels":{{"county":"{county}"}}}}"#)
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        d.post("/api/v1/readings", "application/x-ndjson", readings)
            .status,
        200
    );
    let legend_of = |d: &Daemon, rule: &str| {
        d.wait_for(10, "the chart rule's mail", |d| {
            d.outbox().into_iter().find_map(|raw| {
                let m = mail_parser::MessageParser::default().parse(raw.as_bytes())?;
                m.header_raw("X-Rulewatch-Rule")
                    .is_some_and(|r| r.contains(rule))
                    .then(|| m.body_html(0).unwrap().into_owned())
            })
        })
    };
    d.evaluate(Some("chart-before"));
    let before = legend_of(&d, "chart-before");
    assert!(before.contains("各线（县份）："), "{before}");

    let edited = config_text(&d).replace(r#""county": "县份""#, r#""county": "所属县区""#);
    write_config(&d, &edited);
    d.signal("HUP");
    d.wait_for(10, "the config reload", |d| {
        d.logs().contains("config reloaded").then_some(())
    });
    d.evaluate(Some("chart-after"));
    let after = legend_of(&d, "chart-after");
    assert!(after.contains("各线（所属县区）："), "{after}");
    assert!(!after.contains("县份"), "{after}");
}
