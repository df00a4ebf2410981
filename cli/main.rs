//! The command line: the harness (`dec-harness`) running the catalogue (`dec-catalogue`).

fn main() -> std::process::ExitCode {
    dec_harness::cli::main(dec_catalogue::catalogue())
}
