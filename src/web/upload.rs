//! The upload page's HTML: sign-in, the file form, the preview of what would
//! be stored (指标, 对象, 时间, 数值, 来源单元格) with every problem and its
//! cell, and the result. Renders only: the daemon's handlers
//! (`daemon::http::upload`) check tokens, sessions and CSRF, and store.
//!
//! Plain forms, no script (the page's CSP forbids any): a multipart POST
//! carries the file, a second POST the confirmation.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::readings::excel::upload::Preview;
use crate::status::format::escape_html as escape;

const STYLE: &str = include_str!("style.css");
const EXTRA: &str = "form.box { background: #fff; padding: 0.8em 1em; border-radius: 6px; margin: 0.6em 0; }\n\
label { display: block; margin: 0.5em 0 0.2em; font-weight: bold; }\n\
input[type=password], select { font-size: 1em; padding: 0.2em; min-width: 18em; }\n\
button { font-size: 1em; padding: 0.3em 1.2em; margin-top: 0.6em; }\n\
.ok-box { background: #e8f5e9; border-left: 4px solid var(--ok); padding: 0.4em 0.6em; margin: 0.5em 0; }\n\
.errors li { margin: 0.2em 0; }\n\
.who { float: right; margin-top: 0.6em; }\n.who form { display: inline; }\n.who button { margin: 0; padding: 0 0.5em; font-size: 0.85em; }\n";

/// Who is signed in, and the session's CSRF token for the forms.
pub struct Signed<'a> {
    pub who: &'a str,
    pub csrf: &'a str,
}

fn head(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>\n{STYLE}{EXTRA}</style>\n</head>\n",
        escape(title)
    )
}

fn header(out: &mut String, signed: Option<&Signed>, title: &str) {
    out.push_str("<body>\n<header>\n");
    if let Some(s) = signed {
        let _ = write!(
            out,
            "<div class=\"who\">已登录：{} <form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\">退出登录</button></form></div>",
            escape(s.who),
            escape(s.csrf)
        );
    }
    let _ = write!(
        out,
        "<p><a href=\"/\">← 返回全部目标</a></p>\n<h1>{}</h1>\n</header>\n<main>\n",
        escape(title)
    );
}

fn message_box(out: &mut String, message: Option<&str>) {
    if let Some(m) = message {
        let _ = writeln!(out, "<p class=\"problem\" role=\"alert\">{}</p>", escape(m));
    }
}

/// The sign-in form: the bureau's token, then back to `next`.
pub fn login(message: Option<&str>, next: &str) -> String {
    let mut out = head("登录 · 上传报表");
    header(&mut out, None, "登录");
    message_box(&mut out, message);
    let _ = write!(
        out,
        "<form class=\"box\" method=\"post\" action=\"/login\">\n<input type=\"hidden\" name=\"next\" value=\"{}\">\n<label for=\"token\">口令</label>\n<input type=\"password\" id=\"token\" name=\"token\" autocomplete=\"current-password\" required>\n<p class=\"muted\">各部门的口令由系统管理员发放（配置中 bureaus 一节）。</p>\n<button type=\"submit\">登录</button>\n</form>\n</main></body></html>\n",
        escape(next)
    );
    out
}

/// The file form. `mappings`: names of the configured mapping files.
pub fn form(s: &Signed, mappings: &[String], may_write: &str, message: Option<&str>) -> String {
    let mut out = head("上传报表");
    header(&mut out, Some(s), "上传报表");
    message_box(&mut out, message);
    let _ = write!(
        out,
        "<p>选择 Excel 工作簿（.xlsx、.xls、.ods）或 CSV 文件，先预览将要保存的数据，核对无误后再确认保存。有任何错误时不保存任何数据。</p>\n<p class=\"muted\">{}</p>\n",
        escape(may_write)
    );
    let _ = write!(
        out,
        "<form class=\"box\" method=\"post\" action=\"/upload\" enctype=\"multipart/form-data\">\n<input type=\"hidden\" name=\"csrf\" value=\"{}\">\n<label for=\"file\">报表文件</label>\n<input type=\"file\" id=\"file\" name=\"file\" accept=\".xlsx,.xls,.ods,.csv\" required>\n",
        escape(s.csrf)
    );
    out.push_str("<label for=\"mapping\">表格式样（宽表用映射文件）</label>\n<select id=\"mapping\" name=\"mapping\">\n<option value=\"\">长表（列为 metric、time、value …），或上传映射文件</option>\n");
    for (i, name) in mappings.iter().enumerate() {
        let selected = if i == 0 { " selected" } else { "" };
        let _ = writeln!(
            out,
            "<option value=\"{}\"{selected}>{}</option>",
            escape(name),
            escape(name)
        );
    }
    out.push_str("</select>\n<label for=\"mapping_file\">或上传映射文件（.ron，可不选）</label>\n<input type=\"file\" id=\"mapping_file\" name=\"mapping_file\" accept=\".ron\">\n<p class=\"muted\">映射文件的写法见 docs/excel.md。</p>\n<button type=\"submit\">预览</button>\n</form>\n</main></body></html>\n");
    out
}

/// What the file would store, every problem with its cell, and (when clean)
/// the confirm form carrying the one-time `upload_id`.
pub fn preview(
    s: &Signed,
    p: &Preview,
    names: &BTreeMap<String, String>,
    upload_id: Option<&str>,
) -> String {
    let mut out = head("预览 · 上传报表");
    header(&mut out, Some(s), &format!("预览：{}", p.file));
    if p.is_ok() {
        let _ = writeln!(
            out,
            "<p class=\"ok-box\">文件 {} 共 {} 条数据，未发现错误。请核对下表，确认无误后点击“确认保存”。</p>",
            escape(&p.file),
            p.readings
        );
    } else {
        let _ = write!(
            out,
            "<section class=\"problem\" role=\"alert\"><h2>发现 {} 处错误，本文件的数据均未保存</h2><p>请在原表中改正下列单元格后重新上传。</p><ul class=\"errors\">",
            p.error_total
        );
        for e in &p.errors {
            let place = e.place();
            let _ = write!(
                out,
                "<li><b>{}</b>：{}{}</li>",
                escape(&place),
                escape(&e.message),
                if e.hint.is_empty() {
                    String::new()
                } else {
                    format!("<br><span class=\"muted\">提示：{}</span>", escape(&e.hint))
                }
            );
        }
        if p.error_total > p.errors.len() {
            let _ = write!(
                out,
                "<li>……另有 {} 处错误未列出</li>",
                p.error_total - p.errors.len()
            );
        }
        out.push_str("</ul></section>\n");
    }
    if !p.rows.is_empty() {
        let _ = write!(
            out,
            "<h2>将要保存的数据{}</h2>\n<div class=\"scroll\"><table>\n<thead><tr><th>指标</th><th>对象</th><th>时间</th><th>数值</th><th>来源单元格</th></tr></thead>\n<tbody>\n",
            if p.is_ok() { "" } else { "（可读出的部分）" }
        );
        for r in &p.rows {
            let shown = names
                .get(&r.metric)
                .cloned()
                .unwrap_or_else(|| r.metric.clone());
            let object: Vec<String> = r.labels.values().cloned().collect();
            let _ = writeln!(
                out,
                "<tr><td>{}<br><span class=\"muted\">{}</span></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&shown),
                escape(&r.metric),
                escape(&object.join("，")),
                escape(&r.time.replace('T', " ").chars().take(16).collect::<String>()),
                escape(&crate::status::format::format_number(r.value)),
                escape(r.source.as_deref().unwrap_or("—")),
            );
        }
        out.push_str("</tbody></table></div>\n");
        if p.readings > p.rows.len() {
            let _ = writeln!(
                out,
                "<p class=\"muted\">只列出前 {} 条，共 {} 条。</p>",
                p.rows.len(),
                p.readings
            );
        }
    }
    match upload_id {
        Some(id) => {
            let _ = write!(
                out,
                "<form class=\"box\" method=\"post\" action=\"/upload/confirm\">\n<input type=\"hidden\" name=\"csrf\" value=\"{}\">\n<input type=\"hidden\" name=\"upload\" value=\"{}\">\n<button type=\"submit\">确认保存 {} 条数据</button>　<a href=\"/upload\">放弃，重新选择文件</a>\n<p class=\"muted\">确认后保存的正是上表中的数据；预览15分钟内有效。</p>\n</form>\n",
                escape(s.csrf),
                escape(id),
                p.readings
            );
        }
        None => out.push_str("<p><a href=\"/upload\">重新选择文件</a></p>\n"),
    }
    out.push_str("</main></body></html>\n");
    out
}

/// After a confirmed upload.
pub fn stored(s: &Signed, file: &str, readings: usize) -> String {
    let mut out = head("已保存 · 上传报表");
    header(&mut out, Some(s), "已保存");
    let _ = write!(
        out,
        "<p class=\"ok-box\" role=\"status\">已保存 {} 中的 {} 条数据。规则下次运行时将使用这些数据。</p>\n<p><a href=\"/upload\">继续上传</a>　<a href=\"/\">查看全部目标</a></p>\n</main></body></html>\n",
        escape(file),
        readings
    );
    out
}
