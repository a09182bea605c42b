//! Writes one of [`testkit::attacks::Attack::ALL`] (by name) into an OCI layout, tagged
//! `attack`, for `bench/attacks.sh`: `write_attack <name> <layout dir>`.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::exit,
    reason = "a command-line tool: usage on stderr, exit 2"
)]

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, name, dir] = args.as_slice() else {
        eprintln!("usage: write_attack <name> <layout dir>");
        std::process::exit(2);
    };
    let Some(attack) = testkit::attacks::Attack::ALL
        .into_iter()
        .find(|a| a.name() == *name)
    else {
        let names: Vec<String> = testkit::attacks::Attack::ALL
            .iter()
            .map(|a| a.name())
            .collect();
        eprintln!("unknown attack {name:?}; one of: {}", names.join(", "));
        std::process::exit(2);
    };
    let layout = testkit::oci::OciLayout::create(dir);
    attack.write(&layout, "attack");
}
