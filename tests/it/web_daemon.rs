//! The status page and mail charts in the real daemon (`rulewatch run` on
//! loopback): `GET /` and `GET /rules/{id}` beside the API, and a firing
//! mail written by the daemon's sender carrying its chart inline.

use crate::daemon_support;

use daemon_support::{daemon, Daemon};

fn charted_rule() -> String {
    r#"const RULE = #{
    id: "pm25-high",
    title: "PM2.5 日均 ≤ 75 <测试>",
    owner: "生态环境局",
    severity: "warning",
    schedule: "0 0 9 1 1 *",
    notify: ["env"],
    chart: #{ metric: "pm25", filter: #{ county: "南宫" }, window: "all", threshold: 75.0, breach: "above", unit: "µg/m³" },
};
let r = latest("pm25", #{ county: "南宫" });
if r == () {
    no_data(#{ county: "南宫" }, "no pm25");
} else if r.value > 75.0 {
    breach(#{ county: "南宫" }, `pm25 ${r.value}`, #{ value: r.value, threshold: 75.0, unit: "µg/m³" });
}
"#
    .to_string()
}

fn started() -> Daemon {
    let d = daemon().rule("pm25.rhai", charted_rule()).start();
    let ndjson = concat!(
        r#"{"metric":"pm25","value":48.2,"time":"2021-03-01T10:00:00+08:00","labels":{"county":"南宫"}}"#,
        "\n",
        r#"{"metric":"pm25","value":91.5,"time":"2021-03-02T10:00:00+08:00","labels":{"county":"南宫"}}"#,
        "\n",
    );
    let r = d.post("/api/v1/readings", "application/x-ndjson", ndjson);
    assert_eq!(r.status, 200, "{}", r.text);
    d.evaluate(None);
    d
}

#[test]
fn the_status_page_is_served_beside_the_api() {
    let d = started();
    let r = d.get("/");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.headers["content-type"], "text/html; charset=utf-8");
    assert!(
        r.text.contains("PM2.5 日均 ≤ 75 &lt;测试&gt;"),
        "{}",
        r.text
    );
    assert!(r.text.contains("<h2>生态环境局 <small>"), "{}", r.text);
    assert!(r.text.contains("class=\"card firing\""), "{}", r.text);
    assert!(r.text.contains("<b>91.5µg/m³</b>"), "{}", r.text);
    assert!(r.text.contains("<svg class=\"chart\""), "{}", r.text);

    let r = d.get("/rules/pm25-high");
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("正常 → 告警"), "{}", r.text);
    assert!(r.text.contains("规则源码"), "{}", r.text);
    assert_eq!(d.get("/rules/nope").status, 404);

    // The API is unchanged: JSON, and JSON errors for unknown paths.
    let r = d.get("/api/v1/rules");
    assert_eq!(r.status, 200);
    assert!(r.json().is_object() || r.json().is_array());
    let r = d.get("/no/such/page");
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].is_string(), "{}", r.text);
}

#[test]
fn the_daemons_firing_mail_carries_its_chart() {
    let d = started();
    let outbox = d.path("outbox");
    let mail = d.wait_for(30, "the firing mail in outbox/", |_| {
        std::fs::read_dir(&outbox).ok()?.flatten().find_map(|e| {
            let text = std::fs::read_to_string(e.path()).ok()?;
            text.contains("huanbao@example.cn").then_some(text)
        })
    });
    let msg = mail_parser::MessageParser::default()
        .parse(mail.as_bytes())
        .unwrap();
    let html = msg.body_html(0).unwrap();
    let cid = html
        .split("src=\"cid:")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("an inline chart in the HTML part")
        .to_string();
    use mail_parser::MimeHeaders;
    let png = msg
        .parts
        .iter()
        .find(|p| p.content_id() == Some(cid.as_str()))
        .expect("the image part")
        .contents();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
}
