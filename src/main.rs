fn main() -> std::process::ExitCode {
    rulewatch::cli::run()
}
