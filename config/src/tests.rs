use std::time::Duration;

use super::*;

const SAMPLE: &str = r#"
    [server]
    listen = "127.0.0.1:5000"
    [database]
    url = "postgres://u@h/db"
    [[backend]]
    name = "primary"
    url = "http://127.0.0.1:5001"
    [[route]]
    prefix = "acme/"
    backend = "primary"
"#;

#[test]
fn sample_from_issue_parses() {
    let c = Config::from_toml(SAMPLE).unwrap();
    assert_eq!(c.backends[0].name, "primary");
    assert_eq!(c.routes[0].prefix, "acme/");
    assert_eq!(c.server.max_manifest_bytes, 4 * 1024 * 1024);
    assert_eq!(c.backends[0].read_timeout, Duration::from_secs(60));
}

#[test]
fn unknown_key_is_named() {
    let err = Config::from_toml("[server]\nlisten_addr = \"x\"\n").unwrap_err();
    assert!(err.to_string().contains("listen_addr"), "{err}");
}

#[test]
fn bad_value_names_its_key() {
    let err = Config::from_toml("[server]\nmax_manifest_bytes = \"lots\"\n").unwrap_err();
    assert!(err.to_string().contains("max_manifest_bytes"), "{err}");
    let err = Config::from_toml("[server]\nshutdown_timeout = \"soon\"\n").unwrap_err();
    assert!(err.to_string().contains("shutdown_timeout"), "{err}");
}

#[test]
fn half_a_client_certificate_and_a_page_size_out_of_range_are_refused() {
    for section in ["backend", "upstream"] {
        let extra = match section {
            "backend" => "[[backend]]\nname = \"b\"\nurl = \"https://127.0.0.1:1\"\n",
            _ => {
                "[[upstream]]\nname = \"u\"\nhosts = [\"r.test\"]\nurl = \"https://127.0.0.1:1\"\n"
            }
        };
        let half = format!("{SAMPLE}\n{extra}client_cert = \"c.pem\"\n");
        let err = Config::from_toml(&half).unwrap_err().to_string();
        let index = if section == "backend" { 1 } else { 0 };
        assert!(
            err.contains(&format!("`{section}[{index}].client_cert`")),
            "{err}"
        );
        let whole = format!("{half}client_key = \"k.pem\"\n");
        Config::from_toml(&whole).unwrap();
    }
    for bad in [0, 101] {
        let err = Config::from_toml(&format!("[web]\npage_size = {bad}\n")).unwrap_err();
        assert!(err.to_string().contains("`web.page_size`"), "{err}");
    }
    Config::from_toml("[web]\npage_size = 100\n").unwrap();
}

#[test]
fn a_short_session_secret_is_refused() {
    let short = SAMPLE.replace(
        "listen = \"127.0.0.1:5000\"",
        "listen = \"127.0.0.1:5000\"\nsession_secret = \"too short\"",
    );
    let err = Config::from_toml(&short).unwrap_err();
    assert!(err.to_string().contains("server.session_secret"), "{err}");
    let long = short.replace("too short", &"k".repeat(32));
    let c = Config::from_toml(&long).unwrap();
    assert_eq!(c.server.session_secret.unwrap().expose(), "k".repeat(32));
}

#[test]
fn route_to_missing_backend_is_named() {
    let err = Config::from_toml(&SAMPLE.replace("backend = \"primary\"", "backend = \"nope\""))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "configuration key `route[0].backend`: no backend named \"nope\""
    );
}

#[test]
#[allow(
    clippy::result_large_err,
    reason = "figment's Jail API fixes the error type"
)]
fn environment_overrides_file_including_arrays() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shimmer.toml");
    std::fs::write(&path, SAMPLE).unwrap();
    figment::Jail::expect_with(|jail| {
        jail.set_env("SHIMMER_SERVER__LISTEN", "127.0.0.1:6000");
        jail.set_env("SHIMMER_SERVER__MAX_MANIFEST_BYTES", "1024");
        jail.set_env("SHIMMER_ROUTE", r#"[{prefix="other/", backend="primary"}]"#);
        let c = Config::load(&path, true).unwrap();
        assert_eq!(c.server.listen.port(), 6000);
        assert_eq!(c.server.max_manifest_bytes, 1024);
        assert_eq!(c.routes.len(), 1);
        assert_eq!(c.routes[0].prefix, "other/");
        Ok(())
    });
}

#[test]
#[allow(
    clippy::result_large_err,
    reason = "figment's Jail API fixes the error type"
)]
fn other_shimmer_variables_are_not_configuration_but_misspelt_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shimmer.toml");
    std::fs::write(
        &path,
        format!("{SAMPLE}\n[[upstream]]\nname = \"up\"\nhosts = [\"registry.test\"]\nurl = \"http://127.0.0.1:1\"\nusername = \"me\"\npassword_env = \"SHIMMER_UP_PASSWORD\"\n"),
    )
    .unwrap();
    figment::Jail::expect_with(|jail| {
        // A secret named by password_env, the run script's ports, the config path.
        jail.set_env("SHIMMER_UP_PASSWORD", "pw-from-env");
        jail.set_env("SHIMMER_RUN_PORT", "5600");
        jail.set_env("SHIMMER_CONFIG", "elsewhere.toml");
        let c = Config::load(&path, true).unwrap();
        let pw = c.upstreams[0].as_backend().resolve_password().unwrap();
        assert_eq!(pw.unwrap().expose(), "pw-from-env");

        jail.set_env("SHIMMER_SERVR__LISTEN", "127.0.0.1:6000");
        let err = Config::load(&path, true).unwrap_err().to_string();
        assert!(err.contains("servr"), "{err}");
        Ok(())
    });
    assert!(is_config_variable("DATABASE__URL") && is_config_variable("route"));
    assert!(!is_config_variable("PRIMARY_PASSWORD") && !is_config_variable("config"));
}

#[test]
fn secrets_do_not_print() {
    let c = Config::from_toml(SAMPLE).unwrap();
    assert!(!format!("{c:?}").contains("postgres://u@h/db"));
}

#[test]
fn explicit_missing_file_is_an_error() {
    let err = Config::load(Path::new("/nonexistent/shimmer.toml"), true).unwrap_err();
    assert!(err.to_string().contains("--config"), "{err}");
}

#[test]
fn tag_ttl_zero_always_revalidates_never_pins_and_durations_parse() {
    let ttl = |v: &str| {
        Config::from_toml(&format!("[cache]\ntag_ttl = {v}\n"))
            .map(|c| c.cache.tag_ttl)
            .map_err(|e| e.to_string())
    };
    assert_eq!(ttl("\"0\""), Ok(TagTtl(Some(Duration::ZERO))));
    assert_eq!(ttl("0"), Ok(TagTtl(Some(Duration::ZERO))));
    assert_eq!(ttl("\"never\""), Ok(TagTtl(None)));
    assert_eq!(ttl("\"10m\""), Ok(TagTtl(Some(Duration::from_secs(600)))));
    assert_eq!(ttl("90"), Ok(TagTtl(Some(Duration::from_secs(90)))));
    let err = ttl("\"sometimes\"").unwrap_err();
    assert!(err.contains("tag_ttl"), "{err}");
    let c = Config::from_toml("").unwrap();
    assert_eq!(c.cache.tag_ttl, TagTtl(Some(Duration::from_secs(600))));
    assert_eq!(c.cache.revalidate_timeout, Duration::from_secs(3));
    let err = Config::from_toml("[cache]\nrevalidate_timeout = \"0s\"\n").unwrap_err();
    assert!(
        err.to_string().contains("cache.revalidate_timeout"),
        "{err}"
    );
}

#[test]
fn serving_timeouts_default_parse_and_refuse_zero() {
    let pick = |c: &Config, key: &str| match key {
        "server.header_read_timeout" => c.server.header_read_timeout,
        "web.header_read_timeout" => c.web.header_read_timeout,
        "web.request_timeout" => c.web.request_timeout,
        _ => unreachable!("{key}"),
    };
    for key in [
        "server.header_read_timeout",
        "web.header_read_timeout",
        "web.request_timeout",
    ] {
        let (section, name) = key.split_once('.').unwrap();
        let c = Config::from_toml("").unwrap();
        assert_eq!(pick(&c, key), Duration::from_secs(30), "{key} default");
        let c = Config::from_toml(&format!("[{section}]\n{name} = \"5s\"\n")).unwrap();
        assert_eq!(pick(&c, key), Duration::from_secs(5), "{key}");
        let err = Config::from_toml(&format!("[{section}]\n{name} = \"0s\"\n")).unwrap_err();
        assert!(err.to_string().contains(key), "{err}");
    }
}

const UPSTREAM: &str =
    "[[upstream]]\nname = \"up\"\nhosts = [\"registry.test\"]\nurl = \"http://127.0.0.1:1\"\n";

#[test]
#[allow(
    clippy::result_large_err,
    reason = "figment's Jail API fixes the error type"
)]
fn upstream_secrets_come_from_env_or_files_and_do_not_print() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("SHIMMER_TEST_UP_PASSWORD", "pw-from-env");
        jail.set_env("SHIMMER_TEST_UP_TOKEN", "token-from-env");
        jail.create_file("password.txt", "pw-from-file\n")?;
        jail.create_file("token.txt", "token-from-file\r\n")?;
        let dir = jail.directory().to_owned();
        let load = |extra: &str| {
            let c = Config::from_toml(&format!("{UPSTREAM}{extra}")).unwrap();
            c.upstreams[0].clone()
        };
        let u = load("username = \"me\"\npassword_env = \"SHIMMER_TEST_UP_PASSWORD\"\n");
        let p = u.as_backend().resolve_password().unwrap().unwrap();
        assert_eq!(p.expose(), "pw-from-env");
        let u = load(&format!(
            "username = \"me\"\npassword_file = \"{}\"\n",
            dir.join("password.txt").display()
        ));
        let p = u.as_backend().resolve_password().unwrap().unwrap();
        assert_eq!(
            p.expose(),
            "pw-from-file",
            "one trailing newline is dropped"
        );
        let u = load("token_env = \"SHIMMER_TEST_UP_TOKEN\"\n");
        assert_eq!(
            u.resolve_token().unwrap().unwrap().expose(),
            "token-from-env"
        );
        let u = load(&format!(
            "token_file = \"{}\"\n",
            dir.join("token.txt").display()
        ));
        assert_eq!(
            u.resolve_token().unwrap().unwrap().expose(),
            "token-from-file"
        );
        let u = load("token = \"inline\"\ntoken_env = \"SHIMMER_TEST_UP_TOKEN\"\n");
        assert_eq!(
            u.resolve_token().unwrap().unwrap().expose(),
            "inline",
            "first set wins"
        );
        let u = load("");
        assert_eq!(u.resolve_token().unwrap(), None);

        // Missing sources are errors naming the key.
        let u = load("token_env = \"SHIMMER_TEST_UP_UNSET\"\n");
        let err = u.resolve_token().unwrap_err().to_string();
        assert!(err.contains("upstream.up.token_env"), "{err}");
        let u = load("token_file = \"/nonexistent/token\"\n");
        let err = u.resolve_token().unwrap_err().to_string();
        assert!(err.contains("upstream.up.token_file"), "{err}");
        let u = load("password_env = \"SHIMMER_TEST_UP_UNSET\"\n");
        let err = u.as_backend().resolve_password().unwrap_err().to_string();
        assert!(err.contains("password_env"), "{err}");
        let u = load("password_file = \"/nonexistent/pw\"\n");
        let err = u.as_backend().resolve_password().unwrap_err().to_string();
        assert!(err.contains("password_file"), "{err}");

        // Inline secrets never print.
        let c = Config::from_toml(&format!(
            "{UPSTREAM}password = \"hunter2-secret\"\ntoken = \"tok-secret\"\n"
        ))
        .unwrap();
        let printed = format!("{c:?}");
        assert!(!printed.contains("hunter2-secret") && !printed.contains("tok-secret"));
        Ok(())
    });
}

/// The README's Configuration tables and shimmer.example.toml name the same options, each in
/// the same section (set or commented out in the example): the example claims to hold every
/// option, and the README to document them.
#[test]
fn the_example_configuration_has_every_documented_option() {
    // The configuration reference: one `## ` heading a section, one table row a key.
    let tables = include_str!("../../docs/configuration.md");
    // The backticked names in a table row's first cell (`a`, `b` / `c`) or a heading.
    let names = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(|n| n.trim_matches(|c| c == '[' || c == ']').to_owned())
            .collect()
    };
    let mut documented = Vec::new();
    let mut section = String::new();
    for line in tables.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            section = names(heading).first().cloned().unwrap_or_default();
        } else if let Some(row) = line.strip_prefix("| `") {
            let cell = format!("`{}", row.split('|').next().unwrap_or_default());
            for name in names(&cell) {
                documented.push(match name.split_once('.') {
                    Some((s, k)) => (s.to_owned(), k.to_owned()),
                    None => (section.clone(), name),
                });
            }
        }
    }
    assert!(documented.len() > 50, "parsed {documented:?}");

    let mut example = std::collections::HashSet::new();
    let mut section = String::new();
    for line in include_str!("../../shimmer.example.toml").lines() {
        let line = line.trim_start_matches(['#', ' ']);
        if line.starts_with('[') {
            let end = line.find(']').unwrap_or(line.len());
            section = line[..end].trim_matches('[').to_owned();
        } else if let Some((key, _)) = line.split_once('=')
            && !key.trim().is_empty()
            && key
                .trim()
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_')
        {
            example.insert((section.clone(), key.trim().to_owned()));
        }
    }
    let missing: Vec<_> = documented
        .iter()
        .filter(|(s, k)| !example.contains(&(s.clone(), k.clone())))
        .map(|(s, k)| format!("{s}.{k}"))
        .collect();
    assert!(
        missing.is_empty(),
        "documented in docs/configuration.md, missing from shimmer.example.toml: {missing:?}"
    );
    let undocumented: Vec<_> = example
        .iter()
        .filter(|entry| !documented.contains(entry))
        .map(|(s, k)| format!("{s}.{k}"))
        .collect();
    assert!(
        undocumented.is_empty(),
        "in shimmer.example.toml, not in docs/configuration.md's tables: {undocumented:?}"
    );
}

#[test]
fn the_shipped_example_configurations_load() {
    for (name, text) in [
        (
            "shimmer.example.toml",
            include_str!("../../shimmer.example.toml"),
        ),
        (
            "deploy/shimmer.compose.toml",
            include_str!("../../deploy/shimmer.compose.toml"),
        ),
    ] {
        let config = Config::from_toml(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!config.backends.is_empty(), "{name}");
    }
    let example = Config::from_toml(include_str!("../../shimmer.example.toml")).unwrap();
    assert_eq!(
        example.visibility("primary", "internal/x"),
        Some(Visibility::Private)
    );
    assert_eq!(example.visibility("primary", "acme/x"), None);
}

#[test]
fn indexer_values_that_cannot_work_are_refused_naming_their_key() {
    for (toml, key) in [
        ("lease = \"0s\"", "indexer.lease"),
        ("lease = \"1ms\"", "indexer.lease"),
        ("poll_interval = \"0s\"", "indexer.poll_interval"),
        ("job_timeout = \"0s\"", "indexer.job_timeout"),
        ("max_attempts = 0", "indexer.max_attempts"),
        ("max_attempts = -1", "indexer.max_attempts"),
        ("retry_base = \"2h\"", "indexer.retry_base"),
    ] {
        let err = Config::from_toml(&format!("[indexer]\n{toml}\n")).unwrap_err();
        assert!(
            err.to_string().contains(&format!("`{key}`")),
            "{toml}: {err}"
        );
    }
    let c = Config::from_toml("[indexer]\nlease = \"1s\"\nretry_base = \"0s\"\n").unwrap();
    assert_eq!(c.indexer.job_timeout, Duration::from_secs(600));
    assert_eq!(c.indexer.keep_done_jobs, Duration::from_secs(7 * 24 * 3600));
}
