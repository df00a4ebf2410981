fn main() -> std::process::ExitCode {
    delayed_events_conformance::cli::main()
}
