use serde_json::json;

use super::*;

fn parse(text: &str) -> Result<Vec<Value>, Rejection> {
    parse_stream(text.as_bytes(), &YamlLimits::default(), Stream::PackageYaml)
}

#[test]
fn yaml_splits_with_the_parser_not_the_text() {
    let docs =
        parse("---\n---\na: 1\n...\n---\n# only a comment\n---\nb: |\n  ---\n  x\n---\n").unwrap();
    assert_eq!(docs, vec![json!({"a": 1}), json!({"b": "---\nx\n"})]);
}

#[test]
fn yaml_accepts_missing_leading_marker_and_trailing_newline() {
    assert_eq!(
        parse("a: 1\n---\nb: 2").unwrap(),
        vec![json!({"a": 1}), json!({"b": 2})]
    );
}

#[test]
fn yaml_duplicate_keys_last_wins() {
    assert_eq!(
        parse("a: 1\nb: 2\na: 3\n").unwrap(),
        vec![json!({"a": 3, "b": 2})]
    );
}

#[test]
fn yaml_scalars_convert_like_kubernetes() {
    let docs = parse(concat!(
        "int: 1\nfloat: 1.0\nexp: 1e3\nhex: 0x1F\noctal: 0755\nneg: -5\n",
        "big: 18446744073709551615\ninf: .inf\nnan: .nan\n",
        "ts: 2001-12-14t21:59:43.10-05:00\nyes: yes\nnull: ~\nquoted: 'true'\nstr: !!str 12\n",
        "text: \"é ünïcødé ✓\"\n",
    ))
    .unwrap();
    assert_eq!(
        docs[0],
        json!({
            "int": 1, "float": 1.0, "exp": 1000.0, "hex": 31, "octal": 493, "neg": -5,
            "big": 18446744073709551615u64, "inf": ".inf", "nan": ".nan",
            "ts": "2001-12-14t21:59:43.10-05:00", "true": true, "null": null, "quoted": "true",
            "str": "12", "text": "é ünïcødé ✓",
        })
    );
    assert!(docs[0]["float"].is_f64() && docs[0]["int"].is_u64());
}

#[test]
fn yaml_non_string_keys_become_strings() {
    // `y` is a YAML 1.1 boolean, as for Kubernetes.
    let docs = parse("1: a\ntrue: b\n~: c\n1.5: d\n? [x, y]\n: e\n").unwrap();
    assert_eq!(
        docs[0],
        json!({"1": "a", "true": "b", "null": "c", "1.5": "d", "[\"x\",true]": "e"})
    );
}

#[test]
fn yaml_anchors_and_merge_keys_expand_within_budget() {
    let docs = parse("base: &b {k: 1}\nuse: *b\nmerged:\n  <<: *b\n  j: 2\n").unwrap();
    assert_eq!(
        docs[0],
        json!({"base": {"k": 1}, "use": {"k": 1}, "merged": {"k": 1, "j": 2}})
    );
}

#[test]
fn yaml_invalid_reports_document_and_line() {
    let err = parse("a: 1\n---\n\n---\nb: [1, 2\n---\nc: 3\n").unwrap_err();
    let Rejection::InvalidYaml {
        stream,
        document,
        line,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(
        (*stream, *document, *line),
        (Stream::PackageYaml, 2, 5),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("package.yaml: invalid YAML in document 2 at line 5"),
        "{err}"
    );

    let err = parse("a: 1\n---\nb: 1\n  c: 2\n").unwrap_err();
    assert!(
        matches!(
            err,
            Rejection::InvalidYaml {
                document: 1,
                line: 4,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn yaml_rejects_non_utf8_with_position() {
    let err = parse_stream(
        b"a: 1\n---\nb: \xff\n",
        &YamlLimits::default(),
        Stream::ExamplesYaml,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Rejection::InvalidYaml {
                stream: Stream::ExamplesYaml,
                document: 1,
                line: 3,
                column: 4,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn yaml_rejects_a_nul_character_in_a_value_or_key_with_position() {
    // PostgreSQL refuses U+0000 in text and jsonb: caught here, with where, not at the database.
    for text in [
        "a: 1\n---\nb: \"x\\u0000y\"\n",
        "a: 1\n---\nb: \"\\0\"\n",
        "a: 1\n---\n\"k\\x00\": 1\n",
    ] {
        let err = parse(text).unwrap_err();
        match &err {
            Rejection::InvalidYaml {
                document: 1,
                line: 3,
                message,
                ..
            } => assert!(message.contains("NUL character"), "{message}"),
            other => panic!("{text:?}: {other:?}"),
        }
    }
    assert!(parse("a: \"no nul \\t here\"\n").is_ok());
}

#[test]
fn yaml_alias_bomb_fails_fast() {
    let mut bomb = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for (name, prev) in ["b", "c", "d", "e", "f", "g", "h", "i"]
        .iter()
        .zip(["a", "b", "c", "d", "e", "f", "g", "h"])
    {
        bomb.push_str(&format!(
            "{name}: &{name} [{}]\n",
            vec![format!("*{prev}"); 9].join(",")
        ));
    }
    let err = parse(&bomb).unwrap_err();
    assert!(
        matches!(
            err,
            Rejection::LimitExceeded {
                limit: Limit::YamlAliasExpansion,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn yaml_alias_of_a_huge_scalar_is_bounded() {
    let text = format!(
        "a: &a {}\nb: [{}]\n",
        "x".repeat(1 << 20),
        vec!["*a"; 100].join(",")
    );
    let err = parse(&text).unwrap_err();
    assert!(
        matches!(
            err,
            Rejection::LimitExceeded {
                limit: Limit::YamlAliasExpansion,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn yaml_rejects_nesting_beyond_the_limit() {
    let flow = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let err = parse(&flow).unwrap_err();
    assert!(
        matches!(
            err,
            Rejection::LimitExceeded {
                limit: Limit::YamlDepth,
                max: 128,
                ..
            }
        ),
        "{err:?}"
    );

    let mut block = String::new();
    for depth in 0..200 {
        block.push_str(&format!("{}k{depth}:\n", "  ".repeat(depth)));
    }
    let err = parse(&block).unwrap_err();
    assert!(
        matches!(
            err,
            Rejection::LimitExceeded {
                limit: Limit::YamlDepth,
                ..
            }
        ),
        "{err:?}"
    );

    let ok = format!("{}{}", "[".repeat(100), "]".repeat(100));
    assert!(parse(&ok).is_ok());
}

#[test]
fn yaml_rejects_too_many_documents_and_too_many_bytes() {
    let limits = YamlLimits {
        max_documents: 3,
        ..YamlLimits::default()
    };
    let err = parse_stream(
        b"a: 1\n---\nb: 1\n---\nc: 1\n---\nd: 1\n",
        &limits,
        Stream::PackageYaml,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Rejection::LimitExceeded {
                limit: Limit::YamlDocuments,
                max: 3,
                ..
            }
        ),
        "{err:?}"
    );

    let limits = YamlLimits {
        max_input_bytes: 8,
        ..YamlLimits::default()
    };
    let err = parse_stream(b"a: 123456789\n", &limits, Stream::ExamplesYaml).unwrap_err();
    assert!(
        matches!(
            err,
            Rejection::LimitExceeded {
                limit: Limit::ExamplesYamlBytes,
                max: 8,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn yaml_skips_byte_order_mark_and_crlf() {
    let docs = parse("\u{feff}a: 1\r\nb: |\r\n  x\r\n").unwrap();
    assert_eq!(docs, vec![json!({"a": 1, "b": "x\n"})]);
}
