//! The compact series notation of rule test files: one value per step,
//! separated by spaces.
//!
//! | token        | means                                                        |
//! |--------------|--------------------------------------------------------------|
//! | `48`  `-1.5` | one reading                                                  |
//! | `55x3`       | three readings of 55                                          |
//! | `_`          | a step with no reading (a gap)                                |
//! | `_x4`        | four steps with no reading                                    |
//! | `10+2x4`     | four readings going up by 2: 10 12 14 16 (`10-2x4` goes down) |
//!
//! `xN` always means N steps, gaps included (unlike promtool's `a+bxN`,
//! which yields N+1 values): `"48 52 55x3 _ 60"` covers seven steps and
//! holds six readings.

/// Longest expansion one test series may have: a year of minutes, far more
/// than any test needs, small enough that a typo like `5x1000000000` fails
/// with a message instead of eating memory.
pub const MAX_STEPS: usize = 600_000;

/// Why a series could not be read: `offset` is the 0-based character column
/// of the bad token inside the string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesError {
    pub offset: usize,
    pub message: String,
}

impl std::fmt::Display for SeriesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}（第{}个字符）", self.message, self.offset + 1)
    }
}

/// Expands `text` into one entry per step: `Some(value)` or `None` for a gap.
pub fn parse_values(text: &str) -> Result<Vec<Option<f64>>, SeriesError> {
    let mut out = Vec::new();
    for (offset, token) in tokens(text) {
        let err = |message: String| SeriesError { offset, message };
        let (body, count) = match token.rfind(['x', 'X']) {
            Some(i) => {
                let n = &token[i + 1..];
                let count: usize = n.parse().map_err(|_| {
                    err(format!(
                        "`{token}` 的重复次数不对：`x` 后面要写整数，如 `55x3`（55 重复 3 次） / bad repeat count in `{token}`: `x` must be followed by a whole number, e.g. `55x3`"
                    ))
                })?;
                if count == 0 {
                    return Err(err(format!(
                        "`{token}` 重复 0 次：次数至少是 1 / `{token}` repeats zero times: use a count of 1 or more"
                    )));
                }
                (&token[..i], count)
            }
            None => (token, 1),
        };
        if out.len() + count > MAX_STEPS {
            return Err(err(format!(
                "数列写到 `{token}` 时超过了 {MAX_STEPS} 个值：测试用不了这么多，请减少 / the series grows past {MAX_STEPS} steps at `{token}`: a test needs far fewer"
            )));
        }
        if body == "_" {
            out.extend(std::iter::repeat_n(None, count));
            continue;
        }
        let (start, delta) = split_increment(body).ok_or_else(|| err(describe_bad(token, body)))?;
        if delta != 0.0 && body.len() == token.len() {
            return Err(err(format!(
                "`{token}` 写了递增量但没写个数：如 `{token}x4` 表示 4 个值 / `{token}` has a step but no count: write `{token}x4` for four values"
            )));
        }
        for k in 0..count {
            let v = start + delta * k as f64;
            if !v.is_finite() {
                return Err(err(format!(
                    "`{token}` 算出的值不是有限的数，请改小 / `{token}` gives a value that is not a finite number"
                )));
            }
            out.push(Some(v));
        }
    }
    Ok(out)
}

/// Whitespace-separated tokens with their character offsets.
fn tokens(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start: Option<(usize, usize)> = None; // (char offset, byte offset)
    for (ci, (bi, c)) in text.char_indices().enumerate() {
        if c.is_whitespace() {
            if let Some((co, bo)) = start.take() {
                out.push((co, &text[bo..bi]));
            }
        } else if start.is_none() {
            start = Some((ci, bi));
        }
    }
    if let Some((co, bo)) = start {
        out.push((co, &text[bo..]));
    }
    out
}

/// `10`, `-1.5`, `10+2`, `10-2`, `-3+0.5` → (start, step).
fn split_increment(body: &str) -> Option<(f64, f64)> {
    let number = |s: &str| -> Option<f64> {
        // Plain decimal numbers only: no `inf`, `nan`, hex or exponents, so
        // a typo is never read as a number by accident.
        let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
        let ok = !digits.is_empty()
            && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
            && digits.chars().filter(|&c| c == '.').count() <= 1
            && digits.chars().any(|c| c.is_ascii_digit());
        ok.then(|| s.parse::<f64>().ok()).flatten()
    };
    if let Some(v) = number(body) {
        return Some((v, 0.0));
    }
    // The operator is the first `+` or `-` after the first character.
    let i = body
        .char_indices()
        .skip(1)
        .find(|&(_, c)| c == '+' || c == '-')
        .map(|(i, _)| i)?;
    let start = number(&body[..i])?;
    let delta = number(&body[i + 1..])?;
    Some((start, if &body[i..=i] == "-" { -delta } else { delta }))
}

fn describe_bad(token: &str, body: &str) -> String {
    if body.is_empty() {
        format!("`{token}` 的 `x` 前面没有值：如 `55x3` 或 `_x3`（3 个空缺） / `{token}` has no value before `x`: write e.g. `55x3` or `_x3`")
    } else {
        format!(
            "`{token}` 不是值：请写数字（`48`、`4.5`），`_` 表示空缺，`55x3` 表示重复，`10+2x4` 表示递增 / `{token}` is not a value: use a number (`48`, `4.5`), `_` for a gap, `55x3` to repeat or `10+2x4` to count up"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(text: &str) -> Vec<Option<f64>> {
        parse_values(text).unwrap()
    }

    #[test]
    fn plain_values_repeats_and_gaps() {
        assert_eq!(
            vals("48 52 55x3 _ 60"),
            vec![
                Some(48.0),
                Some(52.0),
                Some(55.0),
                Some(55.0),
                Some(55.0),
                None,
                Some(60.0)
            ]
        );
        assert_eq!(vals("_x3 1"), vec![None, None, None, Some(1.0)]);
        assert_eq!(vals("  -1.5\t+2  "), vec![Some(-1.5), Some(2.0)]);
        assert_eq!(vals(""), Vec::<Option<f64>>::new());
        assert_eq!(vals("4.5x1"), vec![Some(4.5)]);
        assert_eq!(vals("0x2"), vec![Some(0.0), Some(0.0)]);
    }

    #[test]
    fn counting_up_and_down() {
        assert_eq!(
            vals("10+2x4"),
            vec![Some(10.0), Some(12.0), Some(14.0), Some(16.0)]
        );
        assert_eq!(vals("10-2.5x3"), vec![Some(10.0), Some(7.5), Some(5.0)]);
        assert_eq!(vals("-3+1x2"), vec![Some(-3.0), Some(-2.0)]);
    }

    #[test]
    fn bad_tokens_say_where() {
        let e = parse_values("48 5o 60").unwrap_err();
        assert_eq!(e.offset, 3);
        assert!(e.message.contains("`5o` is not a value"), "{}", e.message);

        let e = parse_values("1 2 55x").unwrap_err();
        assert_eq!(e.offset, 4);
        assert!(e.message.contains("repeat count"), "{}", e.message);

        let e = parse_values("1 55x0").unwrap_err();
        assert_eq!(e.offset, 2);
        assert!(e.message.contains("zero times"));

        let e = parse_values("1 10+2").unwrap_err();
        assert_eq!(e.offset, 2);
        assert!(e.message.contains("no count"), "{}", e.message);

        let e = parse_values("南宫 1").unwrap_err();
        assert_eq!(e.offset, 0);
        // Offsets count characters, not bytes.
        assert_eq!(parse_values("1 南宫").unwrap_err().offset, 2);
        assert_eq!(parse_values("1 x3").unwrap_err().offset, 2);
        for bad in ["inf", "nan", "1e3", "--1", "1..2", ".", "1+"] {
            assert!(parse_values(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn runaway_repeats_are_refused() {
        let e = parse_values("1 5x1000000000").unwrap_err();
        assert_eq!(e.offset, 2);
        assert!(e.message.contains("steps"));
    }
}
