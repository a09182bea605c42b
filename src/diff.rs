//! `shimmer diff OLD NEW`: what changes, and what breaks, between two versions of a package
//! (each side a source folder, an `.xpkg` file or a registry reference: [`crate::diff_input`]).
//! Prints a text report, Markdown or one JSON object; exits 0 when nothing breaks, 1 when
//! something does, 2 on an error, said in one line naming the side it concerns.

use std::path::Path;

use anyhow::{Context, anyhow};
use shimmer_config::Config;
use shimmer_diff::{Format, Report, Rules};

use crate::{cli::DiffFormat, diff_input};

/// Runs the command; the process's exit status.
pub async fn run(
    config: &Config,
    old: &str,
    new: &str,
    format: DiffFormat,
    rules: Option<&Path>,
) -> i32 {
    match report(config, old, new, rules).await {
        Ok(report) => {
            let out = match format {
                DiffFormat::Text => report.text(),
                DiffFormat::Json => report.json(),
                DiffFormat::Markdown => report.markdown(),
            };
            print!("{out}");
            i32::from(report.breaking > 0)
        }
        Err(e) => {
            eprintln!("shimmer diff: {}", format!("{e:#}").replace('\n', " "));
            2
        }
    }
}

async fn report(
    config: &Config,
    old: &str,
    new: &str,
    rules: Option<&Path>,
) -> anyhow::Result<Report> {
    let rules = match rules {
        Some(path) => read_rules(path).with_context(|| format!("--rules {}", path.display()))?,
        None => Rules::default(),
    };
    let old_side = diff_input::read(config, old)
        .await
        .with_context(|| old.to_owned())?;
    let new_side = diff_input::read(config, new)
        .await
        .with_context(|| new.to_owned())?;
    let changes = shimmer_diff::diff(&old_side.definitions(), &new_side.definitions())?;
    Ok(Report::new(old, new, rules.apply(changes)))
}

/// A rules file: YAML by its `.yaml`/`.yml` name, else TOML.
fn read_rules(path: &Path) -> anyhow::Result<Rules> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow!("cannot be read: {e}"))?;
    let format = match path.extension().and_then(|e| e.to_str()) {
        Some("yaml" | "yml") => Format::Yaml,
        _ => Format::Toml,
    };
    Ok(Rules::parse(&text, format)?)
}
