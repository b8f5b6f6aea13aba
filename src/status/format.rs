//! How numbers and text are written wherever officials read them: the
//! status page, the alert mails and the monthly digest (one place, so they
//! never print the same figure two ways).

/// Escapes `& < > " '` for HTML text and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A number without float noise: `4.5`, `12`, `0.6` (not `0.6000000000000005`).
pub fn format_number(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    let s = format!("{x:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// Values as people read them: at most 2 decimals (3 below 1).
pub fn round(v: f64) -> f64 {
    if v.abs() < 1.0 {
        (v * 1000.0).round() / 1000.0
    } else {
        (v * 100.0).round() / 100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_lose_float_noise() {
        assert_eq!(format_number(5.1 - 4.5), "0.6");
        assert_eq!(format_number(12.0), "12");
        assert_eq!(format_number(-0.0000001), "0");
        assert_eq!(format_number(3.25), "3.25");
    }
}
