//! The parsers' tests: every format, every kind of bad item, threads.

use super::csv::{field_start, record_end};
use super::errors::quote;
use super::json::{read_plain, ItemSeed, Raw};
use super::*;
use serde::de::DeserializeSeed;

const SH: Tz = chrono_tz::Asia::Shanghai;

fn ok(input: &str, format: Format) -> Batch {
    parse(input.as_bytes(), format, SH).unwrap_or_else(|e| panic!("{e}"))
}

fn err(input: &[u8], format: Format) -> ParseError {
    match parse(input, format, SH) {
        Ok(b) => panic!("accepted {} readings", b.len()),
        Err(e) => e,
    }
}

/// The only error of a rejected input.
fn only(input: &str, format: Format) -> ItemError {
    let e = err(input.as_bytes(), format);
    assert_eq!((e.total, e.errors.len()), (1, 1), "{e}");
    e.errors[0].clone()
}

/// The English part of a message (`中文 / English`).
fn en(message: &str) -> &str {
    message
        .split_once(" / ")
        .unwrap_or_else(|| panic!("no Chinese first: {message}"))
        .1
}

fn t(s: &str) -> Millis {
    parse_time(s, SH).unwrap()
}

fn labels(b: &Batch, i: usize) -> Vec<(&str, &str)> {
    let key = &b.series[b.points[i].series as usize];
    key.labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

fn metric(b: &Batch, i: usize) -> &str {
    &b.series[b.points[i].series as usize].metric
}

// ---- good input ----

#[test]
fn json_object() {
    let b = ok(
        r#"{"metric":"pm25","value":48.2,"time":"2021-03-01T10:00:00+08:00","labels":{"county":"南宫"}}"#,
        Format::Json,
    );
    assert_eq!(b.len(), 1);
    assert_eq!(metric(&b, 0), "pm25");
    assert_eq!(b.points[0].value, 48.2);
    assert_eq!(b.points[0].time, t("2021-03-01T10:00:00+08:00"));
    assert_eq!(labels(&b, 0), [("county", "南宫")]);
}

#[test]
fn json_array_with_local_times_and_integers() {
    let b = ok(
        r#"[
          {"metric":"pm25","value":48,"time":"2021-03-01T10:00","labels":{"county":"南宫","station":"s1"}},
          {"labels":{"station":"s1","county":"南宫"},"time":"2021-03-01","value":-1.5e2,"metric":"pm25"},
          {"metric":"gdp_growth","value":6.5,"time":"2021-03-01 09:00:00"},
          {"metric":"x","value":1,"time":"2021-03-01T00:00:00Z","labels":{}}
        ]"#,
        Format::Json,
    );
    assert_eq!(b.len(), 4);
    assert_eq!(b.points[0].time, t("2021-03-01T10:00:00+08:00"));
    assert_eq!(b.points[1].time, t("2021-03-01T00:00:00+08:00"));
    assert_eq!(b.points[2].time, t("2021-03-01T09:00:00+08:00"));
    assert_eq!(b.points[0].value, 48.0);
    assert_eq!(b.points[1].value, -150.0);
    assert_eq!(
        b.points[0].series, b.points[1].series,
        "label order does not matter"
    );
    assert_eq!(labels(&b, 0), [("county", "南宫"), ("station", "s1")]);
    assert!(labels(&b, 2).is_empty());
    assert_eq!(b.series.len(), 3);
}

#[test]
fn json_escapes_and_empty_label_values() {
    let b = ok(
        r#"{"metric":"p\u006d25","value":1,"time":"2021-03-01","labels":{"county":"南\"宫","station":""}}"#,
        Format::Json,
    );
    assert_eq!(metric(&b, 0), "pm25");
    assert_eq!(
        labels(&b, 0),
        [("county", "南\"宫")],
        "an empty value is no label"
    );
}

#[test]
fn ndjson_with_blank_lines_and_crlf() {
    let b = ok(
        "{\"metric\":\"pm25\",\"value\":57.3,\"time\":\"2026-09-28T04:00:00+08:00\",\"labels\":{\"county\":\"c0001\"}}\r\n\
         \r\n   \n\
         {\"metric\":\"pm25\",\"value\":50,\"time\":\"2026-09-28T05:00\",\"labels\":{\"county\":\"c0001\"}}\n",
        Format::Ndjson,
    );
    assert_eq!(b.len(), 2);
    assert_eq!(b.series.len(), 1);
    assert_eq!(b.points[1].time - b.points[0].time, crate::time::HOUR);
}

#[test]
fn csv_with_labels_quotes_and_local_times() {
    let b = ok(
        "\u{feff}value,metric,time,county,section\r\n\
         57.3,pm25,2026-09-28T04:00:00+08:00,c0001,\r\n\
         1e2,pm25,2026-09-28,\"c,0\"\"2\",\r\n\
         3,water_class,2026-09-28 08:00,,\"r\n1\"\r\n",
        Format::Csv,
    );
    assert_eq!(b.len(), 3);
    assert_eq!(labels(&b, 0), [("county", "c0001")]);
    assert_eq!(labels(&b, 1), [("county", "c,0\"2")]);
    assert_eq!(labels(&b, 2), [("section", "r\n1")]);
    assert_eq!(b.points[1].value, 100.0);
    assert_eq!(b.points[1].time, t("2026-09-28T00:00:00+08:00"));
    assert_eq!(b.points[2].time, t("2026-09-28T08:00:00+08:00"));
    assert_eq!(metric(&b, 2), "water_class");
}

#[test]
fn formats_agree_on_series() {
    let json = ok(
        r#"[{"metric":"pm25","value":1,"time":"2021-03-01","labels":{"county":"a","section":""}}]"#,
        Format::Json,
    );
    let csv = ok(
        "metric,time,value,county,section\npm25,2021-03-01,1,a,\n",
        Format::Csv,
    );
    assert_eq!(json.series, csv.series);
    assert_eq!(json.points, csv.points);
}

// ---- bad input: one test per case ----

#[test]
fn malformed_json_has_serde_position() {
    let e = only("[\n  {\"metric\":\"pm25\" \"value\":1}\n]", Format::Json);
    assert_eq!((e.line, e.col, e.item), (2, 20, None), "{e}");
    assert!(
        e.message.contains("malformed JSON: expected `,` or `}`"),
        "{e}"
    );

    let e = only("{\"metric\":\"南宫\" x}", Format::Json);
    assert_eq!((e.line, e.col), (1, 16), "columns count characters: {e}");

    let e = only(
        "[{\"metric\":\"a\",\"value\":1,\"time\":\"2021-03-01\"}",
        Format::Json,
    );
    assert!(e.message.contains("unexpected end of input"), "{e}");

    let e = only(
        "{\"metric\":\"a\",\"value\":1,\"time\":\"2021-03-01\"}\n{}",
        Format::Json,
    );
    assert_eq!((e.line, e.col), (2, 1), "{e}");
    assert!(en(&e.message).contains("NDJSON"), "hints at NDJSON: {e}");
}

#[test]
fn malformed_ndjson_line() {
    let input = "{\"metric\":\"a\",\"value\":1,\"time\":\"2021-03-01\"}\n{\"metric\":\"a\",,}\n";
    let e = only(input, Format::Ndjson);
    assert_eq!((e.line, e.col, e.item), (2, 15, Some(1)), "{e}");
    assert!(en(&e.message).starts_with("malformed JSON"), "{e}");
}

#[test]
fn value_not_a_number() {
    let e = only(
        r#"{"metric":"a","value":"abc","time":"2021-03-01"}"#,
        Format::Json,
    );
    assert_eq!(en(&e.message), "value `abc` is not a number");
    assert_eq!((e.line, e.col), (1, 23), "points at the value: {e}");
    let e = only(
        r#"{"metric":"a","value":"57.3","time":"2021-03-01"}"#,
        Format::Json,
    );
    assert!(
        en(&e.message).contains("is a string, not a number: write it without quotes"),
        "{e}"
    );
    let e = only(
        r#"{"metric":"a","value":null,"time":"2021-03-01"}"#,
        Format::Ndjson,
    );
    assert_eq!(en(&e.message), "value must be a number, not `null`");
}

#[test]
fn value_not_finite() {
    let e = only(
        r#"{"metric":"a","value":NaN,"time":"2021-03-01"}"#,
        Format::Ndjson,
    );
    assert_eq!((e.line, e.col, e.item), (1, 23, Some(0)));
    assert!(
        en(&e.message).starts_with("`NaN` is not a finite number"),
        "{e}"
    );
    let e = only(
        r#"{"metric":"a","value":-Infinity,"time":"2021-03-01"}"#,
        Format::Ndjson,
    );
    assert!(
        en(&e.message).starts_with("`-Infinity` is not a finite number"),
        "{e}"
    );
    assert_eq!(e.col, 23);
    let e = only(
        r#"[{"metric":"a","value":1e400,"time":"2021-03-01"}]"#,
        Format::Json,
    );
    assert_eq!(en(&e.message), "number `1e400` is out of range");
    assert_eq!(
        (e.line, e.col, e.item),
        (1, 2, Some(0)),
        "element start: {e}"
    );
    let e = only("metric,time,value\na,2021-03-01,inf\n", Format::Csv);
    assert_eq!(en(&e.message), "value `inf` is not a finite number");
    let e = only("metric,time,value\na,2021-03-01,-1e999\n", Format::Csv);
    assert_eq!(en(&e.message), "value `-1e999` is out of range");
}

#[test]
fn missing_time() {
    let e = only(r#"{"metric":"a","value":1}"#, Format::Json);
    assert_eq!(en(&e.message), "missing `time`");
    let e = only(r#"{"value":1}"#, Format::Json);
    assert_eq!(en(&e.message), "missing `metric` and `time`");
    let e = only("metric,time,value\na,,1\n", Format::Csv);
    assert_eq!((e.line, e.col, e.item), (2, 3, Some(0)), "{e}");
    assert_eq!(en(&e.message), "missing `time`");
}

#[test]
fn bad_time() {
    let e = only(
        r#"{"metric":"a","value":1,"time":"2021-13-01"}"#,
        Format::Ndjson,
    );
    assert!(
        en(&e.message).starts_with("bad time `2021-13-01`: expected RFC 3339"),
        "{e}"
    );
    assert_eq!(e.col, 32);
    let e = only(
        r#"{"metric":"a","value":1,"time":1614560400}"#,
        Format::Json,
    );
    assert!(en(&e.message).starts_with("`time` must be a string"), "{e}");
    let e = parse(
        br#"{"metric":"a","value":1,"time":"2021-03-14T02:30"}"#,
        Format::Json,
        chrono_tz::America::New_York,
    )
    .unwrap_err();
    assert!(e.errors[0].message.contains("daylight-saving"), "{e}");
}

#[test]
fn missing_metric() {
    let e = only(
        "[{\"metric\":\"a\",\"value\":1,\"time\":\"2021-03-01\"},\n {\"value\":1,\"time\":\"2021-03-01\"}]",
        Format::Json,
    );
    assert_eq!((e.line, e.col, e.item), (2, 2, Some(1)), "{e}");
    assert_eq!(en(&e.message), "missing `metric`");
    let e = only(
        r#"{"metric":"","value":1,"time":"2021-03-01"}"#,
        Format::Json,
    );
    assert_eq!(en(&e.message), "metric name is empty");
}

#[test]
fn bad_metric_name() {
    let e = only(
        r#"{"metric":"pm-25","value":1,"time":"2021-03-01"}"#,
        Format::Ndjson,
    );
    assert_eq!(
        en(&e.message),
        "metric name `pm-25` is invalid: use letters, digits and `_`"
    );
    assert_eq!(e.col, 11);
    let e = only("metric,time,value\n2x,2021-03-01,1\n", Format::Csv);
    assert_eq!(
        en(&e.message),
        "metric name `2x` is invalid: it must not start with a digit"
    );
    assert_eq!((e.line, e.col), (2, 1));
}

#[test]
fn unknown_field() {
    let e = only(
        r#"{"metric":"a","valu":1,"time":"2021-03-01"}"#,
        Format::Ndjson,
    );
    assert_eq!(
        en(&e.message),
        "unknown field `valu` (did you mean `value`?); missing `value`"
    );
    assert_eq!(e.col, 15, "points at the key");
    let e = only(
        r#"{"metric":"a","value":1,"time":"2021-03-01","unit":"%"}"#,
        Format::Json,
    );
    assert!(
        en(&e.message).starts_with("unknown field `unit` (a reading has"),
        "{e}"
    );
    let e = only(
        r#"{"metric":"a","value":1,"value":2,"time":"2021-03-01"}"#,
        Format::Json,
    );
    assert_eq!(en(&e.message), "field `value` is given twice");
}

#[test]
fn label_value_not_a_string() {
    let e = only(
        r#"{"metric":"a","value":1,"time":"2021-03-01","labels":{"county":"x","year":2021}}"#,
        Format::Ndjson,
    );
    assert_eq!(
        en(&e.message),
        "label `year` must be a string, not a number"
    );
    assert_eq!(e.col, 68);
    let e = only(
        r#"{"metric":"a","value":1,"time":"2021-03-01","labels":["x"]}"#,
        Format::Json,
    );
    assert!(
        en(&e.message).starts_with("`labels` must be an object"),
        "{e}"
    );
}

#[test]
fn bad_label_name() {
    let e = only(
        r#"{"metric":"a","value":1,"time":"2021-03-01","labels":{"county name":"x"}}"#,
        Format::Ndjson,
    );
    assert_eq!(
        en(&e.message),
        "label name `county name` is invalid: use letters, digits and `_`"
    );
    assert_eq!(e.col, 55);
    let e = only(
        r#"{"metric":"a","value":1,"time":"2021-03-01","labels":{"a":"x","a":"y"}}"#,
        Format::Json,
    );
    assert_eq!(en(&e.message), "label `a` is given twice");
    let e = only(
        "metric,time,value,county-name\na,2021-03-01,1,x\n",
        Format::Csv,
    );
    assert_eq!((e.line, e.col, e.item), (1, 19, None));
    assert!(
        en(&e.message).starts_with("column name `county-name` is invalid"),
        "{e}"
    );
}

#[test]
fn not_utf8() {
    let mut input = b"metric,time,value,county\n".to_vec();
    input.extend_from_slice(b"pm25,2021-03-01,1,\xc4\xcf\xb9\xac\n"); // 南宫 in GBK
    let e = err(&input, Format::Csv);
    assert_eq!(e.total, 1, "one error per line: {e}");
    assert_eq!((e.errors[0].line, e.errors[0].col), (2, 19));
    assert!(e.errors[0].message.contains("byte 19 of the line"), "{e}");
    let e = err(b"\n\xe5\x8d\x97\xff\n", Format::Ndjson);
    assert_eq!((e.errors[0].line, e.errors[0].col), (2, 2));
    assert!(
        e.errors[0]
            .message
            .contains("byte 4 of the line is `\\xFF`"),
        "{e}"
    );
}

#[test]
fn no_readings() {
    for (input, format) in [
        ("", Format::Json),
        ("  \n\t", Format::Ndjson),
        ("\n\n", Format::Ndjson),
        ("[]", Format::Json),
        (" [ ] ", Format::Json),
        ("metric,time,value,county\n", Format::Csv),
        ("metric,time,value\n\n", Format::Csv),
        ("", Format::Csv),
    ] {
        let e = only(input, format);
        assert_eq!(e.message, super::errors::NO_READINGS, "{input:?}");
    }
}

#[test]
fn csv_missing_value_column() {
    let e = only("metric,time,county\na,2021-03-01,x\n", Format::Csv);
    assert_eq!(e.line, 1);
    assert!(en(&e.message).starts_with("missing column `value`"), "{e}");
    let e = only("metric,time,Value\na,2021-03-01,1\n", Format::Csv);
    assert!(
        en(&e.message).contains("case-sensitive: found `Value`"),
        "{e}"
    );
    let e = only("metric,time,value,time\n", Format::Csv);
    assert_eq!((e.line, e.col), (1, 19));
    assert_eq!(en(&e.message), "column `time` appears twice");
}

#[test]
fn csv_wrong_field_count() {
    let e = only(
        "metric,time,value,county\na,2021-03-01,1,x\na,2021-03-02,1\n",
        Format::Csv,
    );
    assert_eq!((e.line, e.col, e.item), (3, 1, Some(1)), "{e}");
    assert_eq!(en(&e.message), "row has 3 fields but the header has 4");
    let e = only(
        "metric,time,value,note\nm,2021-03-01,x,\"a\nb\"\n",
        Format::Csv,
    );
    assert_eq!(en(&e.message), "value `x` is not a number");
    assert_eq!(quote("a\nb"), "`a\\nb`", "an error stays on one line");
    assert_eq!(quote(&"x".repeat(61)).chars().count(), 62);
}

#[test]
fn csv_value_not_a_number() {
    let e = only(
        "metric,time,value\n\na,2021-03-01,1\na,2021-03-02,\"1,5\"\n",
        Format::Csv,
    );
    assert_eq!((e.line, e.col, e.item), (4, 14, Some(1)), "{e}");
    assert_eq!(en(&e.message), "value `1,5` is not a number");
}

#[test]
fn csv_quoted_newline_keeps_lines_right() {
    let e = only(
        "metric,time,value,note\na,2021-03-01,1,\"two\nlines\"\nb-1,2021-03-01,1,x\n",
        Format::Csv,
    );
    assert_eq!((e.line, e.col, e.item), (4, 1, Some(1)), "{e}");
}

#[test]
fn not_an_object() {
    let e = only("[1]", Format::Json);
    assert_eq!(en(&e.message), "a reading must be an object, not a number");
    let e = only("\"x\"", Format::Json);
    assert!(
        en(&e.message).starts_with("expected a reading object"),
        "{e}"
    );
}

#[test]
fn every_bad_item_is_reported_and_nothing_returned() {
    let input = [
        r#"{"metric":"a","value":1,"time":"2021-03-01"}"#,
        r#"{"metric":"a","value":"x","time":"2021-03-01"}"#,
        r#"{"metric":"a","value":1,"time":"2021-03-01"}"#,
        r#"{"metric":"a b","value":1,"time":"nope"}"#,
        r#"{"metric":"a","value":1"#,
    ]
    .join("\n");
    let e = err(input.as_bytes(), Format::Ndjson);
    assert_eq!(e.total, 3);
    let at: Vec<_> = e.errors.iter().map(|e| (e.line, e.item)).collect();
    assert_eq!(at, [(2, Some(1)), (4, Some(3)), (5, Some(4))]);
    assert!(
        e.errors[1].message.contains("bad time `nope`")
            && e.errors[1].message.contains("metric name `a b` is invalid"),
        "all problems of an item: {e}"
    );
    assert_eq!(
        e.to_string().lines().next().unwrap(),
        "2:23: 第2项：数值 `x` 不是数，请填写数字（如 `48`、`4.5`） / value `x` is not a number"
    );
}

#[test]
fn errors_are_capped_and_counted() {
    let mut input = String::from("metric,time,value\n");
    for _ in 0..250 {
        input.push_str("a,2021-03-01,x\n");
    }
    let e = err(input.as_bytes(), Format::Csv);
    assert_eq!((e.errors.len(), e.total), (MAX_ERRORS, 250));
    assert_eq!(e.errors[99].line, 101);
    assert!(e
        .to_string()
        .ends_with("… 另有 150 处错误未列出 / and 150 more"));
}

/// NDJSON of `n` readings, with bad ones at the given indices.
fn ndjson(n: usize, bad: &[usize]) -> String {
    let mut s = String::new();
    for i in 0..n {
        let value = if bad.contains(&i) { "\"bad\"" } else { "1.5" };
        s.push_str(&format!(
            "{{\"metric\":\"pm25\",\"value\":{value},\"time\":\"2026-09-28T{:02}:00:00+08:00\",\"labels\":{{\"county\":\"c{:04}\"}}}}\n",
            i / 100 % 24,
            i % 100
        ));
        if i % 7 == 0 {
            s.push('\n');
        }
    }
    s
}

#[test]
fn threads_keep_order_lines_and_items() {
    let input = ndjson(3000, &[]);
    let one = parse_on(input.as_bytes(), Format::Ndjson, SH, Some(1), None).unwrap();
    let three = parse_on(input.as_bytes(), Format::Ndjson, SH, Some(3), None).unwrap();
    assert_eq!(one.len(), 3000);
    assert_eq!(one.series.len(), 100);
    let flat = |b: &Batch| -> Vec<_> {
        b.points
            .iter()
            .map(|p| (b.series[p.series as usize].clone(), p.time, p.value))
            .collect()
    };
    assert_eq!(flat(&one), flat(&three));

    let input = ndjson(3000, &[5, 2999]);
    let one = parse_on(input.as_bytes(), Format::Ndjson, SH, Some(1), None).unwrap_err();
    let three = parse_on(input.as_bytes(), Format::Ndjson, SH, Some(3), None).unwrap_err();
    assert_eq!(one, three);
    assert_eq!(one.errors[1].item, Some(2999));
    assert_eq!(one.errors[1].line, 2999 + 1 + 2999_usize.div_ceil(7));
}

#[test]
fn threads_for_csv_and_json_arrays() {
    let mut csv = String::from("metric,time,value,note\n");
    for i in 0..2000 {
        let note = if i % 3 == 0 { "\"a\nb\"" } else { "x" };
        let value = if i == 1500 { "y" } else { "2" };
        csv.push_str(&format!("m,2021-03-01,{value},{note}\n"));
    }
    let one = parse_on(csv.as_bytes(), Format::Csv, SH, Some(1), None).unwrap_err();
    let four = parse_on(csv.as_bytes(), Format::Csv, SH, Some(4), None).unwrap_err();
    assert_eq!(one, four);
    assert_eq!(one.errors[0].item, Some(1500));
    assert_eq!(one.errors[0].line, 2 + 1500 + 500);

    let items: Vec<String> = (0..1000)
        .map(|i| {
            let metric = if i == 700 { "7x" } else { "m" };
            format!("{{\"metric\":\"{metric}\",\n\"value\":{i},\"time\":\"2021-03-01\"}}")
        })
        .collect();
    let json = format!("[{}]", items.join(",\n"));
    let one = parse_on(json.as_bytes(), Format::Json, SH, Some(1), None).unwrap_err();
    let three = parse_on(json.as_bytes(), Format::Json, SH, Some(3), None).unwrap_err();
    assert_eq!(one, three);
    assert_eq!((one.errors[0].item, one.errors[0].line), (Some(700), 1401));
    let json = json.replace("7x", "m7");
    let three = parse_on(json.as_bytes(), Format::Json, SH, Some(3), None).unwrap();
    assert!(three
        .points
        .iter()
        .enumerate()
        .all(|(i, p)| p.value == i as f64));
}

#[test]
fn plain_reader_agrees_with_serde() {
    let serde = |text: &str| {
        let mut raw = Raw::default();
        let mut de = serde_json::Deserializer::from_str(text);
        let not_object = ItemSeed(&mut raw).deserialize(&mut de).unwrap();
        de.end().unwrap();
        assert!(not_object.is_none());
        format!("{raw:?}")
    };
    let plain = |text: &str| {
        let mut raw = Raw::default();
        read_plain(text, &mut raw).then(|| format!("{raw:?}"))
    };
    let line = r#"{"metric":"pm25","value":57.3,"time":"2026-09-28T04:00:00+08:00","labels":{"county":"c0001"}}"#;
    assert_eq!(plain(line).as_deref(), Some(serde(line).as_str()));
    let spaced = " {\t\"labels\" : { \"a\" : \"南宫\" , \"b\":\"\" } ,\r\n \"time\":\"t\", \"value\" : -0 , \"metric\":\"m\" } ";
    assert_eq!(plain(spaced), Some(serde(spaced)));
    for number in [
        "0",
        "-0",
        "-0.0",
        "1e5",
        "1E+5",
        "-2.5e-3",
        "0.1",
        "57.3",
        "3.141592653589793",
        "1e-7",
        "9007199254740993",
        "18446744073709551615",
        "-9223372036854775808",
        "1.7976931348623157e308",
        "5e-324",
    ] {
        let text = format!(r#"{{"value":{number},"labels":{{}}}}"#);
        assert_eq!(plain(&text), Some(serde(&text)), "{number}");
    }
    for not_plain in [
        r#"{"metric":"a\"b"}"#,
        r#"{"metric":"a","valu":1}"#,
        r#"{"metric":"a","metric":"b"}"#,
        r#"{"labels":null}"#,
        r#"{"labels":{"a":1}}"#,
        r#"{"value":"1"}"#,
        r#"{"value":NaN}"#,
        r#"{"value":01}"#,
        r#"{"value":1.}"#,
        r#"{"value":.5}"#,
        r#"{"value":+1}"#,
        r#"{"value":1e}"#,
        r#"{"value":1e400}"#,
        r#"{"value":1,}"#,
        r#"{"value":1} x"#,
        r#"{}"#,
        r#"[]"#,
        "{\"metric\":\"a\tb\"}",
    ] {
        assert_eq!(plain(not_plain), None, "{not_plain}");
    }
}

#[test]
fn quoting_cuts() {
    let b = b"a,\"x\ny\",c\nd,e\"f,g\n";
    assert_eq!(csv_cut(b, 0, 3), Some(10), "not inside the quotes");
    assert_eq!(
        csv_cut(b, 0, 12),
        Some(18),
        "a quote inside a field is literal"
    );
    assert_eq!(record_end(b, 0), 10);
    assert_eq!(field_start(b, 0, 2), 8);
    assert_eq!(field_start(b, 10, 2), 16);
}

// ---- found by fuzzing the HTTP ingest (issue 11) ----

#[test]
fn csv_header_ending_with_a_lone_cr_keeps_every_row() {
    // The csv crate ends the header at the CR: the rows before the first LF
    // were silently lost (2 readings stored, 200 answered).
    let b = ok(
        "metric,time,value\rpm25,2026-09-28,1\rpm25,2026-09-29,2\npm25,2026-09-30,3\n",
        Format::Csv,
    );
    assert_eq!(b.len(), 3);
    assert_eq!(
        b.points.iter().map(|p| p.value).collect::<Vec<_>>(),
        [1.0, 2.0, 3.0]
    );
    assert_eq!(record_end(b"a,b\rc\n", 0), 4);
    assert_eq!(record_end(b"a,b\r\nc\n", 0), 5);
    assert_eq!(record_end(b"\"a\rb\",c\rd", 0), 8);
}

#[test]
fn csv_lone_cr_then_a_quoted_newline_is_cut_right_on_threads() {
    // A row ending in a lone CR, the next one's first field quoted with a
    // newline inside: the parallel splitter took the quote as literal and
    // cut inside it, so a valid file over 1 MiB was refused.
    let mut input = String::from("county,metric,time,value\n");
    let mut n = 0;
    while input.len() < (1 << 20) + 4096 {
        input.push_str(&format!("c{n},pm25,2026-09-28,{n}\r"));
        input.push_str(&format!("\"c{n}\nx\",pm25,2026-09-28,{n}\n"));
        n += 1;
    }
    let one = parse_on(input.as_bytes(), Format::Csv, SH, Some(1), None)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(one.len(), 2 * n);
    for threads in [2, 3, 4] {
        let many = parse_on(input.as_bytes(), Format::Csv, SH, Some(threads), None)
            .unwrap_or_else(|e| panic!("{threads} threads: {e}"));
        assert_eq!(many.len(), one.len());
        assert_eq!(many.series, one.series);
    }
    assert_eq!(labels(&one, 1), [("county", "c0\nx")]);
}

// ---- found by the fuzz targets (fuzz/, issue 11) ----

#[test]
fn csv_byte_order_mark_inside_is_data_on_any_number_of_threads() {
    // The csv crate skips a mark at the start of what it reads, and the
    // rows after the header and each piece cut for threads are read
    // separately: a row starting with a mark was read without it there
    // (accepted as `pm25`) and with it anywhere else (a bad metric name),
    // so one file's answer depended on where the cuts fell.
    let bad_metric = "metric name `\u{feff}pm25` is invalid: use letters, digits and `_`";
    let first_row = "metric,time,value\n\u{feff}pm25,2021-03-01,1\npm25,2021-03-02,2\n";
    for threads in [1, 2, 3] {
        let e = parse_on(first_row.as_bytes(), Format::Csv, SH, Some(threads), None).unwrap_err();
        assert_eq!(en(&e.errors[0].message), bad_metric, "{threads} threads");
        assert_eq!(
            (e.errors[0].line, e.errors[0].col, e.errors[0].item),
            (2, 1, Some(0))
        );
    }
    let mut input = String::from("metric,time,value,site\n");
    for n in 0..30 {
        let mark = if n % 7 == 3 { "\u{feff}" } else { "" };
        input.push_str(&format!("{mark}pm25,2021-03-01,{n},s{n}\n"));
    }
    let one = parse_on(input.as_bytes(), Format::Csv, SH, Some(1), None).unwrap_err();
    assert_eq!(one.total, 4, "{one}");
    assert_eq!((one.errors[0].line, one.errors[0].col), (5, 1));
    for threads in 2..=8 {
        let many = parse_on(input.as_bytes(), Format::Csv, SH, Some(threads), None).unwrap_err();
        assert_eq!(many, one, "{threads} threads");
    }
    // At the input's start a mark is skipped (spreadsheets write one); after
    // blank lines it is part of the header, as the csv crate reads the file.
    assert_eq!(
        ok(
            "\u{feff}metric,time,value\npm25,2021-03-01,1\n",
            Format::Csv
        )
        .len(),
        1
    );
    let e = err(
        "\n\u{feff}metric,time,value\npm25,2021-03-01,1\n".as_bytes(),
        Format::Csv,
    );
    assert!(e.to_string().contains("missing column `metric`"), "{e}");
}

#[test]
fn names_and_label_values_have_length_limits() {
    use crate::readings::model::{MAX_LABELS, MAX_LABEL_VALUE_BYTES, MAX_NAME_BYTES};
    let long_value = "x".repeat(MAX_LABEL_VALUE_BYTES + 1);
    let ok_value = "县".repeat(MAX_LABEL_VALUE_BYTES / 3);
    let b = ok(
        &format!("{{\"metric\":\"pm25\",\"value\":1,\"time\":\"2021-03-01\",\"labels\":{{\"county\":\"{ok_value}\"}}}}"),
        Format::Ndjson,
    );
    assert_eq!(b.len(), 1);
    let e = only(
        &format!("{{\"metric\":\"pm25\",\"value\":1,\"time\":\"2021-03-01\",\"labels\":{{\"county\":\"{long_value}\"}}}}"),
        Format::Ndjson,
    );
    assert!(e.message.contains("label `county` value"), "{}", e.message);
    assert!(
        e.message
            .contains(&format!("at most {MAX_LABEL_VALUE_BYTES}")),
        "{}",
        e.message
    );
    let e = only(
        &format!("metric,time,value,county\npm25,2021-03-01,1,{long_value}\n"),
        Format::Csv,
    );
    assert!(e.message.contains("too long"), "{}", e.message);
    assert_eq!((e.line, e.col), (2, 19));
    let long_name = "m".repeat(MAX_NAME_BYTES + 1);
    let e = only(
        &format!("{{\"metric\":\"{long_name}\",\"value\":1,\"time\":\"2021-03-01\"}}"),
        Format::Ndjson,
    );
    assert!(e.message.contains("metric name"), "{}", e.message);
    assert!(e.message.contains("too long"), "{}", e.message);
    let e = err(
        format!("metric,time,value,{long_name}\npm25,2021-03-01,1,a\n").as_bytes(),
        Format::Csv,
    );
    assert!(e.errors[0].message.contains("column name"), "{e}");
    let many: Vec<String> = (0..=MAX_LABELS)
        .map(|i| format!("\"l{i}\":\"v\""))
        .collect();
    let e = only(
        &format!(
            "{{\"metric\":\"pm25\",\"value\":1,\"time\":\"2021-03-01\",\"labels\":{{{}}}}}",
            many.join(",")
        ),
        Format::Ndjson,
    );
    assert!(
        e.message
            .contains(&format!("at most {MAX_LABELS} per reading")),
        "{}",
        e.message
    );
}

#[test]
fn json_arrays_are_cut_without_noting_every_element() {
    // A large array of bare numbers kept 16 bytes per 2-byte element while
    // parsed (a 60 MiB body peaked at 556 MiB): only the cuts are kept now.
    let n = 200_000;
    let input = format!(
        "[{}]",
        (0..n)
            .map(|i| (i % 10).to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    let (count, cuts) = super::json::split_array(input.as_bytes(), 0, 4).unwrap();
    assert_eq!(count, n);
    assert_eq!(cuts.len(), 4);
    assert_eq!(cuts[0], (1, 0));
    for threads in [1, 3] {
        let e = parse_on(input.as_bytes(), Format::Json, SH, Some(threads), None).unwrap_err();
        assert_eq!(e.total, n);
        assert_eq!(e.errors.len(), MAX_ERRORS);
        assert_eq!(e.errors[1].item, Some(1));
        assert_eq!(e.errors[1].col, 4);
    }
    // Elements in every piece are numbered and read right.
    let items: Vec<String> = (0..3000)
        .map(|i| {
            format!(
                r#"{{"metric":"m","value":{i},"time":"2021-03-01","labels":{{"k":"{}"}}}}"#,
                i % 7
            )
        })
        .collect();
    let input = format!("[ {} ]", items.join(" ,\n "));
    let one = parse_on(input.as_bytes(), Format::Json, SH, Some(1), None).unwrap();
    let four = parse_on(input.as_bytes(), Format::Json, SH, Some(4), None).unwrap();
    assert_eq!(one.len(), 3000);
    assert_eq!(
        one.points.iter().map(|p| p.value).collect::<Vec<_>>(),
        four.points.iter().map(|p| p.value).collect::<Vec<_>>()
    );
    assert_eq!(one.series, four.series);
}

#[test]
fn a_reading_repeated_with_its_value_is_kept_once() {
    let csv = "metric,time,value,county\npm25,2021-03-01,1,南宫\npm25,2021-03-01,2,清河\npm25,2021-03-01,1,南宫\n";
    let b = ok(csv, Format::Csv);
    assert_eq!(b.len(), 2);
    let nd = "{\"metric\":\"a\",\"value\":1,\"time\":\"2021-03-01\"}\n{\"metric\":\"a\",\"value\":1.0,\"time\":\"2021-03-01T00:00:00+08:00\"}\n";
    assert_eq!(ok(nd, Format::Ndjson).len(), 1);
}

#[test]
fn two_values_for_one_series_and_time_name_both_places() {
    // CSV: a blank line and a quoted line break between them; lines count the header.
    let csv = "metric,time,value,county\npm25,2021-03-01,1,南宫\n\npm25,2021-03-02,5,\"清\n河\"\npm25,2021-03-01,2,南宫\n";
    let e = only(csv, Format::Csv);
    assert_eq!((e.line, e.item), (6, Some(2)), "{e}");
    assert!(
        e.message.starts_with("与第2行（第1项）重复")
            && e.message
                .contains("repeats line 2 (item 1): two different values (1 and 2)"),
        "{e}"
    );
    assert!(e.to_string().starts_with("6: 第3项：与第2行"), "{e}");

    let nd = "\n{\"metric\":\"a\",\"value\":1,\"time\":\"2021-03-01\"}\n{\"metric\":\"b\",\"value\":1,\"time\":\"2021-03-01\"}\n{\"metric\":\"a\",\"value\":3,\"time\":\"2021-03-01\"}\n";
    let e = only(nd, Format::Ndjson);
    assert_eq!((e.line, e.item), (4, Some(2)), "{e}");
    assert!(e.message.contains("repeats line 2 (item 1)"), "{e}");

    let json = "[\n {\"metric\":\"a\",\"value\":1,\"time\":\"2021-03-01\"},\n {\"metric\":\"a\",\"value\":2,\"time\":\"2021-03-01\"}\n]";
    let e = only(json, Format::Json);
    assert_eq!((e.line, e.item), (3, Some(1)), "{e}");
    assert!(e.message.contains("与第2行（第1项）重复"), "{e}");
}

#[test]
fn a_piece_of_a_larger_input_names_the_inputs_places() {
    let nd = "{\"metric\":\"a\",\"value\":1,\"time\":\"2021-03-01\"}\n{\"metric\":\"a\",\"value\":2,\"time\":\"2021-03-01\"}\n";
    let before = Before {
        lines: 10,
        items: 7,
    };
    let e = parse_at(nd.as_bytes(), Format::Ndjson, SH, before).unwrap_err();
    assert_eq!((e.errors[0].line, e.errors[0].item), (12, Some(8)));
    assert!(
        e.errors[0].message.contains("line 11 (item 8)"),
        "{}",
        e.errors[0]
    );
    let bad = "{\"metric\":\"a\",\"value\":\"x\",\"time\":\"2021-03-01\"}\n";
    let e = parse_at(bad.as_bytes(), Format::Ndjson, SH, before).unwrap_err();
    assert_eq!((e.errors[0].line, e.errors[0].item), (11, Some(7)));
    assert!(
        e.errors[0].to_string().starts_with("11:"),
        "{}",
        e.errors[0]
    );
}

/// What an official reads for each kind of bad reading: Chinese first,
/// then English, with line:col and item. One snapshot of the whole table, so
/// a change of words is reviewed.
#[test]
fn words_of_every_problem() {
    let cases: &[(&str, Format, &str)] = &[
        ("value not a number (CSV)", Format::Csv, "metric,time,value\npm25,2021-03-01,abc\n"),
        ("value quoted (JSON)", Format::Json, r#"{"metric":"pm25","value":"57.3","time":"2021-03-01"}"#),
        ("value null", Format::Json, r#"{"metric":"pm25","value":null,"time":"2021-03-01"}"#),
        ("value infinite", Format::Csv, "metric,time,value\npm25,2021-03-01,inf\n"),
        ("value NaN (JSON)", Format::Ndjson, r#"{"metric":"pm25","value":NaN,"time":"2021-03-01"}"#),
        ("number out of range", Format::Json, r#"[{"metric":"pm25","value":1e400,"time":"2021-03-01"}]"#),
        ("bad time", Format::Csv, "metric,time,value\npm25,2021/03/01,48\n"),
        ("empty time", Format::Csv, "metric,time,value\npm25,,48\n"),
        ("time a number", Format::Json, r#"{"metric":"pm25","value":1,"time":1614560400}"#),
        ("missing fields", Format::Json, r#"{"value":1}"#),
        ("unknown field, near", Format::Ndjson, r#"{"metric":"a","valu":1,"time":"2021-03-01"}"#),
        ("unknown field, far", Format::Json, r#"{"metric":"a","value":1,"time":"2021-03-01","unit":"%"}"#),
        ("field twice", Format::Json, r#"{"metric":"a","value":1,"value":2,"time":"2021-03-01"}"#),
        ("bad metric name", Format::Ndjson, r#"{"metric":"pm-25","value":1,"time":"2021-03-01"}"#),
        ("metric starts with a digit", Format::Csv, "metric,time,value\n2x,2021-03-01,1\n"),
        ("bad label name", Format::Ndjson, r#"{"metric":"a","value":1,"time":"2021-03-01","labels":{"county name":"x"}}"#),
        ("label not a string", Format::Ndjson, r#"{"metric":"a","value":1,"time":"2021-03-01","labels":{"year":2021}}"#),
        ("labels not an object", Format::Json, r#"{"metric":"a","value":1,"time":"2021-03-01","labels":["x"]}"#),
        ("not an object", Format::Json, "[1]"),
        ("not a reading at all", Format::Json, "\"x\""),
        ("malformed JSON", Format::Ndjson, "{\"metric\":\"a\",,}"),
        ("JSON cut short", Format::Json, "[{\"metric\":\"a\""),
        ("two objects in a .json", Format::Json, "{\"metric\":\"a\",\"value\":1,\"time\":\"2021-03-01\"}\n{\"metric\":\"a\",\"value\":1,\"time\":\"2021-03-02\"}\n"),
        ("CSV missing column, case", Format::Csv, "metric,time,Value\na,2021-03-01,1\n"),
        ("CSV column twice", Format::Csv, "metric,time,value,time\n"),
        ("CSV column without a name", Format::Csv, "metric,time,value,\na,2021-03-01,1,x\n"),
        ("CSV bad column name", Format::Csv, "metric,time,value,county-name\na,2021-03-01,1,x\n"),
        ("CSV row too short", Format::Csv, "metric,time,value,county\na,2021-03-01,1\n"),
        ("not UTF-8", Format::Csv, "metric,time,value,county\npm25,2021-03-01,1,\u{0}\n"),
        ("empty", Format::Csv, ""),
        ("several problems of one item", Format::Ndjson, r#"{"metric":"a b","value":1,"time":"nope"}"#),
    ];
    let mut out = String::new();
    for (name, format, input) in cases {
        let mut bytes = input.as_bytes().to_vec();
        if *name == "not UTF-8" {
            bytes = b"metric,time,value,county\npm25,2021-03-01,1,\xc4\xcf\xb9\xac\n".to_vec();
        }
        let e = err(&bytes, *format);
        out.push_str(&format!("## {name}\n{e}\n\n"));
    }
    insta::assert_snapshot!(out);
}

/// Series are looked up first as the one after the last reading's (data
/// repeats its series in one order at every time); any other order, a
/// repeat of the same series, or a series that differs only in a label
/// must still find the right one.
#[test]
fn series_found_in_any_order() {
    let mut csv = String::from("metric,time,value,county\n");
    let rows = [
        ("pm25", "a"),
        ("pm25", "b"),
        ("pm25", "c"),
        ("pm25", "a"),
        ("pm25", "b"),
        ("pm25", "c"),
        ("pm25", "c"),
        ("pm10", "a"),
        ("pm25", "b"),
        ("pm25", "a"),
        ("pm25", ""),
        ("pm25", "a"),
    ];
    for (k, (m, c)) in rows.iter().enumerate() {
        csv.push_str(&format!("{m},2021-01-01T{k:02}:00:00Z,{k},{c}\n"));
    }
    let b = ok(&csv, Format::Csv);
    assert_eq!(b.len(), rows.len());
    for (p, (m, c)) in b.points.iter().zip(rows) {
        let key = &b.series[p.series as usize];
        assert_eq!(key.metric, m);
        assert_eq!(
            key.labels.get("county").map(String::as_str),
            (!c.is_empty()).then_some(c)
        );
    }
    assert_eq!(b.series.len(), 5);
}

// ---- series the store knows (parse_known) ----

/// The readings of `b` as (key, time, value).
fn readings_of(b: &Batch) -> Vec<(SeriesKey, Millis, f64)> {
    b.points
        .iter()
        .map(|p| ((*b.series[p.series as usize]).clone(), p.time, p.value))
        .collect()
}

fn label_map(pairs: &[(&str, &str)]) -> crate::readings::Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A store that knows pm25 {county: 南宫, station: a}, pm25 {county: é},
/// and pm25 {bad-name: x}: a label name parsers refuse, written straight
/// (as an older version or another tool might have).
fn store_knowing(path: &std::path::Path) -> crate::readings::store::Store {
    let store = crate::readings::store::Store::open(path).unwrap();
    let mut b = Batch::new();
    b.push(
        "pm25",
        label_map(&[("county", "南宫"), ("station", "a")]),
        0,
        1.0,
    );
    b.push("pm25", label_map(&[("county", "é")]), 0, 2.0);
    b.push("pm25", label_map(&[("bad-name", "x")]), 0, 3.0);
    store.write(&b).unwrap();
    store
}

/// The store id of the one series of pm25 with exactly `labels`.
fn id_of(store: &crate::readings::store::Store, labels: &[(&str, &str)]) -> i64 {
    let want = label_map(labels);
    let ids: Vec<i64> = store
        .with_series("pm25", &want, 0, |it| {
            it.filter(|s| *s.labels == want).map(|s| s.id).collect()
        })
        .unwrap();
    assert_eq!(ids.len(), 1, "{labels:?}");
    ids[0]
}

/// Known series are named by the store's id and key, however their labels
/// are written (order, spaces, escapes, empty values): the batch holds the
/// same readings and series as without the store, and writing it adds to
/// those series.
#[test]
fn known_series_are_found_however_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = store_knowing(&path);
    let known = store.known_series();
    assert_eq!(known.len(), 3);
    let nangong = id_of(&store, &[("county", "南宫"), ("station", "a")]);
    let e = id_of(&store, &[("county", "é")]);
    let ndjson = concat!(
        r#"{"metric":"pm25","value":1,"time":"2021-03-01T01:00:00Z","labels":{"county":"南宫","station":"a"}}"#,
        "\n",
        r#"{"metric":"pm25","value":2,"time":"2021-03-01T02:00:00Z","labels":{"station":"a","county":"\u5357\u5bab"}}"#,
        "\n",
        r#" { "time" : "2021-03-01T01:00:00Z" , "labels" : { "county" : "\u00e9" } , "value" : 3 , "metric" : "pm25" } "#,
        "\n",
        r#"{"metric":"pm25","value":4,"time":"2021-03-01T02:00:00Z","labels":{"county":"é","x":""}}"#,
        "\n",
        r#"{"metric":"pm25","value":5,"time":"2021-03-01T01:00:00Z","labels":{"county":"清河"}}"#,
        "\n",
        r#"{"metric":"pm25","value":6,"time":"2021-03-01T03:00:00Z","labels":{"county":"南宫","station":"a"}}"#,
        "\n",
    );
    let json = format!(
        "[{}]",
        ndjson.trim_end().lines().collect::<Vec<_>>().join(",\n")
    );
    let csv = "metric,time,value,county,station\n\
               pm25,2021-03-01T01:00:00Z,1,南宫,a\n\
               pm25,2021-03-01T01:00:00Z,3,é,\n\
               pm25,2021-03-01T01:00:00Z,5,清河,\n";
    // Columns out of name order: a series of two labels is found by key,
    // not by bytes; the same batch.
    let csv_unsorted = "metric,time,value,station,county\n\
               pm25,2021-03-01T01:00:00Z,1,a,南宫\n\
               pm25,2021-03-01T01:00:00Z,3,,é\n";
    let cases: [(&str, Format, Vec<Option<i64>>); 4] = [
        (
            ndjson,
            Format::Ndjson,
            vec![
                Some(nangong),
                Some(nangong),
                Some(e),
                Some(e),
                None,
                Some(nangong),
            ],
        ),
        (
            &json,
            Format::Json,
            vec![
                Some(nangong),
                Some(nangong),
                Some(e),
                Some(e),
                None,
                Some(nangong),
            ],
        ),
        (csv, Format::Csv, vec![Some(nangong), Some(e), None]),
        (csv_unsorted, Format::Csv, vec![None, Some(e)]),
    ];
    for (input, format, want) in cases {
        let plain = parse(input.as_bytes(), format, SH).unwrap();
        let fast = parse_known(input.as_bytes(), format, SH, &known).unwrap();
        assert_eq!(readings_of(&fast), readings_of(&plain), "{input}");
        assert_eq!(fast.series, plain.series, "{input}");
        let ids = fast
            .known_ids(known.tag())
            .expect("parsed against the store");
        let got: Vec<Option<i64>> = fast.points.iter().map(|p| ids[p.series as usize]).collect();
        assert_eq!(got, want, "{input}");
        assert!(plain.known_ids(known.tag()).is_none());
        // Cut into pieces on threads: the same again.
        for threads in [2, 3] {
            let cut = parse_on(input.as_bytes(), format, SH, Some(threads), Some(&known)).unwrap();
            assert_eq!(readings_of(&cut), readings_of(&plain), "{input}");
            let ids = cut.known_ids(known.tag()).unwrap();
            let got: Vec<Option<i64>> = cut.points.iter().map(|p| ids[p.series as usize]).collect();
            assert_eq!(got, want, "{input} on {threads} threads");
        }
    }
    // Written: the known series get the readings, one new series is made.
    let batch = parse_known(ndjson.as_bytes(), Format::Ndjson, SH, &known).unwrap();
    let staged = store.stage_many(&[&batch]).unwrap();
    let s = match staged {
        Some(s) => s[0],
        None => store.write_many(&[&batch], true).unwrap()[0],
    };
    assert_eq!((s.readings, s.new_series, s.new), (6, 1, 6));
    assert_eq!(known.len(), 4, "the new series is known now");
    let values = |labels: &[(&str, &str)]| -> Vec<f64> {
        let want = label_map(labels);
        store
            .with_series("pm25", &want, 0, |it| {
                it.filter(|s| *s.labels == want)
                    .flat_map(|s| s.range(0, i64::MAX).1.to_vec())
                    .collect()
            })
            .unwrap()
    };
    assert_eq!(
        values(&[("county", "南宫"), ("station", "a")]),
        [1.0, 1.0, 2.0, 6.0]
    );
    assert_eq!(values(&[("county", "é")]), [2.0, 3.0, 4.0]);
    assert_eq!(values(&[("county", "清河")]), [5.0]);
    // Reopened (or by another process): the same ids, known from the file.
    let again = crate::readings::store::Store::open(&path).unwrap();
    let known_again = again.known_series();
    assert_eq!(known_again.len(), 4);
    assert_ne!(known_again.tag(), known.tag());
    let b = parse_known(ndjson.as_bytes(), Format::Ndjson, SH, &known_again).unwrap();
    let ids = b.known_ids(known_again.tag()).unwrap();
    assert_eq!(ids[b.points[0].series as usize], Some(nangong));
    assert!(ids.iter().all(Option::is_some));
}

/// Ids found in one store's table mean nothing to another store: written
/// there, the batch's series are found by key.
#[test]
fn ids_of_another_store_are_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let a = store_knowing(&dir.path().join("a.db"));
    let e_in_a = id_of(&a, &[("county", "é")]);
    // In b, the same id is another series.
    let b = crate::readings::store::Store::open(&dir.path().join("b.db")).unwrap();
    let mut first = Batch::new();
    for (county, v) in [("清河", 9.0), ("巨鹿", 8.0), ("威县", 7.0)] {
        first.push("pm25", label_map(&[("county", county)]), 0, v);
    }
    b.write(&first).unwrap();
    let other = b
        .with_series("pm25", &crate::readings::Labels::new(), 0, |it| {
            it.filter(|s| s.id == e_in_a)
                .map(|s| s.labels.clone())
                .next()
        })
        .unwrap()
        .expect("b has a series with that id");
    let input =
        r#"{"metric":"pm25","value":7,"time":"2021-03-01T01:00:00Z","labels":{"county":"é"}}"#;
    let batch = parse_known(input.as_bytes(), Format::Ndjson, SH, &a.known_series()).unwrap();
    assert_eq!(
        batch.known_ids(a.known_series().tag()).unwrap()[0],
        Some(e_in_a)
    );
    assert!(batch.known_ids(b.known_series().tag()).is_none());
    let s = b.write_many(&[&batch], true).unwrap();
    assert_eq!((s[0].new_series, s[0].new), (1, 1));
    assert_ne!(id_of(&b, &[("county", "é")]), e_in_a);
    let untouched = b
        .with_series("pm25", &other, 0, |it| {
            it.flat_map(|s| s.range(0, i64::MAX).1.to_vec())
                .collect::<Vec<_>>()
        })
        .unwrap();
    assert_eq!(untouched.len(), 1, "{other:?}");
    // Staged the same way.
    let s = b.stage_many(&[&batch]).unwrap().expect("in memory: staged");
    assert_eq!((s[0].new_series, s[0].unchanged), (0, 1));
}

/// Whatever the store knows, a bad item is refused as without it, with the
/// same words and places: the table saves building keys, never checking.
#[test]
fn known_series_change_no_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_knowing(&dir.path().join("s.db"));
    let known = store.known_series();
    let good = r#"{"metric":"pm25","value":1,"time":"2021-03-01T01:00:00Z","labels":{"county":"南宫","station":"a"}}"#;
    let long = "长".repeat(400);
    let many: String = (0..70)
        .map(|i| format!(r#""l{i}":"v""#))
        .collect::<Vec<_>>()
        .join(",");
    let bad_labels = [
        r#"{"county":"南宫","station":"a","bad-x":"1"}"#.to_string(),
        r#"{"bad-name":"x"}"#.to_string(),
        r#"{"county":"南宫","county":"南宫","station":"a"}"#.to_string(),
        r#"{"county":"南宫","station":5}"#.to_string(),
        format!(r#"{{"county":"南宫","station":"{long}"}}"#),
        format!("{{{many}}}"),
    ];
    for labels in &bad_labels {
        for metric in ["pm25", "pm-25"] {
            let bad = format!(
                r#"{{"metric":"{metric}","value":2,"time":"2021-03-01T02:00:00Z","labels":{labels}}}"#
            );
            // After a good reading of a known series, and before one.
            for input in [
                format!("{good}\n{bad}\n"),
                format!("{bad}\n{good}\n{bad}\n"),
            ] {
                let plain = parse(input.as_bytes(), Format::Ndjson, SH).unwrap_err();
                let fast = parse_known(input.as_bytes(), Format::Ndjson, SH, &known).unwrap_err();
                assert_eq!(fast, plain, "{input}");
                let json = format!("[{}]", input.trim_end().replace('\n', ",\n"));
                let plain = parse(json.as_bytes(), Format::Json, SH).unwrap_err();
                let fast = parse_known(json.as_bytes(), Format::Json, SH, &known).unwrap_err();
                assert_eq!(fast, plain, "{json}");
            }
        }
    }
    // The series with a bad name the store holds is refused by name.
    let input =
        r#"{"metric":"pm25","value":2,"time":"2021-03-01T02:00:00Z","labels":{"bad-name":"x"}}"#;
    let e = parse_known(input.as_bytes(), Format::Ndjson, SH, &known).unwrap_err();
    assert!(e.errors[0].message.contains("bad-name"), "{e}");
    // CSV: a bad label name is a header error; a long value a cell's.
    let csv = format!(
        "metric,time,value,county,station\npm25,2021-03-01T01:00:00Z,1,南宫,a\npm25,2021-03-01T02:00:00Z,1,南宫,{long}\npm-25,2021-03-01T02:00:00Z,1,南宫,a\n"
    );
    let plain = parse(csv.as_bytes(), Format::Csv, SH).unwrap_err();
    let fast = parse_known(csv.as_bytes(), Format::Csv, SH, &known).unwrap_err();
    assert_eq!(fast, plain);
    assert_eq!(plain.total, 2, "{plain}");
}
