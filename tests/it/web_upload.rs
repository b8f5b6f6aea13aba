//! The upload page and access control in the real daemon over loopback:
//! sign-in with a bureau's token, a workbook previewed with its cells and
//! stored on confirmation, a bureau refused another's metrics (page and
//! API), cross-site and bad-CSRF posts refused, and the read-access modes.

use crate::daemon_support;

use daemon_support::{daemon, Builder, Daemon, Resp, TOKEN};

const HR: &str = "hr-token-6d1f-not-in-any-log";
const MED: &str = "med-token-91ac-not-in-any-log";

fn workbook() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/excel/人社.xlsx"
    ))
    .unwrap()
}

fn mapping() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/excel/人社.xlsx.ron"
    ))
    .unwrap()
}

/// A rule that reports the latest unemployment rate it can read.
const PROBE: &str = r#"const RULE = #{ id: "probe", title: "probe", severity: "info", schedule: "0 0 9 1 1 *", notify: ["env"] };
let r = latest("unemployment_rate", #{});
if r == () { no_data(#{}, "none"); } else { breach(#{}, `rate ${r.value}`, #{}); }
"#;

fn with_bureaus() -> Builder {
    daemon()
        .rule("probe.rhai", PROBE.to_string())
        .file("人社.ron", mapping())
        .config(r#"bureaus: { "人社局": (token_env: "RW_TOKEN_HR", metrics: ["unemployment_rate", "new_urban_jobs", "rural_labor_transfer", "vocational_training"]), "医保局": (token_env: "RW_TOKEN_MED", metrics: ["medical_insurance_rate"]) },"#)
        .env("RW_TOKEN_HR", HR)
        .env("RW_TOKEN_MED", MED)
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

fn resp(r: reqwest::blocking::Response) -> Resp {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().unwrap_or_default();
    Resp {
        status,
        text,
        headers,
    }
}

/// Signs in with `token`: the session cookie (`rw_session=…`).
fn sign_in(d: &Daemon, token: &str) -> String {
    let r = resp(
        client()
            .post(d.url("/login"))
            .form(&[("token", token), ("next", "/upload")])
            .send()
            .unwrap(),
    );
    assert_eq!(r.status, 303, "{}", r.text);
    assert_eq!(r.headers["location"], "/upload");
    let cookie = r.headers["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    cookie.split(';').next().unwrap().to_string()
}

fn get(d: &Daemon, path: &str, cookie: &str) -> Resp {
    resp(
        client()
            .get(d.url(path))
            .header("Cookie", cookie)
            .send()
            .unwrap(),
    )
}

/// The value of the hidden input `name` on a page.
fn hidden(page: &str, name: &str) -> String {
    let needle = format!("name=\"{name}\" value=\"");
    let at = page
        .find(&needle)
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        + needle.len();
    page[at..].split('"').next().unwrap().to_string()
}

/// A multipart body as a browser sends the upload form.
fn multipart(fields: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----rwtestboundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, file, bytes) in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some(f) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn upload(
    d: &Daemon,
    cookie: &str,
    csrf: &str,
    file: &str,
    bytes: &[u8],
    origin: Option<&str>,
) -> Resp {
    // Workbooks in the wide form with their mapping uploaded beside; CSV and
    // the long-form bad workbook without.
    let m = if file == "人社.xlsx" {
        mapping()
    } else {
        Vec::new()
    };
    let (ct, body) = multipart(&[
        ("csrf", None, csrf.as_bytes()),
        ("file", Some(file), bytes),
        ("mapping", None, b""),
        (
            "mapping_file",
            Some(if m.is_empty() { "" } else { "人社.xlsx.ron" }),
            &m,
        ),
    ]);
    let mut req = client()
        .post(d.url("/upload"))
        .header("Cookie", cookie)
        .header("Content-Type", ct)
        .body(body);
    if let Some(o) = origin {
        req = req.header("Origin", o);
    }
    resp(req.send().unwrap())
}

fn confirm(d: &Daemon, cookie: &str, csrf: &str, id: &str) -> Resp {
    resp(
        client()
            .post(d.url("/upload/confirm"))
            .header("Cookie", cookie)
            .header("Origin", d.url(""))
            .form(&[("csrf", csrf), ("upload", id)])
            .send()
            .unwrap(),
    )
}

#[test]
fn a_bureau_signs_in_previews_a_workbook_and_confirms_it_once() {
    let d = with_bureaus().start();
    // Not signed in: to the sign-in form.
    let r = get(&d, "/upload", "");
    assert_eq!(r.status, 303);
    let r = resp(
        client()
            .post(d.url("/login"))
            .form(&[("token", "nope")])
            .send()
            .unwrap(),
    );
    assert_eq!(r.status, 401);
    assert!(r.text.contains("口令不正确"), "{}", r.text);
    assert!(!d.logs().contains(HR) && !d.logs().contains("nope"));

    let cookie = sign_in(&d, HR);
    let form = get(&d, "/upload", &cookie);
    assert_eq!(form.status, 200, "{}", form.text);
    assert!(form.text.contains("已登录：人社局"), "{}", form.text);
    let csp = form.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("form-action 'self'"),
        "{csp}"
    );
    let csrf = hidden(&form.text, "csrf");

    // 人社.xlsx holds 医保局's quarterly sheet too: 人社局 may not write it.
    let r = upload(
        &d,
        &cookie,
        &csrf,
        "人社.xlsx",
        &workbook(),
        Some(&d.url("")),
    );
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(
        r.text
            .contains("“城乡居民医保参保率”不是人社局负责报送的指标"),
        "{}",
        r.text
    );
    assert!(r.text.contains("人社.xlsx:医保季报!"), "{}", r.text);
    assert!(
        !r.text.contains("name=\"upload\""),
        "no confirm form: {}",
        r.text
    );

    // The same workbook signed in as the API token (every metric): clean.
    let admin = sign_in(&d, TOKEN);
    let csrf_admin = hidden(&get(&d, "/upload", &admin).text, "csrf");
    let r = upload(&d, &admin, &csrf_admin, "人社.xlsx", &workbook(), None);
    assert_eq!(r.status, 200, "{}", r.text);
    for head in [
        "<th>指标</th>",
        "<th>对象</th>",
        "<th>时间</th>",
        "<th>数值</th>",
        "<th>来源单元格</th>",
    ] {
        assert!(r.text.contains(head), "{head}: {}", r.text);
    }
    assert!(
        r.text.contains("城镇登记失业率（%）"),
        "display name: {}",
        r.text
    );
    assert!(r.text.contains("2021年月报!"), "{}", r.text);
    let id = hidden(&r.text, "upload");
    assert_eq!(
        d.messages("probe"),
        vec!["none".to_string()],
        "nothing stored before confirmation"
    );

    // Another session cannot confirm it; the right one stores it, once.
    let r = confirm(&d, &cookie, &csrf, &id);
    assert_eq!(r.status, 410, "{}", r.text);
    let r = confirm(&d, &admin, &csrf_admin, &id);
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("已保存"), "{}", r.text);
    assert!(d.messages("probe")[0].starts_with("rate "), "stored");
    let r = confirm(&d, &admin, &csrf_admin, &id);
    assert_eq!(r.status, 410, "one-time: {}", r.text);

    // Sign-out ends the session.
    let r = resp(
        client()
            .post(d.url("/logout"))
            .header("Cookie", &cookie)
            .form(&[("csrf", csrf.as_str())])
            .send()
            .unwrap(),
    );
    assert_eq!(r.status, 303);
    assert_eq!(get(&d, "/upload", &cookie).status, 303);
}

#[test]
fn a_bad_cell_is_shown_with_its_place_and_nothing_is_kept() {
    let d = with_bureaus().start();
    let cookie = sign_in(&d, TOKEN);
    let csrf = hidden(&get(&d, "/upload", &cookie).text, "csrf");
    let bad = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/excel/bad.xlsx"
    ))
    .unwrap();
    let r = upload(&d, &cookie, &csrf, "bad.xlsx", &bad, None);
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.text.contains("本文件的数据均未保存"), "{}", r.text);
    assert!(
        r.text.contains("<b>bad.xlsx:Sheet1!"),
        "an error with its cell: {}",
        r.text
    );
    assert!(!r.text.contains("name=\"upload\""), "{}", r.text);
}

#[test]
fn cross_site_and_bad_csrf_posts_are_refused() {
    let d = with_bureaus().start();
    let cookie = sign_in(&d, HR);
    let csrf = hidden(&get(&d, "/upload", &cookie).text, "csrf");
    let csv = b"metric,time,value\nunemployment_rate,2021-03-31,4.7\n";
    let r = upload(
        &d,
        &cookie,
        &csrf,
        "u.csv",
        csv,
        Some("http://evil.example"),
    );
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(r.text.contains("来自其他网站的提交"), "{}", r.text);
    let r = upload(&d, &cookie, "forged", "u.csv", csv, None);
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(r.text.contains("表单已失效"), "{}", r.text);
    // Without the session cookie (what SameSite=Strict gives a cross-site post).
    let r = upload(&d, "", &csrf, "u.csv", csv, None);
    assert_eq!(r.status, 303);
    // A good post previews; a forged confirmation stores nothing.
    let r = upload(&d, &cookie, &csrf, "u.csv", csv, None);
    assert_eq!(r.status, 200, "{}", r.text);
    let id = hidden(&r.text, "upload");
    assert_eq!(confirm(&d, &cookie, "forged", &id).status, 403);
    assert_eq!(d.messages("probe"), vec!["none".to_string()]);
    assert_eq!(confirm(&d, &cookie, &csrf, &id).status, 200);
    assert_eq!(d.messages("probe"), vec!["rate 4.7".to_string()]);
}

#[test]
fn a_bureau_token_writes_only_its_metrics_through_the_api() {
    let d = with_bureaus().start();
    let post = |token: &str, metric: &str| {
        d.post_as(
            "/api/v1/readings",
            Some(&format!("Bearer {token}")),
            Some("text/csv"),
            format!("metric,time,value\n{metric},2021-03-31,1.5\n"),
        )
    };
    let r = post(MED, "unemployment_rate");
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("医保局的口令不能报送这些指标：unemployment_rate"),
        "{}",
        r.text
    );
    assert_eq!(
        d.messages("probe"),
        vec!["none".to_string()],
        "nothing stored"
    );
    assert_eq!(post(HR, "unemployment_rate").status, 200);
    assert_eq!(post(MED, "medical_insurance_rate").status, 200);
    assert_eq!(
        post(TOKEN, "pm25").status,
        200,
        "the API token keeps full rights"
    );
    let r = d.post_as(
        "/api/v1/evaluate",
        Some(&format!("Bearer {HR}")),
        None,
        Vec::new(),
    );
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(!d.logs().contains(HR) && !d.logs().contains(MED));
}

#[test]
fn read_access_tokens_needs_a_session_or_a_bearer_token() {
    let d = with_bureaus()
        .config("http: (read_access: Tokens),")
        .start();
    for path in ["/api/v1/alerts", "/api/v1/rules", "/api/v1/history"] {
        assert_eq!(d.get(path).status, 401, "{path}");
        let r = resp(client().get(d.url(path)).bearer_auth(MED).send().unwrap());
        assert_eq!(r.status, 200, "{path}: {}", r.text);
    }
    let r = resp(client().get(d.url("/rules/probe")).send().unwrap());
    assert_eq!(r.status, 303);
    assert_eq!(r.headers["location"], "/login?next=/rules/probe");
    assert_eq!(resp(client().get(d.url("/")).send().unwrap()).status, 303);
    let cookie = sign_in(&d, MED);
    assert_eq!(get(&d, "/", &cookie).status, 200);
    assert_eq!(get(&d, "/rules/probe", &cookie).status, 200);
    assert_eq!(d.get("/healthz").status, 200, "liveness stays open");
}

#[test]
fn read_access_proxy_header_needs_the_header() {
    let d = with_bureaus()
        .config(r#"http: (read_access: ProxyHeader(name: "X-Remote-User")),"#)
        .start();
    let r = d.get("/api/v1/alerts");
    assert_eq!(r.status, 401);
    assert!(r.text.contains("X-Remote-User"), "{}", r.text);
    assert_eq!(d.get("/").status, 401);
    let r = resp(
        client()
            .get(d.url("/"))
            .header("X-Remote-User", "zhang")
            .send()
            .unwrap(),
    );
    assert_eq!(r.status, 200);
}

#[test]
fn read_access_is_open_by_default() {
    let d = with_bureaus().start();
    assert_eq!(d.get("/").status, 200);
    assert_eq!(d.get("/api/v1/alerts").status, 200);
}
