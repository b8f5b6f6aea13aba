//! The upload page's handlers: sign-in and sign-out, the file form, the
//! preview, and the confirmation that stores exactly what was previewed.
//!
//! | route | |
//! |---|---|
//! | `GET /login`, `POST /login` | the token form; sets an HttpOnly, SameSite=Strict session cookie |
//! | `POST /logout` | ends the session |
//! | `GET /upload` | the file form (signed in) |
//! | `POST /upload` | multipart: the file (and a mapping) → the preview; a clean batch is kept under a one-time id |
//! | `POST /upload/confirm` | stores the kept batch, all or nothing |
//!
//! Every POST from a session checks the session's CSRF token and, when the
//! browser sends one, that `Origin` / `Referer` is this host. A bureau's
//! token writes only its metrics (`bureaus` in the config): any reading of
//! another's metric is an error of the preview, with its cell.
//! Rendering is in [`crate::web::upload`].

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Multipart, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use crate::daemon::access::{cross_site, same_secret, Principal, Session, SESSION_COOKIE};
use crate::daemon::state::Daemon;
use crate::readings::excel::mapping;
use crate::readings::excel::upload::{preview, Preview};
use crate::readings::excel::{CellError, Mapping};
use crate::web::upload as page;
use crate::web::{html, upload::Signed};

/// The upload page's routes.
pub fn router(daemon: Arc<Daemon>) -> Router {
    let limit = daemon.config().max_body_bytes;
    Router::new()
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/upload", get(upload_form).post(upload))
        .route("/upload/confirm", post(confirm))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(daemon)
}

#[derive(Deserialize)]
struct NextQuery {
    #[serde(default)]
    next: String,
}

/// Only our own paths: `/…`, never `//host` or a full URL.
fn safe_next(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/upload"
    }
}

async fn login_form(
    State(d): State<Arc<Daemon>>,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> Response {
    if d.access.session(&headers).is_some() {
        return Redirect::to(safe_next(&q.next)).into_response();
    }
    html(StatusCode::OK, page::login(None, safe_next(&q.next)))
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
    #[serde(default)]
    next: String,
}

async fn login(
    State(d): State<Arc<Daemon>>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let next = safe_next(&f.next).to_owned();
    if cross_site(&headers) {
        return refused_cross_site();
    }
    let Some(principal) = d.access.identify(f.token.trim().as_bytes()) else {
        tracing::warn!("page sign-in refused: wrong token");
        return html(
            StatusCode::UNAUTHORIZED,
            page::login(
                Some("口令不正确，未能登录。请核对口令（区分大小写），或向系统管理员索取本部门的口令。"),
                &next,
            ),
        );
    };
    tracing::info!(who = %principal.name(), "page sign-in");
    let id = d.access.sign_in(principal);
    let mut resp = Redirect::to(&next).into_response();
    let cookie = format!("{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(d): State<Arc<Daemon>>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    let (id, session) = match checked_session(&d, &headers, &f.csrf) {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    d.access.sign_out(&id);
    tracing::info!(who = %session.principal.name(), "page sign-out");
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("rw_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    resp
}

fn to_login() -> Response {
    Redirect::to("/login?next=/upload").into_response()
}

fn refused_cross_site() -> Response {
    tracing::warn!("cross-site form post refused");
    html(
        StatusCode::FORBIDDEN,
        crate::web::page::error_page(
            "请求被拒绝：来自其他网站的提交",
            "这次提交不是从本系统的页面发出的（可能是其他网站代为提交），未做任何处理。请打开本系统的“上传报表”页面重新操作。",
        ),
    )
}

/// The session of a form POST, after the cross-site and CSRF checks.
#[allow(clippy::result_large_err)]
fn checked_session(
    d: &Daemon,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<(String, Session), Response> {
    if cross_site(headers) {
        return Err(refused_cross_site());
    }
    let Some((id, session)) = d.access.session(headers) else {
        return Err(to_login());
    };
    if !same_secret(csrf, &session.csrf) {
        tracing::warn!(who = %session.principal.name(), "form post refused: bad CSRF token");
        return Err(html(
            StatusCode::FORBIDDEN,
            crate::web::page::error_page(
                "请求被拒绝：表单已失效",
                "表单的校验码与当前登录不符（页面过期、重新登录过，或提交来自其他网站），未做任何处理。请重新打开“上传报表”页面再操作。",
            ),
        ));
    }
    Ok((id, session))
}

/// The indicator's Chinese name (from the configured mappings), else its id.
fn shown(names: &BTreeMap<String, String>, metric: &str) -> String {
    names
        .get(metric)
        .cloned()
        .unwrap_or_else(|| metric.to_owned())
}

/// What the signed-in principal may write, in words.
fn may_write(p: &Principal, names: &BTreeMap<String, String>) -> String {
    match p {
        Principal::Admin => "管理员口令：可报送全部指标。".into(),
        Principal::Bureau { name, metrics } if metrics.is_empty() => {
            format!("{name}的口令只能查看，不能报送数据。")
        }
        Principal::Bureau { name, metrics } => format!(
            "{name}可报送的指标：{}。",
            metrics
                .iter()
                .map(|m| shown(names, m))
                .collect::<Vec<_>>()
                .join("、")
        ),
        Principal::Reader(u) => format!("{u}：只能查看。"),
    }
}

async fn upload_form(State(d): State<Arc<Daemon>>, headers: HeaderMap) -> Response {
    let Some((_, s)) = d.access.session(&headers) else {
        return to_login();
    };
    let mappings: Vec<String> = d.config().upload_mappings.keys().cloned().collect();
    let who = s.principal.name();
    html(
        StatusCode::OK,
        page::form(
            &Signed {
                who: &who,
                csrf: &s.csrf,
            },
            &mappings,
            &may_write(&s.principal, &display_names(&d.config().upload_mappings)),
            None,
        ),
    )
}

/// The multipart fields of the upload form.
#[derive(Default)]
struct UploadFields {
    csrf: String,
    file: Option<(String, Vec<u8>)>,
    mapping: String,
    mapping_file: Option<(String, Vec<u8>)>,
}

async fn read_fields(mut m: Multipart) -> Result<UploadFields, String> {
    let mut f = UploadFields::default();
    while let Some(field) = m.next_field().await.map_err(|e| e.body_text())? {
        let name = field.name().unwrap_or("").to_owned();
        let file_name = field.file_name().map(str::to_owned);
        let bytes = field.bytes().await.map_err(|e| e.body_text())?;
        match name.as_str() {
            "csrf" => f.csrf = String::from_utf8_lossy(&bytes).into_owned(),
            "mapping" => f.mapping = String::from_utf8_lossy(&bytes).into_owned(),
            "file" => f.file = Some((file_name.unwrap_or_default(), bytes.to_vec())),
            "mapping_file" if !bytes.is_empty() => {
                f.mapping_file = Some((file_name.unwrap_or_default(), bytes.to_vec()))
            }
            _ => {}
        }
    }
    Ok(f)
}

/// The file name without any folder a browser sent along.
fn base_name(name: &str) -> String {
    name.rsplit(['/', '\\']).next().unwrap_or(name).to_owned()
}

async fn upload(
    State(d): State<Arc<Daemon>>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Response {
    if cross_site(&headers) {
        return refused_cross_site();
    }
    let fields = match read_fields(multipart).await {
        Ok(f) => f,
        Err(e) => {
            return html(
                StatusCode::BAD_REQUEST,
                crate::web::page::error_page(
                    "上传失败：文件没有完整收到",
                    &format!("请重新选择文件上传；文件过大时请用 rulewatch ingest 导入（{e}）"),
                ),
            )
        }
    };
    let (session_id, session) = match checked_session(&d, &headers, &fields.csrf) {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let who = session.principal.name();
    let signed = Signed {
        who: &who,
        csrf: &session.csrf,
    };
    let mapping_names: Vec<String> = d.config().upload_mappings.keys().cloned().collect();
    let Some((file, bytes)) = fields.file.filter(|(n, b)| !n.is_empty() && !b.is_empty()) else {
        return html(
            StatusCode::BAD_REQUEST,
            page::form(
                &signed,
                &mapping_names,
                &may_write(
                    &session.principal,
                    &display_names(&d.config().upload_mappings),
                ),
                Some("没有收到文件：请点击“报表文件”选择要上传的 .xlsx 或 .csv 文件，再点“预览”。"),
            ),
        );
    };
    let file = base_name(&file);
    // The mapping: uploaded beside the workbook, or one of the configured.
    let mapping_text = match (&fields.mapping_file, fields.mapping.as_str()) {
        (Some((name, text)), _) => {
            Some((base_name(name), String::from_utf8_lossy(text).into_owned()))
        }
        (None, "") => None,
        (None, chosen) => match d.config().upload_mappings.get(chosen) {
            None => {
                return html(
                    StatusCode::BAD_REQUEST,
                    page::form(
                        &signed,
                        &mapping_names,
                        &may_write(
                            &session.principal,
                            &display_names(&d.config().upload_mappings),
                        ),
                        Some(&format!("没有名为“{chosen}”的表格式样：请从列表中选择。")),
                    ),
                )
            }
            Some(path) => match std::fs::read_to_string(path) {
                Ok(t) => Some((chosen.to_owned(), t)),
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "cannot read an upload mapping");
                    return html(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        crate::web::page::error_page(
                            "表格式样文件无法读取",
                            &format!(
                                "服务器上的映射文件 {} 无法读取（{e}）。请联系系统管理员。",
                                path.display()
                            ),
                        ),
                    );
                }
            },
        },
    };
    let tz = d.config().timezone;
    let principal = session.principal.clone();
    let configured = d.config().upload_mappings.clone();
    let done = tokio::task::spawn_blocking(move || {
        let mut p = match &mapping_text {
            Some((name, text)) => match mapping::parse(name, text) {
                Ok(m) => preview(&file, &bytes, Some((&m, text)), tz),
                Err(errors) => mapping_failed(&file, errors),
            },
            None => preview(&file, &bytes, None, tz),
        };
        let mut names = display_names(&configured);
        if let Some((name, text)) = &mapping_text {
            if let Ok(m) = mapping::parse(name, text) {
                add_names(&mut names, &m);
            }
        }
        restrict(&mut p, &principal, &names);
        (p, names)
    })
    .await;
    let (mut p, names) = match done {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(error = %e, "upload preview crashed");
            return html(
                StatusCode::INTERNAL_SERVER_ERROR,
                crate::web::page::error_page(
                    "预览失败",
                    "读取文件时发生内部错误，未保存任何数据。请联系系统管理员。",
                ),
            );
        }
    };
    let upload_id = p
        .batch
        .take()
        .map(|batch| d.access.keep_upload(&session_id, &p.file, batch));
    tracing::info!(who = %who, file = %p.file, readings = p.readings, errors = p.error_total, "upload previewed");
    let status = if p.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    html(
        status,
        page::preview(&signed, &p, &names, upload_id.as_deref()),
    )
}

fn mapping_failed(file: &str, errors: Vec<CellError>) -> Preview {
    Preview {
        file: file.to_owned(),
        format: "",
        readings: 0,
        rows: Vec::new(),
        error_total: errors.len(),
        errors,
        batch: None,
    }
}

/// A bureau's token writes only its metrics: every reading of another
/// metric becomes an error with its cell, and nothing is kept to store.
pub fn restrict(p: &mut Preview, principal: &Principal, names: &BTreeMap<String, String>) {
    let refused_rows: Vec<&crate::readings::excel::upload::PreviewRow> = p
        .rows
        .iter()
        .filter(|r| !principal.may_write(&r.metric))
        .collect();
    let refused_total = match &p.batch {
        Some(batch) => batch
            .points
            .iter()
            .filter(|pt| !principal.may_write(&batch.series[pt.series as usize].metric))
            .count(),
        None => refused_rows.len(),
    };
    if refused_total == 0 {
        return;
    }
    let allowed = match principal {
        Principal::Bureau { metrics, .. } if !metrics.is_empty() => metrics
            .iter()
            .map(|m| shown(names, m))
            .collect::<Vec<_>>()
            .join("、"),
        _ => "无".into(),
    };
    let mut added = Vec::new();
    for r in refused_rows
        .iter()
        .take(crate::readings::excel::errors::MAX_ERRORS)
    {
        let (sheet, cell) = match r.source.as_deref().and_then(|s| s.rsplit_once('!')) {
            Some((sheet, cell)) => (Some(sheet.to_owned()), Some(cell.to_owned())),
            None => (None, None),
        };
        added.push(CellError {
            file: p.file.clone(),
            sheet,
            cell,
            line: None,
            message: format!(
                "“{}”不是{}负责报送的指标，{}的口令不能报送（时间 {}）",
                shown(names, &r.metric),
                principal.name(),
                principal.name(),
                r.time.chars().take(10).collect::<String>()
            ),
            hint: format!(
                "请删去这一项后重新上传，或由负责该指标的部门报送；{}可报送：{allowed}",
                principal.name()
            ),
            english: format!(
                "metric `{}` is not among the metrics of `{}`",
                r.metric,
                principal.name()
            ),
        });
    }
    p.error_total += refused_total;
    let room = crate::readings::excel::errors::MAX_ERRORS.saturating_sub(p.errors.len());
    p.errors.extend(added.into_iter().take(room));
    p.batch = None;
}

/// Metric id → the indicator's Chinese name, from the configured mappings.
fn display_names(configured: &BTreeMap<String, std::path::PathBuf>) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for (name, path) in configured {
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Ok(m) = mapping::parse(name, &text) {
                add_names(&mut names, &m);
            }
        }
    }
    names
}

fn add_names(names: &mut BTreeMap<String, String>, m: &Mapping) {
    for (written, indicator) in m.indicators.values() {
        names
            .entry(indicator.metric.clone())
            .or_insert_with(|| written.clone());
    }
}

#[derive(Deserialize)]
struct ConfirmForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    upload: String,
}

async fn confirm(
    State(d): State<Arc<Daemon>>,
    headers: HeaderMap,
    Form(f): Form<ConfirmForm>,
) -> Response {
    let (session_id, session) = match checked_session(&d, &headers, &f.csrf) {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let who = session.principal.name();
    let signed = Signed {
        who: &who,
        csrf: &session.csrf,
    };
    let Some(pending) = d.access.take_upload(&session_id, &f.upload) else {
        return html(
            StatusCode::GONE,
            crate::web::page::error_page(
                "预览已失效，未保存",
                "这份预览已经保存过、已超过15分钟，或属于另一次登录。请重新上传文件并预览后再确认。",
            ),
        );
    };
    // The session's principal cannot change, and the batch was checked at
    // preview; check again all the same: this is the write.
    let refused = super::readings::refused_metrics(&session.principal, &pending.batch);
    if !refused.is_empty() {
        return html(
            StatusCode::FORBIDDEN,
            crate::web::page::error_page("未保存：含有其他部门的指标", &refused.join("、")),
        );
    }
    let started = std::time::Instant::now();
    match d.ingest.write(pending.batch).await {
        Ok(summary) => {
            d.metrics.ingested(summary.readings, started.elapsed());
            tracing::info!(who = %who, file = %pending.file, readings = summary.readings, "upload stored");
            html(
                StatusCode::OK,
                page::stored(&signed, &pending.file, summary.readings),
            )
        }
        Err(e) if e.disk_full => {
            tracing::error!(error = %e, who = %who, file = %pending.file, "存储空间已满，上传的数据未保存：请清理磁盘或缩短 retention 保留期限 / store full: the upload was not stored");
            html(
                StatusCode::INSUFFICIENT_STORAGE,
                crate::web::page::error_page(
                    "存储空间已满，未保存任何数据",
                    "系统的存储空间已满，本次上传的数据一条也没有保存。请联系系统管理员清理存储空间，之后重新上传同一文件。",
                ),
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "storing an upload failed");
            html(
                StatusCode::INTERNAL_SERVER_ERROR,
                crate::web::page::error_page(
                    "保存失败，未保存任何数据",
                    &format!("数据库写入失败（{e}）。请稍后重新上传；如仍失败，请联系系统管理员。"),
                ),
            )
        }
    }
}
