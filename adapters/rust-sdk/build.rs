//! The hello line names the matrix-sdk release actually built: read from Cargo.lock (the
//! resolved version), not written by hand in the code.

use std::fs;

fn main() {
    println!("cargo:rerun-if-changed=Cargo.lock");
    let lock = fs::read_to_string("Cargo.lock").expect("Cargo.lock beside Cargo.toml");
    let version = locked_version(&lock, "matrix-sdk")
        .expect("Cargo.lock has a [[package]] named matrix-sdk with a version");
    println!("cargo:rustc-env=MATRIX_SDK_VERSION={version}");
}

/// The version of the `[[package]]` entry named `name` in a Cargo.lock.
fn locked_version(lock: &str, name: &str) -> Option<String> {
    let wanted = format!("name = \"{name}\"");
    lock.split("[[package]]")
        .find(|entry| entry.lines().any(|line| line.trim() == wanted))?
        .lines()
        .find_map(|line| line.trim().strip_prefix("version = "))
        .map(|quoted| quoted.trim_matches('"').to_string())
}
